"""Facts about a model read from its files and config, each in one place: whether a saved directory is whole
(every JSON file parses, every safetensors header covers its file: a model's weights or a LoRA adapter's), a
classifier's label names and the config values that set them, the positions a model takes, the new tokens an
encoder-decoder's outputs are made for, and the transformers Auto class for each task.

A leaf: it imports no other llmtool module but the task names and errors, so `models`, `lora`, `config` and every
verb can read these facts without importing each other. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmtool.errors import LlmtoolError, json_problem
from llmtool.tasks import CAUSAL_LM, CLASSIFICATION, MASKED_LM, SEQ2SEQ_LM, model_task

# ---------------------------------------------------------------- a saved model directory is whole


def damaged(path: Path, what: str) -> LlmtoolError:
    return LlmtoolError(f"'{path}' {what}; the model directory is damaged: save the model again or copy it anew")


def check_json_file(path: Path) -> Any:
    """The parsed contents of a JSON file a model directory needs; one clear error when it is not UTF-8, empty or
    not JSON."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise damaged(path, f"is not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise damaged(path, "is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise damaged(path, f"is not valid JSON ({json_problem(err)})") from None


SAFETENSORS_PROBLEMS = {  # the first key found in safetensors' message says what is wrong
    "header too small": "is empty or cut short",
    "invalid header length": "is cut short (truncated)",
    "file not fully covered": "is cut short (truncated)",
    "header too large": "is not a safetensors file (its header is garbage)",
    "invalid header": "is not a safetensors file (its header is garbage)",
}


def check_safetensors(path: Path) -> list[str]:
    """The tensor names of a safetensors file whose header is whole and covers the file exactly (cheap: no tensor
    is read); one clear error when it is empty, cut short or not a safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            return list(weights.keys())
    except SafetensorError as err:
        detail = str(err).lower()
        what = next((v for k, v in SAFETENSORS_PROBLEMS.items() if k in detail), f"is unreadable ({err})")
        raise damaged(path, what) from None


def check_model_files(directory: Path) -> None:
    """Damage in a local model directory, found before transformers turns it into an obscure error: each JSON file
    parses, and each safetensors file is whole (`check_safetensors`)."""
    config = check_json_file(directory / "config.json")
    if not isinstance(config, dict):
        raise damaged(directory / "config.json", "is not a JSON object")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                 "model.safetensors.index.json"):
        if (directory / name).is_file():
            check_json_file(directory / name)
    for weights in sorted(directory.glob("*.safetensors")):
        check_safetensors(weights)


# ---------------------------------------------------------------- labels


def label_names(config) -> list[str]:
    """A classifier config's label names, in the order of its outputs."""
    return [str(config.id2label[i]) for i in range(len(config.id2label))]


def label_settings(labels: list[str]) -> dict:
    """The config values (num_labels, id2label, label2id) of a classifier head for `labels`, in that order."""
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)}}


# ---------------------------------------------------------------- positions

# Where configs keep their number of absolute positions (GPT-2 names it n_positions; most others
# max_position_embeddings).
POSITION_KEYS = ("n_positions", "max_position_embeddings")


def position_limit(config) -> int | None:
    """The most positions a model takes, from its config or a config.json mapping; None where the config sets no
    limit (relative positions, as in T5)."""
    read = config.get if isinstance(config, dict) else (lambda key: getattr(config, key, None))
    for key in POSITION_KEYS:
        value = read(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


# An encoder-decoder with relative positions (T5) has no hard limit; past its tokenizer's stated length (or this,
# where none is stated) a request for more new tokens is a typo, not a plan.
ENCODER_DECODER_FALLBACK_LIMIT = 2048


def new_token_limit(stated_length) -> int:
    """The most new tokens an encoder-decoder is asked for: its tokenizer's stated length (model_max_length), else
    a fixed bound (a tokenizer that states none says 1e30)."""
    if isinstance(stated_length, int) and 0 < stated_length < 1_000_000:
        return stated_length
    return ENCODER_DECODER_FALLBACK_LIMIT


# ---------------------------------------------------------------- task -> Auto class

# Per task: the transformers Auto class that builds its model, and the registry (config class -> model class) of
# the families that have its head.
AUTO_CLASSES = {CAUSAL_LM: ("AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING"),
                SEQ2SEQ_LM: ("AutoModelForSeq2SeqLM", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING"),
                CLASSIFICATION: ("AutoModelForSequenceClassification", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING"),
                MASKED_LM: ("AutoModelForMaskedLM", "MODEL_FOR_MASKED_LM_MAPPING")}


def auto_model_class(task: str):
    import transformers

    return getattr(transformers, AUTO_CLASSES[model_task(task)][0])


def task_registry(task: str):
    """config class -> model class of every family that has `task`'s head (chat: a causal LM's)."""
    import transformers

    return getattr(transformers, AUTO_CLASSES[model_task(task)][1])


def family_has_head(model_type: str, task: str) -> bool:
    """Whether transformers has `task`'s head for the `model_type` family (a config.json's model_type): a GPT-2
    has no masked-LM form, a BERT no seq2seq one. Only the family's config class is imported."""
    from transformers import CONFIG_MAPPING

    return model_type in CONFIG_MAPPING and CONFIG_MAPPING[model_type] in task_registry(task)
