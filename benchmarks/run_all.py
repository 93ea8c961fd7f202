"""Run every benchmark in this folder (each bench_*.py) in turn, each in its own process; `make bench` calls this.

Usage:
  python benchmarks/run_all.py           # full runs (several minutes on 2 CPU cores)
  python benchmarks/run_all.py --quick   # passes --quick to every script: a smoke run

Exits non-zero only if a script crashes. A missed target is a result to read, not a failure: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    quick = parser.parse_args().quick

    crashed = []
    for script in sorted(BENCHMARKS.glob("bench_*.py")):
        print(f"== {script.name}{' --quick' if quick else ''}", flush=True)
        start = time.perf_counter()
        exit_code = subprocess.run([sys.executable, str(script), *(["--quick"] if quick else [])]).returncode
        status = "done" if exit_code == 0 else f"CRASHED (exit {exit_code})"
        print(f"== {script.name}: {status} in {time.perf_counter() - start:.1f} s\n", flush=True)
        if exit_code != 0:
            crashed.append(script.name)
    if crashed:
        print(f"benchmarks that crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
