"""A stage's Parquet output written under Ray Data's job checkpointing, so that an interrupted pass resumes.

Ray 2.60's job checkpointing (``DataContext.checkpoint_config``) applies to a plan that starts with a read and ends
with a file write. Each write task first writes the ids of its rows as a *pending* checkpoint file, then its data
file, then renames the pending file to a committed one. A rerun first deletes the data files of tasks that never
committed. Then, in a filter placed right after the read, it drops the rows whose ids the committed files hold. So
storage ends with every row once, as long as ids are unique and stay the same through the plan.

What it costs, read from Ray's code and measured (bench/bench_resume_checkpointing.py, README "Resuming after a
lost node"):
- The rerun's filter is an actor pool of its own (one actor at least). It takes one CPU (Ray Data's default for a
  map actor, which ``CheckpointConfig`` cannot change) and reserves 1 GiB of memory for the whole pass. On a
  cluster with no CPU to spare, the read and write tasks never get one, and the rerun waits without a word.
  Measured: on the loopback cluster's one 2-CPU mining node left, 150 s and not one request. A resumed ``lsr
  teacher`` with one teacher actor hung on a 2-CPU local Ray (150 s) and finished in 21 s on 3 CPUs.
  :func:`check_spare_cpus` refuses that case up front.
- The unit of resumption is a write task: one block, so the stage sizes its blocks (``rows_per_file``).
- Ids are taken as unique: a second row with an id already written would be dropped on a rerun. The stage checks
  the written ids against its input at the end.

The stages whose plans fit this shape use it (``lsr teacher``). ``lsr mine`` does not. Its rows stream back to the
driver, which writes them into its owned folder; see :mod:`lsr.mining.output` for what that folder does beyond this.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from lsr.core.errors import InputError
from lsr.core.storage import filesystem, is_remote

#: Ray Data's checkpoint files: ``<task>.pending.parquet`` while its data file is written, ``<task>.parquet`` after.
PENDING_SUFFIX = ".pending.parquet"

#: CPUs a resumed pass needs beside its own actors: one for Ray's checkpoint filter actor, one for its tasks.
SPARE_CPUS = 2


def checkpoint_config(checkpoint: str, id_column: str = "id") -> Any:
    """Ray Data's checkpoint settings for a checkpoint folder (local, shared by every node, or ``s3://``). The
    folder is removed when the pass finishes."""
    from ray.data.checkpoint import CheckpointConfig

    remote = is_remote(checkpoint)  # a local path is made absolute: Ray's workers, in other folders, read it too
    return CheckpointConfig(id_column=id_column,
                            checkpoint_path=os.fspath(checkpoint) if remote else os.path.abspath(checkpoint),
                            override_filesystem=filesystem(checkpoint)[0] if remote else None,
                            delete_checkpoint_on_success=True)


def committed_files(checkpoint: str) -> list[str]:
    """The committed checkpoint files under ``checkpoint`` (none when it does not exist)."""
    fs, inner = filesystem(checkpoint)
    if fs.get_file_info(inner).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(inner))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")
                  and not i.path.endswith(PENDING_SUFFIX))


def committed_ids(checkpoint: str, id_column: str = "id") -> int:
    """How many rows the committed checkpoints record as written: what a resumed pass skips."""
    import pyarrow.parquet as pq

    fs, _ = filesystem(checkpoint)
    total = 0
    for path in committed_files(checkpoint):
        with fs.open_input_file(path) as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


def remove_checkpoint(checkpoint: str) -> None:
    """Forget an earlier pass's checkpoint (a fresh pass must not skip its rows)."""
    fs, inner = filesystem(checkpoint)
    if fs.get_file_info(inner).type != pafs.FileType.NotFound:
        fs.delete_dir(inner)


def check_spare_cpus(actor_cpus: float, flag: str) -> None:
    """Refuse a resumed pass that would wait forever: the cluster must hold :data:`SPARE_CPUS` CPUs beside the
    stage's actors (``actor_cpus``), one of which Ray's checkpoint filter keeps for the whole pass."""
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 0))
    needed = actor_cpus + SPARE_CPUS
    if cpus < needed:
        raise InputError(
            f"{flag} needs {needed:g} CPUs in the Ray cluster: {actor_cpus:g} for the actors, one for Ray Data's "
            f"checkpoint filter (an actor it keeps for the whole pass) and one for the read and write tasks. It has "
            f"{cpus:g}. Add a node, or run with fewer actors"
        )


def write_checkpointed(ds: Any, path: str, schema: pa.Schema, checkpoint: str, id_column: str = "id") -> None:
    """Write ``ds`` (a plan that starts with a read) as Parquet under ``path``, checkpointed in ``checkpoint``.

    The setting goes on this dataset's own context (a read snapshots Ray Data's context), so no other dataset of
    the process is checkpointed by accident.
    """
    from lsr.data.io import write_parquet

    ds.context.checkpoint_config = checkpoint_config(checkpoint, id_column)
    try:
        write_parquet(ds, path, schema)
    finally:
        ds.context.checkpoint_config = None


__all__ = ["SPARE_CPUS", "check_spare_cpus", "checkpoint_config", "committed_files", "committed_ids",
           "remove_checkpoint", "write_checkpointed"]
