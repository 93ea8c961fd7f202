"""Resolve a model name or path to a tokenizer and the task-appropriate Auto class, on a chosen device and dtype."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmtool.errors import LlmtoolError, UsageError

if TYPE_CHECKING:
    import torch

CAUSAL_LM = "causal-lm"
SEQ2SEQ_LM = "seq2seq-lm"
CLASSIFICATION = "classification"
TASKS = (CAUSAL_LM, SEQ2SEQ_LM, CLASSIFICATION)
DTYPES = ("auto", "fp32", "fp16", "bf16")
DEFAULT_GENERATION_MODEL = "gpt2"

# Encoder-only families: their natural head here is sequence classification, even though some of them
# also register a (rarely used) causal-LM head with transformers.
ENCODER_MODEL_TYPES = frozenset(
    {"bert", "distilbert", "roberta", "xlm-roberta", "albert", "electra", "deberta", "deberta-v2", "mpnet",
     "camembert", "modernbert"}
)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    task: str
    device: "torch.device"
    source: str


def default_generation_model() -> str:
    return os.environ.get("LLMTOOL_MODEL") or DEFAULT_GENERATION_MODEL


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def resolve_source(name: str) -> str:
    """A local model directory (checked) or a Hub id (left to transformers)."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise LlmtoolError(
                f"'{name}' is not a model directory (no config.json); point --model at a folder written by "
                "save_pretrained, or at a Hub id"
            )
        return str(path)
    if _looks_like_path(name):
        raise LlmtoolError(f"model directory '{name}' does not exist; check the path (--model, or model.name in a recipe)")
    return name


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _load_error(name: str, err: Exception) -> LlmtoolError:
    if _hub_offline():
        return LlmtoolError(
            f"model '{name}' is not a local directory and not in the Hugging Face cache, and the Hub is offline "
            "(HF_HUB_OFFLINE=1); pass --model with a directory saved by save_pretrained (or set LLMTOOL_MODEL), "
            "or go online to download it"
        )
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return LlmtoolError(f"could not load model '{name}': {first_line}")


def load_config(source: str, trust_remote_code: bool = False, **overrides: Any):
    """The model's config; `overrides` (num_labels, id2label, ...) replace saved values."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, **overrides)
    except (OSError, ValueError) as err:
        raise _load_error(source, err) from err


def infer_task(config) -> str:
    """The task a checkpoint is for, from its config: encoder-decoder, classifier, encoder, or decoder."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    architectures = config.architectures or []
    if getattr(config, "is_encoder_decoder", False):
        return SEQ2SEQ_LM
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return CLASSIFICATION
    if config.model_type in ENCODER_MODEL_TYPES:
        return CLASSIFICATION
    if any(a.endswith(("LMHeadModel", "ForCausalLM")) for a in architectures):
        return CAUSAL_LM
    if type(config) in MODEL_FOR_CAUSAL_LM_MAPPING:
        return CAUSAL_LM
    raise UsageError(f"cannot tell what task a '{config.model_type}' model is for; pass --task ({', '.join(TASKS)})")


def select_device(requested: str | None = None) -> "torch.device":
    import torch

    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise UsageError(f"unknown --device '{requested}'; use cpu, cuda, cuda:N or mps") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"--device {requested} asked for, but no CUDA GPU is available; use --device cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise UsageError("--device mps asked for, but MPS is not available; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def select_dtype(requested: str, device: "torch.device") -> "torch.dtype":
    """auto: half precision on a GPU (bf16 where supported), fp32 elsewhere."""
    import torch

    if requested not in DTYPES:
        raise UsageError(f"unknown --dtype '{requested}'; choose one of {', '.join(DTYPES)}")
    if requested == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if requested == "fp16" and device.type == "cpu":
        raise UsageError("--dtype fp16 is not supported on the CPU; use bf16 or fp32")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[requested]


def auto_model_class(task: str):
    import transformers

    return {
        CAUSAL_LM: transformers.AutoModelForCausalLM,
        SEQ2SEQ_LM: transformers.AutoModelForSeq2SeqLM,
        CLASSIFICATION: transformers.AutoModelForSequenceClassification,
    }[task]


def load_tokenizer(source: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error(source, err) from err


def load_model(
    name: str,
    *,
    task: str | None = None,
    allowed_tasks: tuple[str, ...] = TASKS,
    verb: str = "this command",
    device: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    **config_overrides: Any,
) -> LoadedModel:
    """Load tokenizer and model for `task` (inferred from the config when None), ready for inference."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars are noise on a CLI's stderr
    source = resolve_source(name)
    if task is not None and task not in TASKS:
        raise UsageError(f"unknown --task '{task}'; choose one of {', '.join(TASKS)}")
    config = load_config(source, trust_remote_code, **config_overrides)
    task = task or infer_task(config)
    if task not in allowed_tasks:
        raise UsageError(
            f"model '{name}' is a {config.model_type} {task} model, but {verb} needs one of: "
            f"{', '.join(allowed_tasks)} (use --task to override)"
        )
    torch_device = select_device(device)
    torch_dtype = select_dtype(dtype, torch_device)
    tokenizer = load_tokenizer(source, trust_remote_code)
    try:
        model = auto_model_class(task).from_pretrained(
            source, config=config, dtype=torch_dtype, trust_remote_code=trust_remote_code,
            use_safetensors=True,
        )
    except (OSError, ValueError) as err:
        if "safetensors" in str(err).lower():
            raise LlmtoolError(
                f"model '{name}' has no safetensors weights; llmtool does not unpickle .bin checkpoints. "
                "Convert it with save_pretrained(..., safe_serialization=True)"
            ) from err
        raise _load_error(name, err) from err
    model.to(torch_device).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, task=task, device=torch_device, source=source)
