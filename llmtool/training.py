"""The training engine every recipe verb runs on: `run` sets up the accelerator and the output directory, asks the
verb for a `Job` (model, data, and the loss to minimise), then `fit` runs the step loop and the final model is
written. `finetune` and `distill` differ only in the job they hand over.

The loop reads top to bottom: for each optimizer step take the step's examples (the same for any number of
processes), run this process's micro-batches, step, log, evaluate, checkpoint. The loss of a step is its sum over
every target in the global batch divided by their count, so 1 process and N processes (and any gradient
accumulation) optimise the same objective. Step losses stay on the device until they are logged (or a checkpoint
or evaluation is due): reading one is a device sync, and the GPU should not wait on the host each step.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from llmtool import checkpoints, evaluation
from llmtool import data as data_lib
from llmtool.errors import Interrupted, LlmtoolError, UsageError
from llmtool.rundir import RunDirectory
from llmtool.runlog import LOSS_PNG, Progress, RunLog, library_versions


@dataclass
class Job:
    """What a verb hands the loop: a model ready to train, its tokenized data, and the loss."""

    task: str
    model: Any
    tokenizer: Any
    train_set: Any  # tokenized rows with `length` and `n_targets` columns (see data.tokenize)
    validation_set: Any | None
    collator: Any
    # (model, batch) -> the sum of the per-target losses of the batch: a scalar tensor with a gradient
    loss: Callable[[Any, dict], Any]
    # writes the verb's own files into the final directory (main process, after the model files)
    save_extra: Callable[[Any, Path], None] | None = None
    # (accelerator, trained model) -> what the verb reports at the end (every process calls it: it may evaluate)
    report: Callable[[Any, Any], dict] | None = None
    max_steps: int | None = None  # overrides the recipe's steps (0: save the model as it is, untrained)
    # modules that train beside the model (distill's hidden-state projections): in the optimizer, synchronised
    # across processes and checkpointed, never part of the saved model. The loop replaces it with its prepared
    # form, so a loss should read `job.aux` when it runs.
    aux: Any = None


@dataclass
class TrainResult:
    output_dir: str
    steps: int
    train_loss: float | None  # mean over the last logging window
    eval: dict = field(default_factory=dict)
    resumed_from: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0
    tokens_per_second: float = 0.0
    trainable_parameters: int = 0
    report: dict = field(default_factory=dict)  # the verb's end report (distill: teacher vs student)


Setup = Callable[[Any, RunDirectory, "Path | None", Progress], Job]


# ---------------------------------------------------------------- the run around the loop


def run(recipe, verb: str, setup: Setup, *, inputs: dict[str, str | None], overwrite: bool = False,
        resume: bool = False, progress: Progress | None = None) -> TrainResult:
    """Run a recipe to the end. The output directory is checked and locked before anything loads; with
    `overwrite`, the previous run is replaced only once this one has finished. `inputs` (recipe key -> path) are
    the files the run reads: none may lie inside a directory that --overwrite replaces."""
    import torch
    from accelerate import Accelerator

    progress = progress or Progress()
    if overwrite:
        _check_inputs_outside(recipe.output_dir, inputs)
    # Without a GPU, cpu=True is what lets Accelerate see a torchrun/accelerate launch as multi-process (gloo).
    on_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    accelerator = Accelerator(mixed_precision=mixed_precision(recipe.train.precision), cpu=on_cpu)
    run_dir = RunDirectory(Path(recipe.output_dir), overwrite=overwrite, resume=resume or recipe.resume,
                           main=accelerator.is_main_process)
    try:
        accelerator.wait_for_everyone()  # every process has seen the directory before anything is written
        result = _run(recipe, verb, setup, accelerator, run_dir, progress)
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


def _run(recipe, verb: str, setup: Setup, accelerator, run_dir: RunDirectory, progress: Progress) -> TrainResult:
    import datasets
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()  # the run has its own progress bar; per-map bars would drown it
    hf_logging.disable_progress_bar()
    checkpoint = _resume_point(run_dir, accelerator, progress)
    set_seed(recipe.train.seed)  # the same initial weights on every process
    job = setup(accelerator, run_dir, checkpoint, progress)
    set_seed(recipe.train.seed + accelerator.process_index)  # dropout: its own stream on each process
    run_dir.create()  # only now, with data and model ready, is anything written
    accelerator.wait_for_everyone()
    result = fit(job, recipe, accelerator, run_dir, checkpoint, progress)
    if job.report is not None:
        result.report = job.report(accelerator, job.model)
    write_final(accelerator, job, recipe, verb, run_dir, {
        "steps": result.steps, "train_loss": result.train_loss, "eval": result.eval,
        "stopped_early": result.stopped_early, **({"report": result.report} if result.report else {}),
    })
    return result


def _check_inputs_outside(output_dir: str, inputs: dict[str, str | None]) -> None:
    """--overwrite replaces the whole output directory, so no input of the run may live inside it."""
    out = Path(output_dir).expanduser().resolve()
    for key, spec in inputs.items():
        if spec and Path(spec).expanduser().exists() and out in Path(spec).expanduser().resolve().parents:
            raise UsageError(f"{key} '{spec}' lies inside the output directory '{output_dir}', which "
                             "--overwrite replaces; move it out, or choose another output_dir")


def mixed_precision(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "no"
    if requested == "fp16" and not torch.cuda.is_available():
        raise LlmtoolError("train.precision fp16 needs a CUDA GPU; use bf16 or no on this machine")
    return requested


def _trainable(modules) -> list:
    return [p for module in modules if module is not None for p in module.parameters() if p.requires_grad]


def optimizer_for(modules, train_cfg, device):
    """AdamW over the parameters of `modules` that train, without weight decay on biases and norms. The fused
    kernel on CUDA and the CPU (one call for all parameters: on the CPU ~7% of a small classifier's step faster
    than the one-tensor-at-a-time loop torch picks by default, which was itself faster than the multi-tensor
    path); the multi-tensor path elsewhere."""
    import torch

    decay, no_decay = [], []
    for parameter in _trainable(modules):
        (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": train_cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    kernel = {"fused": True} if device.type in ("cuda", "cpu") else {"foreach": True}
    return torch.optim.AdamW(groups, lr=train_cfg.lr, **kernel)


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


# ---------------------------------------------------------------- the loop


class _StepLosses:
    """Step losses kept on the device until read: each as (this process's loss sum, the step's target count).
    Reading them all at once is one device sync and, with several processes, one all-reduce."""

    def __init__(self, accelerator):
        self.accelerator = accelerator
        self.pending: list[tuple[Any, int, int]] = []  # (local loss sum, targets, step)

    def add(self, local_sum, items: int, step: int) -> None:
        self.pending.append((local_sum, items, step))

    def read(self) -> list[tuple[int, float]]:
        """(step, loss) of every pending step; the first non-finite one stops the run."""
        import torch

        if not self.pending:
            return []
        sums = self.accelerator.reduce(torch.stack([s for s, _, _ in self.pending]), "sum").tolist()
        losses = [(step, total / items) for total, (_, items, step) in zip(sums, self.pending)]
        self.pending = []
        return losses


def fit(job: Job, recipe, accelerator, run_dir: RunDirectory, checkpoint: Path | None,
        progress: Progress) -> TrainResult:
    """The step loop: gradient accumulation, many processes, mixed precision, a non-finite-loss guard, progress,
    logs, evaluation, early stopping, checkpoints and exact resume, for whatever loss the job brings."""
    import torch
    from transformers import get_scheduler

    train_cfg, data_cfg = recipe.train, recipe.data
    task, tokenizer, collator = job.task, job.tokenizer, job.collator
    train_set, validation_set = job.train_set, job.validation_set
    work = run_dir.work
    main = accelerator.is_main_process
    world = accelerator.num_processes
    step_size = train_cfg.batch_size * world * train_cfg.gradient_accumulation
    lengths, n_targets = data_lib.column(train_set, "length"), data_lib.column(train_set, "n_targets")
    train_inputs = data_lib.model_inputs(train_set)
    plan = data_lib.StepBatches(lengths, step_size, train_cfg.seed, data_cfg.group_by_length)
    if len(plan) == 0:
        raise LlmtoolError(f"the training data has {len(train_set)} rows, fewer than one step's batch of {step_size} "
                           "(batch_size x processes x gradient_accumulation); lower train.batch_size")
    total_steps = job.max_steps if job.max_steps is not None else train_cfg.max_steps or train_cfg.epochs * len(plan)
    warmup = train_cfg.warmup_steps or int(train_cfg.warmup_ratio * total_steps)

    model = job.model
    trainable = sum(p.numel() for p in _trainable([model, job.aux]))
    optimizer = optimizer_for([model, job.aux], train_cfg, accelerator.device)
    scheduler = get_scheduler(train_cfg.scheduler, optimizer, num_warmup_steps=warmup,
                              num_training_steps=total_steps)
    if job.aux is not None:
        model, job.aux, optimizer = accelerator.prepare(model, job.aux, optimizer)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    if train_cfg.compile:
        # In place, so saving, generation and adapters see the same module; shapes vary unless every batch is
        # padded to one length (packing, pad_to_max_length), and a dynamic graph saves a compile per shape.
        fixed = data_cfg.packing or data_cfg.pad_to_max_length
        accelerator.unwrap_model(model).compile(dynamic=not fixed)
    job.model = model
    state = {"step": 0, "best_eval_loss": None, "evals_without_improvement": 0}
    if checkpoint is not None:
        aux = accelerator.unwrap_model(job.aux) if job.aux is not None else None
        state = checkpoints.load_state(checkpoint, optimizer, scheduler, accelerator.process_index, aux)
    start_step = state["step"]
    log = RunLog(work, task, start_step, enabled=main)
    if main:
        progress.start(total_steps, start_step)
        if checkpoint is not None:
            progress.message(f"resuming from {checkpoint} (step {start_step})")

    step = start_step
    losses = _StepLosses(accelerator)
    window: list[float] = []  # read losses of the steps since the last log line
    window_tokens = 0
    window_start = run_start = time.perf_counter()
    run_tokens, run_paused = 0, 0.0
    last_train_loss = None
    eval_results: dict = {}
    stopped_early = False
    eval_every = train_cfg.eval_every or len(plan)

    def read_losses() -> None:
        for at, loss in losses.read():
            if not math.isfinite(loss):
                raise _non_finite(loss, at, step, run_dir)
            window.append(loss)

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
                        loss_sum = job.loss(model, batch)
                    # DDP averages gradients over processes; scaling by `world` makes them those of the global mean.
                    accelerator.backward(loss_sum * world / items)
                    local_loss += loss_sum.detach()
                if train_cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(_trainable([model, job.aux]), train_cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.add(local_loss, items, step)
                run_tokens += step_tokens
                window_tokens += step_tokens
                lr = scheduler.get_last_lr()[0]
                logging = step % train_cfg.log_every == 0 or step == total_steps
                evaluating = validation_set is not None and (step % eval_every == 0 or step == total_steps)
                saving = bool(train_cfg.save_every) and step % train_cfg.save_every == 0 and step < total_steps
                if logging or evaluating or saving:
                    read_losses()  # before anything is evaluated or saved: a non-finite loss stops here
                if main:
                    elapsed = time.perf_counter() - window_start
                    progress.step(step, window[-1] if logging else None, lr,
                                  window_tokens / elapsed if elapsed else 0.0)

                if logging:
                    elapsed = time.perf_counter() - window_start
                    last_train_loss = sum(window) / len(window)
                    log.write(step, epoch=round(step / len(plan), 4), train_loss=last_train_loss, lr=lr,
                              tokens_per_second=window_tokens / elapsed if elapsed else None)
                    window, window_tokens = [], 0
                    window_start = time.perf_counter()

                pause_start = time.perf_counter()  # evaluation and checkpoints do not count in tokens/s
                if evaluating:
                    eval_results = evaluation.evaluate_model(
                        task, model, tokenizer, validation_set, collator,
                        train_cfg.eval_batch_size or train_cfg.batch_size, accelerator, data_cfg.max_target_length)
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

                if saving:
                    state["step"] = step
                    checkpoints.save(accelerator, model, tokenizer, optimizer, scheduler, state, work,
                                     train_cfg.keep_checkpoints, job.aux)
                paused = time.perf_counter() - pause_start
                window_start += paused
                run_paused += paused
                if step >= total_steps or stopped_early:
                    break
        read_losses()  # an early stop between log lines: its steps are checked too
    except KeyboardInterrupt:
        if main:
            progress.stop()
        raise _interrupted(step, total_steps, run_dir) from None

    seconds = time.perf_counter() - run_start
    if main:
        progress.stop()
    if window:
        last_train_loss = sum(window) / len(window)
    log.close()
    if main:
        log.plot(work / LOSS_PNG)
    return TrainResult(
        output_dir=str(run_dir.out), steps=step, train_loss=last_train_loss, eval=eval_results,
        resumed_from=start_step if checkpoint is not None else None, stopped_early=stopped_early,
        seconds=seconds, tokens_per_second=run_tokens / (seconds - run_paused) if seconds > run_paused else 0.0,
        trainable_parameters=trainable,
    )


def _non_finite(loss: float, at: int, step: int, run_dir: RunDirectory) -> LlmtoolError:
    """The loss is read every few steps, so the model may have taken a few updates past the bad one; nothing from
    them is saved: no checkpoint, no final model."""
    last = None if run_dir.replaces else checkpoints.latest(run_dir.work)
    after = f"stopped at step {step}, before saving anything from it" if step > at else \
        "stopped before saving anything from it"
    return LlmtoolError(
        f"training loss became {loss} at step {at}; {after}. "
        + (f"The last good checkpoint is '{last}' (continue with --resume). " if last else "")
        + (f"The previous run in '{run_dir.out}' is kept as it was. " if run_dir.replaces else "")
        + "Lower train.lr, or use train.precision=no")


# ---------------------------------------------------------------- the final model


def write_final(accelerator, job: Job, recipe, verb: str, run_dir: RunDirectory, results: dict) -> None:
    """The final model, tokenizer, resolved recipe and versions in the run's directory, loadable by pipeline().
    Written to a staging directory first, then moved in file by file: each file lands whole."""
    import yaml

    work, out = run_dir.work, run_dir.out
    with checkpoints.staged(accelerator, work / ".final-tmp", "the final model",
                            lambda: checkpoints.last_good_note(work)) as staging:
        checkpoints.save_model(accelerator, job.model, job.tokenizer, staging)
        if accelerator.is_main_process:
            if job.save_extra is not None:
                job.save_extra(accelerator.unwrap_model(job.model), staging)
            header = (f"# llmtool {verb} {out / 'recipe.yaml'}\n"
                      "# The resolved recipe of this run: the command above runs it again.\n")
            (staging / "recipe.yaml").write_text(header + yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            (staging / "versions.json").write_text(json.dumps(library_versions(), indent=2) + "\n")
            (staging / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            checkpoints.fsync_tree(staging)
            for item in staging.iterdir():
                target = work / item.name
                if item.is_dir() and target.is_dir():  # a subdirectory (the merged model) from an earlier try
                    shutil.rmtree(target)
                os.replace(item, target)
            staging.rmdir()
