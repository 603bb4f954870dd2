"""What a person sees in the terminal: one header per stage, one progress bar, one closing summary.

Every stage prints the same three things: a header line saying what it is about to do, one progress bar for its
main loop, and a summary with the figures that matter and the paths it wrote. Everything else (Ray's start-up
lines, Ray Data's per-operator progress, the workers' stdout, Hugging Face's download bars) goes to Ray's log
files, unless ``lsr --verbose`` (or ``LSR_VERBOSE=1``, which the ``ray_jobs/`` entrypoints and subprocesses
inherit) asks for all of it. Ray's and Hugging Face's knobs are set here and nowhere else, so a stage module
never has to know about them.

On a terminal the bar redraws one line in place; in a pipe or a CI log it prints its final state only (plus a
line every :data:`HEARTBEAT_S` seconds, so a long run still shows it is alive), because a redrawn line would
otherwise become hundreds of lines.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

VERBOSE_ENV = "LSR_VERBOSE"
#: In a pipe or log, a running bar prints at most one line per this many seconds.
HEARTBEAT_S = 60.0
_BAR_WIDTH = 24
_REDRAW_S = 0.1

#: Messages Ray logs on every local start that nobody can act on (substrings); dropped unless verbose.
HARMLESS_RAY_MESSAGES = (
    "Token authentication is enabled for this Ray cluster",  # we ask for token auth explicitly; see quiet_ray
    "Progress bars disabled",  # we turned them off ourselves: this bar replaces them
)

#: Ray's notices to every driver that a node died (its raylet's last log lines, the health check's verdict): pushed
#: by the GCS and printed on stdout as ``(raylet) ...`` lines whatever ``log_to_driver`` says. A training run tells
#: the user in one line which worker was lost instead (:mod:`lsr.training.progress`); Ray's logs keep them. Given to
#: Ray's log deduplicator as ``RAY_DEDUP_LOGS_SKIP_REGEX``, which is read when ``ray`` is first imported.
RAY_NODE_NOTICES = (
    r"Raylet is terminated\. Termination is unexpected"
    r"|has been marked dead because the detector has missed too many heartbeats"
)


def verbose() -> bool:
    """Whether the user asked for every library's own output (``--verbose`` or ``LSR_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def set_verbose(on: bool) -> None:
    """Set the process-wide choice; an environment variable, so child processes and Ray jobs inherit it."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


# ---------------------------------------------------------------------------------------------------------------
# Library noise


class _DropMessages(logging.Filter):
    """Drops records whose message contains one of ``fragments`` (known-harmless notices)."""

    def __init__(self, fragments: Iterable[str]):
        super().__init__()
        self.fragments = tuple(fragments)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


_DROP = _DropMessages(HARMLESS_RAY_MESSAGES)


def quiet_libraries() -> None:
    """Before any heavy import: no Ray Train print patch; no Hugging Face progress bars and no node-death notices
    of Ray's (:data:`RAY_NODE_NOTICES`) unless verbose.

    Environment variables, so Ray's worker processes (started later by a local Ray) inherit them. Ray Train's
    print patch makes every ``print`` on a worker reach the driver twice (once through stdout, once through a
    logger); with it off, a worker's line is printed once (and reaches the terminal only with ``--verbose``).
    """
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    if verbose():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", RAY_NODE_NOTICES)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (e.g. by a test): its switch was read at import
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def ray_init_options() -> dict:
    """``ray.init`` keyword arguments: the workers' output and Ray's INFO lines reach the terminal only if verbose."""
    if verbose():
        return {"log_to_driver": True, "logging_level": logging.INFO}
    return {"log_to_driver": False, "logging_level": logging.WARNING}


def quiet_ray() -> None:
    """After ``ray.init``: Ray Data's console output down to warnings, its progress bars off (ours replace them).

    Ray Data's file log (``<session>/logs/ray-data/ray-data.log``) keeps everything. Known-harmless notices
    (:data:`HARMLESS_RAY_MESSAGES`) are dropped from the console.
    """
    if verbose():
        return
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
                handler.setLevel(max(handler.level, logging.WARNING))
                if _DROP not in handler.filters:
                    handler.addFilter(_DROP)


def ray_started(address: str | None) -> None:
    """One line (on stderr, so ``--json`` output stays clean) saying which Ray runs and where its logs are."""
    if verbose():
        return
    import ray

    node = getattr(ray._private.worker, "_global_node", None)  # the session folder has no public accessor
    logs = f"{node.get_session_dir_path()}/logs" if node is not None and not address else "on the head node"
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    print(f"  running on {where}; its logs: {logs} (lsr --verbose shows them here)", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Header, bar, summary


def _out() -> TextIO:
    return sys.stdout


def header(stage: str, text: str) -> float:
    """Print ``lsr STAGE: text`` and return the start time for :func:`summary`."""
    print(f"lsr {stage}: {text}", file=_out(), flush=True)
    return time.monotonic()


def summary(started: float, outcome: str, wrote: Iterable[str] = ()) -> None:
    """The closing line: how long, what came out, and the paths written (one line)."""
    paths = [str(p) for p in wrote if p]
    line = f"  done in {time.monotonic() - started:.1f} s: {outcome}"
    print(line, file=_out(), flush=True)
    if paths:
        print(f"  wrote {', '.join(paths)}", file=_out(), flush=True)


def note(text: str) -> None:
    """An indented line under a stage's header: a step of the stage worth knowing about."""
    print(f"  {text}", file=_out(), flush=True)


def warn(text: str) -> None:
    """A warning the user can act on (say what to do in ``text``)."""
    print(f"  warning: {text}", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """One progress bar: ``label [#####-----] done/total  fields  elapsed``.

    ``update(done=..., **fields)`` sets the count (and extra figures such as ``loss``); ``advance(n)`` adds to
    it. Thread-safe, so a background thread can feed it. Use as a context manager: leaving prints the final
    state on its own line.
    """

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None):
        self.label = label
        self.total = total
        self.done = 0
        self.fields: dict[str, str] = {}
        self.stream = stream or _out()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_line = self.started
        self._printed: tuple | None = None  # in a pipe: the state the last printed line showed
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, n: int = 1, **fields: object) -> None:
        with self._lock:
            self.done += n
        self.update(**fields)

    def update(self, done: int | None = None, **fields: object) -> None:
        with self._lock:
            if done is not None:
                self.done = done
            self.fields.update({k: str(v) for k, v in fields.items()})
        self._draw()

    def line(self) -> str:
        elapsed = _duration(time.monotonic() - self.started)
        extra = "  ".join(f"{k} {v}" for k, v in self.fields.items())
        if self.total:
            filled = min(_BAR_WIDTH, round(_BAR_WIDTH * self.done / self.total))
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            text = f"  {self.label} [{bar}] {self.done}/{self.total}"
        else:
            text = f"  {self.label} {self.done}"
        return f"{text}  {extra}  {elapsed}" if extra else f"{text}  {elapsed}"

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            if self.tty:
                if force or now - self._last_draw >= _REDRAW_S:
                    self.stream.write("\r\x1b[2K" + self.line())
                    self.stream.flush()
                    self._last_draw = now
            elif now - self._last_line >= HEARTBEAT_S:
                self.stream.write(self.line() + "\n")
                self.stream.flush()
                self._last_line = now
                self._printed = self._state()

    def _state(self) -> tuple:
        return self.done, tuple(self.fields.items())

    def note(self, text: str) -> None:
        """A line of its own above the bar (an event worth telling while the bar runs); the bar is redrawn under it."""
        with self._lock:
            if self.tty and not self._closed:
                self.stream.write("\r\x1b[2K" + text + "\n" + self.line())
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Print the final state on its own line; in a pipe, not again when the last heartbeat already showed it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self.tty and self._printed == self._state():
                return
            self.stream.write(("\r\x1b[2K" if self.tty else "") + self.line() + "\n")
            self.stream.flush()


class Poll:
    """Feed a :class:`Progress` from ``count()`` every ``interval`` seconds in a background thread.

    For loops that run inside Ray (a Ray Data write) where the driver can only look at the results so far,
    e.g. the rows already in an output folder.
    """

    def __init__(self, progress: Progress, count: Callable[[], int], interval: float = 1.0):
        self.progress, self.count, self.interval = progress, count, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lsr-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.progress.update(self.count())
            except Exception:  # a probe that fails mid-write (a file being renamed) is retried next time
                continue

    def __enter__(self) -> Poll:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.progress.update(self.count())
        except Exception:
            pass


def parquet_rows(path: str, seen: dict | None = None) -> int:
    """Rows in the readable Parquet files under ``path`` so far (files still being written are skipped).

    ``seen`` (a dict kept between calls) remembers each finished file's count, so a poll over a large output
    (or S3) reads only the footers of new files."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from lsr.core.storage import filesystem

    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.Directory:
        return 0
    rows = 0
    for entry in fs.get_file_info(pafs.FileSelector(inner, recursive=True)):
        if entry.type != pafs.FileType.File or not entry.base_name.endswith(".parquet"):
            continue
        key = (entry.path, entry.size)
        if seen is not None and key in seen:
            rows += seen[key]
            continue
        try:
            with fs.open_input_file(entry.path) as handle:
                count = pq.ParquetFile(handle).metadata.num_rows
        except (OSError, ValueError):
            continue
        rows += count
        if seen is not None:
            seen[key] = count
    return rows
