"""What a training run reports: progress while it runs (an interface the CLI implements with rich), and the run's
logs in its output directory: metrics.csv, TensorBoard events, and a loss curve at the end."""

from __future__ import annotations

import csv
import platform
from pathlib import Path

from llmtool import evaluation

METRICS_CSV = "metrics.csv"
LOSS_PNG = "loss.png"


class Progress:
    """What the loop reports while it runs; the CLI passes a rich implementation, tests use this silent one."""

    def start(self, total_steps: int, done_steps: int) -> None: ...

    def step(self, step: int, loss: float | None, lr: float, tokens_per_second: float) -> None:
        """After each optimizer step; `loss` is the step's loss on the steps that are logged, else None (it is read
        from the device only then)."""

    def message(self, text: str) -> None: ...

    def stop(self) -> None: ...


class RunLog:
    """metrics.csv and TensorBoard events in the output directory (main process only); a PNG at the end."""

    def __init__(self, out: Path, task: str, start_step: int, enabled: bool):
        self.enabled = enabled
        self.path = out / METRICS_CSV
        self.columns = ["step", "epoch", "train_loss", "lr", "tokens_per_second", "eval_loss",
                        *evaluation.TASK_METRICS[task]]
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
        if not rows:  # a run of no steps (a model saved as it is) has no curve
            return
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


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("llmtool", "torch", "transformers", "datasets", "accelerate", "evaluate", "tokenizers", "peft"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions
