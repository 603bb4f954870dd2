"""A model folder in object storage (``s3://``), on local disk: downloaded once per version, then reused.

``from_pretrained`` reads local folders only, so ``lsr evaluate --model s3://...`` and ``lsr serve --model s3://...``
load through :func:`local_checkpoint`, on the node that loads the model (a Ray actor or Serve replica on another
node downloads into that node's cache). The cache folder is keyed by the URI and the key, ETag and size of every
object under it, plus the run's ``train_report.json`` beside it when there is one (it says whether the model is an
AS-ES student and which data set trained it): a rerun finds the same key and downloads nothing; a model overwritten
in the bucket gets new ETags, so a new folder. A download goes to a temporary folder renamed into place when
complete, so an interrupted one is never taken for a cached model, and concurrent loaders on one node do not mix.

Cache root: ``$LSR_CACHE_DIR`` or ``~/.cache/lsr``; the models are under ``models/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from lsr.errors import InputError
from lsr.storage import filesystem, is_remote, s3_client

CACHE_ENV = "LSR_CACHE_DIR"
#: The run's report next to its ``model/`` folder (written by ``lsr train``), cached with the model.
TRAIN_REPORT = "train_report.json"


def cache_root() -> Path:
    """Where downloaded models are kept: ``$LSR_CACHE_DIR/models`` or ``~/.cache/lsr/models``."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "lsr")
    return Path(base) / "models"


def local_checkpoint(path: str) -> str:
    """A local folder holding the model ``path``: ``path`` itself when local, else its cached download."""
    if not is_remote(path):
        return path
    if not path.startswith("s3://"):
        raise InputError(f"--model {path}: only local folders and s3:// URIs are supported")
    uri = path.rstrip("/")
    files = _listing(uri + "/")
    if not files:
        raise InputError(f"--model {path}: no objects under this prefix (give the run's model/ folder)")
    parent, _, name = uri.rpartition("/")
    report = [entry for entry in _listing(f"{parent}/{TRAIN_REPORT}") if entry[0] == ""]
    key = hashlib.sha256(json.dumps([uri, files, report]).encode()).hexdigest()[:20]
    root = cache_root()
    target = root / key
    if not target.is_dir():
        _download(uri, files, f"{parent}/{TRAIN_REPORT}" if report else None, name, root, target)
    return str(target / name)


def _listing(prefix: str) -> list[tuple[str, str, int]]:
    """``(relative key, ETag, size)`` of every object under ``prefix`` (``s3://bucket/key...``), sorted."""
    bucket, _, key = prefix[len("s3://"):].partition("/")
    client = s3_client()
    entries = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # folder markers hold nothing
                    entries.append((item["Key"][len(key):], item["ETag"].strip('"'), int(item["Size"])))
    except Exception as err:  # botocore's errors: no such bucket, access denied, no endpoint
        raise InputError(f"--model {prefix.rstrip('/')}: cannot list it ({type(err).__name__}: {err})") from None
    return sorted(entries)


def _download(uri: str, files: list[tuple[str, str, int]], report: str | None, name: str, root: Path,
              target: Path) -> None:
    """Copy the listed objects (and the run's report) into ``target``, through a temporary folder."""
    from lsr import console

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        fs, inner = filesystem(uri)
        console.note(f"downloading {uri} ({sum(size for _, _, size in files)} bytes) into {target}")
        for relative, _, _ in files:
            destination = staging / name / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(f"{inner}/{relative}") as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink, length=1 << 20)
        if report is not None:
            fs_report, inner_report = filesystem(report)
            with fs_report.open_input_stream(inner_report) as source, open(staging / TRAIN_REPORT, "wb") as sink:
                shutil.copyfileobj(source, sink)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # not a concurrent loader that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
