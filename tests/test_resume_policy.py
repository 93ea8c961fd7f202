"""A resume continues the same run, or says why it cannot: settings that change what trains are refused (one line
naming the setting, the value the run was trained with and the new one; nothing written), a longer run goes on to
its new end, and the saved recipe always describes the saved model."""

import pytest
import yaml

from llmtool import checkpoints, config, distillation, finetuning
from llmtool.errors import UsageError

from conftest import ROOT, one_error_line


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


COMMON = ["data.max_train_samples=96", "data.validation_split=0", "train.batch_size=8", "train.log_every=1",
          "train.lr=1e-3", "train.save_every=2"]


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def recorded(directory) -> dict:
    return yaml.safe_load((directory / "recipe.yaml").read_text())


@pytest.fixture
def finished_run(tiny_gpt2, tmp_path):
    """A finished 4-step finetune run of the tiny GPT-2 at lr 1e-3, checkpointed at step 2, and the CLI arguments
    that made it."""
    out = tmp_path / "run"
    args = ["finetune", "recipes/causal-lm.yaml", f"model.name={tiny_gpt2}", *COMMON, "train.max_steps=4", "-o", out]
    finetuning.finetune(config.load_recipe(ROOT / args[1], args[2:-2], output_dir=str(out)))
    return out, args


def test_a_resume_with_another_learning_rate_is_refused_and_writes_nothing(finished_run, run_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    out, args = finished_run
    before = snapshot(out)
    line = one_error_line(run_cli(*args, "train.lr=1e-2", "--resume"), 2)
    assert f"cannot resume with train.lr 0.01: the run in '{out}' was trained with 0.001;" in line
    assert "start a new run (--overwrite, or another output_dir)" in line
    assert snapshot(out) == before
    assert recorded(out)["train"]["lr"] == 1e-3


def test_every_refused_setting_is_named_at_once(finished_run, run_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    out, args = finished_run
    line = one_error_line(run_cli(*args, "train.seed=7", "model.lora=true", "train.log_every=5", "--resume"), 2)
    assert "cannot resume with model.lora {" in line and ", train.seed 7: the run" in line
    assert "was trained with model.lora null, train.seed 42;" in line
    assert "log_every" not in line  # how often it logs may change


def test_a_shorter_run_is_refused_and_the_same_length_finishes_the_same_model(finished_run, run_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    out, args = finished_run
    before = snapshot(out)
    line = one_error_line(run_cli(*args, "train.max_steps=3", "--resume"), 2)
    assert f"cannot resume with train.max_steps 3: the run in '{out}' was trained with 4; a resume may only " \
           "raise train.max_steps or train.epochs" in line
    assert snapshot(out) == before
    again = run_cli(*args, "train.log_every=2", "--resume", "--json")  # cadence may change; the length is the same
    assert again.exit_code == 0, again.output
    assert '"resumed_from": 2' in again.stdout and '"steps": 4' in again.stdout
    assert (out / "model.safetensors").read_bytes() == before["model.safetensors"]  # bit for bit on the CPU
    assert recorded(out)["train"]["log_every"] == 2


def test_a_distill_resume_with_more_steps_trains_on_and_records_them(tiny_gpt2, tmp_path):
    out = tmp_path / "student"
    common = [f"teacher.name={tiny_gpt2}", "student.layers=[1]", *COMMON, "data.max_train_samples=200",
              "data.validation_split=0.1", "data.max_eval_samples=16", f"output_dir={out}"]
    first = distillation.distill(config.load_recipe(ROOT / "recipes/distill-gpt2.yaml", [*common, "train.max_steps=4"],
                                                    verb="distill"))
    assert first.steps == 4 and recorded(out)["train"]["max_steps"] == 4
    longer = distillation.distill(config.load_recipe(ROOT / "recipes/distill-gpt2.yaml",
                                                     [*common, "train.max_steps=8"], verb="distill"), resume=True)
    assert longer.resumed_from == 2 and longer.steps == 8
    assert recorded(out)["train"]["max_steps"] == 8
    newest = checkpoints.latest(out)
    assert newest.name == "step-0000006" and recorded(newest)["train"]["max_steps"] == 8  # the next resume's record
    with pytest.raises(UsageError, match=r"cannot resume with distill.temperature 4.0: .* was trained with 2.0;"):
        distillation.distill(config.load_recipe(ROOT / "recipes/distill-gpt2.yaml",
                                                [*common, "train.max_steps=8", "distill.temperature=4"],
                                                verb="distill"), resume=True)


def test_the_policy_is_over_every_key_of_the_resolved_recipe():
    trained = {"output_dir": "runs/a", "model": {"name": "m", "lora": {"r": 8, "merge": False}},
               "train": {"max_steps": 10, "epochs": 3, "lr": 1e-3, "save_every": 5}, "new_section": {"x": 1}}
    allowed = {"output_dir": "/abs/runs/a", "model": {"name": "m", "lora": {"r": 8, "merge": True}},
               "train": {"max_steps": 20, "epochs": 4, "lr": 1e-3, "save_every": None}, "new_section": {"x": 1}}
    assert config.resume_conflicts(trained, allowed) == []
    refused = {**allowed, "train": {**allowed["train"], "max_steps": None}, "new_section": {"x": 2}}
    assert config.resume_conflicts(trained, refused) == [("train.max_steps", 10, None), ("new_section.x", 1, 2)]
