"""Small pieces of Ray wiring shared by the stages.

``ray`` is imported inside the functions that use it, so that importing this module for one of its functions (on
the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import os

from lsr.core import console


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address`` (or ``RAY_ADDRESS``, as under ``ray job submit``), else start a local Ray.

    The local start says ``address="local"``: a bare ``ray.init()`` joins any Ray already running on the
    machine, so a command could run on someone else's cluster by accident. A local instance gets no dashboard,
    ``num_cpus`` (default: the machine's cores), and Ray's defaults otherwise (token authentication included;
    its notice on every start is one of the known-harmless lines :mod:`lsr.core.console` keeps off the terminal).

    Once Ray is up, every later call returns at once, so one process (``lsr demo``: every stage in turn) uses
    one instance, and library functions can call this defensively. The workers' output and Ray's INFO lines go
    to Ray's log files unless ``--verbose`` (:mod:`lsr.core.console`).
    """
    import ray


    if ray.is_initialized():
        return
    console.quiet_libraries()
    console.quiet_ray()  # before ray.init too: its start-up notices go through the loggers this quiets
    address = address or os.environ.get("RAY_ADDRESS")
    options = console.ray_init_options()
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **options)
    console.quiet_ray()
    console.ray_started(address)
