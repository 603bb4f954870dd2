"""Model loading: the ``tiny`` students for demos and tests, any BART checkpoint loaded as an MWF student, and
decoder-only causal LMs (``AutoModelForCausalLM``) loaded as they are.

(A "preset" in this project means only a data set's paper defaults, :mod:`lsr.core.config`.)

A student is of one of two families: ``seq2seq`` (BART, the MWF student) or ``causal`` (a decoder-only LM fed
``instruction + document + summary``, :mod:`lsr.model.causal_prompt`). The family is read from the checkpoint's own
``config.json`` (``is_encoder_decoder``, which ``save_pretrained`` writes with the architecture's class name), so a
model exported by ``lsr train`` records its family and every stage loads it with the right class
(:func:`load_trained_student`); ``tiny-causal`` is the causal twin of ``tiny``.

``tiny`` is a randomly initialised 2+2-layer BART-shaped model with a byte-level BPE tokenizer shipped in
``lsr/assets/tiny_tokenizer`` (vocab.json + merges.txt, BART's format and special tokens), so a fresh clone
can train and serve without downloading anything. The shipped files were built by
:func:`build_tiny_tokenizer_files` from the package's own samples; rebuilding gives the same files.

``tokenizers``, ``torch``, ``transformers`` and the lsr modules that need them are imported inside the functions
that use them, so that importing this module for one of its functions (on the driver, in a Ray worker, in a test)
stays cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsr.core.errors import InputError

TINY = "tiny"
TINY_CAUSAL = "tiny-causal"
SEQ2SEQ, CAUSAL = "seq2seq", "causal"
ASSETS = Path(__file__).resolve().parents[1] / "assets"
TINY_TOKENIZER_DIR = ASSETS / "tiny_tokenizer"
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"

#: BART's special tokens, at BART's ids (<s>=0, <pad>=1, </s>=2, <unk>=3); <mask> follows them here.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
TINY_VOCAB_SIZE = 4096

#: Shape of the tiny student: big enough to show learning curves in minutes on a CPU, small enough for tests.
TINY_ARCHITECTURE: dict[str, Any] = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    # The CNN/DM preset reads up to 1024 source tokens; positions are cheap at d_model 64.
    "max_position_embeddings": 1024,
    "dropout": 0.1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "decoder_start_token_id": 2,
    "forced_eos_token_id": 2,
}


#: Shape of the tiny causal student (GPT-2 style) over the same tokenizer: about the tiny BART's width and depth.
#: Its positions hold the prompt (instruction, a CNN/DM document of 1024 tokens, the cue) plus a summary.
TINY_CAUSAL_ARCHITECTURE: dict[str, Any] = {
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_inner": 128,
    "n_positions": 2048,
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


def _sample_texts(samples_dir: Path) -> list[str]:
    texts: list[str] = []
    for path in sorted(samples_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.extend([row["document"], row["summary"]])
    return texts


def build_tiny_tokenizer_files(out_dir: str | Path, samples_dir: str | Path = SAMPLES_DIR) -> Path:
    """Train the tiny byte-level BPE on the shipped samples and write BART-format vocab.json and merges.txt.

    Byte-level BPE (BART's scheme) encodes any text without <unk>, so the tiny model can read documents that
    are far from the samples it was built on. Training is single-pass and deterministic for a fixed input.
    """
    from tokenizers import ByteLevelBPETokenizer

    texts = _sample_texts(Path(samples_dir))
    if not texts:
        raise InputError(f"{samples_dir}: no *.jsonl samples to build the tiny tokenizer from")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts, vocab_size=TINY_VOCAB_SIZE, min_frequency=2, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out))
    return out


def tiny_tokenizer():
    """The shipped tiny tokenizer as a ``transformers`` BART tokenizer (fast, BART's special tokens)."""
    from transformers import BartTokenizer

    vocab_path, merges_path = TINY_TOKENIZER_DIR / "vocab.json", TINY_TOKENIZER_DIR / "merges.txt"
    if not vocab_path.exists() or not merges_path.exists():
        raise InputError(f"the tiny tokenizer is missing from {TINY_TOKENIZER_DIR}; reinstall the package")
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    merges = [
        tuple(line.split(" "))
        for line in merges_path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#version")
    ]
    return BartTokenizer(vocab=vocab, merges=merges, model_max_length=TINY_ARCHITECTURE["max_position_embeddings"])


def tiny_model(mwf_fields: dict[str, Any], seed: int = 0):
    """A randomly initialised tiny MWF student; the same ``seed`` gives the same weights."""
    import torch

    from lsr.model import GatedBartConfig, GatedBartForConditionalGeneration

    tokenizer = tiny_tokenizer()
    config = GatedBartConfig(vocab_size=len(tokenizer), **TINY_ARCHITECTURE, **mwf_fields)
    torch.manual_seed(seed)
    return GatedBartForConditionalGeneration(config), tokenizer


def tiny_causal_model(seed: int = 0):
    """A randomly initialised tiny causal (GPT-2 style) student over the shipped tokenizer; same seed, same weights."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tiny_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), **TINY_CAUSAL_ARCHITECTURE)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config), tokenizer


def _not_bart(name_or_path: str, why: str) -> InputError:
    return InputError(
        f"--model {name_or_path!r} is not a BART checkpoint or a causal LM ({why}); give 'tiny', 'tiny-causal' or a "
        "directory in save_pretrained format (config.json with model_type 'bart' or 'gated_bart', or a decoder-only "
        "causal LM such as 'gpt2' or 'llama'; weights, tokenizer)"
    )


def config_family(config: Any) -> str | None:
    """``seq2seq`` for BART / MWF configs, ``causal`` for decoder-only causal LMs, ``None`` for anything else."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.model_type in ("bart", "gated_bart"):
        return SEQ2SEQ
    if not getattr(config, "is_encoder_decoder", False) and config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return CAUSAL
    return None


def _checkpoint_config(name_or_path: str):
    """The checkpoint's config, refused clearly unless it is BART, an MWF student or a decoder-only causal LM."""
    from lsr.model.auto import read_config

    try:
        config = read_config(name_or_path)
    except (OSError, ValueError) as err:
        raise _not_bart(name_or_path, f"no readable config: {str(err).splitlines()[0]}") from None
    if config_family(config) is None:
        raise _not_bart(name_or_path, f"its model_type is {config.model_type!r}")
    return config


def student_family(name_or_path: str) -> str:
    """``seq2seq`` or ``causal``: the family of ``tiny``, ``tiny-causal`` or a checkpoint (refused if neither)."""
    if name_or_path == TINY:
        return SEQ2SEQ
    if name_or_path == TINY_CAUSAL:
        return CAUSAL
    return config_family(_checkpoint_config(name_or_path))


def max_positions(name_or_path: str) -> int | None:
    """The longest sequence the student's positions hold (``None`` when its config does not say)."""
    if name_or_path == TINY:
        return TINY_ARCHITECTURE["max_position_embeddings"]
    if name_or_path == TINY_CAUSAL:
        return TINY_CAUSAL_ARCHITECTURE["n_positions"]
    return getattr(_checkpoint_config(name_or_path), "max_position_embeddings", None)


def load_tokenizer(name_or_path: str):
    """The tokenizer of ``tiny``, ``tiny-causal`` or a checkpoint, without building the model (the driver only
    tokenises)."""
    if name_or_path in (TINY, TINY_CAUSAL):
        return tiny_tokenizer()
    from transformers import AutoTokenizer

    _checkpoint_config(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError) as err:
        raise _not_bart(name_or_path, f"no usable tokenizer: {str(err).splitlines()[0]}") from None


def load_student(name_or_path: str, mwf_fields: dict[str, Any], seed: int = 0):
    """``(model, tokenizer)``: the MWF student built from ``tiny`` or from any BART checkpoint, or a causal student.

    A plain BART checkpoint gets fresh rationale modules (``from_bart``); an MWF checkpoint is loaded as saved,
    with ``mwf_fields`` overriding its config (so a checkpoint can be fine-tuned with another set of views). A
    causal student (``tiny-causal`` or a causal LM checkpoint) has no rationale modules: ``mwf_fields`` do not apply
    (a run refuses views for it before loading, :mod:`lsr.training.family`).
    """
    if name_or_path == TINY:
        return tiny_model(mwf_fields, seed=seed)
    if name_or_path == TINY_CAUSAL:
        return tiny_causal_model(seed=seed)
    from lsr.model import GatedBartForConditionalGeneration

    config = _checkpoint_config(name_or_path)
    tokenizer = load_tokenizer(name_or_path)
    if config_family(config) == CAUSAL:
        from lsr.model.auto import load_pretrained

        return load_pretrained(name_or_path, config), tokenizer
    if config.model_type == "bart":
        model = GatedBartForConditionalGeneration.from_bart(name_or_path, **mwf_fields)
    else:
        model = GatedBartForConditionalGeneration.from_pretrained(name_or_path, **mwf_fields)
    return model, tokenizer


def load_trained_student(path: str | Path):
    """A student saved by ``save_pretrained`` (a training checkpoint, an exported model), with the class its
    config records: the MWF student for a seq2seq one, ``AutoModelForCausalLM`` for a causal one."""
    from lsr.model import GatedBartForConditionalGeneration
    from lsr.model.auto import load_pretrained, read_config

    config = read_config(str(path))
    if config_family(config) == CAUSAL:
        return load_pretrained(str(path), config)
    return GatedBartForConditionalGeneration.from_pretrained(path)
