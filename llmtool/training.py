"""The training engine every recipe verb runs on. The verb opens a `Run` (the accelerator, the output directory
and its lock, the resume point, the seed), builds its `Job` (model, data, and the loss to minimise) with what the
run offers, and hands it to `Run.fit`, which trains, reports and writes the final model:

    with training.Run(recipe.train, recipe.output_dir, verb="finetune", recipe=recipe.to_dict(), ...) as run:
        result = run.fit(build_job(recipe, run))

`finetune` and `distill` differ only in the job they hand over. The loop (`fit`) reads top to bottom: for each
optimizer step take the step's examples (the same for any number of processes), run this process's
micro-batches, step, then log, evaluate, stop early, checkpoint. The loss of a step is its sum over every target in
the global batch divided by their count, so 1 process and N processes (and any gradient accumulation) optimise the
same objective. Step losses stay on the device until they are logged (or a checkpoint or evaluation is due):
reading one is a device sync, and the GPU should not wait on the host each step.
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
from llmtool import config as config_lib
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
    collator: Any  # (rows, indices, epoch) -> a batch; the epoch is for a collator that draws (masked LM's masks)
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
    group_by_length: bool = True  # steps of similar lengths (see data.StepBatches)
    fixed_length: bool = False  # every batch has one length (packing, padding to the maximum): a static compile
    max_new_tokens: int = 64  # seq2seq validation: the longest generated answer
    # (rows, indices, epoch) -> the loss terms of those training rows in that epoch, where they change from epoch to
    # epoch (masked LM draws its masks per epoch); None: the training set's `n_targets` column
    targets: Callable[[Any, list[int], int], int] | None = None


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


# ---------------------------------------------------------------- the run around the loop


class Run:
    """One training run's surroundings, opened by the verb before it builds its job. On entering: the inputs are
    checked against --overwrite, the accelerator starts, the output directory is checked and locked (before
    anything loads), the newest good checkpoint is found when resuming and the recipe checked against the one that
    trained it (see config.resume_conflicts), and the seed is set (the same initial weights on every process).
    `fit` trains the verb's job and writes the final model. On leaving: a finished run takes the output directory's
    place (with `overwrite`, the previous run is replaced only now); an unfinished one leaves the previous run as it
    was. `inputs` (recipe key -> path) are the files the run reads: none may lie inside a directory that
    --overwrite replaces.

    What a job may use: `accelerator`, `out` (the output directory), `checkpoint` (the one being resumed, or
    None) and `progress`."""

    def __init__(self, train, output_dir: str, *, verb: str, recipe: dict, inputs: dict[str, str | None],
                 overwrite: bool = False, resume: bool = False, progress: Progress | None = None):
        self.train, self.output_dir, self.verb, self.recipe = train, output_dir, verb, recipe
        self.inputs, self.overwrite, self.resume = inputs, overwrite, resume
        self.progress = progress or Progress()
        self.accelerator = None
        self.directory: RunDirectory | None = None
        self.checkpoint: Path | None = None
        self._finished = False

    @property
    def out(self) -> Path:
        return self.directory.out

    def __enter__(self) -> "Run":
        import torch
        from accelerate import Accelerator

        if self.overwrite:
            _check_inputs_outside(self.output_dir, self.inputs)
        # Without a GPU, cpu=True is what lets Accelerate see a torchrun/accelerate launch as multi-process (gloo).
        on_cpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
        self.accelerator = Accelerator(mixed_precision=mixed_precision(self.train.precision), cpu=on_cpu)
        try:
            self.directory = RunDirectory(Path(self.output_dir), overwrite=self.overwrite, resume=self.resume,
                                          main=self.accelerator.is_main_process)
            self.accelerator.wait_for_everyone()  # every process has seen the directory before anything is written
            _quiet_library_progress()
            self.checkpoint = _resume_point(self.directory, self.accelerator, self.progress)
            if self.checkpoint is not None:
                _check_resumed_recipe(self.checkpoint, self.recipe, self.directory, self.accelerator, self.progress)
            from transformers import set_seed

            set_seed(self.train.seed)  # the same initial weights on every process
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def fit(self, job: Job) -> TrainResult:
        """Train the job to the end, then its report and the final model (see `fit` and `write_final`)."""
        from transformers import set_seed

        accelerator = self.accelerator
        set_seed(self.train.seed + accelerator.process_index)  # dropout: its own stream on each process
        self.directory.create()  # only now, with data and model ready, is anything written
        accelerator.wait_for_everyone()
        result = fit(job, self.train, accelerator, self.directory, self.checkpoint, self.progress, self.recipe)
        if job.report is not None:
            result.report = job.report(accelerator, job.model)
        write_final(accelerator, job, self.recipe, self.verb, self.directory, {
            "steps": result.steps, "train_loss": result.train_loss, "eval": result.eval,
            "stopped_early": result.stopped_early, **({"report": result.report} if result.report else {}),
        })
        self._finished = True
        return result

    def __exit__(self, exc_type, exc, traceback) -> None:
        import torch

        try:
            if self.directory is not None:
                if exc_type is None and self._finished:
                    self.directory.commit()
                else:
                    self.directory.abandon()
        finally:
            if self.directory is not None:
                self.directory.release()
            self.accelerator.end_training()
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


def _quiet_library_progress() -> None:
    """The run has its own progress bar; per-map and per-tensor bars would drown it."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


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


def _check_resumed_recipe(checkpoint: Path, recipe: dict, run_dir: RunDirectory, accelerator,
                          progress: Progress) -> None:
    """A resume continues the run with the settings that trained it: a change that would make a model its saved
    recipe no longer describes is refused, naming each setting with the value the run was trained with and the new
    one. The checkpoint's own recipe is the record (a finished run's recipe.yaml for checkpoints from before they
    kept one)."""
    trained = checkpoints.trained_recipe(checkpoint) or checkpoints.trained_recipe(run_dir.out)
    if trained is None:
        if accelerator.is_main_process:
            progress.message(f"checkpoint '{checkpoint}' keeps no record of its recipe: resuming without checking "
                             "that the settings are the same")
        return
    conflicts = config_lib.resume_conflicts(trained, recipe)
    if not conflicts:
        return
    now = ", ".join(f"{key} {_shown(new)}" for key, _, new in conflicts)
    if len(conflicts) == 1:
        before = _shown(conflicts[0][1])
    else:
        before = ", ".join(f"{key} {_shown(old)}" for key, old, _ in conflicts)
    raise UsageError(f"cannot resume with {now}: the run in '{run_dir.out}' was trained with {before}; a resume "
                     "may only raise train.max_steps or train.epochs and change how often the run logs, evaluates "
                     f"and checkpoints; set {'it' if len(conflicts) == 1 else 'them'} back, or start a new run "
                     "(--overwrite, or another output_dir)")


def _shown(value) -> str:
    """A recipe value as the message shows it: null, true, 0.001, "text", {"r": 8}."""
    return json.dumps(value, default=str)


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


def fit(job: Job, train, accelerator, run_dir: RunDirectory, checkpoint: Path | None,
        progress: Progress, recipe: dict | None = None) -> TrainResult:
    """The step loop: gradient accumulation, many processes, mixed precision, a non-finite-loss guard, progress,
    logs, evaluation, early stopping, checkpoints and exact resume, for whatever loss the job brings. `train` is
    the recipe's train section; `recipe`, the whole resolved recipe, is kept in each checkpoint."""
    loop = _Loop(job, train, accelerator, run_dir, progress, checkpoint, recipe)
    try:
        while not loop.finished:
            epoch, position = divmod(loop.step, len(loop.plan))
            for step_indices in loop.plan.epoch(epoch)[position:]:
                loop.train_step(step_indices, epoch)
                loop.after_step()
                if loop.finished:
                    break
        loop.read_losses()  # an early stop between log lines: its steps are checked too
    except KeyboardInterrupt:
        loop.stop_progress()
        raise _interrupted(loop.step, loop.total_steps, run_dir) from None
    return loop.result(checkpoint)


class _Loop:
    """One `fit`'s set-up and state: the step plan, the prepared model, optimizer and schedule, the step losses not
    yet read, the logging window, the early-stopping record, and what the result reports."""

    def __init__(self, job: Job, train, accelerator, run_dir: RunDirectory, progress: Progress,
                 checkpoint: Path | None, recipe: dict | None = None):
        self.job, self.train, self.accelerator, self.run_dir, self.progress = job, train, accelerator, run_dir, progress
        self.recipe = recipe
        self.main, self.world = accelerator.is_main_process, accelerator.num_processes
        self._setup_plan()
        self._setup_optimization()
        self.state = {"step": 0, "best_eval_loss": None, "evals_without_improvement": 0}  # what checkpoints keep
        if checkpoint is not None:
            aux = accelerator.unwrap_model(job.aux) if job.aux is not None else None
            self.state = checkpoints.load_state(checkpoint, self.optimizer, self.scheduler,
                                                accelerator.process_index, aux)
        self.start_step = self.step = self.state["step"]
        self.log = RunLog(run_dir.work, job.task, self.start_step, enabled=self.main)
        if self.main:
            progress.start(self.total_steps, self.start_step)
            if checkpoint is not None:
                progress.message(f"resuming from {checkpoint} (step {self.start_step})")
        self.losses = _StepLosses(accelerator)
        self.window: list[float] = []  # read losses of the steps since the last log line
        self.window_tokens = 0
        self.window_start = self.run_start = time.perf_counter()
        self.run_tokens, self.run_paused = 0, 0.0
        self.last_train_loss: float | None = None
        self.eval_results: dict = {}
        self.stopped_early = False

    def _setup_plan(self) -> None:
        """Which examples make each step, how many steps the run takes, and when it evaluates."""
        job, train = self.job, self.train
        step_size = train.batch_size * self.world * train.gradient_accumulation
        self.lengths = data_lib.column(job.train_set, "length")
        self.n_targets = data_lib.column(job.train_set, "n_targets")
        self.inputs = data_lib.model_inputs(job.train_set)
        self.plan = data_lib.StepBatches(self.lengths, step_size, train.seed, job.group_by_length)
        if len(self.plan) == 0:
            raise LlmtoolError(f"the training data has {len(job.train_set)} rows, fewer than one step's batch of "
                               f"{step_size} (batch_size x processes x gradient_accumulation); lower train.batch_size")
        self.total_steps = job.max_steps if job.max_steps is not None else train.max_steps or train.epochs * len(self.plan)
        self.eval_every = train.eval_every or len(self.plan)

    def _setup_optimization(self) -> None:
        """AdamW and the learning-rate schedule over what trains; model (and aux) prepared for the processes and
        precision, and compiled when asked."""
        from transformers import get_scheduler

        job, train, accelerator = self.job, self.train, self.accelerator
        warmup = train.warmup_steps or int(train.warmup_ratio * self.total_steps)
        self.trainable = sum(p.numel() for p in _trainable([job.model, job.aux]))
        optimizer = optimizer_for([job.model, job.aux], train, accelerator.device)
        self.scheduler = get_scheduler(train.scheduler, optimizer, num_warmup_steps=warmup,
                                       num_training_steps=self.total_steps)
        if job.aux is not None:
            self.model, job.aux, self.optimizer = accelerator.prepare(job.model, job.aux, optimizer)
        else:
            self.model, self.optimizer = accelerator.prepare(job.model, optimizer)
        if train.compile:
            # In place, so saving, generation and adapters see the same module; shapes vary unless every batch is
            # padded to one length, and a dynamic graph saves a compile per shape.
            accelerator.unwrap_model(self.model).compile(dynamic=not job.fixed_length)
        job.model = self.model

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps or self.stopped_early

    def train_step(self, step_indices: list[int], epoch: int) -> None:
        """One optimizer step over the step's examples: this process's micro-batches, then the update. Every
        process counts the loss terms of the whole step, its own micro-batches' and the others'."""
        import torch

        job, accelerator, model = self.job, self.accelerator, self.model
        items = (job.targets(self.inputs, step_indices, epoch) if job.targets is not None
                 else sum(self.n_targets[i] for i in step_indices))
        step_tokens = sum(self.lengths[i] for i in step_indices)
        micro = data_lib.micro_batches(step_indices, accelerator.process_index, self.world,
                                       self.train.gradient_accumulation)
        local_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        for m, indices in enumerate(micro):
            batch = job.collator(self.inputs, indices, epoch).to(accelerator.device)
            sync = nullcontext() if m == len(micro) - 1 else accelerator.no_sync(model)
            with sync, accelerator.autocast():
                loss_sum = job.loss(model, batch)
            # DDP averages gradients over processes; scaling by `world` makes them those of the global mean.
            accelerator.backward(loss_sum * self.world / items)
            local_loss += loss_sum.detach()
        if self.train.max_grad_norm:
            accelerator.clip_grad_norm_(_trainable([model, job.aux]), self.train.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.losses.add(local_loss, items, self.step)
        self.run_tokens += step_tokens
        self.window_tokens += step_tokens

    def after_step(self) -> None:
        """What follows a step when it is due: the progress bar, a log line, an evaluation (and the early-stopping
        verdict), a checkpoint. Evaluation and checkpoints do not count in tokens/s."""
        step, train = self.step, self.train
        lr = self.scheduler.get_last_lr()[0]
        logging = step % train.log_every == 0 or step == self.total_steps
        evaluating = self.job.validation_set is not None and (step % self.eval_every == 0 or step == self.total_steps)
        saving = bool(train.save_every) and step % train.save_every == 0 and step < self.total_steps
        if logging or evaluating or saving:
            self.read_losses()  # before anything is evaluated or saved: a non-finite loss stops here
        if self.main:
            elapsed = time.perf_counter() - self.window_start
            self.progress.step(step, self.window[-1] if logging else None, lr,
                               self.window_tokens / elapsed if elapsed else 0.0)
        if logging:
            self._log(lr)
        pause_start = time.perf_counter()
        if evaluating:
            self._evaluate()
        if saving:
            self.state["step"] = step
            checkpoints.save(self.accelerator, self.model, self.job.tokenizer, self.optimizer, self.scheduler,
                             self.state, self.run_dir.work, train.keep_checkpoints, self.job.aux, self.recipe,
                             outlives_failure=not self.run_dir.replaces)
        paused = time.perf_counter() - pause_start
        self.window_start += paused
        self.run_paused += paused

    def read_losses(self) -> None:
        """The pending step losses into the logging window; the first non-finite one stops the run."""
        for at, loss in self.losses.read():
            if not math.isfinite(loss):
                raise _non_finite(loss, at, self.step, self.run_dir)
            self.window.append(loss)

    def _epoch(self) -> float:
        return round(self.step / len(self.plan), 4)

    def _log(self, lr: float) -> None:
        elapsed = time.perf_counter() - self.window_start
        self.last_train_loss = sum(self.window) / len(self.window)
        self.log.write(self.step, epoch=self._epoch(), train_loss=self.last_train_loss, lr=lr,
                       tokens_per_second=self.window_tokens / elapsed if elapsed else None)
        self.window, self.window_tokens = [], 0
        self.window_start = time.perf_counter()

    def _evaluate(self) -> None:
        """The shared evaluation on the validation rows, logged; early stopping counts evaluations without a
        better validation loss."""
        job, train, step = self.job, self.train, self.step
        self.eval_results = evaluation.evaluate_model(
            job.task, self.model, job.tokenizer, job.validation_set, job.collator,
            train.eval_batch_size or train.batch_size, self.accelerator, job.max_new_tokens)
        self.log.write(step, epoch=self._epoch(), **self.eval_results)
        if self.main:
            self.progress.message(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in self.eval_results.items()))
        state = self.state
        if state["best_eval_loss"] is None or self.eval_results["eval_loss"] < state["best_eval_loss"]:
            state["best_eval_loss"], state["evals_without_improvement"] = self.eval_results["eval_loss"], 0
        else:
            state["evals_without_improvement"] += 1
        patience = train.early_stopping_patience
        if patience is not None and state["evals_without_improvement"] >= patience:
            self.stopped_early = True
            if self.main:
                self.progress.message(f"early stop at step {step}: no better validation loss in {patience} "
                                      "evaluations")

    def stop_progress(self) -> None:
        if self.main:
            self.progress.stop()

    def result(self, checkpoint: Path | None) -> TrainResult:
        """The run's numbers; the log closed and its loss curve drawn."""
        seconds = time.perf_counter() - self.run_start
        self.stop_progress()
        if self.window:
            self.last_train_loss = sum(self.window) / len(self.window)
        self.log.close()
        if self.main:
            self.log.plot(self.run_dir.work / LOSS_PNG)
        training_seconds = seconds - self.run_paused
        return TrainResult(
            output_dir=str(self.run_dir.out), steps=self.step, train_loss=self.last_train_loss,
            eval=self.eval_results, resumed_from=self.start_step if checkpoint is not None else None,
            stopped_early=self.stopped_early, seconds=seconds,
            tokens_per_second=self.run_tokens / training_seconds if training_seconds > 0 else 0.0,
            trainable_parameters=self.trainable,
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


def write_final(accelerator, job: Job, recipe: dict, verb: str, run_dir: RunDirectory, results: dict) -> None:
    """The final model, tokenizer, resolved recipe and versions in the run's directory, loadable by pipeline().
    Written to a staging directory first, then moved in file by file: each file lands whole."""
    import yaml

    work, out = run_dir.work, run_dir.out
    with checkpoints.staged(accelerator, work / ".final-tmp", "the final model",
                            lambda: None if run_dir.replaces else checkpoints.latest(work)) as staging:
        checkpoints.save_model(accelerator, job.model, job.tokenizer, staging)
        if accelerator.is_main_process:
            if job.save_extra is not None:
                job.save_extra(accelerator.unwrap_model(job.model), staging)
            header = (f"# llmtool {verb} {out / 'recipe.yaml'}\n"
                      "# The resolved recipe of this run: the command above runs it again.\n")
            (staging / "recipe.yaml").write_text(header + yaml.safe_dump(recipe, sort_keys=False))
            (staging / "versions.json").write_text(json.dumps(library_versions(), indent=2) + "\n")
            (staging / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            checkpoints.fsync_tree(staging)
            for item in staging.iterdir():
                target = work / item.name
                if item.is_dir() and target.is_dir():  # a subdirectory (the merged model) from an earlier try
                    shutil.rmtree(target)
                os.replace(item, target)
            staging.rmdir()
