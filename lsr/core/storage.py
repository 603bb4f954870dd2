"""One way to open a local path or an ``s3://`` URI, for every stage, on the driver and on Ray workers.

An S3 filesystem is built with the endpoint, region and credentials of the usual AWS variables made explicit
(``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``): the filesystem object is pickled into Ray tasks, so workers that do
not share the driver's environment read and write with the same identity; without credentials in the environment
the workers' own chain (an instance role) applies.

``boto3`` are imported inside the functions that use them: the ``lsr`` command imports this module at start-up,
before it knows which of them a command needs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from lsr.core.errors import InputError


def is_remote(path: str | os.PathLike) -> bool:
    path = os.fspath(path)
    return "://" in path and not path.startswith("file://")


def filesystem(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a local path or URI (``s3://bucket/key``), and the path within it."""
    path = os.fspath(path)
    if path.startswith("s3://"):
        return s3_filesystem(), path[len("s3://") :]
    if "://" in path:
        try:
            return pafs.FileSystem.from_uri(path)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
            raise InputError(f"{path}: cannot open ({err})") from None
    return pafs.LocalFileSystem(), os.path.abspath(path)


def ray_filesystem(path: str | os.PathLike) -> pafs.FileSystem | None:
    """The ``filesystem=`` argument for Ray Data's readers and writers: None for a local path (Ray's default)."""
    return filesystem(path)[0] if is_remote(path) else None


def s3_filesystem() -> pafs.S3FileSystem:
    """S3 with the environment's endpoint, region and credentials made explicit (see the module docstring)."""
    env = os.environ
    options: dict = {}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"])
        if env.get("AWS_SESSION_TOKEN"):
            options["session_token"] = env["AWS_SESSION_TOKEN"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_override"] = endpoint
        if endpoint.startswith("http://"):
            options["scheme"] = "http"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options)


def join(path: str | os.PathLike, *parts: str) -> str:
    """``path/part/...`` for a local path or a URI (``os.path.join`` would not keep ``s3://`` intact on Windows)."""
    joined = os.fspath(path).rstrip("/")
    for part in parts:
        joined = f"{joined}/{part.strip('/')}"
    return joined


def exists(path: str | os.PathLike) -> bool:
    return filesystem(path)[0].get_file_info(filesystem(path)[1]).type != pafs.FileType.NotFound


def is_folder(path: str | os.PathLike) -> bool:
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type == pafs.FileType.Directory


def read_text(path: str | os.PathLike) -> str:
    """A whole text file, local or ``s3://``."""
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as handle:
        return handle.read().decode("utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a whole file, local or ``s3://`` (its folder is created)."""
    fs, inner = filesystem(path)
    parent = inner.rsplit("/", 1)[0]
    if parent and parent != inner:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(inner) as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def fresh_folder(parent: str | os.PathLike, name: str, overwrite: bool) -> str:
    """An empty folder ``parent/name`` for a stage's output: one an earlier run left is refused in one line unless
    ``overwrite``, then deleted whole (a writer that appends would mix the two runs' files). Returns its path."""
    path = join(parent, name)
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.NotFound:
        if not overwrite:
            raise InputError(f"{os.fspath(parent)}: already holds {name}/ from an earlier run; choose a new --output "
                             "or pass --overwrite to replace it")
        fs.delete_dir(inner)
    fs.create_dir(inner, recursive=True)
    return path


def upload_folder(local: str | os.PathLike, path: str) -> None:
    """Copy the files under the local folder ``local`` to ``path`` (local or s3://), mirroring its sub-folders.

    A sub-folder that already exists at ``path`` is emptied first, so a re-exported ``model/`` holds exactly the
    new files (no shard of an older export left beside them); files at the top level are overwritten.
    """
    fs, inner = filesystem(path)
    fs.create_dir(inner, recursive=True)
    for entry in sorted(os.listdir(local)):
        if os.path.isdir(os.path.join(local, entry)):
            fs.delete_dir_contents(f"{inner}/{entry}", missing_dir_ok=True)
    pafs.copy_files(os.fspath(local), inner, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


@contextmanager
def staged_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A local folder to write the files of the output folder ``path`` into, for code that needs local files
    (``save_pretrained``, matplotlib): ``path`` itself when it is local; for a URI a temporary folder uploaded
    with :func:`upload_folder` when the block ends without an error (a failed export leaves the bucket as it was).
    """
    if not is_remote(path):
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="lsr-upload-") as tmp:
        yield Path(tmp)
        upload_folder(tmp, os.fspath(path))


def s3_client():
    """A boto3 S3 client with the same endpoint, region and credentials as :func:`s3_filesystem`, for what
    pyarrow does not expose (object ETags)."""
    import boto3

    env = os.environ
    options: dict = {}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=env.get("AWS_SESSION_TOKEN") or None)
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region_name"] = region
    return boto3.client("s3", **options)
