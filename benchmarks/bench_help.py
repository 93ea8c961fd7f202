"""Start-up cost of `llmtool --help` against a minimal two-command Typer app, measured side by side.

Usage:
  python benchmarks/bench_help.py           # one warm-up each, then 10 interleaved runs of each
  python benchmarks/bench_help.py --quick   # 3 interleaved runs of each (a smoke run)

Prints both median wall times and the ratio llmtool / baseline (target: at most 1.5x), then whether
`llmtool --help` imported any heavy library (torch, transformers, ...), read from `python -X importtime`,
and its slowest top-level imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LLMTOOL_HELP = [sys.executable, "-m", "llmtool", "--help"]
BASELINE_HELP = [sys.executable, str(ROOT / "benchmarks" / "minimal_typer_app.py"), "--help"]
TARGET_RATIO = 1.5
# The libraries that STYLE.md says must load lazily, inside a command, never for --help.
HEAVY_LIBRARIES = ("torch", "transformers", "datasets", "evaluate")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def wall_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    # check=True: a --help that fails is a crash to report, not a fast run.
    subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, check=True)
    return time.perf_counter() - start


def median_wall_seconds(runs: int) -> tuple[float, float]:
    """Median seconds of (llmtool, baseline), alternating the two so that machine noise hits both alike."""
    wall_seconds(LLMTOOL_HELP)  # warm-up: fills the OS file cache and writes .pyc files
    wall_seconds(BASELINE_HELP)
    llmtool_times, baseline_times = [], []
    for _ in range(runs):
        llmtool_times.append(wall_seconds(LLMTOOL_HELP))
        baseline_times.append(wall_seconds(BASELINE_HELP))
    return statistics.median(llmtool_times), statistics.median(baseline_times)


def import_times(command: list[str]) -> dict[str, tuple[int, float]]:
    """Every module that `command` imports, with its nesting depth and cumulative import seconds."""
    result = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True
    )
    times = {}
    # Lines look like "import time:   self [us] | cumulative | <indent>module", two spaces of indent per level.
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, name = line.split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        times[name.strip()] = (depth, int(cumulative_us) / 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of each instead of 10")
    args = parser.parse_args()
    runs = 3 if args.quick else 10

    llmtool_median, baseline_median = median_wall_seconds(runs)
    ratio = llmtool_median / baseline_median
    met = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"bench_help: `llmtool --help` vs a minimal two-command Typer app, median of {runs} interleaved runs each")
    print(f"  llmtool --help    {llmtool_median * 1000:7.1f} ms")
    print(f"  baseline --help   {baseline_median * 1000:7.1f} ms")
    print(f"  ratio llmtool / baseline: {ratio:.2f}x  (target <= {TARGET_RATIO}x: {met})")

    modules = import_times(LLMTOOL_HELP)
    heavy = [lib for lib in HEAVY_LIBRARIES if any(m == lib or m.startswith(lib + ".") for m in modules)]
    print(f"  heavy libraries imported by `llmtool --help`: {', '.join(heavy) if heavy else 'none'}"
          f"  (checked: {', '.join(HEAVY_LIBRARIES)})")
    top_level = [(module, seconds) for module, (depth, seconds) in modules.items() if depth == 0]
    slowest = sorted(top_level, key=lambda item: item[1], reverse=True)[:5]
    print("  slowest top-level imports (python -X importtime, one run): "
          + ", ".join(f"{module} {seconds * 1000:.0f} ms" for module, seconds in slowest))


if __name__ == "__main__":
    main()
