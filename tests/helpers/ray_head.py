"""A Ray head of its own for a test: ``ray start --head`` on 127.0.0.1 with token authentication, its own ports and
temp folder, stopped by pid (never ``ray stop``, which would stop every Ray on the machine, the test session's own
included).

The token lives in a file of the test's folder (``RAY_AUTH_TOKEN_PATH``), so nothing in ``~/.ray`` is read or
written; the head and everything it starts (job drivers, their workers) inherit ``RAY_AUTH_MODE=token`` and the path.
The test process itself stays out of Ray's token loader (a process-wide cache) and sends the token as a header.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.ports import free_ports

# The ports ``ray start`` would otherwise take at their fixed defaults (6379, 8265, 52365, 10001, ...), which a
# Ray already running on the machine holds.
_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--ray-client-server-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
    "--node-manager-port",
    "--object-manager-port",
)


@dataclass
class RayHead:
    temp_dir: Path
    token: str
    ports: dict[str, int]
    env: dict[str, str] = field(repr=False)

    @property
    def address(self) -> str:
        """The GCS address a driver joins (``--ray-address``, ``ray status --address``)."""
        return f"127.0.0.1:{self.ports['--port']}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.ports['--dashboard-port']}"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def pids(self) -> list[int]:
        """Every process of this head: those whose command line names its temp folder, and their descendants
        (Ray renames its workers' processes, so they are found through their parents)."""
        parents: dict[int, int] = {}
        roots = []
        marker = str(self.temp_dir).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
            if marker in cmdline and pid != os.getpid():
                roots.append(pid)
        found = set(roots)
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in found} - found
            found |= children
            grew = bool(children)
        return sorted(found)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every process of the head, then SIGKILL what is left after ``timeout_s``; remove its folder."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout_s
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.pids():
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(num_cpus: int = 4, *, autoscaling: Callable[[int], dict] | None = None) -> RayHead:
    """``ray start --head`` with token authentication on 127.0.0.1; returns when its dashboard answers.

    ``autoscaling(gcs_port)`` gives an autoscaler config (:mod:`tests.helpers.autoscaler`): the head then runs
    Ray's real autoscaler with the fake multi-node provider, which starts and stops worker nodes on this machine."""
    temp_dir = Path(tempfile.mkdtemp(prefix="lsrhead", dir="/tmp"))  # short: Ray's socket paths live under it
    token = secrets.token_hex(32)
    token_file = temp_dir / "auth_token"
    token_file.write_text(token)
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file), RAY_USAGE_STATS_ENABLED="0")
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address", "127.0.0.1",
               "--dashboard-host", "127.0.0.1", "--include-dashboard", "true", "--num-cpus", str(num_cpus),
               "--temp-dir", str(temp_dir), "--disable-usage-stats"]
    for flag, port in ports.items():
        command += [flag, str(port)]
    if autoscaling is not None:
        config = temp_dir / "autoscaler.json"
        config.write_text(json.dumps(autoscaling(ports["--port"])))
        command.append(f"--autoscaling-config={config}")
        # The fake provider refuses to run without RAY_FAKE_CLUSTER; the nodes it starts bind where
        # get_node_ip_address() says, which is 127.0.0.1 only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0.
        env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    head = RayHead(temp_dir=temp_dir, token=token, ports=ports, env=env)
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        head.stop()
        raise RuntimeError(f"ray start failed ({started.returncode}):\n{started.stderr[-3000:]}")
    return head
