"""The mining output folder, owned by its run: a manifest, a lock, and files written whole.

Why: the folder is the resume checkpoint of a job that may run for a week. Trusting whatever ``*.parquet`` lies in
it would let a user's half-copied export be deleted or counted as done, and let two runs double every row. So:

- ``_lsr_manifest.json`` records the run's identity (input, data set, engine, model, prompt version, mining
  settings) and the files lsr wrote. Resuming reads only those files. A folder holding anything else, or a
  manifest for other settings, is refused with one line; ``--start-over`` deletes what lsr wrote and begins again
  (it never deletes a file lsr did not write).
- A data file is written under a hidden temporary name, listed in the manifest, then renamed, so every visible
  data file is whole and listed. A kill between two steps leaves a state :meth:`OwnedOutput.open` finishes
  (a listed file still under its temporary name is renamed) or undoes (an unlisted temporary file is deleted).
  On ``s3://`` a PUT is atomic, so files are written in place after the manifest lists them.
- ``_lsr.lock`` refuses a second concurrent run. **Stale rule**: a lock is stale, and taken over, when its
  heartbeat (rewritten every :data:`HEARTBEAT_S` seconds by the running job) is older than :data:`STALE_AFTER_S`,
  or at once when it was taken on this host by a process that no longer exists. On ``s3://`` taking the lock is
  best effort (write, then read back).

Files whose names start with ``_`` or ``.`` are skipped by Parquet readers (Ray, pyarrow), so the manifest, the
lock and temporary files never look like data to ``lsr select``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lsr.core.errors import InputError
from lsr.core.storage import filesystem, is_remote
from lsr.data.layout import LOCK, MANIFEST
from lsr.mining.prompts import rationale_messages, summaries_messages

TMP_PREFIX = ".lsr-tmp-"
FORMAT = 1
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


def prompt_version(dataset: str, structured: bool = False) -> str:
    """A digest of the prompts' fixed text: a change of prompts is a change of the run's identity."""

    fixed = rationale_messages("{document}", "{summary}", dataset, structured) + summaries_messages(
        "{document}", "{rationale}", dataset, structured
    )
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:12]


def identity_of(config: Any) -> dict[str, Any]:
    """What must match for a folder to be resumed by ``config`` (a :class:`~lsr.mining.config.MineConfig`)."""
    source = config.input if is_remote(config.input) else os.path.abspath(config.input)
    return {
        "input": source,
        "dataset": config.dataset,
        "engine": config.engine.kind,
        "model": config.engine.model_name,
        "prompt_version": prompt_version(config.dataset, config.mining.structured_output),
        "mining": config.mining.model_dump(),
    }


@dataclass
class OpenReport:
    """What opening the folder found and did."""

    files: list[str] = field(default_factory=list)  # listed, readable data files (full paths)
    broken: list[str] = field(default_factory=list)  # listed files that could not be read: deleted, rows redone
    finished: list[str] = field(default_factory=list)  # writes a kill had interrupted, completed now
    cleaned: list[str] = field(default_factory=list)  # temporary or retired files of earlier runs, deleted


class OwnedOutput:
    """The output folder of one mining run; use :meth:`open`, then :meth:`add` tables, then :meth:`close`."""

    def __init__(self, path: str, fs: pafs.FileSystem, root: str, manifest: dict[str, Any]):
        self.path = path
        self.fs = fs
        self.root = root.rstrip("/")
        self.manifest = manifest
        self.token = uuid.uuid4().hex[:8]
        self._seq = 0
        self._lock_body: dict[str, Any] | None = None
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self._mutex = threading.Lock()  # a heartbeat never rewrites the lock after release() removed it

    # ----------------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, config: Any, *, start_over: bool = False) -> tuple[OwnedOutput, OpenReport]:
        """Check, lock and tidy the folder of ``config.output``; one :class:`InputError` line when it is refused."""
        path = config.output
        fs, root = filesystem(path)
        root = root.rstrip("/")
        try:
            info = fs.get_file_info(root)
            if info.type == pafs.FileType.File:
                raise InputError(f"{path}: the output must be a directory, and this is a file")
            fs.create_dir(root, recursive=True)
        except OSError as err:
            raise InputError(f"{path}: cannot create or read the output folder ({_short(err)})") from None
        identity = identity_of(config)
        manifest = _read_json(fs, f"{root}/{MANIFEST}")
        output = cls(path, fs, root, manifest or _new_manifest(identity))
        output._take_lock()
        try:
            report = output._reconcile(identity, manifest is not None, start_over)
            output.manifest.setdefault("runs", []).append({"token": output.token, "started": time.time()})
            output._save_manifest()
        except BaseException:
            output.release()
            raise
        return output, report

    def _reconcile(self, identity: dict[str, Any], had_manifest: bool, start_over: bool) -> OpenReport:
        report = OpenReport()
        entries = self._entries()
        listed = set(self.manifest.get("files", []))
        retired = set(self.manifest.get("retired", []))
        ours = listed | retired | {MANIFEST, LOCK}
        foreign = sorted(n for n in entries if n not in ours and not n.startswith(TMP_PREFIX))
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise InputError(
                f"{self.path}: holds {len(foreign)} file(s) this mining run did not write ({shown}); lsr resumes "
                "only from files its manifest lists. Choose a new --output or move those files away"
            )
        if had_manifest and self.manifest.get("identity") != identity and not start_over:
            differences = _differences(self.manifest.get("identity"), identity)
            raise InputError(
                f"{self.path}: was mined with other settings ({differences}); choose a new --output, or pass "
                "--start-over to delete its rows and mine again"
            )
        if start_over and had_manifest:
            retired |= listed
            self.manifest["files"], listed = [], set()
        self.manifest["identity"] = identity
        for name in sorted(entries):  # an unlisted temporary file: a write that never reached the manifest
            if name.startswith(TMP_PREFIX) and name[len(TMP_PREFIX) :] not in listed:
                self._delete(name)
                report.cleaned.append(name)
        for name in sorted(retired):
            if name in entries:
                self._delete(name)
                report.cleaned.append(name)
        self.manifest["retired"] = []
        kept = []
        for name in self.manifest.get("files", []):
            if name not in entries and TMP_PREFIX + name in entries:  # listed, then killed before the rename
                self.fs.move(self._full(TMP_PREFIX + name), self._full(name))
                report.finished.append(name)
            elif name not in entries:
                continue  # listed but never written (killed before a remote PUT): its rows are redone
            if _readable(self.fs, self._full(name)):
                kept.append(name)
                report.files.append(self._full(name))
            else:
                self._delete(name)
                report.broken.append(self._full(name))
        self.manifest["files"] = kept
        return report

    # ----------------------------------------------------------------------------------------- writing
    def add(self, table: pa.Table) -> str:
        """Write ``table`` as one new data file and list it; returns the file's full path."""
        self._seq += 1
        name = f"part-{self.token}-{self._seq:05d}.parquet"
        remote = is_remote(self.path)
        if not remote:
            _write_table(self.fs, self._full(TMP_PREFIX + name), table)
        self.manifest["files"].append(name)
        self._save_manifest()
        if remote:
            _write_table(self.fs, self._full(name), table)
        else:
            self.fs.move(self._full(TMP_PREFIX + name), self._full(name))
        return self._full(name)

    def replace(self, old_full: str, table: pa.Table | None) -> None:
        """Swap a listed file for ``table`` (its rows minus those to redo), or drop it when ``table`` is None."""
        old = old_full.rsplit("/", 1)[-1]
        if table is not None and table.num_rows:
            self.add(table)
        self.manifest["files"].remove(old)
        self.manifest.setdefault("retired", []).append(old)
        self._save_manifest()
        self._delete(old)
        self.manifest["retired"].remove(old)
        self._save_manifest()

    def files(self) -> list[str]:
        return [self._full(n) for n in self.manifest.get("files", [])]

    # ----------------------------------------------------------------------------------------- the lock
    def _take_lock(self) -> None:
        lock = self._full(LOCK)
        body = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token, "heartbeat": time.time()}
        for _ in range(2):
            held = _read_json(self.fs, lock)
            if held is not None and not _stale(held):
                age = time.time() - float(held.get("heartbeat", 0))
                raise InputError(
                    f"{self.path}: another lsr mine run is writing here (pid {held.get('pid')} on "
                    f"{held.get('host')}, alive {age:.0f}s ago); wait for it to finish. If it is gone, the lock "
                    f"expires {STALE_AFTER_S:.0f}s after its last heartbeat, or delete {self.path}/{LOCK}"
                )
            if held is not None:
                self._delete(LOCK)
            if self._create_exclusive(lock, body):
                break
        else:
            raise InputError(f"{self.path}: another run took the lock at the same moment; try again")
        self._lock_body = body
        self._heartbeat = threading.Thread(target=self._beat, name="lsr-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def _create_exclusive(self, lock: str, body: dict[str, Any]) -> bool:
        data = json.dumps(body).encode()
        if not is_remote(self.path):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            except OSError as err:
                raise InputError(f"{self.path}: cannot write to the output folder ({_short(err)})") from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return True
        _write_bytes(self.fs, lock, data)
        return (_read_json(self.fs, lock) or {}).get("token") == body["token"]

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._mutex:
                if self._lock_body is None:
                    return
                self._lock_body["heartbeat"] = time.time()
                try:
                    _write_bytes(self.fs, self._full(LOCK), json.dumps(self._lock_body).encode(), atomic=True)
                except OSError:
                    pass  # the next beat tries again; a lock that goes stale only lets a later run in

    def release(self) -> None:
        """Give the folder back (also on errors and interrupts)."""
        self._stop.set()
        with self._mutex:
            if self._lock_body is not None:
                held = _read_json(self.fs, self._full(LOCK))
                if held is not None and held.get("token") == self.token:
                    self._delete(LOCK)
                self._lock_body = None

    # ----------------------------------------------------------------------------------------- helpers
    def _full(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _entries(self) -> set[str]:
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return {e.path[len(self.root) + 1 :] for e in self.fs.get_file_info(selector) if e.type == pafs.FileType.File}

    def _delete(self, name: str) -> None:
        try:
            self.fs.delete_file(self._full(name))
        except FileNotFoundError:
            pass

    def _save_manifest(self) -> None:
        _write_bytes(self.fs, self._full(MANIFEST), json.dumps(self.manifest, indent=1).encode(), atomic=True)


def _new_manifest(identity: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "written_by": "lsr mine", "identity": identity, "runs": [], "files": [], "retired": []}


def _stale(held: dict[str, Any]) -> bool:
    if time.time() - float(held.get("heartbeat", 0)) > STALE_AFTER_S:
        return True
    if held.get("host") == socket.gethostname():
        try:
            os.kill(int(held.get("pid", -1)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, OSError):
            return False
    return False


def _differences(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "an unreadable identity"
    diffs = [f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in new.items() if old.get(k) != v]
    return "; ".join(diffs) or "unknown"


def _short(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err).splitlines()[0]


def _readable(fs: pafs.FileSystem, path: str) -> bool:
    try:
        with fs.open_input_file(path) as handle:
            pq.read_schema(handle)
        return True
    except (OSError, pa.ArrowException):
        return False


def _read_json(fs: pafs.FileSystem, path: str) -> dict[str, Any] | None:
    try:
        with fs.open_input_stream(path) as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as present, with no heartbeat (stale) and no identity (refused)
    return data if isinstance(data, dict) else {}


def _write_bytes(fs: pafs.FileSystem, path: str, data: bytes, *, atomic: bool = False) -> None:
    if atomic and isinstance(fs, pafs.LocalFileSystem):
        head, _, name = path.rpartition("/")
        tmp = f"{head}/{TMP_PREFIX}{name}.{os.getpid()}"
        with fs.open_output_stream(tmp) as handle:
            handle.write(data)
        fs.move(tmp, path)
        return
    with fs.open_output_stream(path) as handle:
        handle.write(data)


def _write_table(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    with fs.open_output_stream(path) as handle:
        pq.write_table(table, handle)
