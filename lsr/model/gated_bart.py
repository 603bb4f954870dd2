"""The MWF student: ``BartForConditionalGeneration`` with rationale modules, weak gates and an alignment loss.

How it extends BART without copying it (the method: docs/paper.md#mwf):

- The encoder is a :class:`MwfBartEncoder` (a ``BartEncoder`` subclass with the same weight names): after the
  usual pass it runs the rationale modules over the embedded document and returns their outputs next to X_en
  in a :class:`MwfEncoderOutput`. ``generate()`` calls the encoder once per input and carries (and beam-expands)
  its output, so the modules run once per input, never once per decoding step.
- Each decoder layer is a :class:`GatedBartDecoderLayer` (a ``BartDecoderLayer`` subclass) that owns one scalar
  gate per view and cross-attends to X_en + sum_v g_v,i * V_out (Eq. 9-10). The module outputs reach the layers
  through the decoder's keyword pass-through (``mwf_view_states``). Once the cross-attention keys/values sit in
  the KV cache the layer skips the fusion: it would be recomputed for nothing.
- The model returns the loss *parts*: ``ce`` (also ``loss``, as BART's own) and ``align_<view>`` =
  1 - cos(meanpool(V_out), t_v), where t_v is a constant target given with the batch: the fixed (initial)
  encoder's mean-pooled encoding of the rationale text, computed once per data set by the target pass
  (:mod:`lsr.training.targets`), so no rationale text is encoded in a training step. How the parts are
  weighted (Eq. 11's gammas) is the objective's business (:mod:`lsr.training.objectives.mwf`), so the weights
  never travel in a checkpoint.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, BartConfig, BartForConditionalGeneration, GenerationConfig
from transformers import initialization as init
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.bart.modeling_bart import (
    BartDecoder,
    BartDecoderLayer,
    BartEncoder,
    shift_tokens_right,
)

from lsr.core.config import preset
from lsr.model.config import GatedBartConfig
from lsr.model.modules import RationaleModules, alignment_loss
from lsr.model.views import VIEWS

#: The decoder layer's KV-cache argument: ``cache`` from transformers 5.24 on (``past_key_values`` is deprecated there
#: until 5.40, and passing both draws a warning per call), ``past_key_values`` before.
_CACHE_ARG = "cache" if "cache" in inspect.signature(BartDecoderLayer.forward).parameters else "past_key_values"


@dataclass
class MwfEncoderOutput(BaseModelOutput):
    """X_en as ``last_hidden_state`` plus ``view_states``: the modules' outputs, (batch, view, length, dim)."""

    view_states: torch.FloatTensor | None = None


@dataclass
class GatedBartOutput(Seq2SeqLMOutput):
    """BART's output plus the named loss parts: "ce", and "align_<view>" for each view some row has a target for."""

    loss_parts: dict[str, torch.Tensor] | None = None


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Dropout off for a target computation, then the caller's mode back."""
    was_training = module.training
    module.train(False)
    try:
        yield
    finally:
        module.train(was_training)


class MwfBartEncoder(BartEncoder):
    """BART's encoder followed by the rationale modules; the weight names of ``BartEncoder`` are unchanged."""

    def __init__(self, config: GatedBartConfig):
        super().__init__(config)
        self.mwf_modules = RationaleModules(config) if config.mwf_views else None
        self.post_init()  # BART's init scheme for the modules (BartEncoder's own post_init ran before they existed)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MwfEncoderOutput | tuple:
        return_dict = kwargs.pop("return_dict", True)
        if inputs_embeds is None and self.mwf_modules is not None:
            # One embedding lookup for the encoder and the modules: each lookup of the shared table costs a dense
            # vocabulary-sized gradient in the backward pass.
            inputs_embeds, input_ids = self.embed_tokens(input_ids), None
        # A frozen encoder builds no graph, so the shared embeddings learn only through the decoder and the modules.
        frozen = bool(self.config.mwf_freeze_encoder)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            plain = super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds.detach() if frozen and inputs_embeds is not None else inputs_embeds,
                return_dict=True,
                **kwargs,
            )
        view_states = None
        if self.mwf_modules is not None:
            view_states = self.mwf_modules(inputs_embeds, attention_mask, plain.last_hidden_state)
        out = MwfEncoderOutput(
            last_hidden_state=plain.last_hidden_state,
            hidden_states=plain.hidden_states,
            attentions=plain.attentions,
            view_states=view_states,
        )
        return out if return_dict else out.to_tuple()

    @torch.no_grad()
    def encode_targets(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The plain BART encoding of rationale text, as a constant target: no gradient, no dropout.

        Used by the target pass on the *initial* checkpoint (:mod:`lsr.training.targets`), never in a step.
        """
        with _eval_mode(self):
            return BartEncoder.forward(self, input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class GatedBartDecoderLayer(BartDecoderLayer):
    """A BART decoder layer that cross-attends to X_en + sum_v g_v * V_out with its own gates g (one per view).

    Gates are kept in [0, 1] by projection, not by a squashing function: the forward pass uses
    ``clamp(g, 0, 1)`` and :meth:`GatedBartForConditionalGeneration.project_gates` clamps the stored value in
    place before every training forward. Unlike a sigmoid this represents 0 and 1 exactly (all gates 0 is plain
    BART, bit for bit), keeps the paper's gradient (d out / d g = V_out) inside the box, and cannot leave a gate
    stuck at a bound: the clamp's gradient is 1 at the bounds themselves, and a projected gate sits exactly there.
    """

    def __init__(self, config: GatedBartConfig, layer_idx: int | None = None):
        super().__init__(config, layer_idx)
        self.layer_idx = layer_idx
        num_views = len(config.mwf_views)
        if num_views:
            self.view_gates = nn.Parameter(torch.full((num_views,), float(config.mwf_gate_init)))
        else:
            self.register_parameter("view_gates", None)

    def _cross_cache_ready(self, cache: Any) -> bool:
        return isinstance(cache, EncoderDecoderCache) and bool(cache.is_updated.get(self.layer_idx))

    def fuse(self, encoder_states: torch.Tensor, view_states: torch.Tensor) -> torch.Tensor:
        """X_en + sum_v clamp(g_v) * V_out (Eq. 9-10)."""
        gates = self.view_gates.clamp(0.0, 1.0).to(view_states.dtype)
        fused = encoder_states
        for k in range(view_states.shape[1]):
            fused = fused + gates[k] * view_states[:, k]
        return fused

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        use_cache: bool | None = True,
        mwf_view_states: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """BART's layer on the fused encoder states. The KV cache travels in ``kwargs`` under the name the installed
        transformers gives it (:data:`_CACHE_ARG`), untouched."""
        if (
            self.view_gates is not None
            and mwf_view_states is not None
            and encoder_hidden_states is not None
            and not self._cross_cache_ready(kwargs.get(_CACHE_ARG))
        ):
            encoder_hidden_states = self.fuse(encoder_hidden_states, mwf_view_states)
        return super().forward(
            hidden_states,
            attention_mask,
            encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            use_cache=use_cache,
            **kwargs,
        )


class GatedBartDecoder(BartDecoder):
    """BART's decoder with gated layers; it owns the gates' initialisation (``from_pretrained`` inits per sub-model)."""

    def __init__(self, config: GatedBartConfig):
        super().__init__(config)
        self.layers = nn.ModuleList([GatedBartDecoderLayer(config, layer_idx=i) for i in range(config.decoder_layers)])
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GatedBartDecoderLayer) and module.view_gates is not None:
            init.constant_(module.view_gates, float(self.config.mwf_gate_init))


class GatedBartForConditionalGeneration(BartForConditionalGeneration):
    """LSR-MWF's student; with ``mwf_views=[]`` it is plain BART (no modules, no gates, CE loss)."""

    config_class = GatedBartConfig
    config: GatedBartConfig

    def __init__(self, config: GatedBartConfig):
        super().__init__(config)
        # Swap in the MWF encoder and decoder layers; weight names stay BART's, so BART checkpoints load as is.
        self.model.encoder = MwfBartEncoder(config)
        self.model.decoder = GatedBartDecoder(config)
        self.post_init()  # ties the new encoder's and decoder's token embeddings to the shared ones again
        self.apply_mwf_trainability()

    # ---- construction -------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> GatedBartForConditionalGeneration:
        """``PreTrainedModel.from_pretrained``, then the config's frozen parts frozen (loading makes new tensors)."""
        model = super().from_pretrained(*args, **kwargs)
        model.apply_mwf_trainability()
        return model

    @classmethod
    def from_bart(
        cls, pretrained_name_or_path_or_model: str | os.PathLike | BartForConditionalGeneration, **mwf_fields: Any
    ) -> GatedBartForConditionalGeneration:
        """The MWF student over any BART checkpoint: BART's weights copied, modules and gates freshly initialised.

        ``mwf_fields`` are ``GatedBartConfig``'s ``mwf_*`` fields (see :func:`lsr.model.mwf_fields`).
        """
        source = pretrained_name_or_path_or_model
        if isinstance(source, BartForConditionalGeneration):
            config = _gated_config(source.config, mwf_fields)
            model = cls(config)
            missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
            new = {name for name, _ in model.named_parameters() if _is_mwf_parameter(name)}
            stray = [k for k in missing if k not in new and not k.endswith("embed_tokens.weight")]
            if stray or unexpected:
                raise ValueError(f"BART weights do not fit the MWF model: missing {stray}, unexpected {unexpected}")
            model.apply_mwf_trainability()
            return model.to(next(source.parameters()).dtype)
        config = _gated_config(BartConfig.from_pretrained(source), mwf_fields)
        # A BART checkpoint has no MWF weights: HF would list every one as MISSING in a warning table. Only
        # those are expected here (they are freshly initialised); any other missing weight is still reported.
        cls._keys_to_ignore_on_load_missing = [*(cls._keys_to_ignore_on_load_missing or []), MWF_PARAMETER_PATTERN]
        try:
            return cls.from_pretrained(source, config=config)
        finally:
            del cls._keys_to_ignore_on_load_missing  # BART's own list is inherited again

    def recompute_modules(self, enabled: bool = True) -> None:
        """Recompute the rationale modules' activations in the backward pass (see :class:`RationaleModules`)."""
        if self.model.encoder.mwf_modules is not None:
            self.model.encoder.mwf_modules.recompute = bool(enabled)

    def apply_mwf_trainability(self) -> None:
        """Apply ``mwf_freeze_encoder`` / ``mwf_gates_trainable`` to ``requires_grad`` (also after loading)."""
        encoder = self.model.encoder
        freeze = bool(self.config.mwf_freeze_encoder)
        for name, param in encoder.named_parameters():
            # The shared token embeddings are the decoder's and the LM head's too: never frozen here.
            if not name.startswith("mwf_modules.") and param is not self.model.shared.weight:
                param.requires_grad_(not freeze)
        for layer in self.model.decoder.layers:
            if layer.view_gates is not None:
                layer.view_gates.requires_grad_(bool(self.config.mwf_gates_trainable))

    # ---- gates --------------------------------------------------------------------------------------------

    @property
    def views(self) -> list[str]:
        return list(self.config.mwf_views)

    def gate_values(self) -> dict[str, list[float]]:
        """View -> one gate value (in [0, 1]) per decoder layer."""
        if not self.views:
            return {}
        table = torch.stack([layer.view_gates.detach().clamp(0.0, 1.0) for layer in self.model.decoder.layers])
        return {view: table[:, k].tolist() for k, view in enumerate(self.views)}

    @torch.no_grad()
    def set_gates(self, value: float | dict[str, float | list[float]]) -> None:
        """Set gates: one value everywhere, or per view (a value, or a list with one value per layer)."""
        per_view = value if isinstance(value, dict) else {view: value for view in self.views}
        unknown = set(per_view) - set(self.views)
        if unknown:
            raise ValueError(f"no gates for view(s) {sorted(unknown)}; the model has {self.views}")
        layers = self.model.decoder.layers
        for view, values in per_view.items():
            column = values if isinstance(values, (list, tuple)) else [values] * len(layers)
            if len(column) != len(layers):
                raise ValueError(f"view {view!r}: {len(column)} gate values for {len(layers)} decoder layers")
            k = self.views.index(view)
            for layer, v in zip(layers, column, strict=True):
                layer.view_gates[k] = min(max(float(v), 0.0), 1.0)

    @torch.no_grad()
    def project_gates(self) -> None:
        """Clamp the stored gates into [0, 1] (the projection step of projected gradient descent)."""
        for layer in self.model.decoder.layers:
            if layer.view_gates is not None:
                layer.view_gates.clamp_(0.0, 1.0)

    # ---- forward ------------------------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        *,
        view_targets: torch.Tensor | None = None,
        view_target_mask: torch.Tensor | None = None,
        encoder_outputs: Any = None,
        **hf_kwargs: Any,
    ) -> GatedBartOutput | tuple:
        """Logits, and with ``labels`` / alignment targets the loss parts (``loss`` is the cross-entropy, as in BART).

        ``view_targets`` (batch, every registry view, d_model) are the stored, constant targets (the fixed encoder's
        mean-pooled rationale encodings, :mod:`lsr.training.targets`) and ``view_target_mask`` (batch, view) marks
        the rows whose view has a text; views the model does not have are ignored (an ablation reuses the set).
        Label positions equal to -100 or to the pad token are ignored by the cross-entropy.
        """
        return_dict = hf_kwargs.pop("return_dict", True)
        if self.training and self.config.mwf_gates_trainable:
            self.project_gates()
        encoder_outputs = self._encode(input_ids, attention_mask, encoder_outputs, hf_kwargs)
        if labels is not None:
            hf_kwargs["use_cache"] = False
            if decoder_input_ids is None and hf_kwargs.get("decoder_inputs_embeds") is None:
                decoder_input_ids = shift_tokens_right(
                    labels, self.config.pad_token_id, self.config.decoder_start_token_id
                )
        view_states = getattr(encoder_outputs, "view_states", None)
        if view_states is not None:
            hf_kwargs["mwf_view_states"] = view_states
        out = super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            encoder_outputs=encoder_outputs,
            **hf_kwargs,
        )
        parts = self._loss_parts(out.logits, labels, view_states, attention_mask, view_targets, view_target_mask)
        result = GatedBartOutput(loss=parts.get("ce"), loss_parts=parts, **dict(out.items()))
        return result if return_dict else result.to_tuple()

    def _encode(
        self, input_ids: Any, attention_mask: Any, encoder_outputs: Any, hf_kwargs: dict[str, Any]
    ) -> MwfEncoderOutput:
        """Run the encoder (and modules) unless ``generate()`` already did; add module outputs if missing."""
        if encoder_outputs is None:
            return self.model.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=hf_kwargs.pop("inputs_embeds", None),
                output_attentions=hf_kwargs.get("output_attentions"),
                output_hidden_states=hf_kwargs.get("output_hidden_states"),
                return_dict=True,
            )
        if not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = MwfEncoderOutput(*encoder_outputs)
        if self.views and getattr(encoder_outputs, "view_states", None) is None:
            # Encoder states computed elsewhere (e.g. by plain BART code): the modules still need the document.
            if input_ids is None:
                raise ValueError("encoder_outputs without view_states: pass input_ids so the modules can run")
            encoder = self.model.encoder
            view_states = encoder.mwf_modules(
                encoder.embed_tokens(input_ids), attention_mask, encoder_outputs.last_hidden_state
            )
            encoder_outputs = MwfEncoderOutput(
                last_hidden_state=encoder_outputs.last_hidden_state,
                hidden_states=encoder_outputs.hidden_states,
                attentions=encoder_outputs.attentions,
                view_states=view_states,
            )
        return encoder_outputs

    def _loss_parts(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor | None,
        view_states: torch.Tensor | None,
        document_mask: torch.Tensor | None,
        view_targets: torch.Tensor | None,
        view_target_mask: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        if labels is not None:
            targets = labels.to(logits.device).masked_fill(labels == self.config.pad_token_id, -100)
            parts["ce"] = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
            )
        if view_targets is None or view_states is None:
            return parts
        if document_mask is None:
            document_mask = torch.ones(view_states.shape[0], view_states.shape[2], device=view_states.device)
        for k, view in enumerate(self.views):
            column = VIEWS.index(view)  # the targets' view axis follows the registry, whatever this model's views
            present = None if view_target_mask is None else view_target_mask[:, column].bool()
            if present is not None and not bool(present.any()):
                continue  # no row of the batch has this view: no term (never a target made of "<s></s>")
            parts[f"align_{view}"] = alignment_loss(view_states[:, k], document_mask, view_targets[:, column], present)
        return parts

    # ---- generation ---------------------------------------------------------------------------------------

    def apply_generation_preset(self, dataset: str) -> GenerationConfig:
        """Make the data set's beam-search settings (docs/paper.md#generation) this model's ``generate()`` defaults."""
        for key, value in preset(dataset).generation.as_generate_kwargs().items():
            setattr(self.generation_config, key, value)
        return self.generation_config


#: The weights MWF adds to BART (rationale modules and gates), as a regex for HF's missing-key filter.
MWF_PARAMETER_PATTERN = r"\.mwf_modules\.|\.view_gates$"


def _is_mwf_parameter(name: str) -> bool:
    return re.search(MWF_PARAMETER_PATTERN, name) is not None


def _gated_config(base: BartConfig, mwf_fields: dict[str, Any]) -> GatedBartConfig:
    unknown = [key for key in mwf_fields if not key.startswith("mwf_")]
    if unknown:
        raise ValueError(f"from_bart takes only mwf_* fields, got {unknown}")
    values = {k: v for k, v in base.to_dict().items() if k not in ("model_type", "transformers_version")}
    values["architectures"] = ["GatedBartForConditionalGeneration"]
    if getattr(base, "_attn_implementation", None):
        values["attn_implementation"] = base._attn_implementation
    return GatedBartConfig(**values, **mwf_fields)


AutoConfig.register(GatedBartConfig.model_type, GatedBartConfig, exist_ok=True)
AutoModelForSeq2SeqLM.register(GatedBartConfig, GatedBartForConditionalGeneration, exist_ok=True)

__all__ = [
    "VIEWS",
    "GatedBartDecoder",
    "GatedBartDecoderLayer",
    "GatedBartForConditionalGeneration",
    "GatedBartOutput",
    "MwfBartEncoder",
    "MwfEncoderOutput",
]
