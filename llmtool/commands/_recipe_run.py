"""What the recipe verbs (finetune, distill) share on the command line: loading the recipe for the verb, --dry-run,
a rich progress bar, the exact --resume command for a run that stopped with a checkpoint to go on from (Ctrl-C, a
full disk), and the result summary."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

import typer


def run_recipe(verb: str, recipe: Path, overrides: list[str], output_dir: str | None, dry_run: bool,
               train: Callable):
    """Load and validate the recipe for `verb`; print it resolved with --dry-run, else `train(resolved,
    progress)` under a progress bar. Returns the result on the main process, None elsewhere (and on --dry-run)."""
    from llmtool import config

    resolved = config.load_recipe(recipe, overrides, output_dir=output_dir, verb=verb)
    if dry_run:
        import yaml

        typer.echo(yaml.safe_dump(resolved.to_dict(), sort_keys=False), nl=False)
        return None

    from llmtool.errors import LlmtoolError

    try:
        with RichProgress() as progress:
            result = train(resolved, progress)
    except LlmtoolError as err:  # a run that kept a checkpoint to go on from (Ctrl-C, a full disk): how to resume
        if not getattr(err, "resumable", False):
            raise
        again = ["llmtool", verb, str(recipe), *overrides, *(["-o", output_dir] if output_dir else []), "--resume"]
        raise err.within(after=f"; continue with: {shlex.join(again)}") from None
    return result if is_main_process() else None


def summary(result) -> dict:
    return {
        "output_dir": result.output_dir, "steps": result.steps, "train_loss": result.train_loss, **result.eval,
        "resumed_from": result.resumed_from, "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 2), "tokens_per_second": round(result.tokens_per_second, 1),
    }


def print_summary(values: dict) -> None:
    for key, value in values.items():
        if value is not None:
            precise = isinstance(value, float) and key not in ("seconds", "tokens_per_second")
            typer.echo(f"{key}: {value:.4f}" if precise else f"{key}: {value}")


def is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


class RichProgress:
    """A rich progress bar on stderr with loss, learning rate and tokens/s."""

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from llmtool.commands._output import stderr_console

        self.console = stderr_console()
        self.bar = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[tps]} tok/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.task = None
        self.running = False
        return self

    def start(self, total_steps: int, done_steps: int) -> None:
        self.bar.start()
        self.running = True
        self.task = self.bar.add_task("train", total=total_steps, completed=done_steps, loss="-", lr="-", tps="-")

    def step(self, step: int, loss: float | None, lr: float, tokens_per_second: float) -> None:
        shown = {} if loss is None else {"loss": f"{loss:.4f}"}  # the loss is read from the device when logged
        self.bar.update(self.task, completed=step, lr=f"{lr:.2e}", tps=f"{tokens_per_second:,.0f}", **shown)

    def message(self, text: str) -> None:
        self.bar.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:
        if self.running:  # rich's stop prints a blank line off a terminal, even for a bar never shown
            self.bar.stop()
            self.running = False

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # the error line should stand alone, not under a half-finished bar
            self.bar.live.transient = True
        self.stop()
