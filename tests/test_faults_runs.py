"""Fault injection, runs: output directories that cannot be written or replaced, --overwrite that fails or is
killed, two runs at once, damaged checkpoints, a full disk while saving, Ctrl-C, and the output files of generate,
classify and eval (inputs, hard links, immutable places, resumed settings). Each fault is caused for real."""

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmtool import checkpoints, config, finetuning
from llmtool.errors import Interrupted, LlmtoolError, SettingError, UsageError

from conftest import ROOT, one_error_line


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def small(tiny_gpt2, out, *extra):
    """A few-second causal-LM run on the tiny GPT-2."""
    return config.load_recipe(ROOT / "recipes/causal-lm.yaml", [
        f"model.name={tiny_gpt2}", "data.max_train_samples=160", "data.validation_split=0", "train.batch_size=8",
        "train.log_every=1", "train.lr=1e-3", f"output_dir={out}", *extra])


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def losses(out: Path) -> list[float]:
    with (out / "metrics.csv").open(newline="") as handle:
        return [float(r["train_loss"]) for r in csv.DictReader(handle) if r["train_loss"]]


class StopAt(finetuning.Progress):
    """Ctrl-C (KeyboardInterrupt) when the loop reaches a step."""

    def __init__(self, at_step):
        self.at_step = at_step
        self.messages = []

    def step(self, step, loss, lr, tokens_per_second):
        if step == self.at_step:
            raise KeyboardInterrupt

    def message(self, text):
        self.messages.append(text)


@pytest.fixture
def llmtool_process():
    """Start `python -m llmtool ...` in the background, as a user would (Ctrl-C delivered as SIGINT even where the
    test runner itself was started in the background, which makes children ignore SIGINT); killed at the end."""
    started = []

    def start(*args):
        env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
        env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        process = subprocess.Popen([sys.executable, "-m", "llmtool", *map(str, args)], cwd=ROOT, env=env,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for(condition, process, seconds=120):
    deadline = time.time() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


# ---------------------------------------------------------------- output directories


def test_output_path_that_is_a_file_is_refused_before_anything_loads(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("keep")
    recipe = small(tmp_path / "no-model", target)  # the model path is bad too: the output check comes first
    with pytest.raises(UsageError, match=f"output directory '{target}' is a file"):
        finetuning.finetune(recipe)
    assert target.read_text() == "keep"


def test_output_under_a_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UsageError, match="cannot be made: '.*plain' is a file"):
        finetuning.finetune(small(tmp_path / "no-model", tmp_path / "plain" / "run"))


def test_unwritable_output_is_refused_before_anything_loads(tmp_path):
    # /sys refuses new files even to root, so this fault is real on any Linux machine.
    if not Path("/sys").is_dir():
        pytest.skip("no /sys on this platform")
    with pytest.raises(UsageError, match="'/sys/llmtool-test-run' is not writable"):
        finetuning.finetune(small(tmp_path / "no-model", "/sys/llmtool-test-run"))


@pytest.fixture
def immutable():
    """Make a file or directory immutable (chattr +i: not even root may change it), undone after the test; skipped
    where the tool or the file system lacks the flag."""
    made = []

    def make(path: Path) -> Path:
        done = (subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
                if shutil.which("chattr") else None)
        if done is None or done.returncode != 0:
            pytest.skip(f"cannot make '{path}' immutable here ({done.stderr.strip() if done else 'no chattr'})")
        made.append(path)
        return path

    yield make
    for path in reversed(made):
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_an_output_directory_that_cannot_be_replaced_is_refused_before_anything_loads(tmp_path, tiny_gpt2,
                                                                                     immutable):
    out = tmp_path / "run"
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=1"))
    before = snapshot(out)
    immutable(out)
    with pytest.raises(UsageError, match=f"output directory '{out}' cannot be replaced \\(Operation not permitted\\)"):
        finetuning.finetune(small(tmp_path / "no-model", out), overwrite=True)  # the output is checked first
    assert snapshot(out) == before


def test_a_folder_that_takes_no_change_is_refused_before_anything_loads(tmp_path, tiny_gpt2, immutable):
    parent = tmp_path / "runs"
    out = parent / "run"
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=1"))
    (parent / ".run.lock").write_text("")  # left by a crashed run: the lock opens without making a file
    immutable(parent)
    with pytest.raises(UsageError, match=f"output directory '{out}' cannot be replaced"):
        finetuning.finetune(small(tmp_path / "no-model", out), overwrite=True)


class ImmutableAt(finetuning.Progress):
    """Makes the output directory immutable when the loop reaches a step: after every check, before the swap."""

    def __init__(self, at_step, out, make):
        self.at_step, self.out, self.make = at_step, out, make

    def step(self, step, loss, lr, tokens_per_second):
        if step == self.at_step:
            self.make(self.out)


def test_a_finished_run_that_cannot_replace_the_old_one_is_kept_beside_it(tmp_path, tiny_gpt2, immutable):
    out = tmp_path / "run"
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=1"))
    before = snapshot(out)
    with pytest.raises(LlmtoolError) as failure:
        finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=3"), overwrite=True,
                            progress=ImmutableAt(2, out, immutable))
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.new-")]
    assert len(kept) == 1
    assert str(failure.value) == (f"the finished run could not take the place of '{out}' (Operation not "
                                  f"permitted); it is kept in '{kept[0]}', and the previous run is as it was")
    assert json.loads((kept[0] / "results.json").read_text())["steps"] == 3 and (kept[0] / "model.safetensors").is_file()
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", kept[0].name])  # no hidden leftovers


def test_failed_overwrite_keeps_every_file_of_the_previous_run(tmp_path, tiny_gpt2):
    out = tmp_path / "run"
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=4", "train.save_every=2"))
    before = snapshot(out)
    assert "model.safetensors" in before and "checkpoints/step-0000002/manifest.json" in before
    with pytest.raises(Interrupted, match=f"interrupted at step 3 of 6; the previous run in '{out}' is kept"):
        finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=6", "train.save_every=2"), overwrite=True,
                            progress=StopAt(3))
    assert snapshot(out) == before  # byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging, no lock left behind


def test_killed_overwrite_keeps_the_previous_run_and_the_next_run_cleans_up(tmp_path, tiny_gpt2, llmtool_process):
    out = tmp_path / "run"
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=2"))
    before = snapshot(out)
    process = llmtool_process("finetune", "recipes/causal-lm.yaml", f"model.name={tiny_gpt2}", "-o", out,
                              "--overwrite", "train.max_steps=5000", "train.save_every=3", "data.validation_split=0")
    incoming = tmp_path / ".run.incoming" / "checkpoints"
    wait_for(lambda: any(incoming.glob("step-*")), process)
    process.kill()
    process.communicate()
    assert snapshot(out) == before
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=3"), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert snapshot(out) != before and (out / "model.safetensors").is_file()


def test_a_second_run_into_the_same_directory_is_refused_and_a_killed_one_leaves_no_stuck_lock(tmp_path, tiny_gpt2,
                                                                                              llmtool_process):
    out = tmp_path / "run"
    first = llmtool_process("finetune", "recipes/causal-lm.yaml", f"model.name={tiny_gpt2}", "-o", out,
                            "train.max_steps=5000", "train.save_every=null", "data.validation_split=0")
    wait_for(lambda: (out / "metrics.csv").exists(), first)
    with pytest.raises(LlmtoolError, match=f"another llmtool run \\(pid {first.pid}\\) is writing to '{out}'"):
        finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=2"), overwrite=True)
    first.kill()
    first.communicate()
    assert (tmp_path / ".run.lock").exists()  # a crashed run's lock file stays, but the OS dropped its lock
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=2"), overwrite=True)
    assert (out / "model.safetensors").is_file()


# ---------------------------------------------------------------- checkpoints


def test_resume_skips_a_damaged_latest_checkpoint_and_stays_exact(tmp_path, tiny_gpt2):
    common = ["train.max_steps=12", "train.save_every=4"]
    finetuning.finetune(small(tiny_gpt2, tmp_path / "whole", *common))
    broken = tmp_path / "broken"
    with pytest.raises(Interrupted):
        finetuning.finetune(small(tiny_gpt2, broken, *common), progress=StopAt(11))
    newest = checkpoints.latest(broken)
    assert newest.name == "step-0000008"
    weights = newest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit in the middle: same size, different content
    weights.write_bytes(bytes(data))
    progress = StopAt(None)
    result = finetuning.finetune(small(tiny_gpt2, broken, *common), resume=True, progress=progress)
    assert any("step-0000008' is damaged (model.safetensors does not match its checksum); skipping it" in m
               for m in progress.messages)
    assert result.resumed_from == 4 and result.steps == 12
    assert losses(broken) == losses(tmp_path / "whole")


def test_checkpoint_problems_are_named(tmp_path, tiny_gpt2):
    out = tmp_path / "run"
    finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=5", "train.save_every=2"))
    first, second = checkpoints.listed(out)
    assert checkpoints.problem(first) is None and checkpoints.problem(second) is None
    (second / "optimizer.pt").write_bytes((second / "optimizer.pt").read_bytes()[:100])
    assert "optimizer.pt has 100 bytes" in checkpoints.problem(second)
    (first / "scheduler.pt").unlink()
    assert checkpoints.problem(first) == "scheduler.pt is missing"
    with pytest.raises(LlmtoolError, match="nothing to resume: .* \\(every checkpoint there is damaged\\)"):
        finetuning.finetune(small(tiny_gpt2, out, "train.max_steps=5", "train.save_every=2"), resume=True)


@pytest.fixture
def small_disk(tmp_path):
    """A size-limited tmpfs, mounted for the test (needs root and mount rights; skipped elsewhere)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()

    def mount(size_bytes: int) -> Path:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'mount failed'})")
        return mount_point

    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        pytest.skip("a size-limited directory needs root on Linux (tmpfs)")
    yield mount
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_full_disk_while_saving_keeps_the_last_good_checkpoint_and_says_how_to_resume(tmp_path, tiny_gpt2,
                                                                                    small_disk, run_cli,
                                                                                    monkeypatch):
    probe = tmp_path / "probe"
    finetuning.finetune(small(tiny_gpt2, probe, "train.max_steps=3", "train.save_every=2"))
    checkpoint_bytes = sum(p.stat().st_size for p in checkpoints.latest(probe).rglob("*") if p.is_file())
    disk = small_disk(int(checkpoint_bytes * 1.6))  # room for one checkpoint and the logs, not two checkpoints
    out = disk / "run"
    monkeypatch.delenv("LLMTOOL_DEBUG")
    args = ["finetune", "recipes/causal-lm.yaml", f"model.name={tiny_gpt2}", "data.max_train_samples=160",
            "data.validation_split=0", "train.batch_size=8", "train.max_steps=8", "train.save_every=2",
            "train.keep_checkpoints=2", "-o", out]
    line = one_error_line(run_cli(*args), 1)
    assert line.startswith("Error: the disk is full: checkpoint step-0000004 could not be written")
    assert "the last good checkpoint is '" in line and "step-0000002'" in line
    assert line.endswith(f"continue with: llmtool finetune recipes/causal-lm.yaml model.name={tiny_gpt2} "
                         "data.max_train_samples=160 data.validation_split=0 train.batch_size=8 train.max_steps=8 "
                         f"train.save_every=2 train.keep_checkpoints=2 -o {out} --resume")
    root = out / checkpoints.CHECKPOINTS
    assert sorted(p.name for p in root.iterdir()) == ["step-0000002"]  # the partial one is gone
    assert checkpoints.problem(root / "step-0000002") is None


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EIO, "I/O")])
def test_a_failed_write_with_a_checkpoint_to_go_on_from_is_resumable(tmp_path, error):
    kept = tmp_path / "checkpoints" / "step-0000002"
    failure = checkpoints.write_failure(error, "checkpoint step-0000004", tmp_path, kept)
    assert failure.resumable and f"the last good checkpoint is '{kept}'" in str(failure)
    lost = checkpoints.write_failure(error, "the final model", tmp_path, None)
    assert not lost.resumable and "no checkpoint of the run is kept" in str(lost)
    if error.errno == errno.ENOSPC:
        assert str(failure).endswith("Free some space, then resume from it")
        assert str(lost).endswith("Free some space, then run again")


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_is_one_line_with_where_it_stopped_and_how_to_resume(tmp_path, tiny_gpt2, llmtool_process):
    out = tmp_path / "run"
    args = ["finetune", "recipes/causal-lm.yaml", f"model.name={tiny_gpt2}", "train.max_steps=5000",
            "train.save_every=2", "data.validation_split=0", "data.max_train_samples=200", "-o", out]
    process = llmtool_process(*args)
    wait_for(lambda: checkpoints.latest(out) is not None, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("Error: interrupted at step ") and " of 5000; the last checkpoint is '" in last
    assert last.endswith(f"continue with: llmtool finetune recipes/causal-lm.yaml model.name={tiny_gpt2} "
                         f"train.max_steps=5000 train.save_every=2 data.validation_split=0 "
                         f"data.max_train_samples=200 -o {out} --resume")
    assert checkpoints.problem(checkpoints.latest(out)) is None


# ---------------------------------------------------------------- generate --output


def test_generate_killed_mid_file_resumes_to_the_uninterrupted_file(tmp_path, tiny_gpt2, llmtool_process, run_cli):
    lines = [line for line in (ROOT / "data" / "corpus.txt").read_text(encoding="utf-8").splitlines() if line][:300]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(" ".join(line.split()[:4]) for line in lines) + "\n", encoding="utf-8")
    args = ["generate", "--model", tiny_gpt2, "--file", prompts, "--batch-size", "2", "--max-new-tokens", "6",
            "--do-sample", "--seed", "5"]
    whole = tmp_path / "whole.jsonl"
    assert run_cli(*args, "-o", whole).exit_code == 0
    out = tmp_path / "out.jsonl"
    process = llmtool_process(*args, "-o", out)
    wait_for(lambda: out.exists() and out.stat().st_size > 5000, process)
    process.kill()  # no chance to finish a line or close the file
    process.communicate()
    assert 0 < len(out.read_bytes().splitlines()) < 300
    resumed = run_cli(*args, "-o", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert out.read_bytes() == whole.read_bytes()


# ---------------------------------------------------------------- output files of generate, classify and eval


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


@pytest.fixture
def notes(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("".join(f"the film was good number {i}\n" for i in range(12)), encoding="utf-8")
    return path


def link(target, name, hard=True):
    """Another name for `target`; skipped where the file system cannot make one."""
    try:
        if hard:
            os.link(target, name)
        else:
            name.symlink_to(target)
    except OSError as err:
        pytest.skip(f"cannot make a {'hard' if hard else 'symbolic'} link here ({err.strerror or err})")
    return name


def verb_args(verb, models, data, output):
    """A short run of `verb` that reads `data` and writes `output`."""
    if verb == "generate":
        return ["generate", "--model", models("gpt2"), "--file", data, "--max-new-tokens", "2", "-o", output]
    if verb == "classify":
        return ["classify", "--model", models("bert"), "--file", data, "--output", output]
    return ["eval", "--model", models("gpt2"), "--data", data, "--context", "16", "-o", output]


VERBS = ["generate", "classify", "eval"]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("how", ["itself", "hard link", "symlink"])
def test_the_output_is_never_the_input(user_cli, tiny_models, notes, verb, how):
    output = {"itself": notes, "hard link": notes.with_name("link.txt"), "symlink": notes.with_name("sym.txt")}[how]
    if how != "itself":
        link(notes, output, hard=how == "hard link")
    before = notes.read_bytes()
    for overwrite in ([], ["--overwrite"]):  # not even with --overwrite
        line = one_error_line(user_cli(*verb_args(verb, tiny_models, notes, output), *overwrite), 2)
        what = {"generate": "prompt file", "classify": "input file", "eval": "data file"}[verb]
        assert f"--output '{output}' is the {what} itself" in line
        assert ("under another name" in line) == (how == "hard link")
        assert notes.read_bytes() == before


@pytest.mark.parametrize("verb", VERBS)
def test_a_file_that_is_not_empty_is_replaced_only_with_overwrite_and_never_in_place(run_cli, user_cli, tiny_models,
                                                                                   notes, verb):
    output = notes.with_name("out.json")
    output.write_text("earlier work\n")
    link(output, notes.with_name("backup.json"))  # another name for the earlier work
    line = one_error_line(user_cli(*verb_args(verb, tiny_models, notes, output)), 2)
    assert f"--output '{output}' is not empty; add --overwrite to replace it" in line
    assert output.read_text() == "earlier work\n"
    replaced = run_cli(*verb_args(verb, tiny_models, notes, output), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert output.read_text() != "earlier work\n"
    assert notes.with_name("backup.json").read_text() == "earlier work\n"  # renamed into place, not cut in place


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("fault", ["folder immutable", "file immutable"])
def test_an_unwritable_output_is_refused_before_the_model_loads(user_cli, tiny_models, notes, tmp_path, immutable,
                                                                verb, fault):
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "results.json"
    if fault == "file immutable":
        output.write_text("")
        immutable(output)
    else:
        immutable(folder)
    args = verb_args(verb, lambda family: tmp_path / "no-model", notes, output)  # the model would fail next
    line = one_error_line(user_cli(*args), 2)
    assert f"--output '{output}' cannot be written" in line and "Operation not permitted" in line


@pytest.mark.parametrize("verb", VERBS)
def test_a_directory_or_a_missing_folder_is_refused(user_cli, tiny_models, notes, tmp_path, verb):
    no_model = lambda family: tmp_path / "no-model"  # noqa: E731
    line = one_error_line(user_cli(*verb_args(verb, no_model, notes, tmp_path)), 2)
    assert f"--output '{tmp_path}' is a directory; give a file name" in line
    line = one_error_line(user_cli(*verb_args(verb, no_model, notes, tmp_path / "nowhere" / "out.json")), 2)
    assert f"directory '{tmp_path / 'nowhere'}' does not exist; create it first" in line


def test_resume_refuses_results_made_with_other_settings_unless_asked(run_cli, tiny_gpt2, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"the film was number {i}\n" for i in range(6)), encoding="utf-8")
    args = ["generate", "--model", tiny_gpt2, "--file", prompts, "--max-new-tokens", "3", "--batch-size", "2"]
    out = tmp_path / "out.jsonl"
    assert run_cli(*args, "-o", out, "--do-sample", "--seed", "1").exit_code == 0
    settings = out.with_name("out.jsonl.settings.json")
    made_with = json.loads(settings.read_text())["made_with"]
    assert [entry["from_record"] for entry in made_with] == [1]
    assert made_with[0]["settings"]["model"] == str(tiny_gpt2) and made_with[0]["settings"]["seed"] == 1
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:2]))  # a run stopped after two prompts

    refused = run_cli(*args, "-o", out, "--resume", "--do-sample", "--seed", "2", "--temperature", "0.5")
    assert isinstance(refused.exception, SettingError)
    assert str(refused.exception) == (f"--output '{out}' holds results made with other settings: --temperature was "
                                      "1.0 and is 0.5 now, --seed was 1 and is 2 now; resume with the settings they "
                                      "were made with, or add --mix-settings to add results made with these")
    greedy = run_cli(*args, "-o", out, "--resume")
    assert "other settings: --do-sample was true and is false now, --temperature was 1.0" in str(greedy.exception)
    assert len(out.read_bytes().splitlines()) == 2

    mixed = run_cli(*args, "-o", out, "--resume", "--mix-settings")
    assert mixed.exit_code == 0, mixed.output
    assert len(out.read_bytes().splitlines()) == 6
    made_with = json.loads(settings.read_text())["made_with"]
    assert [entry["from_record"] for entry in made_with] == [1, 3]
    assert made_with[1]["settings"]["do_sample"] is False


def test_resume_refuses_results_made_by_another_model(run_cli, tiny_gpt2, tiny_models, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\nthree\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert run_cli("generate", "--model", tiny_gpt2, "--file", prompts, "--max-new-tokens", "2",
                   "-o", out).exit_code == 0
    out.write_bytes(out.read_bytes().splitlines(keepends=True)[0])
    other = tiny_models("t5")
    refused = run_cli("generate", "--model", other, "--file", prompts, "--max-new-tokens", "2", "-o", out, "--resume")
    assert isinstance(refused.exception, SettingError)
    assert f'--model was "{tiny_gpt2}" and is "{other}" now;' in str(refused.exception)
    assert len(out.read_bytes().splitlines()) == 1


def test_resume_without_a_record_of_the_settings_is_refused_unless_asked(run_cli, tiny_gpt2, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\nthree\n", encoding="utf-8")
    args = ["generate", "--model", tiny_gpt2, "--file", prompts, "--max-new-tokens", "2"]
    out = tmp_path / "out.jsonl"
    assert run_cli(*args, "-o", out).exit_code == 0
    out.write_bytes(out.read_bytes().splitlines(keepends=True)[0])
    out.with_name("out.jsonl.settings.json").unlink()
    refused = run_cli(*args, "-o", out, "--resume")
    assert "holds results without a record of the settings they were made with" in str(refused.exception)
    assert "add --mix-settings to continue it anyway" in str(refused.exception)
    assert run_cli(*args, "-o", out, "--resume", "--mix-settings").exit_code == 0
    assert len(out.read_bytes().splitlines()) == 3


# ---------------------------------------------------------------- two writers of one results file


@pytest.fixture
def lock_holder():
    """Another process that holds an output's lock as an llmtool run does (OutputLock), until it is killed."""
    started = []

    def hold(output):
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from pathlib import Path; from llmtool.output_lock import "
             "OutputLock; assert OutputLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(600)",
             str(output)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline() == "held\n"
        return process

    yield hold
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("verb", VERBS)
def test_a_second_writer_of_a_results_file_is_refused_and_a_killed_one_leaves_no_stuck_lock(
        run_cli, user_cli, tiny_models, notes, lock_holder, verb):
    output = notes.with_name("out.jsonl")
    output.write_text("earlier work\n")
    holder = lock_holder(output)
    # --overwrite would replace the file and generate's --resume read it: the lock comes before either, and before
    # the model loads (there is none here).
    again = ["--resume"] if verb == "generate" else ["--overwrite"]
    no_model = lambda family: notes.with_name("no-model")  # noqa: E731
    line = one_error_line(user_cli(*verb_args(verb, no_model, notes, output), *again), 1)
    assert line == (f"Error: --output '{output}' is being written by another llmtool run (pid {holder.pid}); wait for "
                    "it to finish, or choose another --output")
    assert output.read_text() == "earlier work\n"
    assert sorted(p.name for p in notes.parent.iterdir()) == [".out.jsonl.lock", "notes.txt", "out.jsonl"]

    holder.kill()  # a crashed writer: its lock file stays, its lock goes with it
    holder.communicate()
    replaced = run_cli(*verb_args(verb, tiny_models, notes, output), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert output.read_text() != "earlier work\n"
    assert not output.with_name(".out.jsonl.lock").exists()  # a run that ends removes its lock file


def test_generate_into_a_file_another_generate_is_writing_is_refused(tmp_path, tiny_gpt2, llmtool_process, user_cli):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"the film was number {i}\n" for i in range(2000)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["generate", "--model", tiny_gpt2, "--file", prompts, "--max-new-tokens", "8", "--batch-size", "1", "-o", out]
    first = llmtool_process(*args)
    wait_for(lambda: out.exists() and out.stat().st_size > 0, first)
    for again in ([], ["--overwrite"], ["--resume"]):
        line = one_error_line(user_cli(*args, *again), 1)
        assert f"'{out}' is being written by another llmtool run (pid {first.pid})" in line
    first.kill()
    first.communicate()
    written = out.read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in written if line.endswith(b"\n")]
    assert [r["prompt"] for r in records] == [f"the film was number {i}" for i in range(len(records))]  # one writer
