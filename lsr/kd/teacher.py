"""A KD teacher: loaded frozen (eval mode, no gradients), checked to share the student's tokenizer, run teacher-forced.

Teacher and student must share a tokenizer, because the KL compares distributions over the same token ids; the
check compares the vocabularies (token -> id) and refuses with one line before Ray starts.

``transformers`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr``
command imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lsr.core.errors import InputError


def check_teacher_path(path: str) -> None:
    """A teacher is a local ``save_pretrained`` folder (config.json, weights, tokenizer)."""
    if not (Path(path) / "config.json").is_file():
        raise InputError(f"teacher {path!r} is not a checkpoint folder (no config.json); give a save_pretrained folder")


def teacher_family(path: str) -> str:
    """``seq2seq`` or ``causal``: the teacher's family, read from its config (refused clearly if neither)."""
    from lsr.model.auto import read_config
    from lsr.model.loading import config_family

    check_teacher_path(path)
    try:
        config = read_config(path)
    except (OSError, ValueError) as err:
        raise InputError(f"teacher {path!r} has no readable config: {str(err).splitlines()[0]}") from None
    family = config_family(config)
    if family is None:
        raise InputError(f"teacher {path!r} is a {config.model_type!r} model; give a BART-family seq2seq model or a "
                         "decoder-only causal LM")
    return family


def load_teacher_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    check_teacher_path(path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError) as err:
        raise InputError(f"teacher {path!r} has no usable tokenizer: {str(err).splitlines()[0]}") from None


def check_same_tokenizer(teacher_path: str, student_tokenizer: Any) -> None:
    """Refuse a teacher whose vocabulary differs from the student's (the KL would compare unrelated ids)."""
    teacher_vocab = load_teacher_tokenizer(teacher_path).get_vocab()
    student_vocab = student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        differing = len(set(teacher_vocab.items()) ^ set(student_vocab.items()))
        raise InputError(
            f"teacher {teacher_path!r} and the student do not share a tokenizer ({len(teacher_vocab)} vs "
            f"{len(student_vocab)} tokens, {differing} token/id pairs differ); logit KD needs the same vocabulary"
        )


def load_teacher(path: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The teacher checkpoint (seq2seq or causal LM), on ``device``, in eval mode, with gradients off."""
    from lsr.model.auto import load_pretrained

    check_teacher_path(path)
    teacher = load_pretrained(path).to(device).eval()
    teacher.requires_grad_(False)
    return teacher


def seq2seq_logits(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Teacher-forced logits of a seq2seq model at every label position (logits[t] predicts labels[t])."""
    from transformers.models.bart.modeling_bart import shift_tokens_right

    config = getattr(model, "module", model).config
    decoder_input_ids = shift_tokens_right(batch["labels"], config.pad_token_id, config.decoder_start_token_id)
    return model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=decoder_input_ids
    ).logits


def teacher_forced(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, labels)`` of a seq2seq or a causal model, aligned so ``logits[:, t]`` predicts ``labels[:, t]``."""
    from lsr.kd.causal import causal_logits

    if getattr(model, "module", model).config.is_encoder_decoder:
        return seq2seq_logits(model, batch), batch["labels"]
    return causal_logits(model, batch)
