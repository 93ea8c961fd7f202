"""Metrics as `evaluate` modules shipped inside the package, so they load offline: load("accuracy")."""

from __future__ import annotations

from importlib import resources

from llmtool.errors import UsageError


def available() -> list[str]:
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())


def load(name: str):
    if name not in available():  # before importing evaluate, which takes seconds
        raise UsageError(f"unknown metric '{name}'; llmtool ships: {', '.join(available())}")
    import evaluate

    # keep_in_memory: compute() gets whole lists, so evaluate's on-disk Arrow buffer (and its lock file, shared by
    # every process of a run) would only add disk writes and lock waits.
    return evaluate.load(str(resources.files(__name__) / name), keep_in_memory=True)
