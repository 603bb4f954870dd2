"""A model folder in object storage (``s3://``), on local disk: downloaded once per version, then reused.

``from_pretrained`` reads local folders only, so ``lsr evaluate --model s3://...`` and ``lsr serve --model s3://...``
load through :func:`local_checkpoint`, on the node that loads the model. The driver lists the bucket once
(:func:`remote_model`) and hands that :class:`RemoteModel` to its Ray actors and tasks, so an actor on another node
downloads the same version into that node's cache with the driver's identity.

The cache folder is keyed by the URI and the key, ETag and size of every
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsr.core import console
from lsr.core.errors import InputError
from lsr.core.storage import filesystem, is_remote, s3_client
from lsr.data.layout import TRAIN_REPORT

CACHE_ENV = "LSR_CACHE_DIR"
#: The run's report next to its ``model/`` folder (written by ``lsr train``), cached with the model.


def cache_root() -> Path:
    """Where downloaded models are kept: ``$LSR_CACHE_DIR/models`` or ``~/.cache/lsr/models``."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "lsr")
    return Path(base) / "models"


@dataclass(frozen=True)
class RemoteModel:
    """One version of a model folder in object storage, as the driver listed it: what a Ray actor or task needs to
    find it in its node's cache, or to download it there with the driver's S3 identity (``fs``, pickled as every
    :mod:`lsr.core.storage` filesystem is), whatever that node's environment holds."""

    uri: str
    key: str
    files: tuple[tuple[str, str, int], ...]
    report: str | None
    fs: Any
    #: The driver's ``$LSR_CACHE_DIR`` when it set one (the same on every node), else each node's default.
    cache: str | None = None

    def local(self) -> str:
        """The model's folder in this node's cache, downloaded first if this node has not got this version."""
        root = Path(self.cache) / "models" if self.cache else cache_root()
        target = root / self.key
        name = self.uri.rpartition("/")[2]
        if not target.is_dir():
            _download(self, name, root, target)
        return str(target / name)


def remote_model(path: str) -> RemoteModel:
    """The current version of the ``s3://`` model folder ``path``: its objects, their ETags and sizes, listed now."""
    if not path.startswith("s3://"):
        raise InputError(f"--model {path}: only local folders and s3:// URIs are supported")
    uri = path.rstrip("/")
    files = _listing(uri + "/")
    if not files:
        raise InputError(f"--model {path}: no objects under this prefix (give the run's model/ folder)")
    parent = uri.rpartition("/")[0]
    report = [entry for entry in _listing(f"{parent}/{TRAIN_REPORT}") if entry[0] == ""]
    key = hashlib.sha256(json.dumps([uri, files, report]).encode()).hexdigest()[:20]
    return RemoteModel(uri, key, tuple(files), f"{parent}/{TRAIN_REPORT}" if report else None, filesystem(uri)[0],
                       os.environ.get(CACHE_ENV) or None)


def model_source(path: str) -> str | RemoteModel:
    """What to hand to code that loads ``path`` on a Ray worker: a local path as it is, an ``s3://`` one resolved
    here (:class:`RemoteModel`), so the worker neither lists the bucket nor needs the AWS variables itself."""
    return remote_model(path) if is_remote(path) else path


def local_checkpoint(path: str | RemoteModel) -> str:
    """A local folder holding the model ``path``: ``path`` itself when local, else its cached download."""
    if isinstance(path, RemoteModel):
        return path.local()
    return remote_model(path).local() if is_remote(path) else path


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


def _download(model: RemoteModel, name: str, root: Path, target: Path) -> None:
    """Copy the model's objects (and the run's report) into ``target``, through a temporary folder."""

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        inner = filesystem(model.uri)[1]
        console.note(f"downloading {model.uri} ({sum(size for _, _, size in model.files)} bytes) into {target}")
        for relative, _, _ in model.files:
            destination = staging / name / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with model.fs.open_input_stream(f"{inner}/{relative}") as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink, length=1 << 20)
        if model.report is not None:
            with model.fs.open_input_stream(filesystem(model.report)[1]) as source, \
                    open(staging / TRAIN_REPORT, "wb") as sink:
                shutil.copyfileobj(source, sink)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # not a concurrent loader that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
