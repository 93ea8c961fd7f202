"""A model's attention weights on one text: every layer and head of one attention stack (a decoder-only or
encoder-only model's self-attention; an encoder-decoder's encoder, decoder or cross-attention), and the maps a
user asked to see from them (one head, a layer's heads, or averages). No typer, rich or matplotlib here: the
`attention` command prints and draws what this returns.

transformers computes attention weights only on its "eager" path (the fused kernels, SDPA and flash, never form
them), so the model is loaded with that implementation; the weights are then the rows of
softmax(QK^T / sqrt(d) + mask) that the model itself used (T5: no sqrt(d), a relative position bias instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmtool import models
from llmtool.errors import LlmtoolError, SettingError, literal
from llmtool.model_facts import position_limit

if TYPE_CHECKING:
    import torch

EAGER = "eager"  # the attention implementation that returns its weights (output_attentions)
PARTS = ("encoder", "decoder", "cross")  # an encoder-decoder's stacks; other models have one, "self"
SELF = "self"
AVERAGES = ("heads", "layers")  # a layer's heads, or every layer and head


@dataclass
class Attention:
    """Every layer's weights of one stack on one input: weights[layer, head, query, key], each row summing to 1.
    Rows are `query_tokens` (what attends), columns `key_tokens` (what is attended to); they differ only for
    cross-attention (decoder tokens over the encoder's)."""

    model_type: str
    part: str  # SELF, or one of PARTS
    query_tokens: list[str]
    key_tokens: list[str]
    weights: "torch.Tensor"  # float32, on the CPU

    @property
    def layers(self) -> int:
        return self.weights.shape[0]

    @property
    def heads(self) -> int:
        return self.weights.shape[1]

    def where(self) -> str:
        """The stack, as an error or a title says it: "this gpt2 model", "this t5 model's decoder"."""
        stack = "" if self.part == SELF else "'s cross-attention" if self.part == "cross" else f"'s {self.part}"
        return f"this {self.model_type} model{stack}"


@dataclass
class AttentionMap:
    """One heatmap: the weights of a head, or a mean over heads (`head` None) or over layers too (`layer` None)."""

    layer: int | None
    head: int | None
    weights: "torch.Tensor"  # (queries, keys)

    @property
    def title(self) -> str:
        if self.layer is None:
            return "mean of all layers and heads"
        return f"layer {self.layer}, " + ("mean of heads" if self.head is None else f"head {self.head}")


def load(name: str, device: str | None = None, dtype: str = "auto", trust_remote_code: bool = False,
         base_model: str | None = None) -> models.LoadedModel:
    """The model on its eager attention path. Its head does not change the attention, so a checkpoint is loaded
    with whatever head its task has, an untrained one included (a BERT saved without a classifier head)."""
    return models.load_model(name, verb="attention", device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code, allow_new_head=True, base_model=base_model,
                             attn_implementation=EAGER)


def check_request(text: str, target: str | None = None, part: str | None = None, layer: int | None = None,
                  head: int | None = None, average: str | None = None) -> None:
    """What is wrong with a request whatever the model: an empty text, an unknown part or average, and choices
    that do not go together. `compute` and `maps` check the rest once the model is known. Errors name the
    settings by their keys (text, target, part, layer, head, average)."""
    for key, value in (("text", text), ("target", target)):
        if value is not None and not value.strip():
            raise SettingError(f"{{{key}}} is empty; give some text to look at")
    if part is not None and part not in PARTS:
        raise SettingError(f"unknown {{part}} '{literal(part)}'; choose one of {', '.join(PARTS)}")
    _check_view(layer, head, average)


def _check_view(layer: int | None, head: int | None, average: str | None) -> None:
    if average is not None and average not in AVERAGES:
        raise SettingError(f"unknown {{average}} '{literal(average)}'; choose one of {', '.join(AVERAGES)}")
    if average == "layers":
        for key, value in (("layer", layer), ("head", head)):
            if value is not None:
                raise SettingError(f"{{average}} layers averages every layer and head: drop {{{key}}}")
    if average == "heads" and head is not None:
        raise SettingError("{average} heads averages the heads of {layer}: drop {head}")


def compute(lm: models.LoadedModel, text: str, target: str | None = None, part: str | None = None) -> Attention:
    """The attention weights of `lm` on `text`: for an encoder-decoder, of `part` (default: the encoder), whose
    decoder reads `target` (needed for the decoder and cross-attention); for any other model, its self-attention,
    where `part` and `target` have no place."""
    import torch
    from transformers.utils import logging as hf_logging

    check_request(text, target, part)
    config = lm.model.config
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    part = _check_part(config.model_type, encoder_decoder, part, target)
    encoded = _encode(lm, text, "text")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # kernel-fallback notes (a model with no attention) are not this verb's news
    try:
        with torch.no_grad():
            if part in (SELF, "encoder"):
                run = lm.model.get_encoder() if encoder_decoder else lm.model
                stack = getattr(run(**encoded, output_attentions=True), "attentions", None)
                queries = keys = encoded["input_ids"][0]
            else:
                labels = _encode(lm, target, "target", as_target=True)["input_ids"]
                decoder_ids = lm.model.prepare_decoder_input_ids_from_labels(labels=labels)  # start token + target
                output = lm.model(**encoded, decoder_input_ids=decoder_ids, output_attentions=True)
                stack = output.decoder_attentions if part == "decoder" else output.cross_attentions
                queries = decoder_ids[0]
                keys = decoder_ids[0] if part == "decoder" else encoded["input_ids"][0]
    finally:
        hf_logging.set_verbosity(verbosity)
    if not stack or any(weights is None for weights in stack):
        raise LlmtoolError(f"a {config.model_type} model computes no attention weights (it has no attention "
                           "layers, or they cannot report them); use a model with attention, such as GPT-2, BERT, "
                           "DistilBERT or T5")
    tokens = lm.tokenizer.convert_ids_to_tokens
    return Attention(config.model_type, part, tokens(queries.tolist()), tokens(keys.tolist()),
                     torch.stack([weights[0] for weights in stack]).float().cpu())


def _check_part(model_type: str, encoder_decoder: bool, part: str | None, target: str | None) -> str:
    """The stack asked for, once it is one the model has, with the input it needs."""
    if not encoder_decoder:
        for key, value in (("part", part), ("target", target)):
            if value is not None:
                raise SettingError(f"{{{key}}} is for an encoder-decoder model (T5), whose decoder reads a target "
                                   f"text; a {model_type} model has one attention stack: drop {{{key}}}")
        return SELF
    part = part or "encoder"
    if part == "encoder" and target is not None:
        raise SettingError("{target} is read by the decoder, and the encoder's attention does not depend on it: "
                           "add {part} decoder or {part} cross, or drop {target}")
    if part != "encoder" and target is None:
        raise SettingError(f"{{part}} {literal(part)} needs the text the decoder reads: add {{target}} TEXT")
    return part


def _encode(lm: models.LoadedModel, text: str, key: str, as_target: bool = False):
    """`text` as the model's input ids (special tokens added), refused past the model's positions."""
    options = {"return_tensors": "pt", "verbose": False}  # too long is said below, in one line
    encoded = lm.tokenizer(text_target=text, **options) if as_target else lm.tokenizer(text, **options)
    length, limit = encoded["input_ids"].shape[1], position_limit(lm.model.config)
    if limit is not None and length > limit:
        raise SettingError(f"{{{key}}} is {length} tokens, more than the model's {limit} positions; give a shorter "
                           "text")
    return encoded.to(lm.device)


def maps(attention: Attention, layer: int | None = None, head: int | None = None,
         average: str | None = None) -> list[AttentionMap]:
    """What to show: every head of `layer` (default: the last), one `head` of it, the mean of its heads (average
    "heads"), or the mean of every layer and head (average "layers"). Negative indices count from the last, as in
    Python."""
    _check_view(layer, head, average)
    if average == "layers":
        return [AttentionMap(None, None, attention.weights.mean(dim=(0, 1)))]
    where = attention.where()
    layer = _index(-1 if layer is None else layer, attention.layers, "layer",
                   f"{where} has {attention.layers} layers")
    weights = attention.weights[layer]
    if average == "heads":
        return [AttentionMap(layer, None, weights.mean(dim=0))]
    if head is not None:
        head = _index(head, attention.heads, "head", f"each layer of {where} has {attention.heads} heads")
        return [AttentionMap(layer, head, weights[head])]
    return [AttentionMap(layer, h, weights[h]) for h in range(attention.heads)]


def _index(value: int, count: int, key: str, what: str) -> int:
    if not -count <= value < count:
        raise SettingError(f"{{{key}}} {literal(value)} is out of range: {what}, numbered 0 to {count - 1} (or -1 for "
                           "the last)")
    return value % count


def as_record(attention: Attention, shown: list[AttentionMap], average: str | None) -> dict:
    """The JSON form: the tokens, the stack's size, and each map's weights as lists of rows (6 decimals).
    A map's null layer or head is one averaged over (`average` says which)."""
    return {
        "model_type": attention.model_type, "part": attention.part,
        "query_tokens": attention.query_tokens, "key_tokens": attention.key_tokens,
        "layers": attention.layers, "heads": attention.heads, "average": average,
        "maps": [{"layer": m.layer, "head": m.head, "weights": m.weights.double().round(decimals=6).tolist()}
                 for m in shown],
    }
