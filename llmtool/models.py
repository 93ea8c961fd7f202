"""Resolve a model name or path to a tokenizer and the task-appropriate Auto class, on a chosen device and dtype."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmtool import lora
from llmtool.errors import LlmtoolError, SettingError, UsageError, literal
from llmtool.model_facts import auto_model_class, check_model_files, damaged, task_registry
from llmtool.tasks import CAUSAL_LM, CLASSIFICATION, MASKED_LM, SEQ2SEQ_LM, TASKS

if TYPE_CHECKING:
    import torch

DTYPES = ("auto", "fp32", "fp16", "bf16")
DEFAULT_GENERATION_MODEL = "gpt2"
MODEL_ENV = "LLMTOOL_MODEL"  # the model of generate, chat and eval when --model is not given

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


# What a checkpoint holds for a task: the trained head, none (transformers would add an untrained one), or no
# such head exists in transformers for that model family.
HEAD_SAVED, HEAD_NEW, HEAD_NONE = "saved", "new", "none"


def default_generation_model() -> str:
    return os.environ.get(MODEL_ENV) or DEFAULT_GENERATION_MODEL


def model_identity(name: str) -> str:
    """How a model is recorded with what it made: a local directory by its absolute path, a Hub id as it is."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def resolve_source(name: str) -> str:
    """A local model directory (checked) or a Hub id (left to transformers)."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            holder = path.parent
            where = (f"the directory that holds it, '{holder}'" if (holder / "config.json").is_file()
                     or lora.is_adapter(str(holder)) else "a folder written by save_pretrained, or at a Hub id")
            raise SettingError(f"'{literal(name)}' is a file, not a model directory; point {{model}} at "
                               f"{literal(where)}", exit_code=LlmtoolError.exit_code)
        if not (path / "config.json").is_file():
            raise SettingError(f"'{literal(name)}' is not a model directory (no config.json); point {{model}} at a "
                               "folder written by save_pretrained, or at a Hub id", exit_code=LlmtoolError.exit_code)
        return str(path)
    if _looks_like_path(name):
        raise SettingError(f"model directory '{literal(name)}' does not exist; check {{model}}",
                           exit_code=LlmtoolError.exit_code)
    return name


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _one_line(err: BaseException, limit: int = 240) -> str:
    """A multi-line library message folded into one line (validation errors put the detail on later lines)."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _load_error(name: str, err: Exception) -> LlmtoolError:
    """For Hub ids only: a local directory's problems are reported by `check_model_files` and `damaged`."""
    if _hub_offline():
        return SettingError(
            f"model '{literal(name)}' is not a local directory and not in the Hugging Face cache, and the Hub is "
            "offline (HF_HUB_OFFLINE=1); set {model} to a directory saved by save_pretrained, or go online to download "
            "it",
            exit_code=LlmtoolError.exit_code)
    return LlmtoolError(f"could not load model '{name}': {_first_line(err)}")


def load_config(source: str, trust_remote_code: bool = False, **overrides: Any):
    """The model's config; `overrides` (num_labels, id2label, ...) replace saved values."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, **overrides)
    except Exception as err:  # noqa: BLE001 - a local config's problem is named whatever transformers raised
        if Path(source).is_dir():
            raise damaged(Path(source) / "config.json", f"is not a valid model config ({_one_line(err)})") from err
        if isinstance(err, (OSError, ValueError)):
            raise _load_error(source, err) from err
        raise


def model_config(name: str, trust_remote_code: bool = False, base_model: str | None = None):
    """The config of the model that `name` loads: a local directory (checked for damage), a Hub id, or a LoRA
    adapter's base model, which for a classifier adapter has the adapter's labels and trained head."""
    if lora.is_adapter(name):
        directory, settings, base, heads = lora.resolve(name, base_model)
        config = model_config(base, trust_remote_code)
        if heads:
            config.update(heads)
            config.architectures = [task_registry(CLASSIFICATION)[type(config)].__name__]
        return config
    source = resolve_source(name)
    _refuse_base_model(name, base_model)
    if Path(source).is_dir():
        check_model_files(Path(source))
    return load_config(source, trust_remote_code)


def check_model(name: str, trust_remote_code: bool = False, base_model: str | None = None):
    """The config of the model that `name` loads (model_config), once all that load_model would find wrong short
    of reading weights is found: a local directory's files whole (check_model_files), its tokenizer loading and
    its weights file there; an adapter's own tokenizer too, where it has one. A command that loads several models
    one after another checks each with this first, so that a broken one is named before any is used."""
    config = model_config(name, trust_remote_code, base_model)
    adapter = lora.is_adapter(name)
    source = resolve_source(lora.resolve(name, base_model)[2] if adapter else name)
    load_tokenizer(source, trust_remote_code)
    if adapter and (Path(name).expanduser() / "tokenizer_config.json").is_file():
        load_tokenizer(str(Path(name).expanduser()), trust_remote_code)
    if Path(source).is_dir():
        _check_weights_there(name, Path(source))
    return config


def model_tokenizer(name: str, trust_remote_code: bool = False, base_model: str | None = None):
    """The tokenizer that load_model gives `name`, without its weights: an adapter's own where it saved one, else
    its base model's."""
    if lora.is_adapter(name):
        directory, _, base, _ = lora.resolve(name, base_model)
        own = (directory / "tokenizer_config.json").is_file()
        return load_tokenizer(str(directory) if own else resolve_source(base), trust_remote_code)
    return load_tokenizer(resolve_source(name), trust_remote_code)


# What transformers loads a model's weights from in a directory (safetensors only): one file, or an index of shards.
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")


def _check_weights_there(name: str, directory: Path) -> None:
    if any((directory / weights).is_file() for weights in WEIGHTS_FILES):
        return
    if any(directory.glob("*.bin")):
        raise _no_safetensors(name)
    raise damaged(directory, f"holds no weights ({' or '.join(WEIGHTS_FILES)})")


def _no_safetensors(name: str) -> LlmtoolError:
    return LlmtoolError(f"model '{name}' has no safetensors weights; llmtool does not unpickle .bin checkpoints. "
                        "Convert it with save_pretrained(..., safe_serialization=True)")


def _refuse_base_model(name: str, base_model: str | None) -> None:
    """A base model is for an adapter; given with a full model it would be ignored, so it is refused."""
    if base_model:
        raise SettingError(f"{{base_model}} applies only to a LoRA adapter; '{literal(name)}' is a full model: drop "
                           "{base_model}")


def _architecture_task(name: str, config) -> str | None:
    encoder_decoder = getattr(config, "is_encoder_decoder", False)
    if name.endswith("ForSequenceClassification"):
        return CLASSIFICATION
    if name.endswith("ForMaskedLM"):
        return MASKED_LM
    if encoder_decoder and name.endswith(("ForConditionalGeneration", "WithLMHeadModel")):
        return SEQ2SEQ_LM
    if not encoder_decoder and name.endswith(("LMHeadModel", "ForCausalLM")):
        return CAUSAL_LM
    return None


def infer_task(config) -> str:
    """The task a checkpoint is for, from its config: encoder-decoder, classifier, masked LM (an encoder saved
    with its masked-LM head), encoder, or decoder."""
    saved = [_architecture_task(a, config) for a in config.architectures or []]
    if getattr(config, "is_encoder_decoder", False):
        return SEQ2SEQ_LM
    if CLASSIFICATION in saved:
        return CLASSIFICATION
    if MASKED_LM in saved:
        return MASKED_LM
    if config.model_type in ENCODER_MODEL_TYPES:
        return CLASSIFICATION
    if CAUSAL_LM in saved:
        return CAUSAL_LM
    if type(config) in task_registry(CAUSAL_LM):
        return CAUSAL_LM
    raise SettingError(f"cannot tell what task a '{config.model_type}' model is for; set {{task}} ({', '.join(TASKS)})")


def head_status(config, task: str) -> str:
    """HEAD_SAVED when the checkpoint was saved with `task`'s head (or, saved without architectures, is naturally
    for it), HEAD_NEW when transformers would add an untrained one, HEAD_NONE when the family has no such head."""
    if type(config) not in task_registry(task):
        return HEAD_NONE
    if not config.architectures:
        return HEAD_SAVED if infer_task(config) == task else HEAD_NEW
    return HEAD_SAVED if any(_architecture_task(a, config) == task for a in config.architectures) else HEAD_NEW


def possible_tasks(config) -> list[str]:
    return [task for task in TASKS if type(config) in task_registry(task)]


def check_task(name: str, config, task: str, allow_new_head: bool) -> None:
    """Refuse a task the checkpoint cannot do; a newly initialised head only when the caller accepts one."""
    status = head_status(config, task)
    if status == HEAD_NONE:
        raise UsageError(f"model '{name}' is a {config.model_type} model, which has no {task} form in transformers; "
                         f"it can be loaded as: {', '.join(possible_tasks(config)) or 'none of ' + ', '.join(TASKS)}")
    if status == HEAD_NEW and not allow_new_head:
        saved = ", ".join(config.architectures or []) or config.model_type
        raise SettingError(f"model '{literal(name)}' was saved as {saved}, without a trained {task} head: as {task} it "
                           "would run with a randomly initialised head", {"new_head": "; {new_head} accepts that"})


def select_device(requested: str | None = None) -> "torch.device":
    import torch

    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise SettingError(f"unknown {{device}} '{literal(requested)}'; use cpu, cuda, cuda:N or mps") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SettingError(f"{{device}} {literal(requested)} asked for, but no CUDA GPU is available; use "
                               f"{{device}} cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise SettingError("{device} mps asked for, but MPS is not available; use {device} cpu")
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
        raise SettingError(f"unknown {{dtype}} '{literal(requested)}'; choose one of {', '.join(DTYPES)}")
    if requested == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if requested == "fp16" and device.type == "cpu":
        raise SettingError("{dtype} fp16 is not supported on the CPU; use bf16 or fp32")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[requested]


def load_tokenizer(source: str, trust_remote_code: bool = False):
    """The tokenizer of a local directory or Hub id. One whose vocabulary holds no piece of text is refused, naming
    its files: without them transformers builds a tokenizer from the special tokens alone (for T5, its extra ids
    and a word marker), which turns every text into unknown tokens and the model's answers into whitespace."""
    from transformers import AutoTokenizer

    if not Path(source).expanduser().exists() and _looks_like_path(source):
        raise SettingError(f"tokenizer directory '{literal(source)}' does not exist; check {{model}}",
                           exit_code=LlmtoolError.exit_code)
    local = Path(source).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001 - the tokenizers library raises bare Exceptions for bad files
        if local:
            raise LlmtoolError(f"the tokenizer files in '{source}' could not be loaded ({_first_line(err)}); copy "
                               "them again from where the model was saved") from err
        if isinstance(err, (OSError, ValueError)):
            raise _load_error(source, err) from err
        raise
    specials = set(tokenizer.all_special_tokens)
    if not any(any(c.isalnum() for c in token) for token in tokenizer.get_vocab() if token not in specials):
        files = list(dict.fromkeys(["tokenizer.json", *tokenizer.vocab_files_names.values()]))
        present = [name for name in files if (Path(source) / name).is_file()]
        if not local:
            why = ""
        elif present:
            why = f" ({' and '.join(present)} {'holds' if len(present) == 1 else 'hold'} none)"
        else:
            why = f" (none of its files is there: {', '.join(files)})"
        raise LlmtoolError(f"the tokenizer in '{source}' has an empty vocabulary: special tokens only, no text{why}; "
                           "copy the tokenizer files again from where the model was saved")
    return tokenizer


# Unexpected weights beyond this share of the checkpoint mean its config.json no longer describes it; a few are
# normal (older checkpoints carry buffers that newer code no longer keeps).
UNEXPECTED_WEIGHTS_LIMIT = 0.25


def _check_loading_info(source: str, model, info: dict, head: str, base: bool = False) -> None:
    """A local checkpoint saved with this head must fill every weight, and mostly with weights its config knows.
    A `base` model (load_base_model) may lack its pooler, which a checkpoint saved with a language-model head has
    not: nothing reads it."""
    if head != HEAD_SAVED or not Path(source).is_dir():
        return  # a new head is missing by design; Hub checkpoints are left to transformers' own report
    missing = sorted(key for key in info.get("missing_keys", [])
                     if not (base and key.split(".")[0] == "pooler"))
    unexpected = sorted(info.get("unexpected_keys", []))
    if missing:
        raise damaged(Path(source), f"lacks {len(missing)} weights that its config.json needs (e.g. "
                                     f"'{missing[0]}'), so the weights file is damaged or from another model")
    expected = len(model.state_dict())
    if len(unexpected) > UNEXPECTED_WEIGHTS_LIMIT * (expected + len(unexpected)):
        raise damaged(Path(source), f"holds {len(unexpected)} weights that its config.json does not describe (e.g. "
                                     f"'{unexpected[0]}'), so config.json and the weights disagree")


def load_model(
    name: str,
    *,
    task: str | None = None,
    allowed_tasks: tuple[str, ...] = TASKS,
    verb: str = "this command",
    device: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    allow_new_head: bool = False,
    base_model: str | None = None,
    **config_overrides: Any,
) -> LoadedModel:
    """Load tokenizer and model for `task` (inferred from the config when None), ready for inference.

    A local directory is checked for damage first; a task whose head the checkpoint lacks is refused unless
    `allow_new_head` (fine-tuning a classifier from a base model is the usual case). A LoRA adapter directory
    loads its base model (`base_model`, else the one it records) with the adapter merged in; a `base_model` for
    a full model is refused."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars are noise on a CLI's stderr
    if lora.is_adapter(name):
        return _load_adapter(name, task=task, allowed_tasks=allowed_tasks, verb=verb, device=device, dtype=dtype,
                             trust_remote_code=trust_remote_code, allow_new_head=allow_new_head,
                             base_model=base_model, **config_overrides)
    if task is not None and task not in TASKS:  # an option's value, checked before any file is
        raise SettingError(f"unknown task '{task}' ({{task}}); choose one of {', '.join(TASKS)}")
    source, config = _checked_source(name, base_model, trust_remote_code, **config_overrides)
    given = task
    task = task or infer_task(config)
    if task not in allowed_tasks:
        how = "asked for with {task}" if given else "read from its config"
        raise SettingError(f"model '{literal(name)}' is a {config.model_type} {task} model ({how}), but {verb} needs "
                           f"one of: {', '.join(allowed_tasks)}")
    check_task(name, config, task, allow_new_head)
    return _loaded(name, source, config, task, device, dtype, trust_remote_code, allow_new_head)


def _checked_source(name: str, base_model: str | None, trust_remote_code: bool,
                    **config_overrides: Any) -> tuple[str, Any]:
    """The source of a full model (a local directory checked for damage and weights, or a Hub id) and its config."""
    source = resolve_source(name)
    _refuse_base_model(name, base_model)
    if Path(source).is_dir():
        check_model_files(Path(source))
        _check_weights_there(name, Path(source))
    return source, load_config(source, trust_remote_code, **config_overrides)


def _loaded(name: str, source: str, config, task: str, device: str | None, dtype: str, trust_remote_code: bool,
            allow_new_head: bool) -> LoadedModel:
    """Tokenizer and weights of a checked model, on its device, in eval mode."""
    torch_device = select_device(device)
    torch_dtype = select_dtype(dtype, torch_device)
    tokenizer = load_tokenizer(source, trust_remote_code)
    model = _weights(name, source, config, task, torch_dtype, trust_remote_code, allow_new_head)
    model.to(torch_device).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, task=task, device=torch_device, source=source)


# LoadedModel.task of a model loaded without any head (load_base_model). Not a task a recipe or --task names.
BASE_MODEL = "base-model"


def load_base_model(name: str, *, device: str | None = None, dtype: str = "auto",
                    trust_remote_code: bool = False) -> LoadedModel:
    """The model's body without any head, through transformers' AutoModel: the hidden states that embeddings are
    pooled from. A checkpoint saved with a head (a classifier, a language model) gives its body; the checks on
    the directory, the tokenizer and the weights are load_model's. A LoRA adapter directory is refused: its
    merged model (finetune's `merged/`) is a full model."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if lora.is_adapter(name):
        raise SettingError(f"'{literal(name)}' is a LoRA adapter; {{model}} must name a full model here: the adapter's "
                           "merged model (lora merge: true writes it to merged/), or its base model")
    source, config = _checked_source(name, None, trust_remote_code)
    return _loaded(name, source, config, BASE_MODEL, device, dtype, trust_remote_code, allow_new_head=False)


def _load_adapter(name: str, *, task: str | None, base_model: str | None, allow_new_head: bool,
                  trust_remote_code: bool, **options: Any) -> LoadedModel:
    """A LoRA adapter directory: its base model (a classifier adapter brings its head: the base has none), the
    adapter merged in, and the adapter's own tokenizer where it saved one."""
    directory, settings, base, heads = lora.resolve(name, base_model)
    loaded = load_model(base, task=task or lora.adapter_task(settings), trust_remote_code=trust_remote_code,
                        allow_new_head=allow_new_head or bool(heads), **{**heads, **options})
    loaded.model = lora.attach(loaded.model, directory, base, settings.get("base_model_name_or_path")).eval()
    if (directory / "tokenizer_config.json").is_file():
        loaded.tokenizer = load_tokenizer(str(directory), trust_remote_code)
    loaded.source = str(directory)
    return loaded


def _weights(name: str, source: str, config, task: str, dtype, trust_remote_code: bool, allow_new_head: bool):
    """The model's weights through its task's Auto class, safetensors only; a damaged or foreign weights file
    is one clear error, and so is a checkpoint that leaves weights of its saved head unfilled."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report is checked below and said in one line, not as a table
    try:
        auto_class = _auto_base_class() if task == BASE_MODEL else auto_model_class(task)
        model, info = auto_class.from_pretrained(
            source, config=config, dtype=dtype, trust_remote_code=trust_remote_code,
            use_safetensors=True, output_loading_info=True, ignore_mismatched_sizes=allow_new_head,
        )
    except (OSError, ValueError, RuntimeError) as err:
        if "safetensors" in str(err).lower():
            raise _no_safetensors(name) from err
        if Path(source).is_dir():
            if "mismatched" in str(err).lower():
                raise damaged(Path(source), "holds weights whose shapes differ from what its config.json "
                                            "describes") from err
            raise damaged(Path(source), f"could not be loaded ({_first_line(err)})") from err
        raise _load_error(name, err) from err
    finally:
        hf_logging.set_verbosity(verbosity)
    base = task == BASE_MODEL
    _check_loading_info(source, model, info, HEAD_SAVED if base else head_status(config, task), base)
    return model


class _FalseMaskAlarm(logging.Filter):
    """transformers warns that an attention mask may be missing whenever a batch holds the pad token and no mask
    is passed. llmtool passes none on purpose in two places: generation drops the all-ones mask of a batch
    without padding (a row that ended with the end token, also the pad token, is cut there), and packed
    conversations are kept apart by their positions. A false alarm in both."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "strongly recommend passing in an `attention_mask`" not in record.getMessage()


def quiet_false_mask_alarm() -> None:
    logger = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _FalseMaskAlarm) for f in logger.filters):
        logger.addFilter(_FalseMaskAlarm())


def _auto_base_class():
    from transformers import AutoModel

    return AutoModel
