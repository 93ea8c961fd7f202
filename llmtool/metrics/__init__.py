"""Metrics as `evaluate` modules shipped inside the package, so they load offline: load("accuracy")."""

from __future__ import annotations

from importlib import resources

from llmtool.errors import UsageError


def available() -> list[str]:
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())


def load(name: str):
    import evaluate

    if name not in available():
        raise UsageError(f"unknown metric '{name}'; llmtool ships: {', '.join(available())}")
    return evaluate.load(str(resources.files(__name__) / name))
