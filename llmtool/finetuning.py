"""`finetune`: fine-tuning, and pretraining from scratch, for every task, with every weight or with LoRA adapters.

`finetune` opens a training run, builds the run's job (data, tokenizer, model, and the task's own loss) and hands
it to the engine (`training.Run.fit`), which owns the loop, checkpoints, logs and the final save.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from llmtool import config as config_lib
from llmtool import data as data_lib
from llmtool import chat, evaluation, lora, models, recipe_data, scratch, training
from llmtool.config import Recipe
from llmtool.errors import LlmtoolError, UsageError, naming
from llmtool.model_facts import auto_model_class, label_names, label_settings, position_limit
from llmtool.runlog import Progress
from llmtool.tasks import CHAT, CLASSIFICATION, SEQ2SEQ_LM, model_task
from llmtool.training import TrainResult

RECIPE_MODEL_NAMES = {"model": "model.name", "task": "task", "new_head": "model.new_head: true",
                      "base_model": "model.base_model", "chat_template": "model.chat_template"}
RECIPE_TOKENIZER_NAMES = {"model": "model.tokenizer"}


def finetune(recipe: Recipe, *, overwrite: bool = False, resume: bool = False,
             progress: Progress | None = None) -> TrainResult:
    """Run a finetune recipe to the end (see training.Run for the output directory's guarantees)."""
    with training.Run(recipe.train, recipe.output_dir, verb="finetune", recipe=recipe.to_dict(),
                      inputs=recipe_inputs(recipe), overwrite=overwrite, resume=resume or recipe.resume,
                      progress=progress) as run:
        return run.fit(build_job(recipe, run))


def recipe_inputs(recipe: Recipe) -> dict[str, str | None]:
    """The files a recipe reads, by recipe key."""
    return {"data.train": recipe.data.train, "data.validation": recipe.data.validation,
            "model.name": recipe.model.name, "model.base_model": recipe.model.base_model,
            "model.tokenizer": recipe.model.tokenizer,
            **{f"model.tokenizer_files[{i}]": name for i, name in enumerate(recipe.model.tokenizer_files)}}


def build_job(recipe: Recipe, run: training.Run) -> training.Job:
    """The finetune job: the recipe's data, its tokenizer and model (from a checkpoint when resuming), tokenized
    rows, and the task's cross-entropy as the loss."""
    task, data = recipe.task, recipe.data
    train_rows, validation_rows = recipe_data.load_data(recipe, run.accelerator, run.progress.message)
    recipe_data.check_conversations(recipe, train_rows, validation_rows)
    labels = recipe_data.labels(recipe, train_rows, validation_rows)
    tokenizer, model, labels = _tokenizer_and_model(recipe, run, train_rows, labels)
    notify = run.progress.message if run.accelerator.is_main_process else None
    masking = recipe_data.masking(recipe, tokenizer)
    tokenized = recipe_data.tokenize(recipe, tokenizer, train_rows, validation_rows, labels, run.accelerator, notify,
                                     masking)
    pad_to = data.max_length if data.pad_to_max_length and not data.packing else None
    collator = data_lib.Collator(task, tokenizer, model=model, pad_to=pad_to, masking=masking)
    lora_settings = recipe.model.lora

    def save_extra(trained, directory: Path) -> None:
        if lora_settings is not None:
            lora.save_extra(trained, directory, lora_settings.merge, tokenizer)

    return training.Job(
        task=task, model=model, tokenizer=tokenizer, train_set=tokenized.train,
        validation_set=tokenized.validation, collator=collator,
        loss=lambda model, batch: evaluation.loss_and_logits(task, model, batch)[0], save_extra=save_extra,
        group_by_length=data.group_by_length, fixed_length=data.packing or data.pad_to_max_length,
        max_new_tokens=data.max_target_length, targets=collator.targets if masking is not None else None)


def show_masks(recipe: Recipe, count: int) -> list[str]:
    """The first `count` training conversations of a chat recipe as its tokenizer renders them, each with the
    tokens the loss counts between [[ and ]], and what the run's mask check says of it."""
    if recipe.task != CHAT:
        raise UsageError("--show-masks shows the trained tokens of a chat recipe (task: chat)")
    rows, _ = recipe_data.load_data(recipe)
    recipe_data.check_conversations(recipe, rows, None)
    tokenizer = _recipe_tokenizer(recipe, rows)
    with naming(RECIPE_MODEL_NAMES):
        chat.use_template(tokenizer, recipe.model.chat_template)
    end = chat.end_of_turn_id(tokenizer)
    shown = []
    for n, row in enumerate(rows.select(range(min(count, len(rows)))), start=1):
        encoded = chat.encode(tokenizer, recipe_data.conversation(recipe, row), recipe.data.train_on,
                              recipe.data.max_length)
        if encoded is None:
            shown.append(f"row {n}: dropped: not even its first assistant turn fits data.max_length "
                         f"{recipe.data.max_length}")
            continue
        trained = sum(label != chat.IGNORE for label in encoded.labels)
        problem = chat.mask_problem(encoded, end, recipe.data.train_on)
        shown.append(f"row {n}: {len(encoded.input_ids)} tokens, {trained} trained"
                     + (", cut to data.max_length" if encoded.cut else "")
                     + (f"; REFUSED: {problem}" if problem else "") + "\n" + chat.marked(tokenizer, encoded).rstrip("\n"))
    return shown


def _recipe_tokenizer(recipe: Recipe, train_rows):
    """The tokenizer the recipe's run starts from: model.tokenizer, the model's own, or (from scratch) one trained
    on the data as the run would train it."""
    with naming(RECIPE_TOKENIZER_NAMES if recipe.model.tokenizer else RECIPE_MODEL_NAMES):
        if recipe.model.tokenizer or recipe.model.name:
            return models.load_tokenizer(recipe.model.tokenizer or recipe.model.name, recipe.model.trust_remote_code)
    settings = recipe.model.config
    return scratch.train_tokenizer(_tokenizer_texts(recipe, train_rows), scratch.TOKENIZER_KIND[settings["model_type"]],
                                   recipe.model.vocab_size, scratch.max_positions(settings))


# ---------------------------------------------------------------- model and tokenizer


def _tokenizer_and_model(recipe: Recipe, run: training.Run, train_rows, labels: list[str] | None):
    """From a checkpoint, a pretrained model, or from scratch (a tokenizer trained first); wrapped for LoRA when
    the recipe asks. Returns (tokenizer, model, labels): a trained classifier keeps its own label order."""
    lora_settings, checkpoint = recipe.model.lora, run.checkpoint
    # A LoRA checkpoint holds only what trains: its model is built as at the start, then given the saved adapter.
    whole_checkpoint = checkpoint if lora_settings is None else None
    new_head = recipe.model.new_head or recipe.task == CLASSIFICATION  # a classifier from a base model: usual
    if labels is not None and recipe.model.name and whole_checkpoint is None:
        labels, new_head = _head_labels(recipe, labels, run)
    overrides = label_settings(labels) if labels is not None else {}
    if whole_checkpoint is not None:
        tokenizer = models.load_tokenizer(str(checkpoint))
        model = auto_model_class(model_task(recipe.task)).from_pretrained(checkpoint, use_safetensors=True)
        if labels is not None:  # the run's own label order, as it was first set up
            labels = label_names(model.config)
    elif recipe.model.name:
        tokenizer, model = _pretrained(recipe, new_head, overrides)
    else:
        tokenizer, model = _from_scratch(recipe, run, train_rows, overrides)
    data_lib.pad_on_the_right(tokenizer, model)
    if recipe.task == CHAT:
        _chat_template(recipe, tokenizer, model)
        leak = chat.packing_leak(model) if recipe.data.packing else None
        if leak is not None:
            raise UsageError(f"data.packing: this model's attention ({type(model).__name__}, "
                             f"{model.config._attn_implementation}) lets packed conversations see each other (their "
                             f"logits move by {leak:.2g}); set data.packing: false")
    if lora_settings is not None:
        model = lora.apply(model, lora_settings, model_task(recipe.task))
        if checkpoint is not None:
            lora.load_weights(model, checkpoint)
    model.train()
    return tokenizer, model, labels


def _chat_template(recipe: Recipe, tokenizer, model) -> None:
    """The tokenizer renders with the recipe's template (saved with it); markers it adds grow the embeddings
    (new rows start at the mean of the others, transformers' default)."""
    with naming(RECIPE_MODEL_NAMES):
        added = chat.use_template(tokenizer, recipe.model.chat_template)
    if not added:
        return
    if recipe.model.lora is not None:
        raise UsageError(f"model.chat_template {recipe.model.chat_template} adds tokens this tokenizer lacks "
                         f"({', '.join(added)}), whose embeddings LoRA would leave untrained; use model.chat_template: "
                         "zephyr (it adds none), or drop model.lora to train every weight")
    if len(tokenizer) <= model.get_input_embeddings().weight.shape[0]:
        return  # the embedding has rows for the new ids already (an unused tail), and must not shrink
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its note on how the new rows start is said in the docstring above
    try:
        model.resize_token_embeddings(len(tokenizer))
    finally:
        hf_logging.set_verbosity(verbosity)


def _head_labels(recipe: Recipe, labels: list[str], run: training.Run) -> tuple[list[str], bool]:
    """A pretrained classifier's labels in its head's order, and whether it needs a new head: one whose saved head
    knows the data's labels keeps it (model.new_head replaces it)."""
    with naming(RECIPE_MODEL_NAMES):
        saved = models.model_config(recipe.model.name, recipe.model.trust_remote_code,
                                    base_model=recipe.model.base_model)
    if models.head_status(saved, recipe.task) != models.HEAD_SAVED:
        return labels, True
    labels, replaced = recipe_data.saved_label_order(saved, labels, recipe.model.name, recipe.model.new_head)
    if replaced and run.accelerator.is_main_process:
        run.progress.message(f"model.new_head: a new classification head for labels {labels} replaces the "
                             f"model's head for {label_names(saved)}")
    return labels, replaced


def _pretrained(recipe: Recipe, new_head: bool, overrides: dict):
    """A pretrained model (its data lengths checked against its positions) and its tokenizer, or model.tokenizer."""
    with naming(RECIPE_MODEL_NAMES):
        lm = models.load_model(recipe.model.name, task=model_task(recipe.task), device="cpu", dtype="fp32",
                               trust_remote_code=recipe.model.trust_remote_code, allow_new_head=new_head,
                               base_model=recipe.model.base_model, **overrides)
    tokenizer, model = lm.tokenizer, lm.model
    problems = config_lib.check_lengths_fit(recipe, position_limit(model.config), f"model '{recipe.model.name}'")
    if problems:
        raise UsageError(problems[0])
    if recipe.model.tokenizer:
        with naming(RECIPE_TOKENIZER_NAMES):
            tokenizer = models.load_tokenizer(recipe.model.tokenizer, recipe.model.trust_remote_code)
    return tokenizer, model


def _from_scratch(recipe: Recipe, run: training.Run, train_rows, overrides: dict):
    """A tokenizer (given, or trained on the data) and a model with fresh weights from model.config."""
    settings, accelerator, out = recipe.model.config, run.accelerator, run.out
    if recipe.model.tokenizer:
        with naming(RECIPE_TOKENIZER_NAMES):
            tokenizer = models.load_tokenizer(recipe.model.tokenizer, recipe.model.trust_remote_code)
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
    return tokenizer, auto_model_class(model_task(recipe.task)).from_config(config)  # seeded by the run before


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
    if recipe.task == CHAT:
        return [turn["content"] for row in train_rows for turn in recipe_data.conversation(recipe, row)]
    columns = ([recipe.data.source_column, recipe.data.target_column] if recipe.task == SEQ2SEQ_LM
               else [recipe.data.text_column])
    return [str(text) for column in columns for text in data_lib.column(train_rows, column)]
