"""Known-harmless lines that Ray's C++ core writes straight to this process's stderr, dropped on their way out.

Ray's core worker logs at ERROR level, to stderr as well as to its log file, a notice that nobody running lsr can
act on: every Ray Data actor stage (mining, the target pass, evaluation) makes it print "Actor with class name:
'MapWorker(...)' ... has constructor arguments in the object store and max_restarts > 0" once per process (Ray
Data itself puts the actors' constructor arguments in the object store; a stage with no arguments of its own
prints it too). It bypasses Python's logging, so :mod:`lsr.core.console`'s filters never see it.

So the file descriptor 2 of the driver is routed through a pipe, and a daemon thread copies what arrives to the
real stderr, line by line, leaving out lines that match :data:`NATIVE_NOTICES`. The line stays in Ray's log file
(``python-core-driver-*.log``). Text that is not a whole line yet (a progress bar redrawn with ``\\r``) passes at
once; only a partial line that opens like a Ray log line (``[2026-...``) waits, at most :data:`HOLD_S`, for its end.
``lsr --verbose`` installs nothing and shows everything.
"""

from __future__ import annotations

import atexit
import os
import re
import select
import sys
import threading

#: Ray's C++ notices dropped from the terminal (they stay in Ray's log files).
NATIVE_NOTICES = re.compile(
    rb"core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the object store and "
    rb"max_restarts > 0"
)
#: How a Ray C++ log line opens: ``[2026-12-03 08:39:19,432 E 20940 20940] ...``.
_RAY_LINE_START = re.compile(rb"^\[\d{4}-\d\d-\d\d ")
#: Longest wait for the end of a partial line that may be one of Ray's.
HOLD_S = 0.5

#: How long the interpreter's exit waits for the copier to pass on the last lines.
DRAIN_S = 2.0

_real: int | None = None  # the real stderr's descriptor, once installed
_lock = threading.Lock()


def drop_native_notices() -> bool:
    """Install the filter on file descriptor 2 (once per process); False when it was already installed."""
    global _real
    with _lock:
        if _real is not None:
            return False
        sys.stderr.flush()
        _real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        copier = threading.Thread(target=_copy, args=(read_end, _real), name="lsr-native-stderr", daemon=True)
        copier.start()
        atexit.register(_drain, copier)
        return True


def _drain(copier: threading.Thread) -> None:
    """At exit: give descriptor 2 back to the real stderr (closing the pipe) and let the copier finish."""
    sys.stderr.flush()
    os.dup2(_real, 2)
    copier.join(DRAIN_S)


def filter_chunk(pending: bytes, chunk: bytes) -> tuple[bytes, bytes]:
    """``(to write now, still pending)`` for the text ``pending + chunk``: whole lines but the dropped ones, and
    a trailing partial line unless it may be the start of one of Ray's lines."""
    data = pending + chunk
    out = []
    lines = data.splitlines(keepends=True)
    tail = b""
    if lines and not lines[-1].endswith((b"\n", b"\r")):
        tail = lines.pop()
    for line in lines:
        if not NATIVE_NOTICES.search(line):
            out.append(line)
    if tail and not _RAY_LINE_START.match(tail):
        out.append(tail)
        tail = b""
    return b"".join(out), tail


def _copy(read_end: int, real: int) -> None:
    pending = b""
    while True:
        ready, _, _ = select.select([read_end], [], [], HOLD_S if pending else None)
        if not ready:  # a partial line waited long enough: it is not one of Ray's notices
            os.write(real, pending)
            pending = b""
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            if pending:
                os.write(real, pending)
            return
        out, pending = filter_chunk(pending, chunk)
        if out:
            os.write(real, out)
