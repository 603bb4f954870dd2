"""Does mining's memory stay flat as the corpus grows? The driver's peak RSS and the object store's peak, 1x and 4x.

The shipped CNN/DM sample (40 real rows, ~3.3 kB of text each) is replicated with fresh ids to ``--docs`` rows and
to ``--factor`` times that, written as JSON Lines shards of ``--rows-per-shard`` rows (a corpus at scale is a
folder of shards). Each size is mined by ``lsr mine --engine oracle`` run as a user runs it (its own process,
every flag at its default) against one local Ray cluster that this script starts, so that the object store can
be watched from outside the run. Every 0.1 s the script samples

- the driver's resident memory: ``VmHWM`` (the kernel's peak-RSS high-water mark) of the ``lsr mine`` process,
  read from ``/proc/<pid>/status`` (Linux);
- the object store's use: ``store_stats.object_store_bytes_used`` of the raylet's global memory info, the figure
  ``ray memory --stats-only`` prints as "Plasma memory usage" (``ray._private.internal_api.get_memory_info_reply``),
  plus the bytes spilled to disk, which would hide a corpus that outgrew the store.

It prints both peaks per size and their ratio, larger over smaller. Flat is a ratio near 1; a stage that holds
the corpus shows the factor (and spills what the store cannot hold).

The object store is small on purpose (``--object-store-mib``, 100 MiB): a streaming Ray Data job may fill up to
its budget (by default half the object store) with blocks read ahead of a slow consumer, so a stream's peak is
min(corpus, budget). A corpus smaller than the budget is read ahead whole and shows nothing; at the scale mining
is built for (10M documents against a store of some GiB) the corpus is far larger than the budget. A small
store lets a laptop-sized corpus (1x: 16,000 documents, ~57 MiB) stand for that regime.

The driver does keep each input id (Arrow buffers, tens of bytes per document) and reads the output's small
columns for the report at the end; the table prints the ids' bytes too, so any growth of the driver is
accounted for.

    python bench/bench_mine_memory.py --docs 16000 --factor 4

To compare with another checkout, run this script with ``PYTHONPATH`` pointing at it: the ``lsr mine``
processes inherit the environment. Run one instance at a time (two at once give figures that a lone run does not
reproduce; the script refuses figures unless ``lsr mine`` ran as a job of its own cluster).

Measured in three configurations (defaults, the 2-core machine, Ray 2.60, one instance), 16,000 and 64,000
documents (57 and 229 MiB):

- streaming reads, the index pass as a Ray Data job, ``lsr mine`` importing torch (load average 5-30): object
  store peak 34.0 and 38.8 MiB (x1.14), nothing spilled; driver peak RSS 574 and 607 MiB (x1.06; the ids are 0.24
  and 0.98 MiB of it, the rest of the 33 MiB is not attributed: the end-of-run report reads the output's small
  columns, the progress poll caches per-file counts). A reader that materialises the corpus, on the same 16,000
  documents: object store 97 MiB (full) and 79 MiB spilled to disk, driver 591 MiB;
- the index pass on the driver, no torch import in ``lsr mine`` (idle machine, 6 min 19 s for both sizes): object
  store peak 20.9 and 23.0 MiB (x1.10), nothing spilled; driver peak RSS 271 and 301 MiB (x1.11): the driver reads
  every input file once itself, one Arrow block at a time;
- in addition, prompts fitted in the read task and JSON Lines read as a stream (``lsr.data.json_lines_source``),
  the code as it stands (the machine busy with another benchmark part of the time, 9 min): object store peak 18.6
  and 19.7 MiB (x1.06), nothing spilled; driver peak RSS 269 and 283 MiB (x1.05).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "lsr" / "samples" / "cnndm_sample.jsonl"
MIB = 1024 * 1024


def write_corpus(folder: Path, docs: int, rows_per_shard: int) -> int:
    """``docs`` rows replicated from the sample with fresh ids, in shards; returns the bytes written."""
    sample = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    folder.mkdir(parents=True)
    written = 0
    for shard in range(0, docs, rows_per_shard):
        lines = []
        for i in range(shard, min(docs, shard + rows_per_shard)):
            row = dict(sample[i % len(sample)])
            row["id"] = f"doc-{i:08d}"
            lines.append(json.dumps(row))
        text = "\n".join(lines) + "\n"
        (folder / f"part-{shard // rows_per_shard:05d}.jsonl").write_text(text)
        written += len(text.encode())
    return written


class StoreSampler(threading.Thread):
    """Samples the cluster's object store use (and spilled bytes) until stopped; keeps the peaks."""

    def __init__(self, gcs_address: str, every_s: float = 0.1):
        super().__init__(daemon=True)
        from ray._private.internal_api import get_state_from_address

        self.state = get_state_from_address(gcs_address)
        self.every_s = every_s
        self.peak = 0
        self.spilled = 0
        self.samples = 0
        self._halt = threading.Event()

    def read(self) -> tuple[int, int]:
        from ray._private.internal_api import get_memory_info_reply

        stats = get_memory_info_reply(self.state).store_stats
        return int(stats.object_store_bytes_used), int(stats.spilled_bytes_total)

    def run(self) -> None:
        while not self._halt.is_set():
            used, spilled = self.read()
            self.peak, self.spilled, self.samples = max(self.peak, used), max(self.spilled, spilled), self.samples + 1
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def peak_rss(pid: int) -> int | None:
    """The process's peak resident set (``VmHWM``), in bytes; None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def mine_once(workdir: Path, docs: int, rows_per_shard: int, gcs_address: str) -> dict:
    corpus = workdir / f"corpus-{docs}"
    corpus_bytes = write_corpus(corpus, docs, rows_per_shard)
    out = workdir / f"out-{docs}"
    command = [sys.executable, "-m", "lsr.cli", "mine", "--input", str(corpus), "--output", str(out),
               "--dataset", "cnndm", "--engine", "oracle", "--ray-address", gcs_address]  # fmt: skip
    import ray

    jobs_before = len(ray._private.state.jobs())
    sampler = StoreSampler(gcs_address)
    idle_store, _ = sampler.read()
    sampler.start()
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver_peak = 0
    while child.poll() is None:
        driver_peak = max(driver_peak, peak_rss(child.pid) or 0)
        time.sleep(0.1)
    seconds = time.monotonic() - started
    stdout, stderr = child.communicate()
    sampler.stop()
    if child.returncode != 0:
        raise SystemExit(f"lsr mine failed for {docs} documents:\n{stderr[-3000:]}")
    if len(ray._private.state.jobs()) != jobs_before + 1:  # the figures are of this cluster only if it ran here
        raise SystemExit(f"{docs} documents: lsr mine did not run as a job of this script's Ray cluster")
    report = json.loads((workdir / f"out-{docs}.report.json").read_text())
    if not (report["complete"] and report["output_rows"] == docs):
        raise SystemExit(f"{docs} documents: the run is not complete: {report}")
    return {
        "docs": docs,
        "files": len(list(corpus.glob("*.jsonl"))),
        "corpus_mib": corpus_bytes / MIB,
        "seconds": seconds,
        "driver_peak_mib": driver_peak / MIB,
        "store_peak_mib": (sampler.peak - idle_store) / MIB,
        "store_idle_mib": idle_store / MIB,
        "spilled_mib": sampler.spilled / MIB,
        "store_samples": sampler.samples,
        "id_bytes_mib": docs * (len("doc-00000000") + 4) / MIB,  # the driver's id index: chars + a 4-byte offset
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=16000, help="documents of the 1x corpus (default 16000)")
    parser.add_argument("--factor", type=int, default=4, help="the larger corpus is this many times larger")
    parser.add_argument("--rows-per-shard", type=int, default=500, help="rows per input file (default 500)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    parser.add_argument("--object-store-mib", type=int, default=100,
                        help="object store of the local Ray cluster (default 100, Ray's minimum is 75)")
    args = parser.parse_args()

    import ray

    ray.init(address="local", num_cpus=args.cpus, object_store_memory=args.object_store_mib * MIB,
             include_dashboard=False, log_to_driver=False)
    gcs_address = ray.get_runtime_context().gcs_address
    env_path = os.environ.get("PYTHONPATH", "")
    print(f"lsr under test: PYTHONPATH={env_path or '(unset)'}; Ray {ray.__version__}, {args.cpus} CPUs, "
          f"object store {args.object_store_mib} MiB")
    try:
        with tempfile.TemporaryDirectory(prefix="lsr-mine-memory-") as tmp:
            results = [mine_once(Path(tmp), n, args.rows_per_shard, gcs_address)
                       for n in (args.docs, args.docs * args.factor)]  # fmt: skip
    finally:
        ray.shutdown()

    print()
    print("| documents | files | corpus MiB | seconds | driver peak RSS MiB | object store peak MiB | spilled MiB "
          "| driver's ids MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['docs']:,} | {r['files']} | {r['corpus_mib']:.1f} | {r['seconds']:.1f} | "
              f"{r['driver_peak_mib']:.0f} | {r['store_peak_mib']:.1f} | {r['spilled_mib']:.1f} | "
              f"{r['id_bytes_mib']:.2f} |")
    small, large = results
    print()
    print(f"ratios {args.factor}x / 1x: corpus {large['corpus_mib'] / small['corpus_mib']:.2f}, "
          f"driver peak RSS {large['driver_peak_mib'] / small['driver_peak_mib']:.2f}, "
          f"object store peak {large['store_peak_mib'] / max(small['store_peak_mib'], 1e-9):.2f}")
    print(f"object store sampled every 0.1 s ({small['store_samples']} and {large['store_samples']} samples; "
          f"use at rest before each run subtracted: {small['store_idle_mib']:.1f} and {large['store_idle_mib']:.1f} "
          "MiB); driver peak = VmHWM of the lsr mine process")


if __name__ == "__main__":
    main()
