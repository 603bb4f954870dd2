"""Shrink-and-fine-tune (distilbart, Shleifer & Rush 2020): a BART student initialised from alternating teacher layers.

The student keeps the teacher's width, embeddings and every non-layer weight, and copies ``m`` of the teacher's
``n`` layers per stack, evenly spaced and always including the first and the last (12 -> 6 copies 0, 2, 4, 7, 9, 11,
as distilbart's table does). The map is printed and stored in the student's ``config.json`` under ``shrink_map``,
so a checkpoint says where it came from. The student is then fine-tuned (``lsr train --model STUDENT``).

``transformers`` and the lsr modules that need them are imported inside the functions that use them: the ``lsr``
command imports this module at start-up, before it knows which of them a command needs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import Field

from lsr.core.config import StageConfig
from lsr.core.errors import InputError


class ShrinkConfig(StageConfig):
    """``lsr shrink``: build a smaller BART student by copying alternating layers of a BART teacher."""

    teacher: str = Field(description="BART teacher checkpoint folder (save_pretrained format, with its tokenizer)")
    output: str = Field(description="folder for the student (save_pretrained format, with the teacher's tokenizer)")
    encoder_layers: int | None = Field(default=None, ge=1, description="student encoder layers (default: teacher's)")
    decoder_layers: int | None = Field(default=None, ge=1, description="student decoder layers (default: teacher's)")


def layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """The teacher layer copied into each student layer: evenly spaced, first and last included."""
    if not 1 <= student_layers <= teacher_layers:
        raise InputError(f"a student of {student_layers} layers cannot be copied from {teacher_layers} teacher layers")
    if student_layers == 1:
        return [0]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [math.floor(i * step + 0.5) for i in range(student_layers)]


def _teacher_key(key: str, maps: dict[str, list[int]]) -> str:
    """The teacher's name of a student weight: ``model.<stack>.layers.<i>.`` -> the mapped layer, others as is."""
    for stack, mapping in maps.items():
        prefix = f"model.{stack}.layers."
        if key.startswith(prefix):
            index, rest = key[len(prefix) :].split(".", 1)
            return f"{prefix}{mapping[int(index)]}.{rest}"
    return key


def shrink_bart(
    teacher_path: str, output: str, encoder_layers: int | None, decoder_layers: int | None
) -> dict[str, Any]:
    """Write the shrunk student to ``output``; the layer map (``{"encoder": [...], "decoder": [...]}``)."""
    from transformers import AutoTokenizer, BartForConditionalGeneration

    from lsr.model.auto import read_config

    try:
        config = read_config(teacher_path)
    except (OSError, ValueError) as err:
        raise InputError(f"teacher {teacher_path!r}: no readable config ({str(err).splitlines()[0]})") from None
    if config.model_type != "bart":
        raise InputError(f"teacher {teacher_path!r} is {config.model_type!r}; shrinking copies BART layers only")
    teacher = BartForConditionalGeneration.from_pretrained(teacher_path)
    maps = {
        "encoder": layer_map(config.encoder_layers, encoder_layers or config.encoder_layers),
        "decoder": layer_map(config.decoder_layers, decoder_layers or config.decoder_layers),
    }
    student_config = BartForConditionalGeneration.config_class.from_dict(
        {**config.to_dict(), "encoder_layers": len(maps["encoder"]), "decoder_layers": len(maps["decoder"]),
         "shrink_map": {"teacher": str(teacher_path), **maps}}
    )
    student = BartForConditionalGeneration(student_config)
    weights = teacher.state_dict()
    student.load_state_dict({key: weights[_teacher_key(key, maps)] for key in student.state_dict()}, strict=True)
    Path(output).mkdir(parents=True, exist_ok=True)
    student.save_pretrained(output)
    AutoTokenizer.from_pretrained(teacher_path).save_pretrained(output)
    return maps
