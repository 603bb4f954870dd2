"""The paper's Table 2 on a cluster: mine -> select -> train -> evaluate, each stage a ``ray job submit`` job.

Why separate jobs and not one driver running all four: each stage has its own resources (mining holds 70B engines
on H100 nodes for days, training holds A10G nodes for hours), its own logs and its own failure; a job that fails is
retried alone, from where it stopped, while the stages before it stay done. Every stage writes to S3 (the drivers
run on the head, the work on worker nodes that come and go), so a stage reads what the one before it wrote.

Resuming: a job's submission id is ``<run>-<dataset>-<stage>`` (``-2``, ``-3``... for later attempts). Running the
recipe again asks the cluster for those ids: a stage whose latest attempt SUCCEEDED is skipped, one still PENDING or
RUNNING is waited for, one that FAILED or was STOPPED is submitted again as the next attempt, which resumes its
work: mining skips the documents already in its output, selection replaces its partial output (``--overwrite``),
training continues from its last checkpoint (``--resume``), evaluation starts over (it is the cheapest stage).

The runtime environment of every job: the working directory (the checkout, so the cluster runs the code the user
has) and a few non-secret environment variables (the S3 region or endpoint). Credentials never go into it (the
dashboard shows it to anyone who can reach it): the nodes get S3 and model access from their IAM role / instance
environment. All of this module is pure but :func:`run_recipe`, which talks to a Job Submission client.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from pydantic import Field, field_validator

from lsr.core.cli_config import Flag, comma_list
from lsr.core.config import Dataset, StageConfig

#: The stages in order, and their entrypoints relative to the working directory (``ray_jobs/lsr_<stage>.py``: names
#: that shadow no module, see tests/cli/test_entrypoints.py).
STAGES = ("mine", "select", "train", "evaluate")
ENTRYPOINTS = {stage: f"ray_jobs/lsr_{stage}.py" for stage in STAGES}

#: GPUs of cluster.yaml's mining node type (p5.48xlarge); tests/cli/test_cluster_yaml.py checks the two agree.
MINING_NODE_GPUS = 8
#: The runtime env's variables a user may pass through; anything that looks like a secret is refused.
DEFAULT_PASS_ENV = ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY", "CREDENTIAL", "SESSION")
#: What a working-dir upload leaves out (Ray also honours .gitignore).
UPLOAD_EXCLUDES = [".git", ".venv", "runs", "bench/results"]

TERMINAL_OK = "SUCCEEDED"
RUNNING = ("PENDING", "RUNNING")


class RecipeConfig(StageConfig):
    """``ray_jobs/lsr_pipeline.py``: where the data is, where the run goes, and the cluster-sized settings; the paper's
    per-data-set settings (prompts, budgets, Score1/Score2 threshold, gates, gammas, beams) come from ``--dataset``
    inside each stage."""

    dataset: Dataset = Field(description="cnndm or xsum: each stage applies the paper's settings for it")
    train_input: str = Field(description="the training documents to mine (s3://...)")
    test_input: str = Field(description="the unfiltered test split for evaluation (s3://...)")
    validation_input: str | None = Field(default=None, description="validation documents for checkpoint ranking")
    root: str = Field(description="s3:// folder of the run; stages write ROOT/DATASET/RUN/{mined,selected,...}")
    run: str = Field(default="table2", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="the run's name")
    address: str | None = Field(default=None, description="the cluster's dashboard (default: RAY_ADDRESS)")
    working_dir: str = Field(default=".", description="the checkout uploaded with every job")
    pass_env: Annotated[list[str], Flag(parse=comma_list)] = Field(
        default_factory=lambda: list(DEFAULT_PASS_ENV),
        description="environment variables copied into the jobs when set here (never secrets)",
    )
    mining_model: str = Field(default="meta-llama/Meta-Llama-3-70B-Instruct", description="the teacher LLM")
    tensor_parallel_size: int = Field(default=8, ge=1, description="GPUs per mining engine replica")
    max_replicas: int = Field(default=4, ge=1, description="mining engine replicas at most (autoscaled from 1)")
    accelerator_type: str = Field(default="H100", description="the GPU of the mining nodes (cluster.yaml)")
    train_accelerator_type: str = Field(default="A10G", description="the GPU of the training nodes (cluster.yaml)")
    student_model: str = Field(default="facebook/bart-large", description="the student's initial checkpoint")
    train_workers: int = Field(default=4, ge=1, description="data-parallel training workers, one GPU each")
    epochs: int = Field(default=5, ge=1, description="training epochs (the README's recipe; the paper gives none)")
    plan: bool = Field(default=True, description="print `lsr plan`'s estimate of mining first")
    plan_sample: int = Field(default=200, ge=1, description="documents `lsr plan` measures")
    dry_run: bool = Field(default=False, description="print every job's `ray job submit` line; submit nothing")
    poll_seconds: float = Field(default=30.0, gt=0, description="seconds between status checks of a running job")
    ray_address: Annotated[str | None, Flag(cli=False)] = None  # the recipe talks to the dashboard: --address

    @field_validator("root")
    @classmethod
    def _remote_root(cls, value: str) -> str:
        if not value.startswith("s3://"):
            raise ValueError("the jobs run on other machines than this one: give an s3:// folder")
        return value.rstrip("/")

    @field_validator("pass_env")
    @classmethod
    def _no_secrets(cls, names: list[str]) -> list[str]:
        for name in names:
            if any(word in name.upper() for word in _SECRET_WORDS):
                raise ValueError(
                    f"{name} looks like a secret; a job's runtime env is shown on the dashboard: give the nodes "
                    "an IAM role (or set it in the nodes' environment) instead"
                )
        return names

    def folder(self, stage: str) -> str:
        return f"{self.root}/{self.dataset}/{self.run}/{stage}"


@dataclass(frozen=True)
class Job:
    """One stage as a Ray job: its entrypoint's arguments and its runtime environment."""

    stage: str
    args: tuple[str, ...]
    runtime_env: Mapping[str, Any]
    retry_args: tuple[str, ...] = ()  # added from the second attempt on, so the stage resumes
    outputs: tuple[str, ...] = field(default_factory=tuple)

    def entrypoint(self, attempt: int = 1) -> str:
        extra = self.retry_args if attempt > 1 else ()
        return shlex.join(["python", ENTRYPOINTS[self.stage], *self.args, *extra])


def submission_id(config: RecipeConfig, stage: str, attempt: int = 1) -> str:
    base = f"{config.run}-{config.dataset}-{stage}"
    return base if attempt == 1 else f"{base}-{attempt}"


def runtime_env(config: RecipeConfig, environ: Mapping[str, str]) -> dict[str, Any]:
    env_vars = {name: environ[name] for name in config.pass_env if environ.get(name)}
    env_vars["RAY_DATA_DISABLE_PROGRESS_BARS"] = "1"  # job logs are read as text
    return {"working_dir": config.working_dir, "excludes": list(UPLOAD_EXCLUDES), "env_vars": env_vars}


def build_jobs(config: RecipeConfig, environ: Mapping[str, str] | None = None) -> list[Job]:
    """The four jobs of the recipe, in order, each reading what the previous one wrote."""
    env = runtime_env(config, os.environ if environ is None else environ)
    mined, selected, train, evaluation = (config.folder(s) for s in ("mined", "selected", "train", "evaluation"))
    ds = ("--dataset", config.dataset)
    mine = Job("mine", (
        "--input", config.train_input, "--output", mined, *ds, "--engine", "vllm", "--model", config.mining_model,
        "--tensor-parallel-size", str(config.tensor_parallel_size), "--replicas", f"1,{config.max_replicas}",
        "--accelerator-type", config.accelerator_type,
    ), env, outputs=(mined,))
    select = Job("select", ("--input", mined, "--output", selected, *ds), env, retry_args=("--overwrite",),
                 outputs=(selected,))
    validation = ("--validation", config.validation_input) if config.validation_input else ()
    trainer = Job("train", (
        "--data", selected, "--output", train, *ds, "--model", config.student_model, "--workers",
        str(config.train_workers), "--gpu", "--accelerator-type", config.train_accelerator_type,
        "--epochs", str(config.epochs), "--storage-path", f"{train}/checkpoints",
        "--run-name", config.run, *validation,
    ), env, retry_args=("--resume",), outputs=(f"{train}/model",))
    evaluate = Job("evaluate", (
        "--model", f"lsr-mwf={train}/model", "--data", config.test_input, "--output", evaluation, *ds, "--gpu",
    ), env, outputs=(evaluation,))
    return [mine, select, trainer, evaluate]


def submit_command(job: Job, config: RecipeConfig, attempt: int = 1, address: str | None = None) -> str:
    """The exact ``ray job submit`` line of one attempt of ``job``; it waits for the job and streams its log."""
    address = address or config.address or "$RAY_ADDRESS"
    parts = ["ray", "job", "submit", "--address", address, "--submission-id", submission_id(config, job.stage, attempt),
             "--runtime-env-json", json.dumps(dict(job.runtime_env), sort_keys=True), "--"]
    return shlex.join(parts).replace(shlex.quote("$RAY_ADDRESS"), '"$RAY_ADDRESS"') + " " + job.entrypoint(attempt)


def plan_arguments(config: RecipeConfig) -> list[str]:
    """``lsr plan``'s arguments for the recipe's mining stage (the cluster at its largest)."""
    nodes = -(-config.max_replicas * config.tensor_parallel_size // MINING_NODE_GPUS)
    return ["plan", "--input", config.train_input, "--dataset", config.dataset, "--model", config.mining_model,
            "--gpus-per-node", str(MINING_NODE_GPUS), "--nodes", str(nodes),
            "--tensor-parallel-size", str(config.tensor_parallel_size), "--sample", str(config.plan_sample)]


# ----------------------------------------------------------------------------------------------- submitting


@dataclass(frozen=True)
class Action:
    """What to do with a stage given the cluster's record of it: ``skip``, ``wait`` for an attempt, ``submit``."""

    kind: str
    attempt: int


def next_action(config: RecipeConfig, stage: str, statuses: Mapping[str, str]) -> Action:
    """Decide from the statuses of earlier attempts (submission id -> status) of this run on the cluster."""
    attempt = 0
    while submission_id(config, stage, attempt + 1) in statuses:
        attempt += 1
    if attempt == 0:
        return Action("submit", 1)
    status = statuses[submission_id(config, stage, attempt)]
    if status == TERMINAL_OK:
        return Action("skip", attempt)
    if status in RUNNING:
        return Action("wait", attempt)
    return Action("submit", attempt + 1)


class JobClient(Protocol):
    """The part of :class:`ray.job_submission.JobSubmissionClient` the recipe uses."""

    def list_jobs(self) -> list[Any]: ...
    def submit_job(self, *, entrypoint: str, submission_id: str, runtime_env: dict) -> str: ...
    def get_job_status(self, job_id: str) -> Any: ...
    def get_job_logs(self, job_id: str) -> str: ...


class StageFailed(RuntimeError):
    pass


def _status_name(status: Any) -> str:
    return getattr(status, "value", None) or str(status).rsplit(".", 1)[-1]


def run_recipe(config: RecipeConfig, client: JobClient, *, say: Callable[[str], None] = print,
               sleep: Callable[[float], None] = time.sleep, environ: Mapping[str, str] | None = None) -> None:
    """Submit the stages in order, each after the previous one SUCCEEDED; skip the stages already done.

    A failed stage raises :class:`StageFailed` with the last lines of its log; running the recipe again
    submits that stage's next attempt, which resumes.
    """
    statuses = {j.submission_id: _status_name(j.status) for j in client.list_jobs() if j.submission_id}
    for job in build_jobs(config, environ):
        action = next_action(config, job.stage, statuses)
        job_id = submission_id(config, job.stage, action.attempt)
        if action.kind == "skip":
            say(f"{job.stage}: done earlier ({job_id}); outputs: {', '.join(job.outputs)}")
            continue
        if action.kind == "submit":
            say(f"{job.stage}: submitting {job_id}: {job.entrypoint(action.attempt)}")
            client.submit_job(entrypoint=job.entrypoint(action.attempt), submission_id=job_id,
                              runtime_env=dict(job.runtime_env))
        else:
            say(f"{job.stage}: attempt {job_id} is still running; waiting for it")
        while (status := _status_name(client.get_job_status(job_id))) in RUNNING:
            sleep(config.poll_seconds)
        if status != TERMINAL_OK:
            tail = "\n".join(client.get_job_logs(job_id).rstrip().splitlines()[-20:])
            raise StageFailed(f"{job.stage}: job {job_id} {status}; run the recipe again to resume it. "
                              f"Last log lines:\n{tail}")
        say(f"{job.stage}: {job_id} SUCCEEDED; outputs: {', '.join(job.outputs)}")
