"""A tiny random Llama over the shipped tokenizer, with a chat template: an LLM that real vLLM can serve on a CPU.

It is what the mining engine's tests, the vLLM benchmark and a first ``lsr mine --engine vllm --device cpu`` on a
laptop load (nothing to download). Its shape is what vLLM's CPU backend accepts: attention head_dim 64 (the CPU
attention kernels refuse 16), float32 weights. Its end-of-sequence row of the output layer is zero, so its logit
is 0 among thousands of random ones and greedy decoding never picks it: like a model that ignores the requested
format, it writes until ``max_tokens`` unless a grammar (``--structured-output``) ends its reply. It knows nothing;
its replies are noise by design.

``torch``, ``transformers`` and the lsr modules that need them are imported inside the functions that use them, so
that importing this module for one of its functions (on the driver, in a Ray worker, in a test) stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: A minimal chat template in the tokenizer's own special tokens (BART's ``<s>``/``</s>``).
CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)

#: Two layers of width 128 with two heads of 64: under a million parameters.
TINY_LLAMA_ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "pad_token_id": 1,
    "eos_token_id": 2,
}


def build_tiny_llama(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny Llama (weights, config, tokenizer, chat template) to ``out_dir``; the same seed gives the
    same weights. Returns the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsr.model.loading import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), dtype="float32", **TINY_LLAMA_ARCHITECTURE)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight[config.eos_token_id].zero_()
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
