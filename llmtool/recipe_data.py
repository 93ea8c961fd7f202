"""The data a recipe trains on, the same for every recipe verb (finetune, distill, and the jobs to come): its rows
through the shared data layer, its label names in the order a model's head keeps them, and its rows tokenized for
the task. Each reads only the recipe's `task`, `data` section and seed."""

from __future__ import annotations

from contextlib import nullcontext

from llmtool import config as config_lib
from llmtool import data as data_lib
from llmtool.errors import LlmtoolError
from llmtool.model_facts import label_names
from llmtool.tasks import CLASSIFICATION


def load_data(recipe, accelerator=None, notify=None):
    """The recipe's (training rows, validation rows or None). With an accelerator, the main process reads (and
    caches) first and the others then read its cache. `notify` is told of dropped rows, on the main process."""
    data = recipe.data
    main = accelerator is None or accelerator.is_main_process
    with _main_process_first(accelerator):
        return data_lib.load_splits(
            data.train, data.validation, columns=config_lib.required_columns(recipe),
            labels=data.label_column if recipe.task == CLASSIFICATION else None, hub_config=data.hub_config,
            validation_split=data.validation_split, seed=recipe.train.seed, max_train=data.max_train_samples,
            max_eval=data.max_eval_samples, drop_empty=data.drop_empty, drop_option="data.drop_empty=true",
            notify=notify if main else None)


def labels(recipe, train_rows, validation_rows) -> list[str] | None:
    """A classification recipe's label names (sorted; see data.label_set); None for the other tasks."""
    if recipe.task != CLASSIFICATION:
        return None
    return data_lib.label_set(train_rows, validation_rows, recipe.data.label_column, recipe.data.train)


def saved_label_order(config, labels: list[str], model_name: str, new_head: bool) -> tuple[list[str], bool]:
    """Labels in the order of a trained classifier's head when it already knows them (its head is kept), else
    (with new_head) as given, for a new head. Returns (labels, whether the head is replaced)."""
    saved = label_names(config)
    if sorted(saved) == sorted(labels):
        return saved, False
    if saved == [f"LABEL_{i}" for i in range(len(saved))] and sorted(labels) == sorted(map(str, range(len(saved)))):
        return [str(i) for i in range(len(saved))], False  # a head trained on integer labels, named by default
    if new_head:
        return labels, True
    raise LlmtoolError(f"model '{model_name}' classifies into {saved}, but the training data's labels are {labels}; "
                       "relabel the data, or set model.new_head: true to train a new head for these labels")


def tokenize(recipe, tokenizer, train_rows, validation_rows, labels, accelerator=None):
    """The rows tokenized for the recipe's task (see data.tokenize); with an accelerator, the main process first
    (the others read its cache)."""
    data = recipe.data
    with _main_process_first(accelerator):
        return data_lib.tokenize(
            recipe.task, tokenizer, train_rows, validation_rows, labels, text=data.text_column,
            label=data.label_column, source=data.source_column, target=data.target_column, prefix=data.prefix,
            max_length=data.max_length, max_target_length=data.max_target_length, packing=data.packing,
            block_size=data.block_size)


def _main_process_first(accelerator):
    return accelerator.main_process_first() if accelerator is not None else nullcontext()
