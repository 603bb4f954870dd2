"""Ray's C++ notice about actor constructor arguments stays off the terminal (it stays in Ray's log file); every
other byte written to stderr, partial lines included, still reaches it."""

from __future__ import annotations

import subprocess
import sys

from lsr.core.native_stderr import filter_chunk
from tests.helpers.paths import REPO

NOTICE = (b"[2026-12-03 08:39:19,432 E 20940 20940] core_worker.cc:2465: Actor with class name: "
          b"'MapWorker(MapBatches(DocumentMiner))' and ID: 'bca6' has constructor arguments in the object store and "
          b"max_restarts > 0. If the arguments in the object store go out of scope or are lost, the actor restart "
          b"will fail.\n")


def test_the_notice_is_dropped_and_everything_else_passes_at_once():
    assert filter_chunk(b"", b"kept\n" + NOTICE + b"also kept\n") == (b"kept\nalso kept\n", b"")
    assert filter_chunk(b"", b"\r  documents mined 3") == (b"\r  documents mined 3", b"")  # a bar's redraw
    out, pending = filter_chunk(b"", NOTICE[:40])  # may be Ray's: held until its end
    assert (out, pending) == (b"", NOTICE[:40])
    assert filter_chunk(pending, NOTICE[40:] + b"[lsr serve] ready\n") == (b"[lsr serve] ready\n", b"")
    other = b"[2026-12-03 08:39:19,432 E 1 1] core_worker.cc:99: a real error\n"
    assert filter_chunk(b"", other) == (other, b"")


def test_a_ray_data_actor_stage_prints_no_native_notice_and_the_last_line_still_arrives():
    code = (
        "import os, ray, ray.data\n"
        "from lsr.core.native_stderr import drop_native_notices\n"
        "drop_native_notices()\n"
        "ray.init(address='local', num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        "class Twice:\n"
        "    def __call__(self, batch):\n"
        "        batch['id'] = batch['id'] * 2\n"
        "        return batch\n"
        "rows = ray.data.range(4).map_batches(Twice, compute=ray.data.ActorPoolStrategy(size=1)).take_all()\n"
        "print(sorted(r['id'] for r in rows))\n"
        "logs = ray._private.worker._global_node.get_session_dir_path() + '/logs'\n"
        "ray.shutdown()\n"
        "found = any('constructor arguments' in open(os.path.join(logs, f)).read()\n"
        "            for f in os.listdir(logs) if f.startswith('python-core-driver'))\n"
        "print('in the log file:', found)\n"
        "os.write(2, b'the last line\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"RAY_DATA_DISABLE_PROGRESS_BARS": "1", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": str(REPO), "HOME": "/tmp"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[0, 2, 4, 6]" in done.stdout and "in the log file: True" in done.stdout
    assert "core_worker.cc" not in done.stderr and "constructor arguments" not in done.stderr
    assert done.stderr.rstrip().endswith("the last line")
