"""The MWF rationale modules and the alignment loss, as small torch modules over BART's building blocks.

A rationale module embeds the *document* (BART's shared, scaled token embeddings plus positions of its own) and
runs one Transformer layer over it. Our reading of "EA attends to the encoder output, AS to EA's output, TER to
AS's output": the layer is a post-LN BART layer with bidirectional self-attention over the module's own document
stream, then cross-attention whose keys and values are the *context* (the encoder output X_en for the first
module; with ``hierarchical`` the previous present module's output for the others), then the feed-forward block.
The query stream is always the module's own embedded document, so every module's output is aligned token by
token with X_en and can be added to it in the decoder's fusion (Eq. 9-10).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.bart.modeling_bart import BartAttention, BartLearnedPositionalEmbedding

from lsr.model.config import GatedBartConfig


class RationaleLayer(nn.Module):
    """Self-attention over the module's stream, cross-attention to a context, feed-forward; post-LN as in BART."""

    def __init__(self, config: GatedBartConfig):
        super().__init__()
        dim, heads = config.d_model, config.encoder_attention_heads
        self.self_attn = BartAttention(dim, heads, dropout=config.attention_dropout, config=config)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.context_attn = BartAttention(dim, heads, dropout=config.attention_dropout, config=config)
        self.context_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation_fn = ACT2FN[config.activation_function]
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout

    def _residual(self, x: torch.Tensor, update: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
        return norm(x + nn.functional.dropout(update, p=self.dropout, training=self.training))

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, context: torch.Tensor
    ) -> torch.Tensor:
        # The context has the document's length and padding, so one mask serves both attentions.
        update, _ = self.self_attn(hidden_states, attention_mask=attention_mask)
        hidden_states = self._residual(hidden_states, update, self.self_attn_layer_norm)
        update, _ = self.context_attn(hidden_states, key_value_states=context, attention_mask=attention_mask)
        hidden_states = self._residual(hidden_states, update, self.context_attn_layer_norm)
        update = self.activation_fn(self.fc1(hidden_states))
        update = nn.functional.dropout(update, p=self.activation_dropout, training=self.training)
        return self._residual(hidden_states, self.fc2(update), self.final_layer_norm)


class RationaleModule(nn.Module):
    """One view (EA, AS or TER): own positions and embedding norm over the shared token embeddings, one layer."""

    def __init__(self, config: GatedBartConfig):
        super().__init__()
        self.embed_positions = BartLearnedPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.layer = RationaleLayer(config)
        self.dropout = config.dropout

    def forward(
        self, token_embeds: torch.Tensor, attention_mask: torch.Tensor | None, context: torch.Tensor
    ) -> torch.Tensor:
        # token_embeds[:, :, -1] only carries the (batch, length) shape, as in BartEncoder.
        hidden_states = token_embeds + self.embed_positions(token_embeds[:, :, -1]).to(token_embeds.device)
        hidden_states = self.layernorm_embedding(hidden_states)
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        return self.layer(hidden_states, attention_mask, context)


class RationaleModules(nn.Module):
    """The configured views, chained hierarchically or side by side; output stacked as (batch, view, length, dim).

    ``recompute`` (a training setting, not saved with the model; ``lsr train --recompute-modules``): keep only each
    module's inputs for the backward pass and run the module again there (``torch.utils.checkpoint``, RNG state
    preserved, so dropout draws the same masks and the gradients are the same). Each module holds about 1.5 times a
    BART encoder layer's activations (two attentions), the largest share of MWF's extra training memory;
    ``bench/bench_model.py`` measures what it saves and what the second forward costs.
    """

    def __init__(self, config: GatedBartConfig):
        super().__init__()
        self.config = config
        self.views = list(config.mwf_views)
        self.hierarchical = bool(config.mwf_hierarchical)
        self.modules_by_view = nn.ModuleDict({view: RationaleModule(config) for view in self.views})
        self.recompute = False

    def _run(self, module: RationaleModule, *inputs: torch.Tensor | None) -> torch.Tensor:
        if self.recompute and self.training and torch.is_grad_enabled():
            return checkpoint(module, *inputs, use_reentrant=False)
        return module(*inputs)

    def forward(
        self, token_embeds: torch.Tensor, attention_mask: torch.Tensor | None, encoder_states: torch.Tensor
    ) -> torch.Tensor:
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=token_embeds, attention_mask=attention_mask)
        context, outputs = encoder_states, []
        for view in self.views:
            out = self._run(self.modules_by_view[view], token_embeds, mask, context)
            outputs.append(out)
            if self.hierarchical:
                context = out
        return torch.stack(outputs, dim=1)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real (mask = 1) positions of (batch, length, dim) states; an all-pad row gives zeros."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def alignment_loss(
    module_states: torch.Tensor,
    document_mask: torch.Tensor,
    target: torch.Tensor,
    present: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_view = 1 - cos(meanpool(module output), target), averaged over the rows whose view is ``present``.

    ``target`` (batch, dim) is a constant (the fixed encoder's mean-pooled rationale), so the loss trains the
    module; a row without the view (``present`` false) contributes nothing.
    """
    predicted = masked_mean(module_states, document_mask)
    cosine = nn.functional.cosine_similarity(predicted, target.to(predicted.dtype), dim=-1, eps=1e-8)
    if present is None:
        return (1.0 - cosine).mean()
    return (1.0 - cosine)[present].mean()
