"""``lsr serve``: the distilled model behind a Ray Serve summarisation endpoint, until Ctrl-C or SIGTERM.

``ray``, ``yaml`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr``
command imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import argparse
from typing import Any

from lsr.core.cli_config import add_model_arguments, given_values
from lsr.core.config import deep_merge
from lsr.core.errors import InputError
from lsr.serving.config import ServeConfig

HELP = "serve a checkpoint on Ray Serve: POST /summarize (batched, autoscaled), GET /healthz, /model, a page at /"
APP_NAME = "lsr"
#: Flags of the command itself, not of the application (where it listens, which Ray, which YAML).
COMMAND_FLAGS = ("host", "port", "ray_address", "config", "proxy_location")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The application's options come from :class:`ServeConfig` (declared there once); these five are the
    command's own."""
    add_model_arguments(parser, ServeConfig)
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (0.0.0.0 to listen on every interface)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port")
    parser.add_argument(
        "--config",
        default=None,
        metavar="YAML",
        help="serve settings (ServeConfig fields, or a Serve config YAML: its first app's args)",
    )
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: RAY_ADDRESS or a local Ray)")
    parser.add_argument(
        "--proxy-location",
        default="EveryNode",
        choices=("EveryNode", "HeadOnly"),
        help="where Serve's HTTP proxies run: every node with a replica (default, for a load balancer) or the head",
    )


def _yaml_settings(path: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(open(path, encoding="utf-8")) or {}
    except OSError as err:
        raise InputError(f"--config {path}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise InputError(f"--config {path}: not valid YAML ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("applications"), list) and data["applications"]:
        data = data["applications"][0].get("args") or {}
    if not isinstance(data, dict):
        raise InputError(f"--config {path}: expected a mapping of serve settings")
    return data


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    """The YAML's settings with the flags that were given on top (validated later by ``ServeConfig``).

    A replica count given on one side replaces the other side's autoscaling, and the other way round; both as
    flags are refused by ``ServeConfig``."""
    settings = _yaml_settings(args.config) if args.config else {}
    flags = {key: value for key, value in given_values(args).items() if key not in COMMAND_FLAGS}
    if "autoscaling" in flags and "replicas" not in flags:
        settings.pop("replicas", None)
    if "replicas" in flags and "autoscaling" not in flags:
        settings.pop("autoscaling", None)
    if settings.get("autoscaling") is None:
        settings.pop("autoscaling", None)
    return deep_merge(settings, flags)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from lsr.serving.app import build_app

    app = build_app(settings_from(args))  # validates the settings and the checkpoint before Ray starts

    from ray import serve

    from lsr.core.ray_utils import init_ray

    init_ray(address=args.ray_address)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    serve.start(proxy_location=args.proxy_location, http_options={"host": args.host, "port": args.port})
    try:
        serve.run(app, name=APP_NAME, route_prefix="/")
        print(f"[lsr serve] ready at http://{args.host}:{args.port}/ (POST /summarize, docs at /docs); "
              "Ctrl-C stops", flush=True)  # fmt: skip
        stop.wait()
    finally:
        # Delete the application first: its replicas finish their in-flight requests while the HTTP proxy still
        # carries the answers back (serve.shutdown() alone stops the proxy at once and drops those connections).
        print("[lsr serve] shutting down: draining in-flight requests", flush=True)
        serve.delete(APP_NAME)
        serve.shutdown()
    return 0
