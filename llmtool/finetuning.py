"""Fine-tuning, and pretraining from scratch, for three tasks in one loop on Accelerate.

The loop reads top to bottom: build tokenizer and model, tokenize, then for each optimizer step take the step's
examples (the same for any number of processes), run this process's micro-batches, check the loss is finite,
step, log, evaluate, checkpoint. The loss of a step is its sum over every target in the global batch divided by
their count, so 1 process and N processes (and any gradient accumulation) optimise the same objective.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from llmtool import checkpoints
from llmtool import config as config_lib
from llmtool import data as data_lib
from llmtool import evaluation
from llmtool.config import Recipe
from llmtool.errors import Interrupted, LlmtoolError, UsageError
from llmtool.models import Names
from llmtool.tasks import CLASSIFICATION, SEQ2SEQ_LM
from llmtool.rundir import RunDirectory

METRICS_CSV = "metrics.csv"
LOSS_PNG = "loss.png"


class Progress:
    """What the loop reports while it runs; the CLI passes a rich implementation, tests use this silent one."""

    def start(self, total_steps: int, done_steps: int) -> None: ...

    def step(self, step: int, loss: float, lr: float, tokens_per_second: float) -> None: ...

    def message(self, text: str) -> None: ...

    def stop(self) -> None: ...


@dataclass
class FinetuneResult:
    output_dir: str
    steps: int
    train_loss: float | None  # mean over the last logging window
    eval: dict = field(default_factory=dict)
    resumed_from: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    tokens_per_second: float = 0.0


# ---------------------------------------------------------------- model and data


RECIPE_MODEL_NAMES = Names(model="model.name", task="task", new_head="model.new_head: true")
RECIPE_TOKENIZER_NAMES = Names(model="model.tokenizer")


def saved_label_order(config, labels: list[str], model_name: str, new_head: bool) -> tuple[list[str], bool]:
    """Labels in the order of a trained classifier's head when it already knows them (its head is kept), else
    (with new_head) as given, for a new head. Returns (labels, whether the head is replaced)."""
    saved = [str(config.id2label[i]) for i in range(len(config.id2label))]
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
    """From a checkpoint, a pretrained model, or from scratch (a tokenizer trained first). Returns (tokenizer,
    model, labels): a trained classifier keeps its own label order."""
    from llmtool import models, scratch

    task = recipe.task
    overrides = {}
    new_head = recipe.model.new_head or task == CLASSIFICATION  # a classifier from a base model: the usual case
    if labels is not None and recipe.model.name and checkpoint is None:
        source = models.resolve_source(recipe.model.name, RECIPE_MODEL_NAMES)
        if Path(source).is_dir():
            models.check_model_files(Path(source))
        saved = models.load_config(source, recipe.model.trust_remote_code, RECIPE_MODEL_NAMES)
        if models.head_status(saved, task) == models.HEAD_SAVED:
            labels, replaced = saved_label_order(saved, labels, recipe.model.name, recipe.model.new_head)
            new_head = replaced
            if replaced and accelerator.is_main_process:
                progress.message(f"model.new_head: a new classification head for labels {labels} replaces the "
                                 f"model's head for {[saved.id2label[i] for i in range(len(saved.id2label))]}")
    if labels is not None:
        overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                     "label2id": {name: i for i, name in enumerate(labels)}}
    if checkpoint is not None:
        tokenizer = models.load_tokenizer(str(checkpoint))
        model = models.auto_model_class(task).from_pretrained(checkpoint, use_safetensors=True)
        if labels is not None:  # the run's own label order, as it was first set up
            labels = [str(model.config.id2label[i]) for i in range(len(model.config.id2label))]
    elif recipe.model.name:
        lm = models.load_model(recipe.model.name, task=task, device="cpu", dtype="fp32",
                               trust_remote_code=recipe.model.trust_remote_code, allow_new_head=new_head,
                               names=RECIPE_MODEL_NAMES, **overrides)
        tokenizer, model = lm.tokenizer, lm.model
        problems = config_lib.check_lengths_fit(recipe, config_lib.position_limit(model.config.to_dict()),
                                                f"model '{recipe.model.name}'")
        if problems:
            raise UsageError(problems[0])
        if recipe.model.tokenizer:
            tokenizer = models.load_tokenizer(recipe.model.tokenizer, recipe.model.trust_remote_code,
                                              RECIPE_TOKENIZER_NAMES)
    else:
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
        model = models.auto_model_class(task).from_config(config)  # seeded by finetune() just before
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "right"
    model.train()
    return tokenizer, model, labels


def _load_data(recipe: Recipe, notify):
    """The recipe's training and validation rows, through the shared data layer."""
    data = recipe.data
    return data_lib.load_splits(
        data.train, data.validation, columns=config_lib.required_columns(recipe),
        labels=data.label_column if recipe.task == CLASSIFICATION else None, hub_config=data.hub_config,
        validation_split=data.validation_split, seed=recipe.train.seed, max_train=data.max_train_samples,
        max_eval=data.max_eval_samples, drop_empty=data.drop_empty, drop_option="data.drop_empty=true",
        notify=notify)


def tokenize(recipe: Recipe, tokenizer, train_rows, validation_rows, labels):
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
    return [str(text) for column in columns for text in train_rows[column]]


def _optimizer(model, recipe: Recipe):
    import torch

    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)  # no decay on biases and norms
    groups = [{"params": decay, "weight_decay": recipe.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.train.lr)


def _mixed_precision(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "no"
    if requested == "fp16" and not torch.cuda.is_available():
        raise LlmtoolError("train.precision fp16 needs a CUDA GPU; use bf16 or no on this machine")
    return requested


# ---------------------------------------------------------------- logs


class RunLog:
    """metrics.csv and TensorBoard events in the output directory (main process only); a PNG at the end."""

    def __init__(self, out: Path, task: str, start_step: int, enabled: bool):
        self.enabled = enabled
        self.path = out / METRICS_CSV
        self.columns = ["step", "epoch", "train_loss", "lr", "tokens_per_second", "eval_loss", *evaluation.TASK_METRICS[task]]
        if not enabled:
            return
        kept = []
        if start_step and self.path.exists():  # resuming: drop rows from steps the checkpoint never reached
            with self.path.open(newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= start_step]
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(kept)
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None)

    def write(self, step: int, **values) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns).writerow({"step": step, **values})
        for key, value in values.items():
            if key != "epoch" and value is not None:
                self.tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self.enabled:
            self.tensorboard.close()

    def plot(self, png: Path) -> None:
        """Training (and validation) loss against steps."""
        if not self.enabled:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with self.path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        figure, axes = plt.subplots(figsize=(7, 4))
        for column, label in (("train_loss", "training loss"), ("eval_loss", "validation loss")):
            points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
            if points:
                axes.plot(*zip(*points), marker="o" if column == "eval_loss" else None, label=label)
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.legend()
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(png, dpi=100)
        plt.close(figure)


def _library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("llmtool", "torch", "transformers", "datasets", "accelerate", "evaluate", "tokenizers"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _write_final(accelerator, model, tokenizer, recipe: Recipe, work: Path, out: Path, results: dict) -> None:
    """The final model, tokenizer, resolved recipe and versions in the run's directory, loadable by pipeline().
    Written to a staging directory first, then moved in file by file: each file lands whole."""
    import yaml

    with checkpoints.staged(accelerator, work / ".final-tmp", "the final model",
                            lambda: checkpoints.last_good_note(work)) as staging:
        checkpoints.save_model(accelerator, model, tokenizer, staging)
        if accelerator.is_main_process:
            header = f"# Resolved recipe of this run; rerun with: llmtool finetune {out / 'recipe.yaml'}\n"
            (staging / "recipe.yaml").write_text(header + yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            (staging / "versions.json").write_text(json.dumps(_library_versions(), indent=2) + "\n")
            (staging / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            checkpoints.fsync_tree(staging)
            for item in staging.iterdir():
                os.replace(item, work / item.name)
            staging.rmdir()


# ---------------------------------------------------------------- the loop


def finetune(recipe: Recipe, *, overwrite: bool = False, resume: bool = False,
             progress: Progress | None = None) -> FinetuneResult:
    """Run a recipe to the end. The output directory is checked and locked before anything loads; with
    `overwrite`, the previous run is replaced only once this one has finished."""
    import torch
    from accelerate import Accelerator

    progress = progress or Progress()
    if overwrite:
        _check_inputs_outside(recipe)
    # Without a GPU, cpu=True is what lets Accelerate see a torchrun/accelerate launch as multi-process (gloo).
    on_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    accelerator = Accelerator(mixed_precision=_mixed_precision(recipe.train.precision), cpu=on_cpu)
    run_dir = RunDirectory(Path(recipe.output_dir), overwrite=overwrite, resume=resume or recipe.resume,
                           main=accelerator.is_main_process)
    try:
        accelerator.wait_for_everyone()  # every process has seen the directory before anything is written
        result = _train(recipe, accelerator, run_dir, progress)
        run_dir.commit()
        return result
    except BaseException:
        run_dir.abandon()
        raise
    finally:
        run_dir.release()
        accelerator.end_training()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _check_inputs_outside(recipe: Recipe) -> None:
    """--overwrite replaces the whole output directory, so no input of the run may live inside it."""
    out = Path(recipe.output_dir).expanduser().resolve()
    inputs = {"data.train": recipe.data.train, "data.validation": recipe.data.validation,
              "model.name": recipe.model.name, "model.tokenizer": recipe.model.tokenizer,
              **{f"model.tokenizer_files[{i}]": name for i, name in enumerate(recipe.model.tokenizer_files)}}
    for key, spec in inputs.items():
        if spec and Path(spec).expanduser().exists() and out in Path(spec).expanduser().resolve().parents:
            raise UsageError(f"{key} '{spec}' lies inside the output directory '{recipe.output_dir}', which "
                             "--overwrite replaces; move it out, or choose another output_dir")


def _interrupted(step: int, total_steps: int, run_dir: RunDirectory) -> Interrupted:
    """Ctrl-C in the loop: one line that says where the run stopped and what it kept."""
    where = f"interrupted at step {step} of {total_steps}"
    if run_dir.replaces:
        return Interrupted(f"{where}; the previous run in '{run_dir.out}' is kept as it was")
    last = checkpoints.latest(run_dir.work)
    if last is None:
        return Interrupted(f"{where}; no checkpoint was written (train.save_every makes a run resumable)")
    err = Interrupted(f"{where}; the last checkpoint is '{last}' (step {checkpoints.step_of(last)})")
    err.resumable = True
    return err


def _resume_point(run_dir: RunDirectory, accelerator, progress: Progress) -> Path | None:
    """The newest checkpoint whose files check out (the main process verifies, every process gets its answer)."""
    from accelerate.utils import broadcast_object_list

    if not run_dir.resume:
        return None
    out = run_dir.out
    choice = [None]
    if accelerator.is_main_process:
        good = checkpoints.newest_good(out, progress.message)
        choice = [str(good) if good else None]
    if accelerator.num_processes > 1:
        broadcast_object_list(choice, from_process=0)
    if choice[0] is None:
        damaged = " (every checkpoint there is damaged)" if checkpoints.listed(out) else ""
        raise LlmtoolError(f"nothing to resume: '{out}' has no complete checkpoint{damaged}; set train.save_every "
                           "to write checkpoints, or drop --resume")
    return Path(choice[0])


def _train(recipe: Recipe, accelerator, run_dir: RunDirectory, progress: Progress) -> FinetuneResult:
    import datasets
    import torch
    from transformers import get_scheduler, set_seed
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()  # the run has its own progress bar; per-map bars would drown it
    hf_logging.disable_progress_bar()
    train_cfg = recipe.train
    task = recipe.task
    out, work = run_dir.out, run_dir.work
    main = accelerator.is_main_process
    checkpoint = _resume_point(run_dir, accelerator, progress)

    set_seed(train_cfg.seed)  # the same initial weights on every process
    with accelerator.main_process_first():
        train_rows, validation_rows = _load_data(recipe, progress.message if main else None)
    labels = (data_lib.label_names(train_rows, validation_rows, recipe.data.label_column, recipe.data.train)
              if task == CLASSIFICATION else None)
    tokenizer, model, labels = _build_tokenizer_and_model(recipe, accelerator, out, train_rows, labels, checkpoint,
                                                          progress)
    set_seed(train_cfg.seed + accelerator.process_index)  # dropout: its own stream on each process
    with accelerator.main_process_first():
        tokenized = tokenize(recipe, tokenizer, train_rows, validation_rows, labels)
    train_set, validation_set = tokenized.train, tokenized.validation
    run_dir.create()  # only now, with data and model ready, is anything written
    accelerator.wait_for_everyone()

    world = accelerator.num_processes
    step_size = train_cfg.batch_size * world * train_cfg.gradient_accumulation
    lengths, n_targets = list(train_set["length"]), list(train_set["n_targets"])  # plain lists: fast to index
    train_inputs = data_lib.model_inputs(train_set)
    plan = data_lib.StepBatches(lengths, step_size, train_cfg.seed, recipe.data.group_by_length)
    if len(plan) == 0:
        raise LlmtoolError(f"the training data has {len(train_set)} rows, fewer than one step's batch of {step_size} "
                           "(batch_size x processes x gradient_accumulation); lower train.batch_size")
    total_steps = train_cfg.max_steps or train_cfg.epochs * len(plan)
    warmup = train_cfg.warmup_steps or int(train_cfg.warmup_ratio * total_steps)
    pad_to = recipe.data.max_length if recipe.data.pad_to_max_length and not recipe.data.packing else None
    collator = data_lib.Collator(task, tokenizer, model=model, pad_to=pad_to)

    optimizer = _optimizer(model, recipe)
    scheduler = get_scheduler(train_cfg.scheduler, optimizer, num_warmup_steps=warmup,
                              num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    state = {"step": 0, "best_eval_loss": None, "evals_without_improvement": 0}
    if checkpoint is not None:
        state = checkpoints.load_state(checkpoint, optimizer, scheduler, accelerator.process_index)
    start_step = state["step"]
    log = RunLog(work, task, start_step, enabled=main)
    if main:
        progress.start(total_steps, start_step)
        if checkpoint is not None:
            progress.message(f"resuming from {checkpoint} (step {start_step})")

    step = start_step
    window_loss, window_steps, window_tokens = 0.0, 0, 0
    window_start = run_start = time.perf_counter()
    run_tokens, run_paused = 0, 0.0
    last_train_loss = None
    eval_results: dict = {}
    stopped_early = False
    eval_every = train_cfg.eval_every or len(plan)

    try:
        while step < total_steps and not stopped_early:
            epoch, position = divmod(step, len(plan))
            for step_indices in plan.epoch(epoch)[position:]:
                items = sum(n_targets[i] for i in step_indices)
                step_tokens = sum(lengths[i] for i in step_indices)
                micro = data_lib.micro_batches(step_indices, accelerator.process_index, world,
                                               train_cfg.gradient_accumulation)
                local_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
                for m, indices in enumerate(micro):
                    batch = collator(train_inputs, indices).to(accelerator.device)
                    sync = nullcontext() if m == len(micro) - 1 else accelerator.no_sync(model)
                    with sync, accelerator.autocast():
                        loss_sum, _ = evaluation.loss_and_logits(task, model, batch)
                    # DDP averages gradients over processes; scaling by `world` makes them those of the global mean.
                    accelerator.backward(loss_sum * world / items)
                    local_loss += loss_sum.detach().double()
                step_loss = (accelerator.reduce(local_loss, "sum") / items).item()
                if not math.isfinite(step_loss):
                    last = None if run_dir.replaces else checkpoints.latest(work)
                    raise LlmtoolError(
                        f"training loss became {step_loss} at step {step + 1}; stopped before updating the model. "
                        + (f"The last good checkpoint is '{last}' (continue with --resume). " if last else "")
                        + (f"The previous run in '{out}' is kept as it was. " if run_dir.replaces else "")
                        + "Lower train.lr, or use train.precision=no")
                if train_cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), train_cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                run_tokens += step_tokens
                window_loss, window_steps, window_tokens = window_loss + step_loss, window_steps + 1, \
                    window_tokens + step_tokens
                lr = scheduler.get_last_lr()[0]
                if main:
                    elapsed = time.perf_counter() - window_start
                    progress.step(step, step_loss, lr, window_tokens / elapsed if elapsed else 0.0)

                if step % train_cfg.log_every == 0 or step == total_steps:
                    elapsed = time.perf_counter() - window_start
                    last_train_loss = window_loss / window_steps
                    log.write(step, epoch=round(step / len(plan), 4), train_loss=last_train_loss, lr=lr,
                              tokens_per_second=window_tokens / elapsed if elapsed else None)
                    window_loss, window_steps, window_tokens = 0.0, 0, 0
                    window_start = time.perf_counter()

                pause_start = time.perf_counter()  # evaluation and checkpoints do not count in tokens/s
                if validation_set is not None and (step % eval_every == 0 or step == total_steps):
                    eval_results = evaluation.evaluate_model(
                        task, model, tokenizer, validation_set, collator,
                        train_cfg.eval_batch_size or train_cfg.batch_size, accelerator, recipe.data.max_target_length)
                    log.write(step, epoch=round(step / len(plan), 4), **eval_results)
                    if main:
                        progress.message(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in eval_results.items()))
                    best = state["best_eval_loss"]
                    if best is None or eval_results["eval_loss"] < best:
                        state["best_eval_loss"], state["evals_without_improvement"] = eval_results["eval_loss"], 0
                    else:
                        state["evals_without_improvement"] += 1
                    patience = train_cfg.early_stopping_patience
                    if patience is not None and state["evals_without_improvement"] >= patience:
                        stopped_early = True
                        if main:
                            progress.message(f"early stop at step {step}: no better validation loss in {patience} "
                                             "evaluations")

                if train_cfg.save_every and step % train_cfg.save_every == 0 and step < total_steps:
                    state["step"] = step
                    checkpoints.save(accelerator, model, tokenizer, optimizer, scheduler, state, work,
                                     train_cfg.keep_checkpoints)
                paused = time.perf_counter() - pause_start
                window_start += paused
                run_paused += paused
                if step >= total_steps or stopped_early:
                    break
    except KeyboardInterrupt:
        if main:
            progress.stop()
        raise _interrupted(step, total_steps, run_dir) from None

    seconds = time.perf_counter() - run_start
    if main:
        progress.stop()
    result = FinetuneResult(
        output_dir=str(out), steps=step, train_loss=last_train_loss, eval=eval_results,
        resumed_from=start_step if checkpoint is not None else None, stopped_early=stopped_early,
        seconds=seconds, tokens_per_second=run_tokens / (seconds - run_paused) if seconds > run_paused else 0.0,
    )
    _write_final(accelerator, model, tokenizer, recipe, work, out, {
        "steps": step, "train_loss": last_train_loss, "eval": eval_results, "stopped_early": stopped_early,
    })
    log.close()
    if main:
        log.plot(work / LOSS_PNG)
    return result
