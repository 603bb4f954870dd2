"""``lsr serve``: the distilled model behind a Ray Serve summarisation endpoint, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from lsr.core.config import DATASETS
from lsr.core.errors import InputError

HELP = "serve a checkpoint on Ray Serve: POST /summarize (batched, autoscaled), GET /healthz, /model, a page at /"
APP_NAME = "lsr"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="a checkpoint folder (e.g. RUN/model)")
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="generation preset (default: the dataset in the run's train_report.json)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (0.0.0.0 to listen on every interface)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=None, metavar="N", help="a fixed number of replicas")
    scale.add_argument("--autoscale", default=None, metavar="MIN,MAX", help="autoscale between MIN and MAX replicas")
    parser.add_argument("--gpu", action="store_true", default=None, help="one GPU per replica")
    parser.add_argument("--num-cpus", type=float, default=None, help="CPU cores (and torch threads) per replica")
    parser.add_argument("--max-batch-size", type=int, default=None, help="documents per batch (1: no batching)")
    parser.add_argument("--batch-wait-s", type=float, default=None, help="longest wait for a batch to fill")
    parser.add_argument("--source-max-tokens", type=int, default=None, help="document truncation (default: preset)")
    parser.add_argument("--num-beams", type=int, default=None, help="override the preset's beams")
    parser.add_argument("--min-new-tokens", type=int, default=None, help="override the preset's minimum length")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override the preset's maximum length")
    parser.add_argument(
        "--token-env",
        default=None,
        metavar="VAR",
        help="environment variable whose token turns bearer auth on (default LSR_SERVE_TOKEN)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="YAML",
        help="serve settings (ServeConfig fields, or a Serve config YAML: its first app's args)",
    )
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: RAY_ADDRESS or a local Ray)")


def _autoscale(spec: str) -> dict[str, int]:
    low, sep, high = spec.partition(",")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise InputError(f"--autoscale {spec!r}: give MIN,MAX replicas, e.g. 1,4")
    return {"min_replicas": int(low), "max_replicas": int(high)}


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
    """The YAML's settings with the flags that were given on top (validated later by ``ServeConfig``)."""
    settings = _yaml_settings(args.config) if args.config else {}
    flags = {"model": args.model, "dataset": args.dataset, "replicas": args.replicas, "gpu": args.gpu,
             "num_cpus": args.num_cpus, "source_max_tokens": args.source_max_tokens,
             "auth_token_env": args.token_env}  # fmt: skip
    settings.update({k: v for k, v in flags.items() if v is not None})
    if args.autoscale:
        settings["autoscaling"] = {**(settings.get("autoscaling") or {}), **_autoscale(args.autoscale)}
        settings.pop("replicas", None)
    elif args.replicas is not None:
        settings.pop("autoscaling", None)
    for section, values in (
        ("batching", {"max_batch_size": args.max_batch_size, "batch_wait_timeout_s": args.batch_wait_s}),
        ("generation", {"num_beams": args.num_beams, "min_new_tokens": args.min_new_tokens,
                        "max_new_tokens": args.max_new_tokens}),
    ):  # fmt: skip
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            settings[section] = {**(settings.get(section) or {}), **given}
    return settings


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
    serve.start(http_options={"host": args.host, "port": args.port})
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
