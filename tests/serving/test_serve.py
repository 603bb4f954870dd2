"""Serving on Ray Serve over loopback: summaries, batching, bad input, auth, truncation, the YAML, shutdown.

One Serve instance for the module with two applications over the same tiny checkpoint: ``/open`` (no auth)
and ``/auth`` (bearer token from an environment variable). Serve is shut down at the end of the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from lsr.core.errors import InputError
from lsr.serving.config import DEPLOYMENT_NAME, ServeConfig
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port

TOKEN_ENV = "LSR_TEST_SERVE_TOKEN"
TOKEN = "t0ken-that-must-never-leak-81f3"
LIMITS = {"max_texts": 4, "max_body_bytes": 4096, "max_num_beams": 4, "max_new_tokens": 200}
DOCS = [
    "The council approved a new budget on Monday after a long debate about school funding and road repairs.",
    "Scientists found that the river's fish population doubled after the dam was removed three years ago.",
    "The team won the final in extra time, their first title in two decades, before a crowd of thousands.",
]


def _config(checkpoint: str, token_env: str) -> ServeConfig:
    return ServeConfig.model_validate(
        {
            "model": checkpoint,
            "generation": {"num_beams": 2, "min_new_tokens": 2, "max_new_tokens": 6},
            "source_max_tokens": 64,
            "limits": LIMITS,
            "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.1},
            "num_cpus": 0.5,
            "auth_token_env": token_env,
            "graceful_shutdown_timeout_s": 30.0,
            "graceful_shutdown_wait_loop_s": 0.5,
        }
    )


@pytest.fixture(scope="module")
def server(ray_local, checkpoint):
    """``{"open": URL, "auth": URL}`` of the two applications; Serve shuts down after the module."""
    from ray import serve

    from lsr.serving.app import build_app

    port = free_port()
    os.environ.pop("LSR_TEST_SERVE_UNSET", None)
    os.environ[TOKEN_ENV] = TOKEN
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(_config(checkpoint, "LSR_TEST_SERVE_UNSET")), name="open", route_prefix="/open")
        serve.run(build_app(_config(checkpoint, TOKEN_ENV)), name="auth", route_prefix="/auth")
        yield {"open": f"http://127.0.0.1:{port}/open", "auth": f"http://127.0.0.1:{port}/auth"}
    finally:
        os.environ.pop(TOKEN_ENV, None)
        serve.shutdown()


def _post(url: str, body, headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{url}/summarize", data=data, headers=headers or {}, timeout=120)


def _assert_healthy(url: str) -> None:
    answer = _post(url, {"text": DOCS[0]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["summaries"][0]["summary"]


# ---- good requests ---------------------------------------------------------------------------------------


def test_one_text_gets_a_summary_with_model_id_settings_and_timings(server):
    answer = _post(server["open"], {"text": DOCS[0]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "tiny-run"  # the run's folder name, as lsr evaluate names models
    assert len(body["summaries"]) == 1 and body["summaries"][0]["summary"].strip()
    assert body["summaries"][0]["truncated"] is False and body["truncated"] is False
    # xsum preset (from train_report.json) with the server's overrides
    assert body["generation"]["num_beams"] == 2 and body["generation"]["length_penalty"] == 0.6
    assert body["timings"]["total_ms"] >= body["timings"]["generate_ms"] > 0
    assert body["gates"] is None


def test_texts_are_summarised_together_and_equal_evaluations_generation(server, checkpoint):
    from lsr.model.generate import generate, load_summarizer

    body = _post(server["open"], {"texts": DOCS, "num_beams": 3, "max_new_tokens": 5}).json()
    assert [s["batch_size"] for s in body["summaries"]] == [3, 3, 3]
    model, tokenizer = load_summarizer(checkpoint)
    expected = generate(
        model, tokenizer, DOCS, source_max_tokens=body["source_max_tokens"], generation_kwargs=body["generation"]
    )
    assert [s["summary"] for s in body["summaries"]] == expected


def test_explain_returns_the_gates_per_view_and_decoder_layer(server):
    body = _post(server["open"], {"text": DOCS[1], "explain": True}).json()
    assert set(body["gates"]) == {"ea", "as", "ter"}
    assert all(values == pytest.approx([0.3, 0.3]) for values in body["gates"].values())


def test_a_document_longer_than_the_context_is_truncated_and_the_answer_says_so(server):
    long_text = " ".join(DOCS * 8)  # well over source_max_tokens=64, under the 4 KiB body limit
    body = _post(server["open"], {"texts": [long_text, DOCS[0]]}).json()
    first, second = body["summaries"]
    assert first["truncated"] is True and first["input_tokens"] > body["source_max_tokens"] == 64
    assert second["truncated"] is False and body["truncated"] is True


def test_concurrent_requests_are_served_in_shared_batches(server):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: _post(server["open"], {"text": DOCS[i % 3]}), range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    sizes = [a.json()["summaries"][0]["batch_size"] for a in answers]
    assert max(sizes) > 1, f"no two requests shared a batch: {sizes}"


def test_health_model_info_page_and_openapi(server):
    url = server["open"]
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "ok", "model": "tiny-run", "loaded": True}
    info = requests.get(f"{url}/model", timeout=30).json()
    assert info["views"] == ["ea", "as", "ter"] and info["dataset"] == "xsum" and info["decoder_layers"] == 2
    assert info["training"]["steps"] == 7 and info["config"]["model_type"] == "gated_bart"
    assert info["auth"] is False and info["limits"]["max_texts"] == 4
    assert info["replica_memory"]["peak_rss_mb"] > 0
    page = requests.get(f"{url}/", timeout=30)
    assert page.status_code == 200 and "<textarea" in page.text and "fetch(" in page.text
    schema = requests.get(f"{url}/openapi.json", timeout=30).json()
    assert "/summarize" in schema["paths"]


# ---- bad requests ----------------------------------------------------------------------------------------

BAD = {
    "empty text": ({"text": ""}, 422, "empty"),
    "whitespace text": ({"text": "  \n\t "}, 422, "whitespace"),
    "a blank text in texts": ({"texts": ["fine", " "]}, 422, "texts[1]"),
    "empty texts": ({"texts": []}, 422, "at least one"),
    "neither text nor texts": ({}, 422, "exactly one"),
    "both text and texts": ({"text": "a", "texts": ["b"]}, 422, "exactly one"),
    "text is a number": ({"text": 42}, 422, "text: Input should be a valid string"),
    "texts is a string": ({"texts": "abc"}, 422, "texts: Input should be a valid array"),
    "num_beams as a string": ({"text": "a b", "num_beams": "2"}, 422, "num_beams"),
    "explain not a boolean": ({"text": "a b", "explain": "yes"}, 422, "explain"),
    "body is a list": ([DOCS[0]], 422, "JSON object"),
    "invalid JSON": (b'{"text": "unterminated', 400, "invalid JSON"),
    "too many texts": ({"texts": DOCS + DOCS}, 422, "the limit is 4"),
    "body over the size limit": ({"text": "word " * 1000}, 413, "exceeds the limit of 4096 bytes"),
    "too many beams": ({"text": "a b", "num_beams": 9}, 422, "num_beams 9 is out of bounds"),
    "zero max_new_tokens": ({"text": "a b", "max_new_tokens": 0}, 422, "max_new_tokens"),
    "max_new_tokens over the bound": ({"text": "a b", "max_new_tokens": 201}, 422, "out of bounds"),
    "min above max": ({"text": "a b", "min_new_tokens": 5, "max_new_tokens": 3}, 422, "exceeds max_new_tokens"),
    "length penalty out of bounds": ({"text": "a b", "length_penalty": 99.0}, 422, "length_penalty"),
    "unknown field": ({"text": "a b", "temperature": 0.7}, 422, "temperature: unknown field"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_a_4xx_that_says_what_is_wrong_and_the_server_stays_healthy(server, case):
    body, status, message = BAD[case]
    answer = _post(server["open"], body, {"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]
    _assert_healthy(server["open"])


# ---- auth ------------------------------------------------------------------------------------------------


def test_bearer_auth_refuses_missing_and_wrong_tokens_and_never_shows_the_token(server, ray_local):
    url = server["auth"]
    answers = [
        _post(url, {"text": DOCS[0]}),
        _post(url, {"text": DOCS[0]}, {"Authorization": "Bearer wrong"}),
        _post(url, {"text": DOCS[0]}, {"Authorization": TOKEN}),  # no scheme
        requests.get(f"{url}/model", timeout=30),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    assert answers[0].headers["www-authenticate"] == "Bearer"
    good = _post(url, {"text": DOCS[0]}, {"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200, good.text
    info = requests.get(f"{url}/model", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert info.status_code == 200 and info.json()["auth"] is True
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200  # probes need no token
    for answer in [*answers, good, info]:
        assert TOKEN not in answer.text
    from ray._private.worker import global_worker

    logs = Path(global_worker.node.get_logs_dir_path())
    leaked = [p for p in logs.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not leaked, f"the token appears in {leaked}"


# ---- configuration ---------------------------------------------------------------------------------------


def test_the_serve_yaml_validates_with_serves_schema_and_the_stage_config():
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load((REPO / "ray_jobs" / "serve_config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert app.import_path == "lsr.serving.app:build_app"
    config = ServeConfig.model_validate(app.args)
    options = config.deployment_options()
    assert options["autoscaling_config"]["max_replicas"] >= options["autoscaling_config"]["min_replicas"]
    assert options["ray_actor_options"]["num_gpus"] == 1 and "num_replicas" not in options
    assert all(d.name == DEPLOYMENT_NAME for d in app.deployments)


def test_the_builder_refuses_a_wrong_config_in_one_line(checkpoint):
    from lsr.serving.app import build_app

    cases = {
        "no such directory": {"model": "/nonexistent/model"},
        "either replicas or autoscaling": {"model": checkpoint, "replicas": 2, "autoscaling": {"max_replicas": 3}},
        "Extra inputs are not permitted": {"model": checkpoint, "beams": 3},
        "replicas: Input should be a valid integer": {"model": checkpoint, "replicas": "2"},
        "exceeds limits.max_num_beams": {"model": checkpoint, "generation": {"num_beams": 12}},
        "min_replicas 3 exceeds max_replicas 2": {"model": checkpoint, "autoscaling": {"min_replicas": 3}},
    }
    for message, args in cases.items():
        with pytest.raises(InputError, match=message.replace("(", r"\(")) as err:
            build_app(args)
        assert "\n" not in str(err.value)


def test_lsr_serve_flags_and_yaml_become_one_validated_config(tmp_path, checkpoint, capsys):
    from lsr.cli.commands.serve import settings_from
    from lsr.cli.main import build_parser
    from lsr.serving.app import build_app

    yaml_path = tmp_path / "serve.yaml"
    yaml_path.write_text(yaml.safe_dump({"replicas": 3, "batching": {"max_batch_size": 4}}))
    args = build_parser().parse_args(
        ["serve", "--model", checkpoint, "--config", str(yaml_path), "--autoscale", "1,3", "--batch-wait-s", "0.5"]
    )
    config = ServeConfig.model_validate(settings_from(args))
    assert config.replicas is None and config.autoscaling.max_replicas == 3
    assert config.batching.max_batch_size == 4 and config.batching.batch_wait_timeout_s == 0.5
    with pytest.raises(SystemExit):  # argparse's own one-line usage error, before anything starts
        build_parser().parse_args(["serve", "--model", checkpoint, "--autoscale", "3"])
    assert "--autoscale: '3': give MIN,MAX replicas" in capsys.readouterr().err
    both = build_parser().parse_args(["serve", "--model", checkpoint, "--replicas", "2", "--autoscale", "1,3"])
    with pytest.raises(InputError, match="either replicas or autoscaling"):
        build_app(settings_from(both))


def test_the_ray_jobs_entrypoint_runs_as_a_script_without_shadowing_modules():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "ray_jobs/lsr_serve.py", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--autoscale MIN,MAX" in done.stdout


# ---- shutdown (last: it removes the open application) ----------------------------------------------------


def test_deleting_the_app_lets_in_flight_requests_finish(server):
    from ray import serve

    long_text = " ".join(DOCS * 2)  # cut to 64 tokens; four of them stay under the 4 KiB body limit
    slow = {"texts": [long_text] * 4, "num_beams": 4, "min_new_tokens": 200, "max_new_tokens": 200}
    finished: list[tuple[float, requests.Response]] = []

    def call() -> None:
        answer = _post(server["open"], slow)
        finished.append((time.perf_counter(), answer))

    # Six requests, so that some are still generating or queued when the app is deleted (three once all finished
    # within the second the test waited, on a quiet machine); half a second gets them all into the replica.
    workers = [threading.Thread(target=call) for _ in range(6)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(0.5)
    deleting = time.perf_counter()
    serve.delete("open")
    for w in workers:
        w.join(timeout=180)
    print(f"deleted after {deleting - started:.2f} s; requests finished at "
          f"{sorted(round(t - started, 2) for t, _ in finished)} s")
    assert len(finished) == 6 and all(a.status_code == 200 for _, a in finished), [a.text for _, a in finished]
    assert all(len(a.json()["summaries"]) == 4 for _, a in finished)
    assert max(t for t, _ in finished) > deleting, "no request was still in flight when the app was deleted"
