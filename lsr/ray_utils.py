"""Small pieces of Ray wiring shared by the stages."""

from __future__ import annotations

import os


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address`` (a cluster, or ``RAY_ADDRESS`` under ``ray job submit``) or start a local Ray.

    A local instance gets no dashboard and, unless ``num_cpus`` says otherwise, the machine's cores.
    Calling it twice is harmless, so library functions can call it defensively.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=True)
        return
    ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=True)
