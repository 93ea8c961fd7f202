"""Recipes: a typed schema, YAML loading, dotted command-line overrides, and validation that reports every
problem at once, before any model loads."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from llmtool import data as data_lib
from llmtool import scratch
from llmtool.errors import UsageError
from llmtool.model_facts import family_has_head, new_token_limit, position_limit
from llmtool.tasks import CAUSAL_LM, CHAT, CLASSIFICATION, MASKED_LM, SEQ2SEQ_LM, TASKS

Task = Literal[TASKS]  # Literal over the tuple: the same names as everywhere else


def _range(low=None, high=None, low_open=False):
    return {"low": low, "high": high, "low_open": low_open}


@dataclass
class LoraSection:
    r: int = field(default=8, metadata=_range(1))  # rank of the low-rank update
    alpha: float = field(default=16.0, metadata=_range(0.0, low_open=True))  # the update is scaled by alpha / r
    dropout: float = field(default=0.05, metadata=_range(0.0, 0.99))
    target_modules: Optional[list[str]] = None  # layer names to adapt (default: the family's attention projections)
    merge: bool = False  # also write the merged full model to OUTPUT_DIR/merged


@dataclass
class ModelSection:
    name: Optional[str] = None  # pretrained: a local directory or a Hub id
    config: Optional[dict] = None  # from scratch: {model_type: gpt2|bert|distilbert|t5, sizes...}
    tokenizer: Optional[str] = None  # tokenizer directory or Hub id (default: the model's own, or trained)
    vocab_size: int = field(default=2000, metadata=_range(64))  # tokenizer trained for a from-scratch model
    tokenizer_files: list[str] = field(default_factory=list)  # texts to train it on (default: training data)
    trust_remote_code: bool = False
    new_head: bool = False  # accept a head the checkpoint lacks or whose labels differ (it starts untrained)
    base_model: Optional[str] = None  # when model.name is a LoRA adapter: its base (default: the one it records)
    chat_template: Optional[str] = None  # task chat: chatml, zephyr or a Jinja file (default: the tokenizer's own)
    lora: Optional[LoraSection] = None  # train low-rank adapters on the frozen model instead of every weight


@dataclass
class DataSection:
    train: Optional[str] = None  # csv/json/jsonl/parquet/txt file, or a Hub dataset name
    validation: Optional[str] = None
    validation_split: float = field(default=0.0, metadata=_range(0.0, 0.9))  # held out of train if no validation
    hub_config: Optional[str] = None  # for Hub datasets: the configuration name
    text_column: str = "text"
    label_column: str = "label"
    source_column: str = "source"
    target_column: str = "target"
    messages_column: str = "messages"  # chat: a list of {role, content} turns ...
    prompt_column: str = "prompt"  # ... or one user turn and ...
    completion_column: str = "completion"  # ... one assistant turn
    train_on: Literal["assistant", "all", "last_assistant"] = "assistant"  # chat: the turns the loss counts
    prefix: str = ""  # seq2seq task prefix, e.g. "summarize: "
    max_length: int = field(default=128, metadata=_range(1))  # truncation, in tokens (seq2seq: source; chat: at turns)
    max_target_length: int = field(default=64, metadata=_range(1))
    packing: bool = False  # causal/masked LM: texts joined into full blocks; chat: conversations kept apart in rows
    block_size: int = field(default=128, metadata=_range(2))
    mlm_probability: float = field(default=0.15, metadata=_range(0.0, 1.0, low_open=True))  # masked LM: tokens chosen
    whole_word_mask: bool = False  # masked LM: choose whole words (a word-start token and its ## continuations)
    group_by_length: bool = True  # batches of similar length: less padding
    pad_to_max_length: bool = False  # pad every batch to max_length (slower; for comparison)
    max_train_samples: Optional[int] = field(default=None, metadata=_range(1))
    max_eval_samples: Optional[int] = field(default=None, metadata=_range(1))
    drop_empty: bool = False  # drop rows with an empty text/label cell (and say how many) instead of refusing


@dataclass
class TrainSection:
    epochs: int = field(default=3, metadata=_range(1))
    max_steps: Optional[int] = field(default=None, metadata=_range(1))  # overrides epochs
    batch_size: int = field(default=16, metadata=_range(1))  # per device
    eval_batch_size: Optional[int] = field(default=None, metadata=_range(1))
    gradient_accumulation: int = field(default=1, metadata=_range(1))
    lr: float = field(default=5e-5, metadata=_range(0.0, 10.0, low_open=True))
    weight_decay: float = field(default=0.0, metadata=_range(0.0, 1.0))
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial"] = "linear"
    warmup_steps: int = field(default=0, metadata=_range(0))
    warmup_ratio: float = field(default=0.0, metadata=_range(0.0, 1.0))
    max_grad_norm: float = field(default=1.0, metadata=_range(0.0))
    precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    seed: int = field(default=42, metadata=_range(0, 2**32 - 1))  # numpy's seed range
    eval_every: Optional[int] = field(default=None, metadata=_range(1))  # steps; default: each epoch's end
    save_every: Optional[int] = field(default=None, metadata=_range(1))  # steps; default: only the final model
    keep_checkpoints: int = field(default=2, metadata=_range(1))
    log_every: int = field(default=10, metadata=_range(1))
    early_stopping_patience: Optional[int] = field(default=None, metadata=_range(1))  # evaluations
    compile: bool = False  # torch.compile the model: faster steps on a GPU after a compile of a minute or so


@dataclass
class RunSettings:
    """What every recipe verb's recipe starts with."""

    task: Optional[Task] = None
    output_dir: Optional[str] = None
    resume: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Recipe(RunSettings):
    """finetune's recipe."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)


@dataclass
class TeacherSection:
    name: Optional[str] = None  # the trained model to learn from: a directory (or LoRA adapter) or a Hub id
    base_model: Optional[str] = None  # when name is a LoRA adapter: its base (default: the one it records)
    trust_remote_code: bool = False


@dataclass
class StudentSection:
    name: Optional[str] = None  # an existing model to train (the teacher's vocabulary and labels) ...
    layers: Optional[list[int]] = None  # ... or made from the teacher, keeping these of its layers (default: every other)


@dataclass
class DistillSection:
    temperature: float = field(default=2.0, metadata=_range(0.0, 100.0, low_open=True))  # softens both distributions
    alpha: float = field(default=0.5, metadata=_range(0.0, 1.0))  # weight of the teacher's term; 1 - alpha: the labels
    hidden_loss: Optional[Literal["cosine", "mse"]] = None  # also match hidden states, layer to mapped layer
    hidden_weight: float = field(default=1.0, metadata=_range(0.0))


@dataclass
class PruneSection:
    layers: int = field(default=0, metadata=_range(0))  # drop this many layers, the least important
    mlp_keep: float = field(default=0.5, metadata=_range(0.0, 1.0, low_open=True))  # share of MLP units kept
    calibration_batches: int = field(default=8, metadata=_range(1))  # training batches that rank layers and units
    recover: bool = True  # then distil from the unpruned model (false: save the pruned model as it is)


@dataclass
class DistillRecipe(RunSettings):
    """distill's recipe."""

    teacher: TeacherSection = field(default_factory=TeacherSection)
    student: StudentSection = field(default_factory=StudentSection)
    distill: DistillSection = field(default_factory=DistillSection)
    prune: Optional[PruneSection] = None  # the student is the teacher, pruned (then distilled from it to recover)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)


# ---------------------------------------------------------------- loading and overrides


def read_yaml(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"recipe '{path}' does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"recipe '{path}' is a directory; pass a .yaml file") from None
    except UnicodeDecodeError:
        raise UsageError(f"recipe '{path}' is not UTF-8 text; re-save it as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise UsageError(f"recipe '{path}' is not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if data is None:
        raise UsageError(f"recipe '{path}' is empty; see recipes/ for examples")
    if not isinstance(data, dict):
        raise UsageError(f"recipe '{path}' must be a mapping of sections (task, model, data, train), not a list or value")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set dotted keys (`train.lr=3e-5`), values parsed as YAML scalars; unknown keys are left for validation."""
    import yaml

    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise UsageError(f"override '{item}' must look like section.key=value (e.g. train.lr=3e-5)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)) and not raw.lstrip().startswith(("{", "[")):
            value = raw  # "summarize: " is a string here, not a one-key mapping
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return data


# ---------------------------------------------------------------- schema checking


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is list:
        return "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}.get(
        annotation, str(annotation)
    )


def _check_value(value, annotation, where: str, errors: list[str]):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _check_value(value, options[0], where, errors)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            errors.append(f"{where}: expected {_type_name(annotation)}, got {value!r}"
                          + (f" (did you mean '{hint[0]}'?)" if hint else ""))
        return value
    if origin is list:
        (item,) = typing.get_args(annotation)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        good = (lambda v: isinstance(v, int) and not isinstance(v, bool)) if item is int else \
            (lambda v: isinstance(v, str))
        if not isinstance(value, list) or not all(good(v) for v in value):
            errors.append(f"{where}: expected a list of {'integers' if item is int else 'strings'}, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            errors.append(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML reads 3e-5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{where}: expected a number, got {value!r}")
            return value
        if not math.isfinite(value):
            errors.append(f"{where}: must be a finite number, got {value}")
        return float(value)
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errors.append(f"{where}: expected a string, got {value!r}")
        return str(value) if isinstance(value, (int, float)) else value
    if annotation is dict:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {value!r}")
        return value
    raise TypeError(f"unsupported schema type {annotation!r}")


def _check_range(value, spec: dict, where: str, errors: list[str]) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not spec:
        return
    low, high = spec.get("low"), spec.get("high")
    if low is not None and (value <= low if spec.get("low_open") else value < low):
        errors.append(f"{where}: must be {'above' if spec.get('low_open') else 'at least'} {low}, got {value}")
    if high is not None and value > high:
        errors.append(f"{where}: must be at most {high}, got {value}")


def _section_type(annotation):
    """The section class of `Section` or `Optional[Section]` (an optional section is off until given)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            return inner[0]
    return annotation


def _build(cls, data: dict, prefix: str, errors: list[str]):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            errors.append(f"{where}: unknown key" + (f" (did you mean '{prefix}{hint[0]}'?)" if hint else
                                                     f"; expected one of {', '.join(fields)}"))
            continue
        annotation = _section_type(hints[key])
        if dataclasses.is_dataclass(annotation):
            optional = annotation is not hints[key]
            if optional and (value is None or value is False):  # an optional section, left off
                values[key] = None
                continue
            if value is None or optional and value is True:  # `lora: true`: on, with its defaults
                value = {}
            if not isinstance(value, dict):
                errors.append(f"{where}: expected a section (mapping), got {value!r}")
                continue
            values[key] = _build(annotation, value, f"{where}.", errors)
            continue
        known = len(errors)
        checked = _check_value(value, annotation, where, errors)
        if len(errors) == known:  # a value of the wrong kind (or not finite) is one problem, not two
            _check_range(checked, fields[key].metadata, where, errors)
        if len(errors) == known:  # a bad value keeps the default, so the later checks still run on sane values
            values[key] = checked
    for name, f in fields.items():
        if name not in values and dataclasses.is_dataclass(hints[name]):
            values[name] = hints[name]()
    return cls(**values)


# ---------------------------------------------------------------- what a resume may change

# The recipe keys a resume may change, because none of them changes the weights a step makes: how often the run logs,
# evaluates and checkpoints and how many checkpoints it keeps; how it evaluates (validation batch size and rows) and
# how patient its early stop is (like the run's length, that says only when it ends); whether a LoRA run also writes
# its merged model; where the run lives (output_dir, however it is spelt) and how it was started (resume). Every other
# key, present or to come, refuses: the model would no longer be the one its saved recipe describes.
RESUME_MAY_CHANGE = frozenset({
    "output_dir", "resume", "train.log_every", "train.save_every", "train.keep_checkpoints", "train.eval_every",
    "train.eval_batch_size", "train.early_stopping_patience", "data.max_eval_samples", "model.lora.merge",
})
# The run's length may grow, not shrink: the resume trains on to the new end (a shorter run would need the steps
# already taken undone).
RESUME_MAY_RAISE = frozenset({"train.max_steps", "train.epochs"})
_ABSENT = object()


def resume_conflicts(trained: dict, now: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(recipe key, value the run was trained with, value now) of each setting of the resolved recipe `now` that a
    resume of the run `trained` (its resolved recipe) may not change; see RESUME_MAY_CHANGE and RESUME_MAY_RAISE."""
    if isinstance(trained, dict) and isinstance(now, dict):
        return [conflict for key in dict.fromkeys([*now, *trained]) for conflict in resume_conflicts(
            trained.get(key, _ABSENT), now.get(key, _ABSENT), f"{prefix}{key}.")]
    key = prefix[:-1]
    if trained == now or key in RESUME_MAY_CHANGE:
        return []
    raised = (key in RESUME_MAY_RAISE and isinstance(trained, int) and isinstance(now, int) and now > trained)
    return [] if raised else [(key, None if trained is _ABSENT else trained, None if now is _ABSENT else now)]


# ---------------------------------------------------------------- semantic checks


def required_columns(recipe: Recipe, available: list[str] | None = None) -> list[tuple[str, str]]:
    """(recipe key, column name) of every column the recipe's task reads; a chat recipe reads its messages column,
    or (when the data's `available` columns lack it but hold both) its prompt and completion columns."""
    data = recipe.data
    if recipe.task == CHAT:
        pair = [("data.prompt_column", data.prompt_column), ("data.completion_column", data.completion_column)]
        if available is not None and data.messages_column not in available and all(c in available for _, c in pair):
            return pair
        return [("data.messages_column", data.messages_column)]
    if recipe.task == CLASSIFICATION:
        return [("data.text_column", data.text_column), ("data.label_column", data.label_column)]
    if recipe.task == SEQ2SEQ_LM:
        return [("data.source_column", data.source_column), ("data.target_column", data.target_column)]
    return [("data.text_column", data.text_column)]


def _check_data_file(key: str, spec: str, recipe: Recipe, errors: list[str]) -> None:
    path = Path(spec).expanduser()
    if not path.exists():
        errors.append(f"{key}: file '{spec}' does not exist")
        return
    if path.is_dir():
        errors.append(f"{key}: '{spec}' is a directory; give a csv, json, jsonl, parquet or txt file")
        return
    if path.suffix.lower() not in data_lib.DATA_BUILDERS:
        errors.append(f"{key}: '{spec}' has an unknown extension; use .csv, .tsv, .json, .jsonl, .parquet or .txt")
        return
    try:
        columns = data_lib.file_columns(path)
    except data_lib.DataFileError as err:
        errors.append(f"{key}: '{spec}' {err}")
        return
    for column_key, column in required_columns(recipe, columns):
        if column not in columns:
            hint = difflib.get_close_matches(column, columns, n=1)
            errors.append(f"{column_key}: column '{column}' is not in '{spec}' (columns: {', '.join(columns)})"
                          + (f"; did you mean '{hint[0]}'?" if hint else ""))


def _semantic_checks(recipe: Recipe, raw: dict, errors: list[str]) -> None:
    """finetune: the model section, then what every recipe verb checks."""
    if "task" not in raw:
        errors.append(f"task: missing; set task: {', '.join(TASKS[:-1])} or {TASKS[-1]}")
    model = recipe.model
    if model.name and model.config:
        errors.append("model: give model.name (pretrained) or model.config (from scratch), not both; "
                      "add model.config=null to switch this recipe to a pretrained model")
    if not model.name and not model.config:
        errors.append("model: missing; set model.name (a directory or Hub id) or model.config (to train from scratch)")
    if model.lora is not None and model.config is not None and not model.name:
        errors.append("model.lora: adapts a pretrained model's frozen weights; set model.name (a model from scratch "
                      "has nothing worth freezing), or drop model.lora")
    if model.lora is not None and recipe.task == MASKED_LM:
        errors.append("model.lora: not for task masked-lm (peft has no masked-LM task type); drop model.lora to "
                      "train every weight")
    if model.config is not None:
        if model.config.get("model_type") not in scratch.TOKENIZER_KIND:
            errors.append(f"model.config.model_type: expected one of {', '.join(scratch.TOKENIZER_KIND)}, "
                          f"got {model.config.get('model_type')!r}")
        non_finite = [key for key, value in model.config.items() if isinstance(value, float) and not math.isfinite(value)]
        for key in non_finite:
            errors.append(f"model.config.{key}: must be a finite number, got {model.config[key]}")
        if not non_finite and model.config.get("model_type") in scratch.TOKENIZER_KIND:
            wrong = scratch.config_problem(model.config, model.vocab_size)
            if wrong:
                errors.append(f"model.config.{wrong}" if wrong.split(":")[0] in model.config else
                              f"model.config: {wrong}")
    _check_positions(recipe, errors, model.config, model.name)
    _check_family(recipe, errors, model.config, model.name)
    _check_new_tokens(recipe, errors, model.config, model.tokenizer or model.name)
    for i, spec in enumerate(model.tokenizer_files):
        if not Path(spec).expanduser().is_file():
            errors.append(f"model.tokenizer_files[{i}]: file '{spec}' does not exist")
    _data_and_train_checks(recipe, errors)


def _data_and_train_checks(recipe, errors: list[str]) -> None:
    """The data and train sections, the same for every recipe verb."""
    data, train = recipe.data, recipe.train
    if data.packing and recipe.task not in (None, CAUSAL_LM, CHAT, MASKED_LM):
        errors.append("data.packing: only for tasks causal-lm, chat and masked-lm")
    for key in ("mlm_probability", "whole_word_mask"):
        if getattr(data, key) != getattr(DataSection, key) and recipe.task not in (None, MASKED_LM):
            errors.append(f"data.{key}: only for task masked-lm")
    if recipe.task != CHAT and getattr(getattr(recipe, "model", None), "chat_template", None) is not None:
        errors.append("model.chat_template: only for task chat")
    if data.train is None:
        errors.append("data.train: missing; give a data file (csv/json/jsonl/parquet/txt) or a Hub dataset name")
    elif recipe.task is not None and data_lib.is_local_data(data.train):
        _check_data_file("data.train", data.train, recipe, errors)
    if data.validation is not None and recipe.task is not None and data_lib.is_local_data(data.validation):
        _check_data_file("data.validation", data.validation, recipe, errors)
    has_validation = data.validation is not None or data.validation_split > 0
    if train.early_stopping_patience is not None and not has_validation:
        errors.append("train.early_stopping_patience: needs validation data (data.validation or data.validation_split)")
    if train.warmup_steps and train.warmup_ratio:
        errors.append("train: set warmup_steps or warmup_ratio, not both")


def check_lengths_fit(recipe: Recipe, limit: int | None, where: str) -> list[str]:
    """data.max_length (or data.block_size when packing) past the model's positions would fail mid-run."""
    if limit is None:
        return []
    data = recipe.data
    blocks = data.packing and recipe.task != CHAT  # a chat recipe packs into rows of data.max_length
    key, value = ("data.block_size", data.block_size) if blocks else ("data.max_length", data.max_length)
    if value > limit:
        return [f"{key}: {value} is past the {limit} positions of {where}; set it to {limit} or less"]
    return []


def _check_positions(recipe, errors: list[str], model_config: dict | None = None, name: str | None = None) -> None:
    """The lengths the data section asks for fit the positions of the model's config (given, or saved in the
    local directory `name`)."""
    if model_config is not None:
        errors += check_lengths_fit(recipe, position_limit(model_config), "model.config")
    elif (saved := _saved_config(name)) is not None:
        errors += check_lengths_fit(recipe, position_limit(saved), f"model '{name}'")


def _saved_config(name: str | None) -> dict | None:
    """The config.json of a local model directory, where it has one that parses (a damaged one is reported,
    naming the file, when the model loads)."""
    path = Path(name).expanduser() / "config.json" if name else None
    if path is None or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None
    return saved if isinstance(saved, dict) else None


def _check_family(recipe, errors: list[str], model_config: dict | None, name: str | None) -> None:
    """The model's family (model.config's model_type, or a local model.name's) has the task's head in
    transformers: a decoder-only GPT-2 has no masked-LM form. Hub ids are checked when they load."""
    model_type = (model_config if model_config is not None else _saved_config(name) or {}).get("model_type")
    if recipe.task is None or not isinstance(model_type, str):
        return
    if model_config is not None and model_type not in scratch.TOKENIZER_KIND:
        return  # reported on its own
    if not family_has_head(model_type, recipe.task):
        fitting = [kind for kind in scratch.TOKENIZER_KIND if family_has_head(kind, recipe.task)]
        where = "model.config.model_type" if model_config is not None else f"model '{name}'"
        errors.append(f"task: a {model_type} model ({where}) has no {recipe.task} form in transformers; for "
                      f"{recipe.task}, use a {' or '.join(fitting)} model")


def _check_new_tokens(recipe, errors: list[str], model_config: dict | None, tokenizer: str | None) -> None:
    """An encoder-decoder's validation answers are generated up to data.max_target_length tokens, which must not
    pass what its outputs are made for (model_facts.new_token_limit): the length its tokenizer states, read from a
    local tokenizer (given, or the model's own) or, from scratch, the one it will state."""
    data = recipe.data
    if recipe.task != SEQ2SEQ_LM or (data.validation is None and not data.validation_split):
        return
    if tokenizer:
        path = Path(tokenizer).expanduser() / "tokenizer_config.json"
        try:
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (ValueError, OSError):
            return  # a damaged file is reported, naming it, when the tokenizer loads
        if not isinstance(saved, dict):
            return  # a Hub id: checked when the answers are generated
        stated, where = saved.get("model_max_length"), f"'{tokenizer}'"
    elif model_config is not None:
        stated, where = scratch.max_positions(model_config), "model.config"
    else:
        return
    limit = new_token_limit(stated)
    if data.max_target_length > limit:
        errors.append(f"data.max_target_length: {data.max_target_length} is past the {limit} tokens that the "
                      f"outputs of {where} are made for; set it to {limit} or less")


def recipe_verb(path: Path) -> str | None:
    """The verb a recipe's first line names (`# llmtool VERB recipes/NAME.yaml`), if it names one."""
    import re

    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError):
        return None  # read_yaml names the problem
    match = re.match(r"#\s*llmtool\s+([a-z]+)\b", first)
    return match.group(1) if match else None


def _distill_checks(recipe: DistillRecipe, raw: dict, errors: list[str]) -> None:
    """distill: teacher and student, then what every recipe verb checks."""
    if "task" not in raw:
        errors.append("task: missing; set task: causal-lm, classification or seq2seq-lm")
    if recipe.task == CHAT:
        errors.append("task: distill does not train chat models yet; distil with task causal-lm")
    if recipe.task == MASKED_LM:
        errors.append("task: distill does not train masked-lm models yet")
    if not recipe.teacher.name:
        errors.append("teacher.name: missing; give the trained model to distil (a directory or Hub id)")
    student = recipe.student
    if student.name and student.layers is not None:
        errors.append("student: give student.name (an existing model) or student.layers (made from the teacher), "
                      "not both")
    if student.layers is not None:
        if not student.layers:
            errors.append("student.layers: give at least one teacher layer to keep")
        elif any(i < 0 for i in student.layers) or len(set(student.layers)) != len(student.layers):
            errors.append(f"student.layers: expected distinct layer numbers from 0, got {student.layers}")
    if recipe.prune is not None:
        if student.name or student.layers is not None:
            errors.append("prune: makes the student from the teacher; drop student.name and student.layers")
        if recipe.prune.layers == 0 and recipe.prune.mlp_keep == 1.0:
            errors.append("prune: nothing to prune; set prune.layers (layers to drop) or prune.mlp_keep below 1")
    _check_positions(recipe, errors, None, student.name or recipe.teacher.name)
    _check_new_tokens(recipe, errors, None, recipe.teacher.name)
    _data_and_train_checks(recipe, errors)


# Each recipe verb's schema and its checks beyond types and ranges; every verb loads recipes the same way.
SCHEMAS: dict[str, tuple[type, typing.Callable]] = {"finetune": (Recipe, _semantic_checks),
                                                    "distill": (DistillRecipe, _distill_checks)}


def load_recipe(path: Path, overrides: list[str] | None = None, output_dir: str | None = None,
                verb: str = "finetune"):
    """Read, override and validate a recipe for `verb`. Raises one UsageError listing every problem found."""
    schema, checks = SCHEMAS[verb]
    data = apply_overrides(read_yaml(path), overrides or [])
    named = recipe_verb(path)
    if named in SCHEMAS and named != verb:
        raise UsageError(f"recipe '{path}' is for llmtool {named} (its first line says so); run: llmtool {named} {path}")
    errors: list[str] = []
    recipe = _build(schema, data, "", errors)
    if output_dir:
        recipe.output_dir = output_dir
    checks(recipe, data, errors)
    if recipe.output_dir is None:
        recipe.output_dir = str(Path("runs") / path.stem)
    if errors:
        listing = "; ".join(errors)
        raise UsageError(f"recipe '{path}' has {len(errors)} problem{'s' * (len(errors) > 1)}: {listing}")
    return recipe
