"""`finetune`: fine-tuning, and pretraining from scratch, for three tasks, with every weight or with LoRA adapters.

This module prepares the run's job (data, tokenizer, model, and the task's own loss) and hands it to the training
engine (`training.run`), which owns the loop, checkpoints, logs and the final save.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from llmtool import config as config_lib
from llmtool import data as data_lib
from llmtool import evaluation, training
from llmtool.config import Recipe
from llmtool.errors import LlmtoolError, UsageError
from llmtool.models import Names
from llmtool.runlog import Progress
from llmtool.tasks import CLASSIFICATION, SEQ2SEQ_LM
from llmtool.training import TrainResult

# ---------------------------------------------------------------- model and data


RECIPE_MODEL_NAMES = Names(model="model.name", task="task", new_head="model.new_head: true",
                           base_model="model.base_model")
RECIPE_TOKENIZER_NAMES = Names(model="model.tokenizer")


def saved_label_order(config, labels: list[str], model_name: str, new_head: bool) -> tuple[list[str], bool]:
    """Labels in the order of a trained classifier's head when it already knows them (its head is kept), else
    (with new_head) as given, for a new head. Returns (labels, whether the head is replaced)."""
    from llmtool.models import label_names

    saved = label_names(config)
    if sorted(saved) == sorted(labels):
        return saved, False
    if saved == [f"LABEL_{i}" for i in range(len(saved))] and sorted(labels) == sorted(map(str, range(len(saved)))):
        return [str(i) for i in range(len(saved))], False  # a head trained on integer labels, named by default
    if new_head:
        return labels, True
    raise LlmtoolError(f"model '{model_name}' classifies into {saved}, but the training data's labels are {labels}; "
                       "relabel the data, or set model.new_head: true to train a new head for these labels")


def _build_tokenizer_and_model(recipe: Recipe, accelerator, out: Path, train_rows, labels, checkpoint: Path | None,
                               progress: Progress):
    """From a checkpoint, a pretrained model, or from scratch (a tokenizer trained first); wrapped for LoRA when
    the recipe asks. Returns (tokenizer, model, labels): a trained classifier keeps its own label order."""
    from llmtool import models

    task = recipe.task
    lora_settings = recipe.model.lora
    overrides = {}
    new_head = recipe.model.new_head or task == CLASSIFICATION  # a classifier from a base model: the usual case
    # A LoRA checkpoint holds only what trains: its model is built as at the start, then given the saved adapter.
    whole_checkpoint = checkpoint if lora_settings is None else None
    if labels is not None and recipe.model.name and whole_checkpoint is None:
        saved = models.model_config(recipe.model.name, recipe.model.trust_remote_code, RECIPE_MODEL_NAMES,
                                    base_model=recipe.model.base_model)
        if models.head_status(saved, task) == models.HEAD_SAVED:
            labels, replaced = saved_label_order(saved, labels, recipe.model.name, recipe.model.new_head)
            new_head = replaced
            if replaced and accelerator.is_main_process:
                progress.message(f"model.new_head: a new classification head for labels {labels} replaces the "
                                 f"model's head for {models.label_names(saved)}")
    if labels is not None:
        overrides = models.label_settings(labels)
    if whole_checkpoint is not None:
        tokenizer = models.load_tokenizer(str(checkpoint))
        model = models.auto_model_class(task).from_pretrained(checkpoint, use_safetensors=True)
        if labels is not None:  # the run's own label order, as it was first set up
            labels = models.label_names(model.config)
    elif recipe.model.name:
        lm = models.load_model(recipe.model.name, task=task, device="cpu", dtype="fp32",
                               trust_remote_code=recipe.model.trust_remote_code, allow_new_head=new_head,
                               names=RECIPE_MODEL_NAMES, base_model=recipe.model.base_model, **overrides)
        tokenizer, model = lm.tokenizer, lm.model
        problems = config_lib.check_lengths_fit(recipe, config_lib.position_limit(model.config.to_dict()),
                                                f"model '{recipe.model.name}'")
        if problems:
            raise UsageError(problems[0])
        if recipe.model.tokenizer:
            tokenizer = models.load_tokenizer(recipe.model.tokenizer, recipe.model.trust_remote_code,
                                              RECIPE_TOKENIZER_NAMES)
    else:
        tokenizer, model = _from_scratch(recipe, accelerator, out, train_rows, overrides)
    data_lib.pad_on_the_right(tokenizer, model)
    if lora_settings is not None:
        from llmtool import lora

        model = lora.apply(model, lora_settings, task)
        if checkpoint is not None:
            lora.load_weights(model, checkpoint)
    model.train()
    return tokenizer, model, labels


def _from_scratch(recipe: Recipe, accelerator, out: Path, train_rows, overrides: dict):
    """A tokenizer (given, or trained on the data) and a model with fresh weights from model.config."""
    from llmtool import models, scratch

    settings = recipe.model.config
    if recipe.model.tokenizer:
        tokenizer = models.load_tokenizer(recipe.model.tokenizer, recipe.model.trust_remote_code,
                                          RECIPE_TOKENIZER_NAMES)
    else:
        # Trained once, on the main process; the others load it from a directory beside the output.
        shared = out.parent / f".{out.name}.tokenizer-init"
        if accelerator.is_main_process:
            texts = _tokenizer_texts(recipe, train_rows)
            kind = scratch.TOKENIZER_KIND[settings["model_type"]]
            scratch.train_tokenizer(texts, kind, recipe.model.vocab_size,
                                    scratch.max_positions(settings)).save_pretrained(shared)
        accelerator.wait_for_everyone()
        tokenizer = models.load_tokenizer(str(shared))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(shared)
    config = scratch.model_config(settings, tokenizer)
    for key, value in overrides.items():
        setattr(config, key, value)
    return tokenizer, models.auto_model_class(recipe.task).from_config(config)  # seeded by the engine before


def load_data(recipe, notify):
    """The recipe's training and validation rows, through the shared data layer."""
    data = recipe.data
    return data_lib.load_splits(
        data.train, data.validation, columns=config_lib.required_columns(recipe),
        labels=data.label_column if recipe.task == CLASSIFICATION else None, hub_config=data.hub_config,
        validation_split=data.validation_split, seed=recipe.train.seed, max_train=data.max_train_samples,
        max_eval=data.max_eval_samples, drop_empty=data.drop_empty, drop_option="data.drop_empty=true",
        notify=notify)


def tokenize(recipe, tokenizer, train_rows, validation_rows, labels):
    """The rows tokenized for the recipe's task (see data.tokenize)."""
    data = recipe.data
    return data_lib.tokenize(
        recipe.task, tokenizer, train_rows, validation_rows, labels, text=data.text_column, label=data.label_column,
        source=data.source_column, target=data.target_column, prefix=data.prefix, max_length=data.max_length,
        max_target_length=data.max_target_length, packing=data.packing, block_size=data.block_size)


def _tokenizer_texts(recipe: Recipe, train_rows) -> list[str]:
    if recipe.model.tokenizer_files:
        lines = []
        for name in recipe.model.tokenizer_files:
            try:
                lines += Path(name).expanduser().read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError as err:
                raise LlmtoolError(f"model.tokenizer_files: '{name}' is not UTF-8 text (byte {err.start}); "
                                   "re-save it as UTF-8") from None
        return lines
    columns = ([recipe.data.source_column, recipe.data.target_column] if recipe.task == SEQ2SEQ_LM
               else [recipe.data.text_column])
    return [str(text) for column in columns for text in data_lib.column(train_rows, column)]


def recipe_inputs(recipe: Recipe) -> dict[str, str | None]:
    """The files a recipe reads, by recipe key."""
    return {"data.train": recipe.data.train, "data.validation": recipe.data.validation,
            "model.name": recipe.model.name, "model.base_model": recipe.model.base_model,
            "model.tokenizer": recipe.model.tokenizer,
            **{f"model.tokenizer_files[{i}]": name for i, name in enumerate(recipe.model.tokenizer_files)}}


def finetune(recipe: Recipe, *, overwrite: bool = False, resume: bool = False,
             progress: Progress | None = None) -> TrainResult:
    """Run a finetune recipe to the end (see training.run for the output directory's guarantees)."""
    progress = progress or Progress()
    return training.run(recipe, "finetune", lambda *args: prepare(recipe, *args), inputs=recipe_inputs(recipe),
                        overwrite=overwrite, resume=resume, progress=progress)


def prepare(recipe: Recipe, accelerator, run_dir, checkpoint: Path | None, progress: Progress) -> training.Job:
    """The finetune job: the recipe's data, its tokenizer and model (from a checkpoint when resuming), tokenized
    rows, and the task's cross-entropy as the loss."""
    task = recipe.task
    main = accelerator.is_main_process
    with accelerator.main_process_first():
        train_rows, validation_rows = load_data(recipe, progress.message if main else None)
    labels = (data_lib.label_names(train_rows, validation_rows, recipe.data.label_column, recipe.data.train)
              if task == CLASSIFICATION else None)
    tokenizer, model, labels = _build_tokenizer_and_model(recipe, accelerator, run_dir.out, train_rows, labels,
                                                          checkpoint, progress)
    with accelerator.main_process_first():
        tokenized = tokenize(recipe, tokenizer, train_rows, validation_rows, labels)
    pad_to = recipe.data.max_length if recipe.data.pad_to_max_length and not recipe.data.packing else None
    lora_settings = recipe.model.lora

    def save_extra(trained, directory: Path) -> None:
        if lora_settings is not None:
            from llmtool import lora

            lora.save_extra(trained, directory, lora_settings.merge, tokenizer)

    return training.Job(
        task=task, model=model, tokenizer=tokenizer, train_set=tokenized.train,
        validation_set=tokenized.validation, collator=data_lib.Collator(task, tokenizer, model=model, pad_to=pad_to),
        loss=lambda model, batch: evaluation.loss_and_logits(task, model, batch)[0], save_extra=save_extra)
