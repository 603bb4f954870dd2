"""Every entry point that reads a checkpoint knows lsr's own model type, even first thing in a fresh process.

An MWF checkpoint's config says ``model_type: gated_bart``, which transformers learns only when lsr registers it;
a loader that read the config before anything imported the registration refused the checkpoint (the logit-KD
teacher did, on a fresh install). Each case runs in a new interpreter so that no earlier import can hide it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

#: One expression per loader that reads a config first; ``P`` is the checkpoint folder.
FIRST_CALLS = {
    "KD teacher's family": "__import__('lsr.kd.teacher', fromlist=['x']).teacher_family(P)",
    "KD teacher": "type(__import__('lsr.kd.teacher', fromlist=['x']).load_teacher(P)).__name__",
    "student's family": "__import__('lsr.model.loading', fromlist=['x']).student_family(P)",
    "evaluation's checkpoint check": "__import__('lsr.model.checkpoint_checks', fromlist=['x']).check_checkpoint(P)"
                                     ".model_type",
    "AS-ES entropy scorer": "type(__import__('lsr.ases.entropy', fromlist=['x']).load_scorer(P)[0]).__name__",
}


@pytest.fixture(scope="module")
def mwf_checkpoint(tmp_path_factory):
    from lsr.model.loading import tiny_model

    path = tmp_path_factory.mktemp("mwf")
    model, tokenizer = tiny_model({})
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("call", sorted(FIRST_CALLS))
def test_a_fresh_process_reads_an_mwf_checkpoint_through_every_loader(call, mwf_checkpoint):
    code = f"P = {mwf_checkpoint!r}\nprint({FIRST_CALLS[call]})"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] in {"seq2seq", "gated_bart", "GatedBartForConditionalGeneration"}
