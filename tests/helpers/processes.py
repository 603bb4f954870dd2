"""Process trees read from /proc, to find (and end by pid) what a test started."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL whatever is left of the process group a test started (``start_new_session=True``): e.g. the daemons
    of a local Ray the process started and did not stop. Nothing happens when the group is gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_group(process: subprocess.Popen, sig: int, wait: float = 10.0) -> None:
    """``sig`` to the process group a test started (its own session), SIGKILL if the process lingers past ``wait``
    seconds, and then to whatever of the group is left (children that outlived it)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
    kill_group(process)
