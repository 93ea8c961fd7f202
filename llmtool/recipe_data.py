"""The data a recipe trains on, the same for every recipe verb (finetune, distill, and the jobs to come): its rows
through the shared data layer, its label names in the order a model's head keeps them, and its rows tokenized for
the task. Each reads only the recipe's `task`, `data` section and seed."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from llmtool import chat
from llmtool import config as config_lib
from llmtool import data as data_lib
from llmtool.errors import LlmtoolError, UsageError
from llmtool.masking import Masking, masking_for
from llmtool.model_facts import label_names
from llmtool.tasks import CHAT, CLASSIFICATION, MASKED_LM


def load_data(recipe, accelerator=None, notify=None):
    """The recipe's (training rows, validation rows or None). With an accelerator, the main process reads (and
    caches) first and the others then read its cache. `notify` is told of dropped rows, on the main process."""
    data = recipe.data
    main = accelerator is None or accelerator.is_main_process
    # Only a chat recipe's columns depend on the file (messages, or prompt and completion): read them only then.
    columns = config_lib.required_columns(recipe, _local_columns(data.train) if recipe.task == CHAT else None)
    # Columns kept as they are, not made text: a classifier's labels, a conversation's list of turns.
    keep = {CLASSIFICATION: data.label_column, CHAT: data.messages_column}.get(recipe.task)
    with _main_process_first(accelerator):
        return data_lib.load_splits(
            data.train, data.validation, columns=columns, labels=keep, hub_config=data.hub_config,
            validation_split=data.validation_split, seed=recipe.train.seed, max_train=data.max_train_samples,
            max_eval=data.max_eval_samples, drop_empty=data.drop_empty, drop_option="data.drop_empty=true",
            notify=notify if main else None)


def _local_columns(spec: str | None) -> list[str] | None:
    """The columns of a local data file (None for a Hub dataset, or where they cannot be read: loading says why)."""
    if spec is None or not data_lib.is_local_data(spec):
        return None
    try:
        return data_lib.file_columns(Path(spec).expanduser())
    except data_lib.DataFileError:
        return None


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


def tokenize(recipe, tokenizer, train_rows, validation_rows, labels, accelerator=None, notify=None,
             masking: Masking | None = None):
    """The rows tokenized for the recipe's task (see data.tokenize); with an accelerator, the main process first
    (the others read its cache). `notify` is told of conversations cut or dropped to fit; `masking` (a masked-LM
    recipe's: see `masking`) masks the validation rows."""
    data = recipe.data
    with _main_process_first(accelerator):
        return data_lib.tokenize(
            recipe.task, tokenizer, train_rows, validation_rows, labels, text=data.text_column,
            label=data.label_column, source=data.source_column, target=data.target_column, prefix=data.prefix,
            max_length=data.max_length, max_target_length=data.max_target_length, packing=data.packing,
            block_size=data.block_size, conversation=_conversation_columns(recipe), train_on=data.train_on,
            masking=masking, notify=notify)


def masking(recipe, tokenizer) -> Masking | None:
    """A masked-LM recipe's masks (data.mlm_probability, data.whole_word_mask, the run's seed) for its tokenizer,
    which needs a mask token, for whole words a fast tokenizer's word_ids, and for packed blocks a [CLS] and a
    [SEP] token; None for the other tasks."""
    if recipe.task != MASKED_LM:
        return None
    masking = masking_for(tokenizer, recipe.data.mlm_probability, recipe.data.whole_word_mask, recipe.train.seed)
    if recipe.data.whole_word_mask and not tokenizer.is_fast:
        raise UsageError("data.whole_word_mask: finds words through a fast tokenizer's word_ids, and this tokenizer "
                         "is a slow one; set data.whole_word_mask: false")
    if recipe.data.packing and (tokenizer.cls_token_id is None or tokenizer.sep_token_id is None):
        raise UsageError("data.packing: a masked-lm block starts with the tokenizer's [CLS] token and ends with its "
                         "[SEP] token, and this tokenizer lacks one; set data.packing: false")
    return masking


def _conversation_columns(recipe) -> tuple[str, str, str]:
    data = recipe.data
    return data.messages_column, data.prompt_column, data.completion_column


def conversation(recipe, row: dict) -> list:
    """A chat recipe's data row as its list of turns."""
    return chat.as_messages(row, *_conversation_columns(recipe))


def check_conversations(recipe, train_rows, validation_rows) -> None:
    """Every conversation of a chat recipe has the shape of one (chat.conversation_problem), checked before any
    model loads; the first bad row is named."""
    if recipe.task != CHAT:
        return
    for name, spec, rows in (("training", recipe.data.train, train_rows),
                             ("validation", recipe.data.validation or recipe.data.train, validation_rows)):
        for n, row in enumerate(rows or [], start=1):
            problem = chat.conversation_problem(conversation(recipe, row))
            if problem:
                raise UsageError(f"{name} data '{spec}' row {n}: {problem}")


def _main_process_first(accelerator):
    return accelerator.main_process_first() if accelerator is not None else nullcontext()
