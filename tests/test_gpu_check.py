"""`make gpu-check` (benchmarks/gpu_check.py) without a GPU: it says so and exits 0; and its table, from fake
benchmark results and from steps that crash, hang or find the budget spent."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as when it runs as a script: results.py beside it
    return importlib.import_module("gpu_check")


def test_without_a_gpu_it_says_so_measures_nothing_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine that has one
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--json", str(tmp_path / "t.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no CUDA GPU" in done.stdout and "nothing was measured" in done.stdout
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "t.log").exists()


def write_benchmark(path: Path, *records):
    import results  # benchmarks/results.py, on the path through the gpu_check fixture

    results.write_json(str(path), "bench_fake", "cpu", list(records))
    return path


def junit(path: Path, tests: int, failures: int = 0, errors: int = 0, skipped: int = 0) -> Path:
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="{tests}" '
                    f'failures="{failures}" errors="{errors}" skipped="{skipped}"></testsuite></testsuites>')
    return path


def test_rows_carry_each_measure_with_its_target_and_verdict_and_one_row_per_failed_step(gpu_check, tmp_path):
    from results import record

    Outcome, Step = gpu_check.Outcome, gpu_check.Step
    bench = Step("fake bench", (), 60)
    tests = Step("CUDA tests", (), 60, kind="pytest")
    ran = Outcome(seconds=5, exit_code=0, limit=60)
    fake = write_benchmark(tmp_path / "fake.json",
                           record("compiled / eager, batch 1", 2.345, 2.0),
                           record("compiled / eager, batch 32", 2.5, 3.0),
                           record("LoRA / full memory", 0.31, 0.5, "<="),
                           record("fp32 tokens equal", False, True, "==", unit=""),
                           record("MFU", 0.4123, unit="%"),
                           record("MFU elsewhere", None, unit="%"))
    rows = gpu_check.step_rows(bench, ran, fake)
    assert [(r["measure"], r["value"], r["target"], r["met"]) for r in rows] == [
        ("compiled / eager, batch 1", "2.35x", ">= 2x", "yes"),
        ("compiled / eager, batch 32", "2.50x", ">= 3x", "no"),
        ("LoRA / full memory", "0.31x", "<= 0.5x", "yes"),
        ("fp32 tokens equal", "no", "yes", "no"),
        ("MFU", "41.2%", "-", "-"),
        ("MFU elsewhere", "n/a", "-", "-"),
    ]

    missing = tmp_path / "never-written.json"
    assert gpu_check.step_rows(bench, Outcome(seconds=3, exit_code=1, limit=60), missing) == [
        {"measure": "fake bench", "value": "failed (exit 1)", "target": "-", "met": "no"}]
    assert gpu_check.step_rows(bench, Outcome(seconds=60, timed_out=True, limit=60), missing)[0]["value"] == \
        "timeout (60 s)"
    assert gpu_check.step_rows(bench, Outcome(limit=4), missing)[0]["value"] == "skipped: time budget spent"
    assert gpu_check.step_rows(bench, ran, missing)[0]["value"] == "failed (no results written)"
    (tmp_path / "bad.json").write_text("{not json")
    assert gpu_check.step_rows(bench, ran, tmp_path / "bad.json")[0]["value"].startswith("unreadable results")
    assert gpu_check.step_rows(bench, ran, write_benchmark(tmp_path / "empty.json"))[0]["value"] == \
        "nothing measured"

    def tests_row(**counts):
        row, = gpu_check.step_rows(tests, ran, junit(tmp_path / "report.xml", **counts))
        return row["value"], row["met"]

    assert tests_row(tests=2) == ("2 passed", "yes")
    assert tests_row(tests=2, failures=1) == ("1 passed, 1 failed", "no")
    assert tests_row(tests=1, skipped=1) == ("0 passed, 1 skipped", "no")  # a CUDA test that did not see the GPU
    assert tests_row(tests=0) == ("0 passed", "no")

    table = gpu_check.render_table(rows).splitlines()
    assert [c.strip() for c in table[0].split("|")[1:-1]] == ["measure", "value", "target", "met"]
    assert [c.strip() for c in table[3].split("|")[1:-1]] == ["compiled / eager, batch 32", "2.50x", ">= 3x", "no"]
    assert len(table) == 2 + len(rows) and len({len(line) for line in table}) == 1  # aligned columns


def test_steps_that_crash_hang_or_find_the_budget_spent_become_rows_and_the_run_goes_on(gpu_check, tmp_path):
    Step, RESULTS = gpu_check.Step, gpu_check.RESULTS
    writes = ("import json, sys; json.dump({'measures': [{'measure': 'ratio', 'value': 1.5, 'unit': 'x', "
              "'target': 1.4, 'compare': '>=', 'met': True}]}, open(sys.argv[1], 'w'))")
    # A budget of 3 s: the hanging step's 2 s limit (or what is left, if less) leaves under a second for the last.
    steps = [Step("crashes", ("-c", "raise SystemExit(3)"), 30),
             Step("measures", ("-c", writes, RESULTS), 30),
             Step("hangs", ("-c", "import time; print('started', flush=True); time.sleep(60)"), 2),
             Step("too late", ("-c", "pass"), 30)]
    with (tmp_path / "log").open("w") as log:
        done = gpu_check.run_steps(steps, budget=3, workdir=tmp_path, log=log, min_step=1)
    statuses = [outcome.status for _, outcome, _ in done]
    assert statuses[:2] == ["failed (exit 3)", "ok"]
    assert statuses[2].startswith("timeout (") and done[2][1].seconds < 10  # killed at its limit, not left to sleep
    assert statuses[3] == "skipped: time budget spent"
    assert "started" in (tmp_path / "log").read_text()  # each step's output is logged
    rows = [row for step, outcome, results in done for row in gpu_check.step_rows(step, outcome, results)]
    assert rows == [
        {"measure": "crashes", "value": "failed (exit 3)", "target": "-", "met": "no"},
        {"measure": "ratio", "value": "1.50x", "target": ">= 1.4x", "met": "yes"},
        {"measure": "hangs", "value": statuses[2], "target": "-", "met": "no"},
        {"measure": "too late", "value": "skipped: time budget spent", "target": "-", "met": "no"},
    ]


def test_with_a_gpu_it_prints_the_table_last_and_writes_it_as_json(gpu_check, tmp_path, monkeypatch, capsys):
    Step, RESULTS = gpu_check.Step, gpu_check.RESULTS
    writes = ("import json, sys; json.dump({'measures': [{'measure': 'ratio', 'value': 0.9, 'unit': 'x', "
              "'target': 1.0, 'compare': '>=', 'met': False}]}, open(sys.argv[1], 'w'))")
    monkeypatch.setattr(gpu_check, "cuda_device", lambda: ("Fake GPU", "torch 0, CUDA 0"))
    monkeypatch.setattr(gpu_check, "STEPS", (Step("measures", ("-c", writes, RESULTS), 30),))
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--json", str(tmp_path / "out" / "check.json")])
    assert gpu_check.main() == 0  # a missed target is a result, not a failure
    printed = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in printed[-1].split("|")[1:-1]] == ["ratio", "0.90x", ">= 1x", "no"]
    assert [c.strip() for c in printed[-3].split("|")[1:-1]] == ["measure", "value", "target", "met"]
    saved = json.loads((tmp_path / "out" / "check.json").read_text())
    assert saved["gpu"] == "Fake GPU" and saved["table"] == [
        {"measure": "ratio", "value": "0.90x", "target": ">= 1x", "met": "no"}]
    assert saved["steps"][0]["name"] == "measures" and saved["steps"][0]["status"] == "ok"
    assert saved["benchmarks"]["measures"]["measures"][0]["value"] == 0.9
    assert (tmp_path / "out" / "check.log").exists()
