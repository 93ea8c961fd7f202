"""LoRA through peft: low-rank adapters on a frozen pretrained model, for the three tasks.

Training wraps the model in a peft model whose only trainable weights are the adapters (and, for a classifier,
its head: `modules_to_save`). A run's directory then holds the adapter (adapter_config.json + safetensors), the
tokenizer and, with `merge`, a merged full model in `merged/`. Every verb that loads a model accepts an adapter
directory: the base model comes from adapter_config.json (or the caller's override), the adapter is attached and
merged for inference.
"""

from __future__ import annotations

import json
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from llmtool.errors import LlmtoolError, SettingError, literal
from llmtool.model_facts import check_json_file, check_safetensors, damaged, label_settings
from llmtool.tasks import CAUSAL_LM, CLASSIFICATION, SEQ2SEQ_LM

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
LABELS = "labels.json"  # a classifier adapter's label names: the base model's config does not have them
MERGED = "merged"

PEFT_TASK_TYPES = {CAUSAL_LM: "CAUSAL_LM", SEQ2SEQ_LM: "SEQ_2_SEQ_LM", CLASSIFICATION: "SEQ_CLS"}
# Attention projections adapted by default where peft has no default of its own.
DEFAULT_TARGETS = {"distilbert": ["q_lin", "v_lin"]}


def default_targets(model_type: str) -> list[str] | None:
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    targets = DEFAULT_TARGETS.get(model_type) or PEFT_DEFAULTS.get(model_type)
    return list(targets) if targets else None


def _adaptable_names(model) -> list[str]:
    """The short names of the layers LoRA can adapt (linear, GPT-2's Conv1D, embeddings), for error messages."""
    import torch
    from transformers.pytorch_utils import Conv1D

    kinds = (torch.nn.Linear, torch.nn.Embedding, Conv1D)
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, kinds)})


def target_modules(model, requested: list[str] | None) -> list[str]:
    """The module names to adapt: those asked for (each must exist in the model), else the family's default."""
    if requested:
        names = [name for name, _ in model.named_modules()]
        missing = [t for t in requested if not any(n == t or n.endswith("." + t) for n in names)]
        if missing:
            raise SettingError(f"{{target_modules}}: the {model.config.model_type} model has no module named "
                               f"{', '.join(repr(m) for m in missing)}; its adaptable layers are: "
                               f"{', '.join(_adaptable_names(model))}")
        return list(requested)
    targets = default_targets(model.config.model_type)
    if targets is None:
        raise SettingError(f"{{target_modules}}: there is no default for a {model.config.model_type} model; name "
                           f"the layers to adapt, from: {', '.join(_adaptable_names(model))}")
    return targets


def head_modules(model) -> list[str]:
    """A classifier's head: its top-level modules with weights, other than the base model."""
    return [name for name, module in model.named_children()
            if name != model.base_model_prefix and any(True for _ in module.parameters())]


def apply(model, settings, task: str):
    """The model wrapped for LoRA training: adapters on the target modules, the head trainable for a classifier,
    every other weight frozen."""
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = target_modules(model, settings.target_modules)
    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=targets,
        # GPT-2's Conv1D stores its weight transposed
        fan_in_fan_out=any(isinstance(m, Conv1D) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in targets),
        task_type=PEFT_TASK_TYPES[task], modules_to_save=head_modules(model) if task == CLASSIFICATION else None,
    )
    name = model.config.name_or_path
    if name and Path(name).expanduser().is_dir():  # recorded absolute: the adapter is found from anywhere
        model.config.name_or_path = str(Path(name).expanduser().resolve())
    with _peft_quietly():
        return get_peft_model(model, config)


@contextmanager
def _peft_quietly() -> Iterator[None]:
    """peft (0.21) reads a model's `is_gradient_checkpointing`, which transformers 5 deprecates with a FutureWarning
    on every wrap: a notice about peft's own code that no user of llmtool can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def load_weights(model, directory: Path) -> None:
    """Put a saved adapter's weights (and saved head) into a model wrapped by `apply` with the same settings."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(directory / ADAPTER_WEIGHTS))


def save_extra(model, directory: Path, merge: bool, tokenizer) -> None:
    """Beside the adapter: the label names of a classifier, and with `merge` the merged full model in merged/."""
    base = model.get_base_model()
    if getattr(base.config, "id2label", None) and model.peft_config["default"].task_type == "SEQ_CLS":
        labels = {str(i): name for i, name in base.config.id2label.items()}
        (directory / LABELS).write_text(json.dumps({"id2label": labels}, indent=2) + "\n")
    if merge:
        merged = model.merge_and_unload()
        merged.save_pretrained(directory / MERGED, safe_serialization=True)
        tokenizer.save_pretrained(directory / MERGED)


# ---------------------------------------------------------------- adapter directories as models


def is_adapter(name: str) -> bool:
    """A local directory holding a LoRA adapter (and not a full model)."""
    path = Path(name).expanduser()
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def read_adapter(directory: Path) -> dict:
    settings = check_json_file(directory / ADAPTER_CONFIG)
    if not isinstance(settings, dict) or settings.get("peft_type") != "LORA":
        raise LlmtoolError(f"'{directory / ADAPTER_CONFIG}' is not a LoRA adapter config (peft_type LORA); the "
                           "adapter directory is damaged: save it again")
    weights = directory / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise LlmtoolError(f"adapter directory '{directory}' has no {ADAPTER_WEIGHTS}; llmtool loads safetensors "
                           "adapters only: save it again with save_pretrained")
    names = check_safetensors(weights)
    if not any("lora_" in name for name in names):
        example = f" (it holds '{names[0]}', ...)" if names else ""
        raise damaged(weights, f"holds no LoRA weights{example}, so it is not an adapter's")
    return settings


def adapter_task(settings: dict) -> str | None:
    return {v: k for k, v in PEFT_TASK_TYPES.items()}.get(settings.get("task_type"))


def base_model_of(directory: Path, settings: dict, base_model: str | None) -> str:
    """The base model an adapter attaches to: the caller's override, else the one recorded at training."""
    if base_model:
        return base_model
    base = settings.get("base_model_name_or_path")
    if not base:
        raise SettingError(f"adapter '{literal(directory)}' does not name its base model; give it with {{base_model}}")
    if Path(base).is_absolute() and not Path(base).exists():
        raise SettingError(f"adapter '{literal(directory)}' was trained on the base model '{literal(base)}', which is "
                           "not there any more; give its new place with {base_model}")
    return base


def label_overrides(directory: Path) -> dict:
    """num_labels/id2label/label2id of a classifier adapter, for building its base model with the right head."""
    if not (directory / LABELS).is_file():
        return {}
    id2label = check_json_file(directory / LABELS)["id2label"]
    return label_settings([id2label[str(i)] for i in range(len(id2label))])


def resolve(name: str, base_model: str | None) -> tuple[Path, dict, str, dict]:
    """An adapter directory's (path, adapter config, base model, classifier head settings)."""
    directory = Path(name).expanduser()
    settings = read_adapter(directory)
    return directory, settings, base_model_of(directory, settings, base_model), label_overrides(directory)


# torch's message for each adapter weight whose shape the base model's layer does not take.
SIZE_MISMATCH = re.compile(r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) from "
                           r"checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)")


def _misfit(err: Exception) -> str:
    """Why an adapter's weights did not load into a base model, in a few words: the weights whose shapes differ
    (a base of another width), else the library's first line of detail, else nothing."""
    mismatches = SIZE_MISMATCH.findall(str(err))
    if mismatches:
        name, saved, wanted = mismatches[0]
        name = name.removeprefix("base_model.model.").removesuffix(".weight").removesuffix(".default")
        saved, wanted = ("x".join(d.strip() for d in dims.split(",")) for dims in (saved, wanted))
        example = f"{name}: {saved} in the adapter, {wanted} in this base"
        if len(mismatches) > 1:
            example = f"{len(mismatches)} of its weights have other shapes, e.g. {example}"
        return f" ({example})"
    detail = [line.strip() for line in str(err).splitlines() if line.strip() and not line.strip().endswith(":")]
    return f" ({detail[0][:200]})" if detail else ""


def attach(model, directory: Path, base: str, recorded_base: str | None) -> Any:
    """The base model `base` with the adapter merged in: plain transformers weights, as fast as the base at
    inference. `recorded_base` is the base the adapter says it was trained on, named when another one misfits."""
    from peft import PeftModel

    try:
        with _peft_quietly():
            adapted = PeftModel.from_pretrained(model, str(directory))
    except (RuntimeError, ValueError, KeyError) as err:
        trained_on = f" ('{recorded_base}')" if recorded_base and recorded_base != base else ""
        raise SettingError(f"adapter '{literal(directory)}' does not fit the base model "
                           f"'{literal(base)}'{_misfit(err)}; give the base "
                           f"it was trained on{literal(trained_on)} with {{base_model}}",
                           exit_code=LlmtoolError.exit_code) from err
    return adapted.merge_and_unload()
