"""Sequence classification at inference: texts (or text pairs) tokenized once, run in length-sorted batches with
dynamic padding, probabilities back in input order, label names from the model's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llmtool.data import pad_on_the_right, sorted_batches
from llmtool.errors import LlmtoolError
from llmtool.model_facts import label_names, position_limit
from llmtool.models import LoadedModel


@dataclass
class Classified:
    probabilities: list[list[float]]  # per input, in input order: one probability per label id
    truncated: int  # inputs cut to max_length
    max_length: int


def label_ids(lm: LoadedModel) -> dict[str, int]:
    """How a data file may write each of the model's labels: by name, or, for a model whose labels are
    transformers' defaults (LABEL_0, LABEL_1, ...), by number as well."""
    names = label_names(lm.model.config)
    ids = {name: i for i, name in enumerate(names)}
    if names == [f"LABEL_{i}" for i in range(len(names))]:
        ids.update({str(i): i for i in range(len(names))})
    return ids


def int8_engine() -> str:
    """The quantized kernels int8 runs on: oneDNN on CPUs with AMX tiles, where its int8 matrix multiplications
    use them (about 1.3x faster than the default kernels on a BERT-base shape); torch's default elsewhere."""
    import torch

    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()  # private: absent means "not known"
    if amx and "onednn" in torch.backends.quantized.supported_engines:
        return "onednn"
    return torch.backends.quantized.engine


def quantize_int8(lm: LoadedModel) -> None:
    """Dynamic int8 quantization of every nn.Linear (weights stored as int8, activations quantized per batch):
    on a CPU, the matrix multiplications that dominate an encoder run in int8. CPU only."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    if lm.device.type != "cpu":
        raise LlmtoolError(f"int8 dynamic quantization runs on the CPU only, not on {lm.device}")
    default = torch.backends.quantized.engine
    torch.backends.quantized.engine = int8_engine()  # weights are packed for this engine's kernels, which keep it
    try:
        with warnings.catch_warnings():  # torch.ao's deprecation notices say nothing a user of the result can act on
            warnings.simplefilter("ignore")
            lm.model = quantize_dynamic(lm.model.float(), {torch.nn.Linear}, dtype=torch.qint8)
    finally:
        torch.backends.quantized.engine = default


def max_input_length(lm: LoadedModel) -> int:
    """The longest input the model takes: its positions (or, where its config sets none, its tokenizer's stated
    length, else 512)."""
    stated = getattr(lm.tokenizer, "model_max_length", None)
    if not (isinstance(stated, int) and 0 < stated < 1_000_000):  # a tokenizer with no stated length says 1e30
        stated = 512
    return position_limit(lm.model.config) or stated


def classify(lm: LoadedModel, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32,
             max_length: int | None = None, on_batch: Callable[[int], None] | None = None) -> Classified:
    """Label probabilities for every text (pair). Batches are formed by length, so padding is small; batching
    changes speed, not results (padding is masked). `on_batch(rows)` is told after each batch (for progress)."""
    import torch

    if pairs is not None and len(pairs) != len(texts):
        raise LlmtoolError(f"{len(texts)} texts but {len(pairs)} pair texts; give one pair text per text")
    limit = max_input_length(lm)
    max_length = max_length or limit
    if max_length > limit:
        raise LlmtoolError(f"max length {max_length} is past the model's {limit} positions")
    pad_on_the_right(lm.tokenizer, lm.model)  # a decoder classifier (GPT-2) reads its last real token
    tokenizer = lm.tokenizer
    encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, verbose=False)
    truncated = sum(1 for e in encoded.encodings if e.overflowing) if encoded.encodings else 0
    columns = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    lengths = [len(ids) for ids in columns["input_ids"]]
    probabilities: list[list[float]] = [[] for _ in texts]
    with torch.inference_mode():
        for batch in sorted_batches(lengths, batch_size):
            inputs = tokenizer.pad({k: [v[i] for i in batch] for k, v in columns.items()}, return_tensors="pt")
            logits = lm.model(**inputs.to(lm.device)).logits.float()
            for i, row in zip(batch, torch.softmax(logits, dim=-1).tolist()):
                probabilities[i] = row
            if on_batch is not None:
                on_batch(len(batch))
    return Classified(probabilities=probabilities, truncated=truncated, max_length=max_length)
