"""Resuming after a lost node, side by side: ``lsr mine``'s owned output folder against Ray Data's job checkpointing.

The same mining (the loopback OpenAI-compatible stub, the same ``DocumentMiner`` actors, the same documents) runs on
a fresh loopback cluster (tests/helpers/cluster.py: a head with no CPUs, two mining nodes) twice per variant:

1. a first run, during which the node holding a mining actor is killed ungracefully once ``--kill-node-at`` rows
   are on storage, and then the driver itself is SIGKILLed once ``--kill-driver-at`` rows are (the whole job lost:
   the head node preempted, ``ray job stop``, an out-of-memory kill);
2. a rerun of the same command, to the end.

Variants:

- ``lsr``: ``lsr mine --engine http`` (rows stream back to the driver, which writes them into its owned folder).
- ``ray``: this script's ``--ray-driver`` mode: the same read -> fit -> mine plan ending in ``write_parquet`` with
  ``DataContext.checkpoint_config = CheckpointConfig(id_column="id", checkpoint_path=...)``, the plan shape Ray's
  checkpointing applies to (a read at the root, a file write at the end).

Printed per variant: ids written (and any twice), failed rows, files in the output, documents mined more than once
(counted from the stub's arrivals of each document's call A) in the first run (the node loss) and across the
driver's death (the rerun), requests per document, and seconds. The stub answers each request after ``--delay``
seconds, so requests in flight are what a slow LLM leaves in flight.

    python bench/bench_resume_checkpointing.py
    python bench/bench_resume_checkpointing.py --documents 480 --output resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers: the loopback cluster and the OpenAI-compatible stub

CHECKPOINTS = "ray_checkpoint"  # the Ray variant's checkpoint folder, beside its output


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", type=int, default=320)
    p.add_argument("--max-in-flight", type=int, default=8, help="documents per mining task (one block)")
    p.add_argument("--rows-per-file", type=int, default=16, help="lsr mine's rows per output file")
    p.add_argument("--delay", type=float, default=0.5, help="seconds the stub holds each request")
    p.add_argument("--kill-node-at", type=int, default=32, help="rows on storage when the mining node is killed")
    p.add_argument("--kill-driver-at", type=int, default=160, help="rows on storage when the driver is killed")
    p.add_argument("--no-replace-node", dest="replace_node", action="store_false",
                   help="leave the killed node unreplaced (by default one like it joins, as an autoscaler's would)")
    p.add_argument("--rerun-timeout", type=float, default=300.0, help="seconds the rerun may take")
    p.add_argument("--variants", default="lsr,ray", help="comma-separated: lsr, ray")
    p.add_argument("--repeats", type=int, default=1, help="runs of each variant (the table shows the range)")
    p.add_argument("--output", default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------- the Ray variant
def ray_driver(argv: list[str]) -> int:
    """``lsr mine``'s plan, ending in Ray Data's ``write_parquet`` under Ray's job checkpointing: the rows never
    reach the driver, and a rerun's read skips the ids Ray's checkpoint holds."""
    import pyarrow as pa
    import ray.data
    from ray.data.checkpoint import CheckpointConfig

    from lsr.cli.commands.mine import add_arguments
    from lsr.core.cli_config import config_from_args
    from lsr.core.ray_utils import init_ray
    from lsr.data.io import index_documents
    from lsr.mining.pipeline import _mining_stream, _Todo, settings_of

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--checkpoint-path", required=True)
    args = parser.parse_args(argv)
    checkpoint_path = args.checkpoint_path
    del args.checkpoint_path
    config = config_from_args(args)
    index = index_documents(config.input)
    init_ray(address=config.ray_address)
    context = ray.data.DataContext.get_current()
    context.checkpoint_config = CheckpointConfig(id_column="id", checkpoint_path=checkpoint_path,
                                                 delete_checkpoint_on_success=False)
    todo = _Todo(index.ids, pa.array([False] * len(index.ids)), len(index.ids), Counter())
    mined = _mining_stream(config, index, todo, settings_of(config))
    mined.write_parquet(config.output)
    return 0


# ------------------------------------------------------------------------------------------- measuring
def rows_on_storage(variant: str, out: Path) -> int:
    """Rows on storage now: in the files lsr's manifest lists, or in Ray's committed checkpoints (each holds exactly
    the ids of the data file it names)."""
    from lsr.data.checkpointed_write import committed_ids
    from tests.helpers.mined import listed_ids

    return len(listed_ids(out)) if variant == "lsr" else committed_ids(str(out.parent / CHECKPOINTS))


def driver_command(variant: str, args: argparse.Namespace, inputs: Path, out: Path, url: str) -> list[str]:
    common = ["--input", str(inputs), "--output", str(out), "--dataset", "cnndm", "--engine", "http",
              "--url", url, "--model", "stub", "--api-key-env", "LSR_NONE", "--concurrency", "2",
              "--max-in-flight", str(args.max_in_flight), "--batch-size", "4",
              "--rows-per-file", str(args.rows_per_file), "--retry-wait", "0.01"]
    if variant == "lsr":
        return [sys.executable, "-m", "lsr.cli", "mine", *common]
    return [sys.executable, str(Path(__file__).resolve()), "--ray-driver", *common,
            "--checkpoint-path", str(out.parent / CHECKPOINTS)]


def wait_for_rows(variant: str, out: Path, job: subprocess.Popen, rows: int, timeout_s: float = 240.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and job.poll() is None:
        saved = rows_on_storage(variant, out)
        if saved >= rows:
            return saved
        time.sleep(0.2)
    raise RuntimeError(f"{variant}: {rows} rows never reached storage (exit {job.poll()})")


def run_variant(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from tests.helpers.cluster import LoopbackCluster
    from tests.helpers.openai_stub_server import OpenAIStub, tiny_documents

    work = Path(tempfile.mkdtemp(prefix=f"lsr-resume-{variant}-"))
    inputs, out = work / "in.jsonl", work / "out"
    rows = tiny_documents(args.documents)
    inputs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    figures: dict[str, Any] = {"variant": variant, "documents": args.documents, "node_replaced": args.replace_node}
    with LoopbackCluster([("mining_gpu", 2), ("mining_gpu", 2)]) as cluster, \
            OpenAIStub("cnndm", delay=args.delay) as stub:
        command = driver_command(variant, args, inputs, out, stub.url)
        driver_env = cluster.env(RAY_DATA_DISABLE_PROGRESS_BARS="1")
        started = time.monotonic()
        first_log = (work / "first.log").open("wb")
        first = subprocess.Popen(command, cwd=REPO, env=driver_env, stdout=first_log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            figures["saved_at_node_kill"] = wait_for_rows(variant, out, first, args.kill_node_at)
            victim = cluster.node_of_actor("DocumentMiner")
            if victim is None:
                raise RuntimeError(f"{variant}: no mining actor found to kill its node")
            cluster.kill_node(victim)
            if args.replace_node:
                cluster.add_node("mining_gpu", 2)  # its replacement, as the autoscaler would start one
            figures["saved_at_driver_kill"] = wait_for_rows(variant, out, first, args.kill_driver_at)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        first_arrivals = len(stub.arrivals)
        time.sleep(5)  # Ray ends the dead driver's actors and tasks
        rerun_started = time.monotonic()
        try:
            rerun = subprocess.run(command, cwd=REPO, env=driver_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=args.rerun_timeout, start_new_session=True)
            figures["rerun_exit"], log = rerun.returncode, rerun.stdout.decode()
        except subprocess.TimeoutExpired as stuck:
            figures["rerun_exit"], log = "timed out", (stuck.stdout or b"").decode()
        (work / "rerun.log").write_text(log)
        figures["rerun_seconds"] = round(time.monotonic() - rerun_started, 1)
        figures["seconds"] = round(time.monotonic() - started, 1)
        if figures["rerun_exit"] != 0:
            print(f"{variant}: the rerun ended with {figures['rerun_exit']}; its log: {work / 'rerun.log'}\n"
                  + log[-3000:], file=sys.stderr)
        arrivals = [key for call, key in stub.arrivals if call == "rationale"]
        before = Counter(key for call, key in stub.arrivals[:first_arrivals] if call == "rationale")
        after = Counter(key for call, key in stub.arrivals[first_arrivals:] if call == "rationale")
    data_files = [p for p in out.rglob("*.parquet")]
    table = pq.read_table(data_files, columns=["id", "error"]) if data_files else None
    ids = Counter(table.column("id").to_pylist()) if table is not None else Counter()
    twice = Counter(arrivals)
    figures.update({
        "ids_written": len(ids),
        "ids_written_twice": sum(n > 1 for n in ids.values()),
        "ids_missing": len({r["id"] for r in rows} - set(ids)),
        "failed_rows": (table.num_rows - table.column("error").null_count) if table is not None else 0,
        "files": len(data_files),
        "mined_again_in_first_run": sum(n > 1 for n in before.values()),
        "mined_again_by_rerun": sum(1 for key in after if key in before),
        "mined_more_than_once": sum(n > 1 for n in twice.values()),
        "requests_per_document": round(len(stub.arrivals) / args.documents, 2),
    })
    return figures


def value_range(values: list[Any]) -> str:
    """One value, or ``low-high`` over the repeats (a non-numeric value, such as ``timed out``, listed as is)."""
    if len(set(map(str, values))) == 1:
        return str(values[0])
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return f"{min(values)}-{max(values)}"
    return ", ".join(map(str, values))


def print_table(results: list[dict[str, Any]]) -> None:
    """One column per variant; a figure that varied over the repeats shows its range."""
    variants = list(dict.fromkeys(r["variant"] for r in results))
    keys = ["documents", "node_replaced", "saved_at_node_kill", "saved_at_driver_kill", "rerun_exit",
            "rerun_seconds", "ids_written", "ids_written_twice", "ids_missing", "failed_rows", "files",
            "mined_again_in_first_run", "mined_again_by_rerun", "mined_more_than_once",
            "requests_per_document", "seconds"]
    repeats = sum(r["variant"] == variants[0] for r in results)
    print(f"| figure ({repeats} run(s) each) | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for key in keys:
        cells = [value_range([r.get(key, "") for r in results if r["variant"] == v]) for v in variants]
        print(f"| {key} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ray-driver"]:
        return ray_driver(argv[1:])
    args = parse_args(argv)
    results = [run_variant(v, args) for _ in range(args.repeats) for v in args.variants.split(",")]
    print_table(results)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
