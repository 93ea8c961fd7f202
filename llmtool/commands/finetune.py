"""`llmtool finetune RECIPE.yaml [section.key=value ...]`: train from a recipe, resumable, on one or many devices."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer


def finetune(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (see recipes/).", show_default=False)],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides: train.lr=3e-5 data.max_length=64", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "--validate", help="Check the recipe and print it resolved; train nothing.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest complete checkpoint in the output directory.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output directory.")] = False,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where to write the model (default: the recipe's output_dir, else runs/RECIPE-NAME).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result (output dir, steps, losses, metrics) as JSON.")] = False,
) -> None:
    """Fine-tune a model (or pretrain one from scratch) as a recipe describes: causal LM, classification or seq2seq.

    The recipe is checked before anything loads: unknown keys, wrong types, bad values, missing files and columns are reported together. Training writes checkpoints atomically (train.save_every), metrics.csv, TensorBoard events and loss.png, then the final model, tokenizer and resolved recipe, loadable with transformers.pipeline(). The same command runs on many devices under accelerate launch or torchrun.

    Examples:

      llmtool finetune recipes/sentiment.yaml

      llmtool finetune recipes/sentiment.yaml train.lr=3e-5 train.epochs=1

      llmtool finetune recipes/pretrain-gpt2.yaml --dry-run

      llmtool finetune recipes/sentiment.yaml --resume

      accelerate launch -m llmtool finetune recipes/causal-lm.yaml
    """
    from llmtool import config

    resolved = config.load_recipe(recipe, overrides or [], output_dir=output_dir)
    if dry_run:
        import yaml

        typer.echo(yaml.safe_dump(resolved.to_dict(), sort_keys=False), nl=False)
        return

    from llmtool import finetuning
    from llmtool.commands._output import print_json
    from llmtool.errors import Interrupted

    try:
        with _RichProgress() as progress:
            result = finetuning.finetune(resolved, overwrite=overwrite, resume=resume, progress=progress)
    except Interrupted as err:
        if not getattr(err, "resumable", False):
            raise
        again = ["llmtool", "finetune", str(recipe), *(overrides or []), *(["-o", output_dir] if output_dir else []),
                 "--resume"]
        raise Interrupted(f"{err}; continue with: {shlex.join(again)}") from None
    if not _is_main_process():
        return
    summary = {
        "output_dir": result.output_dir, "steps": result.steps, "train_loss": result.train_loss, **result.eval,
        "resumed_from": result.resumed_from, "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 2), "tokens_per_second": round(result.tokens_per_second, 1),
    }
    if json_output:
        print_json(summary)
        return
    for key, value in summary.items():
        if value is not None:
            precise = isinstance(value, float) and key not in ("seconds", "tokens_per_second")
            typer.echo(f"{key}: {value:.4f}" if precise else f"{key}: {value}")


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


class _RichProgress:
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
        return self

    def start(self, total_steps: int, done_steps: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("train", total=total_steps, completed=done_steps, loss="-", lr="-", tps="-")

    def step(self, step: int, loss: float | None, lr: float, tokens_per_second: float) -> None:
        shown = {} if loss is None else {"loss": f"{loss:.4f}"}  # the loss is read from the device when logged
        self.bar.update(self.task, completed=step, lr=f"{lr:.2e}", tps=f"{tokens_per_second:,.0f}", **shown)

    def message(self, text: str) -> None:
        self.bar.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:
        self.bar.stop()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # the error line should stand alone, not under a half-finished bar
            self.bar.live.transient = True
        self.bar.stop()
