"""Structured pruning: the least active layers and MLP units go, and a pruned model saves, reloads with
from_pretrained and gives the same outputs; pruning runs through `llmtool distill` (prune block or --prune)."""

import csv
import json

import pytest
import torch

from llmtool import config, distillation, models, pruning, runlog
from llmtool.errors import Interrupted

from conftest import ROOT, one_error_line


def train_losses(out):
    with (out / runlog.METRICS_CSV).open(newline="") as handle:
        return [float(r["train_loss"]) for r in csv.DictReader(handle) if r["train_loss"]]


def batches_for(model, n=3, length=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, 300, (4, length), generator=generator)
        mask = torch.ones_like(ids)
        mask[0, length // 2:] = 0  # one padded row: padding never counts
        batch = {"input_ids": ids, "attention_mask": mask}
        if model.config.is_encoder_decoder:
            batch["labels"] = torch.randint(5, 300, (4, 6), generator=generator)
        out.append(batch)
    return out


@pytest.mark.parametrize("family", ["gpt2", "bert", "distilbert", "t5"])
def test_a_pruned_model_saves_reloads_and_gives_the_same_outputs(family, tiny_models, tmp_path):
    model = models.load_model(str(tiny_models(family)), device="cpu", dtype="fp32", allow_new_head=True).model
    batches = batches_for(model)
    pruned, kept, width = pruning.prune(model, batches, torch.device("cpu"), drop_layers=1, mlp_keep=0.5)
    assert len(kept) == 1 and pruned.config.num_hidden_layers == 1
    key = pruning.MLP_LAYOUT[family][2]
    assert getattr(pruned.config, key) == width == (128 if family == "gpt2" else 64) // 2  # GPT-2: 4 x n_embd
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    pruned.save_pretrained(tmp_path / "pruned")
    reloaded = type(pruned).from_pretrained(tmp_path / "pruned").eval()
    pruned.eval()
    with torch.no_grad():
        for batch in batches:
            assert torch.allclose(pruned(**batch).logits, reloaded(**batch).logits, atol=1e-6)


def test_pruning_drops_the_least_active_layer_and_units(tiny_gpt2):
    model = models.load_model(str(tiny_gpt2), device="cpu", dtype="fp32").model
    with torch.no_grad():
        block = model.transformer.h[0]
        for module in (block.attn.c_proj, block.mlp.c_proj):  # layer 0 now passes its input through unchanged
            module.weight.zero_()
            module.bias.zero_()
        silent = [3, 10, 40]
        mlp = model.transformer.h[1].mlp.c_fc  # three units of layer 1 never fire (GELU(0) = 0)
        mlp.weight[:, silent] = 0
        mlp.bias[silent] = 0
    importance, activity = pruning.measure(model, batches_for(model), torch.device("cpu"))
    assert importance[0] == pytest.approx(0.0, abs=1e-9) and importance[1] > 0.01
    assert pruning.layers_to_keep(importance, 2, 1) == [1]
    assert all(activity[1][i] == 0 for i in silent) and all(activity[1][i] > 0 for i in range(128) if i not in silent)
    pruned, kept, width = pruning.prune(model, batches_for(model), torch.device("cpu"), drop_layers=0,
                                        mlp_keep=125 / 128)
    assert kept == [0, 1] and width == 125  # GPT-2's MLP: 4 x n_embd = 128 units
    survivors = pruned.transformer.h[1].mlp.c_fc.weight
    expected = model.transformer.h[1].mlp.c_fc.weight[:, [i for i in range(128) if i not in silent]]
    assert torch.equal(survivors, expected)  # the silent units went, the others kept their order


def test_prune_through_distill_without_recovery_saves_a_loadable_model(tiny_gpt2, tmp_path):
    out = tmp_path / "pruned"
    recipe = config.load_recipe(ROOT / "recipes/prune-gpt2.yaml", [
        f"teacher.name={tiny_gpt2}", f"output_dir={out}", "prune.recover=false", "prune.calibration_batches=2",
        "data.max_train_samples=200", "data.max_eval_samples=32", "train.batch_size=8"], verb="distill")
    result = distillation.distill(recipe)
    assert result.steps == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["n_layer"] == 1 and saved["n_inner"] == 64  # GPT-2's default n_inner is 4 x 32 = 128, halved
    reloaded = models.load_model(str(out), device="cpu", dtype="fp32")
    assert result.report["student"]["parameters"] == sum(p.numel() for p in reloaded.model.parameters())


def test_a_pruned_run_with_the_hidden_loss_resumes_exactly(tiny_gpt2, tmp_path, monkeypatch):
    """The resumed student maps its layers to the teacher layers they were pruned from (kept in its config), as the
    fresh run did; the teacher's layer 0 is made the one kept, so an even spread (layer 1) would differ."""
    monkeypatch.setattr(pruning, "layers_to_keep", lambda importance, n, drop: [0])

    def recipe(out):
        return config.load_recipe(ROOT / "recipes/prune-gpt2.yaml", [
            f"teacher.name={tiny_gpt2}", f"output_dir={out}", "prune.calibration_batches=2", "train.batch_size=8",
            "data.max_train_samples=200", "data.validation_split=0", "train.max_steps=6", "train.save_every=2",
            "train.log_every=1", "distill.hidden_loss=cosine"], verb="distill")

    class StopAt(runlog.Progress):
        def step(self, step, loss, lr, tokens_per_second):
            if step == 5:
                raise KeyboardInterrupt

    distillation.distill(recipe(tmp_path / "whole"))
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["pruned_from_layers"] == [0]
    with pytest.raises(Interrupted):
        distillation.distill(recipe(tmp_path / "broken"), progress=StopAt())
    assert distillation.distill(recipe(tmp_path / "broken"), resume=True).resumed_from == 4
    assert train_losses(tmp_path / "broken") == train_losses(tmp_path / "whole")


def test_prune_flag_and_bad_prune_settings(tiny_gpt2, run_cli, tmp_path, monkeypatch):
    args = ["distill", ROOT / "recipes/distill-gpt2.yaml", f"teacher.name={tiny_gpt2}", "data.max_train_samples=100",
            "data.max_eval_samples=16", "train.max_steps=2", "train.batch_size=8", "train.save_every=null"]
    result = run_cli(*args, "--prune", "-o", tmp_path / "flag", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "flag" / "config.json").read_text())["n_inner"] == 64  # the default: half width
    monkeypatch.delenv("LLMTOOL_DEBUG")
    bad = run_cli("distill", ROOT / "recipes/prune-gpt2.yaml", "student.layers=[0]", "prune.layers=-1",
                  "prune.mlp_keep=0", "-o", tmp_path / "bad")
    line = one_error_line(bad, 2)
    assert "prune.layers: must be at least 0" in line and "prune.mlp_keep: must be above 0.0" in line
    assert "prune: makes the student from the teacher" in line
