"""Loading a summariser checkpoint and the one ``generate`` every stage decodes with.

Training's validation, evaluation, latency profiling, serving and AS-ES chains all call :func:`generate` with the
data set's generation preset, so a score seen during training is the score evaluation reports and a served summary
is the one ``lsr evaluate`` wrote. :func:`generate` hands the batch to a decoder from :data:`DECODERS`, by default
the one for the model's family (:func:`decoder_for`): beam search for a seq2seq student (BART, MWF), continuation
of the training prompt for a decoder-only one. A decoder is a function with :data:`Decoder`'s signature; a new
decoding strategy is one such function and its line in :data:`DECODERS`, chosen by ``decoder=NAME``.

torch and transformers are imported inside the functions: importing this module (AS-ES and serving do at start-up)
should not cost their import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lsr.model.causal_prompt import prompt_ids, source_budget
from lsr.model.checkpoint_checks import check_checkpoint
from lsr.model.loading import CAUSAL, SEQ2SEQ

if TYPE_CHECKING:
    import torch

    from lsr.core.model_cache import RemoteModel


class Decoder(Protocol):
    """Summaries of ``documents``, in order, with inputs truncated to ``source_max_tokens`` as in training."""

    def __call__(self, model: Any, tokenizer: Any, documents: Sequence[str], *, source_max_tokens: int,
                 generation_kwargs: dict[str, Any], device: str | torch.device) -> list[str]: ...


def load_summarizer(path: str | RemoteModel, device: str | torch.device = "cpu"):
    """``(model, tokenizer)`` of a checkpoint (BART, MWF or a causal LM) in ``save_pretrained`` format, in eval mode,
    local or ``s3://`` (:mod:`lsr.core.model_cache`); the class is the one its config records (seq2seq or causal,
    :func:`lsr.model.loading.config_family`)."""
    from transformers import AutoTokenizer

    from lsr.core.model_cache import local_checkpoint
    from lsr.model.auto import load_pretrained

    path = local_checkpoint(path)  # an s3:// model: its download on this node (cached)
    config = check_checkpoint(path)
    model = load_pretrained(path, config).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)


def generate_seq2seq(model: Any, tokenizer: Any, documents: Sequence[str], *, source_max_tokens: int,
                     generation_kwargs: dict[str, Any], device: str | torch.device = "cpu") -> list[str]:
    """An encoder-decoder's summaries by beam search: the document in, the decoder's tokens out."""
    import torch

    encoded = tokenizer(
        list(documents), truncation=True, max_length=source_max_tokens, padding=True, return_tensors="pt"
    ).to(device)
    with torch.inference_mode():
        output = model.generate(
            input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], **generation_kwargs
        )
    return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]


def generate_causal(model: Any, tokenizer: Any, documents: Sequence[str], *, source_max_tokens: int,
                    generation_kwargs: dict[str, Any], device: str | torch.device = "cpu") -> list[str]:
    """Summaries from a causal LM: the prompt in, the new tokens out, stopping at the end of the summary.

    The prompt (left padded, so every row's next token follows its own prompt) is the training prompt
    (:mod:`lsr.model.causal_prompt`); the document is cut to ``source_max_tokens`` (the preset's, as for a seq2seq
    student), or shorter when the model's positions would not hold the prompt and ``max_new_tokens`` more
    (:func:`lsr.model.causal_prompt.source_budget`)."""
    import torch

    source = source_budget(model, tokenizer, source_max_tokens, int(generation_kwargs.get("max_new_tokens") or 0))
    prompts = [prompt_ids(tokenizer, d, source_max_tokens=source) for d in documents]
    longest = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.tensor([[pad] * (longest - len(p)) + p for p in prompts], device=device)
    attention_mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=device)
    kwargs = {k: v for k, v in generation_kwargs.items() if k not in ("forced_bos_token_id", "forced_eos_token_id")}
    with torch.inference_mode():
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=pad, **kwargs)
    return [text.strip() for text in tokenizer.batch_decode(output[:, longest:], skip_special_tokens=True)]


#: Every decoding strategy by name; the two families' own are named after the family.
DECODERS: dict[str, Decoder] = {
    SEQ2SEQ: generate_seq2seq,
    CAUSAL: generate_causal,
}


def decoder_for(model: Any) -> str:
    """The decoder a model gets unless told otherwise: its family's (the config's ``is_encoder_decoder``)."""
    return SEQ2SEQ if model.config.is_encoder_decoder else CAUSAL


def generate(model: Any, tokenizer: Any, documents: Sequence[str], *, source_max_tokens: int,
             generation_kwargs: dict[str, Any], device: str | torch.device = "cpu",
             decoder: str | None = None) -> list[str]:
    """Summaries of ``documents`` with the decoder named ``decoder`` (default: the model's family's)."""
    name = decoder or decoder_for(model)
    if name not in DECODERS:
        raise ValueError(f"no decoder {name!r}; registered: {', '.join(sorted(DECODERS))}")
    return DECODERS[name](model, tokenizer, documents, source_max_tokens=source_max_tokens,
                          generation_kwargs=generation_kwargs, device=device)
