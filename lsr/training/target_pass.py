"""The target pass on Ray Data: encode every training row's views once, store them, reuse them (see :mod:`.targets`).

Batch inference the way Ray's docs do it: ``map_batches`` over a pool of actors, one fixed encoder per actor
(a GPU each on a cluster, a CPU locally). The result is written as Parquet under ``TARGETS_DIR/<key>/`` and
``TARGETS_DIR/<key>.json`` (what the set depends on, the row count, the empty and truncated counts per view, the
time) is written last, so a set without it (an interrupted pass) is computed again rather than half-used.

``ray`` is imported inside the functions that use it, so that importing this module for one of its functions (on
the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lsr.core import console
from lsr.core.storage import filesystem, ray_filesystem
from lsr.data.io import read_parquet_dir, resolve_files
from lsr.data.training_rows import training_dir
from lsr.model.views import VIEWS, view_columns
from lsr.training.targets import CARRIED_COLUMNS, TargetEncoder, TargetOptions, target_columns, target_key

if TYPE_CHECKING:
    import ray.data

META_SUFFIX = ".json"


@dataclass
class TargetSet:
    """A stored target set: where it is, its key, and what the pass counted."""

    path: str
    key: str
    rows: int
    empty: dict[str, int]
    truncated: dict[str, int]
    dtype: str
    seconds: float
    rows_per_s: float
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def default_targets_root(data: str) -> str:
    """``DATA/targets`` beside a selection output's ``kept/``, else ``DATA.targets`` (never inside the rows)."""

    source = training_dir(data)
    return f"{data.rstrip('/')}/targets" if source != data else f"{data.rstrip('/')}.targets"


def data_fingerprint(data: str) -> str:
    """The training files' names, sizes and modification times (new data, new targets)."""


    fs, files, _ = resolve_files(training_dir(data))
    infos = fs.get_file_info(files)
    stats = sorted((info.path, info.size, info.mtime_ns) for info in infos)
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def _read_meta(path: str) -> dict[str, Any] | None:

    fs, inner = filesystem(path + META_SUFFIX)
    try:
        with fs.open_input_file(inner) as f:
            return json.loads(f.read().decode("utf-8"))
    except (FileNotFoundError, OSError):
        return None


def _write_meta(path: str, meta: dict[str, Any]) -> None:

    fs, inner = filesystem(path + META_SUFFIX)
    with fs.open_output_stream(inner) as f:
        f.write((json.dumps(meta, indent=2) + "\n").encode("utf-8"))


def target_set_path(data: str, checkpoint: str, seed: int, options: TargetOptions) -> tuple[str, str]:
    """``(path, key)`` of the target set for these rows, this encoder and these text settings."""
    key = target_key(checkpoint, seed, options, data_fingerprint(data))
    root = options.targets_dir or default_targets_root(data)
    return f"{root.rstrip('/')}/{key}", key


def ensure_targets(
    rows: ray.data.Dataset, data: str, checkpoint: str, seed: int, options: TargetOptions, use_gpu: bool = False
) -> tuple[ray.data.Dataset, TargetSet]:
    """The stored target set for ``rows`` (computed now when missing) as a Dataset, and its summary."""

    path, key = target_set_path(data, checkpoint, seed, options)
    meta = _read_meta(path)
    if meta is None:
        meta = run_target_pass(rows, path, key, checkpoint, seed, options, use_gpu=use_gpu)
        reused = False
    else:
        reused = True
        console.note(f"alignment targets: reusing {path}")
    columns = [*CARRIED_COLUMNS, *(c for v in VIEWS for c in target_columns(v))]
    stored = read_parquet_dir(path, columns)
    return stored, TargetSet(**{**meta["counts"], "path": path, "key": key, "reused": reused})


def run_target_pass(
    rows: ray.data.Dataset, path: str, key: str, checkpoint: str, seed: int, options: TargetOptions,
    use_gpu: bool = False,
) -> dict[str, Any]:
    """Encode ``rows``' views with the fixed encoder on an actor pool, write Parquet and ``targets.json``."""
    import ray.data


    started = time.perf_counter()
    console.note(f"alignment targets: encoding them once with {checkpoint}'s encoder into {path}")
    encoded = rows.select_columns([*CARRIED_COLUMNS, *view_columns(VIEWS)]).map_batches(
        TargetEncoder,
        fn_constructor_kwargs={
            "checkpoint": checkpoint,
            "seed": seed,
            "max_tokens": options.rationale_max_tokens,
            "dtype": options.target_dtype,
            "use_gpu": use_gpu,
        },
        batch_size=options.target_batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=options.target_actors),
        num_gpus=1 if use_gpu else 0,
    )
    fs, inner = filesystem(path)
    fs.delete_dir_contents(inner, missing_dir_ok=True)  # what an interrupted pass left (it wrote no .json)
    encoded.write_parquet(path, filesystem=ray_filesystem(path))
    written = _count_flags(path)
    seconds = time.perf_counter() - started
    meta = {
        "key": key,
        "checkpoint": checkpoint,
        "seed": seed,
        "options": options.model_dump(mode="json", include=set(TargetOptions.model_fields)),
        "counts": {
            **written,
            "dtype": options.target_dtype,
            "seconds": seconds,
            "rows_per_s": written["rows"] / seconds if seconds > 0 else 0.0,
        },
    }
    _write_meta(path, meta)
    return meta


def _count_flags(path: str) -> dict[str, Any]:
    """Rows, and per view how many rows have no text (empty) and how many texts were cut (truncated)."""

    flags = [c for v in VIEWS for c in target_columns(v)[1:]]
    table = read_parquet_dir(path, flags).select_columns(flags).to_pandas()
    return {
        "rows": len(table),
        "empty": {v: int((~table[target_columns(v)[1]].astype(bool)).sum()) for v in VIEWS},
        "truncated": {v: int(table[target_columns(v)[2]].astype(bool).sum()) for v in VIEWS},
    }
