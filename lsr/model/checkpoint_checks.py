"""Whether a folder is a complete summariser checkpoint, checked before anything loads it.

Evaluation and serving run it before Ray starts, so a wrong ``--model`` (no folder, no config, missing or
truncated weights) is one line instead of a traceback from inside an actor; loading a summariser runs it too
(:func:`lsr.model.generate.load_summarizer`). Weight files are checked by their headers only, never read whole.

The stage modules this one calls are imported inside the functions that use them, so that importing this module for
one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

import os
import zipfile

from lsr.core.errors import InputError
from lsr.model.auto import read_config
from lsr.model.loading import config_family

#: Weight files ``save_pretrained`` writes, single-file and sharded (the index lists the shards).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def check_checkpoint(path: str):
    """Fail before any generation when a ``--model`` is not a complete BART / MWF / causal LM checkpoint; its
    config."""
    from lsr.core.model_cache import local_checkpoint

    path = local_checkpoint(path)  # an s3:// model is checked on its download, which the loaders then reuse
    config = local_model_config(path, "--model", "a checkpoint in save_pretrained format", "a model checkpoint")
    if config_family(config) is None:
        raise InputError(f"--model {path}: a {config.model_type!r} checkpoint; expected a BART or MWF student or a "
                         "decoder-only causal LM")
    check_weights(path)
    return config


def check_weights(path: str) -> None:
    """Refuse a checkpoint whose weights are missing or cut short, reading headers only where the format allows.

    safetensors: the header's byte ranges must fit in the file (a copy cut short does not); a PyTorch ``.bin``
    (a zip archive): its central directory, at the end of the file, must be readable.
    """
    import json

    shards: list[str] = []
    for index in WEIGHT_INDEXES:
        if os.path.exists(os.path.join(path, index)):
            try:
                with open(os.path.join(path, index), encoding="utf-8") as handle:
                    shards = sorted(set(json.load(handle)["weight_map"].values()))
            except (OSError, ValueError, KeyError) as err:
                raise InputError(f"--model {path}: unreadable weight index {index} ({err})") from None
            break
    else:
        shards = [name for name in WEIGHT_FILES if os.path.exists(os.path.join(path, name))][:1]
    if not shards:
        raise InputError(f"--model {path}: no weights ({' or '.join(WEIGHT_FILES)}); was the checkpoint copied "
                         "completely?")
    for shard in shards:
        _check_weight_file(path, os.path.join(path, shard))


def _check_weight_file(path: str, file: str) -> None:
    name = os.path.basename(file)
    if not os.path.exists(file):
        raise InputError(f"--model {path}: weight file {name} is missing")
    if name.endswith(".safetensors"):
        problem = _safetensors_problem(file)
    else:
        problem = None if zipfile.is_zipfile(file) else "not a complete PyTorch archive"
    if problem:
        raise InputError(f"--model {path}: weight file {name} is damaged or cut short ({problem})")


def _safetensors_problem(file: str) -> str | None:
    """What is wrong with a safetensors file's header and size, or None (no tensor data is read)."""
    import json
    import struct

    size = os.path.getsize(file)
    with open(file, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return f"{size} bytes"
        (header_len,) = struct.unpack("<Q", prefix)
        if 8 + header_len > size:
            return "header runs past the end of the file"
        try:
            header = json.loads(handle.read(header_len))
        except ValueError:
            return "unreadable header"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        return f"{size} of {expected} bytes"
    return None


def local_model_config(path: str, flag: str, expected: str, kind: str):
    """The ``AutoConfig`` of the local model folder ``path`` given by ``flag``, or one line saying what is wrong."""
    if not os.path.isdir(path):
        raise InputError(f"{flag} {path}: no such directory (give {expected})")
    try:
        return read_config(path)
    except (OSError, ValueError) as err:
        raise InputError(f"{flag} {path}: not {kind} ({str(err).splitlines()[0]})") from None
