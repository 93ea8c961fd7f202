"""Benchmark results as data. A benchmark given `--json FILE` writes what it measured there, one record a measure,
beside the text it prints; gpu_check.py reads these files to make its table.

A record: {"measure": what, "value": a number, true/false, or null when it could not be measured, "unit": "x"
(a ratio), "%" (a fraction, shown as a percentage) or "" (a plain number or a yes/no), "target": the number (or
true) the value is held to, null when the value is only reported, "compare": one of COMPARISONS, "met": true,
false, or null when there is no target}.
"""

from __future__ import annotations

import json
from pathlib import Path

COMPARISONS = {
    ">=": lambda value, target: value >= target,
    ">": lambda value, target: value > target,
    "<=": lambda value, target: value <= target,
    "<": lambda value, target: value < target,
    "==": lambda value, target: value == target,
}


def meets(value, compare: str, target) -> bool | None:
    """Whether `value` meets its target: None with no target, False when nothing was measured."""
    if target is None:
        return None
    if value is None:
        return False
    return COMPARISONS[compare](value, target)


def record(name: str, value, target=None, compare: str = ">=", unit: str = "x") -> dict:
    return {"measure": name, "value": value, "unit": unit, "target": target, "compare": compare,
            "met": meets(value, compare, target)}


def write_json(path: str | None, benchmark: str, device: str, measures: list[dict]) -> None:
    """Write the file `--json` asked for (nothing when it was not asked for); `device` is where the benchmark ran
    ("cuda" or "cpu"), recorded with the GPU's name."""
    if not path:
        return
    if device == "cuda":
        import torch

        device = f"cuda ({torch.cuda.get_device_name()})"
    Path(path).write_text(json.dumps({"benchmark": benchmark, "device": device, "measures": measures}, indent=2)
                          + "\n", encoding="utf-8")
