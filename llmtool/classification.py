"""Sequence classification at inference: texts (or text pairs) tokenized once, run in length-sorted batches with
dynamic padding, probabilities back in input order, label names from the model's config."""

from __future__ import annotations

from dataclasses import dataclass

from llmtool.data import sorted_batches
from llmtool.errors import LlmtoolError
from llmtool.models import LoadedModel


@dataclass
class Classified:
    probabilities: list[list[float]]  # per input, in input order: one probability per label id
    truncated: int  # inputs cut to max_length
    max_length: int


def label_names(lm: LoadedModel) -> list[str]:
    config = lm.model.config
    return [str(config.id2label[i]) for i in range(config.num_labels)]


def max_input_length(lm: LoadedModel) -> int:
    """The longest input the model takes: its positions (or its tokenizer's stated length)."""
    config = lm.model.config
    for value in (getattr(config, "max_position_embeddings", None), getattr(config, "n_positions", None),
                  getattr(lm.tokenizer, "model_max_length", None)):
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
    return 512


def prepare(lm: LoadedModel) -> None:
    """Decoder classifiers (GPT-2) read the last non-padding token: they need a pad token, set on both sides."""
    tokenizer, config = lm.tokenizer, lm.model.config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "right"


def classify(lm: LoadedModel, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32,
             max_length: int | None = None) -> Classified:
    """Label probabilities for every text (pair). Batches are formed by length, so padding is small; batching
    changes speed, not results (padding is masked)."""
    import torch

    if pairs is not None and len(pairs) != len(texts):
        raise LlmtoolError(f"{len(texts)} texts but {len(pairs)} pair texts; give one pair text per text")
    limit = max_input_length(lm)
    max_length = max_length or limit
    if max_length > limit:
        raise LlmtoolError(f"max length {max_length} is past the model's {limit} positions")
    prepare(lm)
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
    return Classified(probabilities=probabilities, truncated=truncated, max_length=max_length)
