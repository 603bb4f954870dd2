"""The Table 2 recipe: the jobs it builds, their exact `ray job submit` lines, and resuming stage by stage."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pytest

from lsr.cli.main import build_parser
from lsr.cli.pipeline_recipe import (
    ENTRYPOINTS,
    STAGES,
    RecipeConfig,
    StageFailed,
    build_jobs,
    next_action,
    plan_arguments,
    run_recipe,
    submission_id,
    submit_command,
)
from lsr.core.config import resolve
from lsr.core.errors import InputError
from tests.helpers.paths import REPO

GIVEN = {"dataset": "cnndm", "train_input": "s3://b/cnndm/train.jsonl", "test_input": "s3://b/cnndm/test.jsonl",
         "root": "s3://b/runs/"}


def _config(**extra) -> RecipeConfig:
    return resolve(RecipeConfig, {**GIVEN, **extra})


def _argv(job, attempt=1) -> list[str]:
    words = shlex.split(job.entrypoint(attempt))
    assert words[:2] == ["python", ENTRYPOINTS[job.stage]]
    return words[2:]


def test_four_stages_in_order_each_reading_what_the_previous_wrote():
    jobs = build_jobs(_config(), environ={})
    assert [j.stage for j in jobs] == list(STAGES) == ["mine", "select", "train", "evaluate"]
    mine, select, train, evaluate = (_argv(j) for j in jobs)
    out = "s3://b/runs/cnndm/table2"
    assert mine[mine.index("--output") + 1] == select[select.index("--input") + 1] == f"{out}/mined"
    assert select[select.index("--output") + 1] == train[train.index("--data") + 1] == f"{out}/selected"
    assert evaluate[evaluate.index("--model") + 1] == f"lsr-mwf={out}/train/model"
    assert evaluate[evaluate.index("--data") + 1] == "s3://b/cnndm/test.jsonl"  # unfiltered test split
    assert all(a.startswith("s3://") for argv in (mine, select, train, evaluate)
               for flag, a in zip(argv, argv[1:], strict=False) if flag in ("--output", "--storage-path"))
    # the mining engine is pinned to the H100 nodes and sized to them
    assert mine[mine.index("--accelerator-type") + 1] == "H100"
    assert mine[mine.index("--tensor-parallel-size") + 1] == "8"
    # and training to the A10G nodes
    assert train[train.index("--accelerator-type") + 1] == "A10G"


@pytest.mark.parametrize("stage", STAGES)
def test_every_job_parses_with_the_stage_own_arguments(stage):
    """The entrypoints call `lsr <stage>` with their arguments: the recipe's arguments must parse there."""
    job = next(j for j in build_jobs(_config(validation_input="s3://b/cnndm/val.jsonl"), environ={})
               if j.stage == stage)
    for attempt in (1, 2):
        build_parser().parse_args([stage, *_argv(job, attempt)])


def test_later_attempts_resume():
    jobs = {j.stage: j for j in build_jobs(_config(), environ={})}
    assert "--resume" not in _argv(jobs["train"]) and "--resume" in _argv(jobs["train"], 2)
    assert "--overwrite" in _argv(jobs["select"], 3)
    assert _argv(jobs["mine"], 2) == _argv(jobs["mine"])  # mining resumes by itself from its output


def test_submit_line_carries_the_runtime_env_and_no_secret():
    environ = {"AWS_REGION": "us-west-2", "AWS_SECRET_ACCESS_KEY": "hunter2", "HOME": "/root"}
    config = _config(address="http://head:8265")
    job = build_jobs(config, environ=environ)[0]
    line = submit_command(job, config)
    words = shlex.split(line)
    assert words[:3] == ["ray", "job", "submit"]
    assert words[words.index("--address") + 1] == "http://head:8265"
    assert words[words.index("--submission-id") + 1] == "table2-cnndm-mine"
    env = json.loads(words[words.index("--runtime-env-json") + 1])
    assert env["working_dir"] == "."
    assert env["env_vars"]["AWS_REGION"] == "us-west-2"
    assert "hunter2" not in line and "AWS_SECRET_ACCESS_KEY" not in line
    assert words[words.index("--") + 1:] == shlex.split(job.entrypoint())


def test_plan_is_asked_for_the_cluster_at_its_largest():
    args = plan_arguments(_config(max_replicas=4, tensor_parallel_size=4))
    assert args[:3] == ["plan", "--input", "s3://b/cnndm/train.jsonl"]
    assert args[args.index("--nodes") + 1] == "2"  # 4 replicas x 4 GPUs on 8-GPU nodes
    assert build_parser().parse_args(args).command == "plan"


@pytest.mark.parametrize(
    "extra,message",
    [({"root": "/tmp/runs"}, "give an s3:// folder"), ({"pass_env": ["HF_TOKEN"]}, "looks like a secret"),
     ({"run": "Table 2"}, "run")],
)
def test_bad_settings_are_one_line(extra, message):
    with pytest.raises(InputError) as err:
        _config(**extra)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_next_action_from_the_cluster_record():
    config = _config()
    assert next_action(config, "mine", {}).kind == "submit"
    assert next_action(config, "mine", {"table2-cnndm-mine": "SUCCEEDED"}).kind == "skip"
    assert next_action(config, "mine", {"table2-cnndm-mine": "RUNNING"}).kind == "wait"
    failed_twice = {"table2-cnndm-train": "FAILED", "table2-cnndm-train-2": "STOPPED"}
    action = next_action(config, "train", failed_twice)
    assert (action.kind, action.attempt) == ("submit", 3)
    assert submission_id(config, "train", 3) == "table2-cnndm-train-3"


@dataclass
class _Info:
    submission_id: str
    status: str


class FakeClient:
    """The Job Submission client's calls, answered from a script of final statuses per submission id."""

    def __init__(self, history: dict[str, str], outcome: dict[str, str]):
        self.history = dict(history)
        self.outcome = outcome
        self.submitted: list[tuple[str, str, dict]] = []
        self.polls: dict[str, int] = {}

    def list_jobs(self):
        return [_Info(k, v) for k, v in self.history.items()]

    def submit_job(self, *, entrypoint, submission_id, runtime_env):
        self.submitted.append((submission_id, entrypoint, runtime_env))
        self.history[submission_id] = "PENDING"
        return submission_id

    def get_job_status(self, job_id):
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        if self.polls[job_id] == 1 and self.history[job_id] in ("PENDING", "RUNNING"):
            return "RUNNING"
        return self.outcome.get(job_id, "SUCCEEDED")

    def get_job_logs(self, job_id):
        return "\n".join(f"line {i}" for i in range(50)) + "\nValueError: boom"


def test_run_submits_in_order_and_skips_what_succeeded():
    client = FakeClient({"table2-cnndm-mine": "SUCCEEDED"}, {})
    said: list[str] = []
    run_recipe(_config(), client, say=said.append, sleep=lambda s: None, environ={})
    assert [s[0] for s in client.submitted] == ["table2-cnndm-select", "table2-cnndm-train", "table2-cnndm-evaluate"]
    assert said[0].startswith("mine: done earlier")
    assert client.submitted[0][2]["working_dir"] == "."


def test_a_failed_stage_stops_the_run_with_its_log_and_resumes_next_time():
    client = FakeClient({"table2-cnndm-mine": "SUCCEEDED", "table2-cnndm-select": "SUCCEEDED"},
                        {"table2-cnndm-train": "FAILED"})
    with pytest.raises(StageFailed) as err:
        run_recipe(_config(), client, say=lambda s: None, sleep=lambda s: None, environ={})
    assert "ValueError: boom" in str(err.value) and "line 10" not in str(err.value)
    assert [s[0] for s in client.submitted] == ["table2-cnndm-train"]
    client.history["table2-cnndm-train"] = "FAILED"
    client.outcome = {}
    run_recipe(_config(), client, say=lambda s: None, sleep=lambda s: None, environ={})
    resumed_id, entrypoint, _ = client.submitted[1]
    assert resumed_id == "table2-cnndm-train-2" and "--resume" in entrypoint
    assert client.submitted[2][0] == "table2-cnndm-evaluate"


def _script():
    import runpy
    return runpy.run_path(str(REPO / "ray_jobs" / "lsr_pipeline.py"), run_name="script")


def test_the_script_dry_run_prints_every_submit_line(capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["--dataset", "xsum", "--train-input", "s3://b/x/train.jsonl", "--test-input", "s3://b/x/test.jsonl",
            "--root", "s3://b/runs", "--no-plan", "--dry-run"]
    assert _script()["main"](args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ray job submit")]
    assert [shlex.split(line)[shlex.split(line).index("--") + 2] for line in lines] == list(ENTRYPOINTS.values())
    assert _script()["main"](args[:-1]) == 2  # no --dry-run and no address: one line, nothing submitted
    assert "RAY_ADDRESS" in capsys.readouterr().err
