"""LoRA through peft: only the adapters (and a classifier's head) train, the base stays bit-identical, the merged
model equals the adapter model, resume is exact, and an adapter directory is a model to every verb."""

import csv
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from llmtool import checkpoints, config, finetuning, lora, models, runlog
from llmtool.errors import Interrupted, LlmtoolError, UsageError, naming

from conftest import ROOT, one_error_line

SMALL = ["data.max_train_samples=160", "data.max_eval_samples=32", "train.batch_size=8", "train.lr=5e-3",
         "train.log_every=1", "train.save_every=null"]


def lora_recipe(out, base, *overrides, recipe="lora-gpt2.yaml"):
    return config.load_recipe(ROOT / "recipes" / recipe, [f"model.name={base}", f"output_dir={out}", *SMALL,
                                                          *overrides])


def train_losses(out):
    with (out / runlog.METRICS_CSV).open(newline="") as handle:
        return [float(r["train_loss"]) for r in csv.DictReader(handle) if r["train_loss"]]


class Keep(dict):
    """Catches the trained model when the final directory is written."""


@pytest.fixture
def trained_model(monkeypatch):
    kept = Keep()
    real = lora.save_extra

    def keep(model, directory, merge, tokenizer):
        kept["model"] = model
        kept["trainable"] = {n for n, p in model.named_parameters() if p.requires_grad}  # before any merge
        real(model, directory, merge, tokenizer)

    monkeypatch.setattr(lora, "save_extra", keep)
    return kept


def test_only_the_adapters_train_and_the_base_stays_bit_identical(tmp_path, tiny_gpt2, trained_model):
    r = 4
    # 4 epochs of the same 64 rows: each epoch's mean loss is comparable with the others
    recipe = lora_recipe(tmp_path / "run", tiny_gpt2, f"model.lora.r={r}", "model.lora.merge=false",
                         "model.lora.dropout=0", "data.max_train_samples=64", "train.max_steps=32",
                         "train.log_every=8", "train.lr=2e-2", "train.warmup_ratio=0", "data.validation_split=0")
    result = finetuning.finetune(recipe)
    base = json.loads((tiny_gpt2 / "config.json").read_text())
    d, layers = base["n_embd"], base["n_layer"]
    assert result.trainable_parameters == layers * r * (d + 3 * d)  # c_attn: d -> 3d, A is r x d, B is 3d x r

    model = trained_model["model"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    original = load_file(tiny_gpt2 / "model.safetensors")
    frozen = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
              for n, p in model.named_parameters() if not p.requires_grad}
    compared = [n for n in frozen if n in original]
    assert len(compared) >= len(original) - 1  # every base weight (GPT-2 ties lm_head to the embeddings)
    assert all(torch.equal(frozen[n], original[n]) for n in compared)

    by_epoch = train_losses(tmp_path / "run")  # a random tiny base: the adapters alone move it slowly, but surely
    assert len(by_epoch) == 4 and all(a > b for a, b in zip(by_epoch, by_epoch[1:])) and by_epoch[-1] < by_epoch[0] - 0.02
    out = tmp_path / "run"
    saved = load_file(out / lora.ADAPTER_WEIGHTS)
    assert saved and all("lora_" in k for k in saved)  # the adapter alone: no base weight is written
    assert not (out / "model.safetensors").exists() and not (out / lora.MERGED).exists()


def test_merged_model_equals_the_adapter_model(tmp_path, tiny_gpt2):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    finetuning.finetune(lora_recipe(out, tiny_gpt2, "train.max_steps=6"))
    ids = torch.randint(5, 500, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(out / lora.MERGED).eval()(ids).logits
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_gpt2), out).eval()
        unmerged = adapted(ids).logits
        plain_base = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()(ids).logits
        ours = models.load_model(str(out), device="cpu", dtype="fp32").model(ids).logits  # the verbs' loader
    assert torch.allclose(merged, unmerged, atol=1e-5, rtol=0)
    assert torch.allclose(ours, unmerged, atol=1e-5, rtol=0)
    assert not torch.allclose(plain_base, unmerged, atol=1e-3)  # the adapter did change the model


def test_lora_resume_after_interruption_is_exact(tmp_path, tiny_gpt2):
    common = ["train.max_steps=10", "train.save_every=4", "train.eval_every=5", "model.lora.merge=false"]

    class StopAt(runlog.Progress):
        def step(self, step, loss, lr, tokens_per_second):
            if step == 6:
                raise KeyboardInterrupt

    finetuning.finetune(lora_recipe(tmp_path / "whole", tiny_gpt2, *common))
    broken = lora_recipe(tmp_path / "broken", tiny_gpt2, *common)
    with pytest.raises(Interrupted, match="interrupted at step 6 of 10"):
        finetuning.finetune(broken, progress=StopAt())
    last = checkpoints.latest(tmp_path / "broken")
    assert last.name == "step-0000004"
    assert (last / lora.ADAPTER_WEIGHTS).exists() and not (last / "model.safetensors").exists()  # what trains
    result = finetuning.finetune(broken, resume=True)
    assert result.resumed_from == 4
    assert train_losses(tmp_path / "broken") == train_losses(tmp_path / "whole")
    a, b = (load_file(tmp_path / run / lora.ADAPTER_WEIGHTS) for run in ("whole", "broken"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lora_classifier_trains_its_head_and_classifies_from_the_adapter(tmp_path, tiny_bert, run_cli,
                                                                         trained_model):
    out = tmp_path / "cls"
    recipe = config.load_recipe(ROOT / "recipes/lora-sentiment.yaml", [
        f"model.name={tiny_bert}", f"output_dir={out}", "data.max_train_samples=160", "data.max_eval_samples=32",
        "train.batch_size=16", "train.max_steps=8", "model.lora.r=2",
        "model.new_head=true"])  # the fixture is a classifier for LABEL_0/1
    finetuning.finetune(recipe)
    trainable = trained_model["trainable"]
    assert any("classifier" in n and "modules_to_save" in n for n in trainable)  # the new head trains
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)
    texts = ["The pizza was fresh and the staff were kind.", "The film was a waste of two hours."]
    from_adapter = run_cli("classify", "--model", out, "--json", "--all-scores", *texts)
    from_merged = run_cli("classify", "--model", out / lora.MERGED, "--json", "--all-scores", *texts)
    assert from_adapter.exit_code == 0, from_adapter.output
    a = [json.loads(line) for line in from_adapter.stdout.splitlines()]
    b = [json.loads(line) for line in from_merged.stdout.splitlines()]
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert set(a[0]["scores"]) == {"positive", "negative"}  # the adapter's own label names
    for x, y in zip(a, b):
        assert x["scores"] == pytest.approx(y["scores"], abs=1e-5)


def test_generate_and_eval_take_an_adapter_directory(tmp_path, tiny_gpt2, run_cli):
    out = tmp_path / "run"
    finetuning.finetune(lora_recipe(out, tiny_gpt2, "train.max_steps=4"))
    from_adapter = run_cli("generate", "--model", out, "The quick brown fox", "--max-new-tokens", "8")
    from_merged = run_cli("generate", "--model", out / lora.MERGED, "The quick brown fox", "--max-new-tokens", "8")
    assert from_adapter.exit_code == 0, from_adapter.output
    assert from_adapter.stdout == from_merged.stdout
    scored = run_cli("eval", "--model", out, "--metric", "perplexity", "--context", "32", "--json")
    merged = run_cli("eval", "--model", out / lora.MERGED, "--metric", "perplexity", "--context", "32", "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["results"][0]["scores"]["perplexity"] == pytest.approx(
        json.loads(merged.stdout)["results"][0]["scores"]["perplexity"], rel=1e-5)


def test_an_adapter_whose_base_moved_needs_base_model(tmp_path, tiny_gpt2, run_cli, monkeypatch):
    base = tmp_path / "base"
    shutil.copytree(tiny_gpt2, base)
    out = tmp_path / "run"
    finetuning.finetune(lora_recipe(out, base, "train.max_steps=2", "model.lora.merge=false"))
    recorded = json.loads((out / lora.ADAPTER_CONFIG).read_text())["base_model_name_or_path"]
    assert recorded == str(base.resolve())  # absolute: found from any working directory
    moved = tmp_path / "moved"
    base.rename(moved)
    monkeypatch.delenv("LLMTOOL_DEBUG")
    result = run_cli("generate", "--model", out, "Hello", "--max-new-tokens", "2")
    line = one_error_line(result, 2)
    assert str(base.resolve()) in line and "--base-model" in line
    again = run_cli("generate", "--model", out, "--base-model", moved, "Hello", "--max-new-tokens", "2")
    assert again.exit_code == 0, again.output


def test_lora_bad_settings_are_one_line_each(tmp_path, tiny_gpt2, run_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    args = ["finetune", ROOT / "recipes/lora-gpt2.yaml", f"model.name={tiny_gpt2}", f"output_dir={tmp_path / 'x'}",
            "train.max_steps=2", *SMALL]
    result = run_cli(*args, "model.lora.r=0", "model.lora.dropout=2")
    line = one_error_line(result, 2)
    assert "model.lora.r: must be at least 1, got 0" in line and "model.lora.dropout" in line

    result = run_cli(*args, "model.lora.target_modules=[c_atn]")
    line = one_error_line(result, 2)
    assert "model.lora.target_modules" in line and "'c_atn'" in line and "c_attn" in line
    assert not (tmp_path / "x").exists()  # refused before anything was written

    result = run_cli(*args, "model.name=null", "model.config={model_type: gpt2, n_layer: 1}")
    assert "model.lora" in one_error_line(result, 2)


def test_lora_needs_names_on_a_family_without_a_default():
    from transformers import OPTConfig, OPTForCausalLM

    model = OPTForCausalLM(OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
                                     vocab_size=50, word_embed_proj_dim=16))
    settings = config.LoraSection()
    assert lora.target_modules(model, None)  # peft's table knows OPT
    model.config.model_type = "my-own"
    with (pytest.raises(UsageError, match="k: there is no default for a my-own model; name the layers.*q_proj"),
          naming({"target_modules": "k"})):
        lora.target_modules(model, None)
    assert isinstance(settings, config.LoraSection)


def test_a_damaged_adapter_is_one_line(tmp_path, tiny_gpt2):
    out = tmp_path / "run"
    finetuning.finetune(lora_recipe(out, tiny_gpt2, "train.max_steps=2", "model.lora.merge=false"))
    (out / lora.ADAPTER_WEIGHTS).unlink()
    with pytest.raises(LlmtoolError, match="has no adapter_model.safetensors"):
        models.load_model(str(out), device="cpu")


def test_an_adapter_on_a_base_of_another_width_names_the_flag_and_the_shapes(tmp_path, tiny_gpt2, run_cli,
                                                                               monkeypatch):
    from llmtool.scratch import build_from_scratch

    out = tmp_path / "run"
    finetuning.finetune(lora_recipe(out, tiny_gpt2, "train.max_steps=1", "model.lora.merge=false"))
    settings = {**json.loads((ROOT / "tests/fixtures/configs/gpt2.json").read_text()), "n_embd": 16}
    narrow = build_from_scratch(settings, (ROOT / "data/corpus.txt").read_text().splitlines(), tmp_path / "narrow",
                                vocab_size=600, seed=0)
    monkeypatch.delenv("LLMTOOL_DEBUG")
    line = one_error_line(run_cli("generate", "--model", out, "--base-model", narrow, "Hello"), 1)
    assert line == (f"Error: adapter '{out}' does not fit the base model '{narrow}' (4 of its weights have other "
                    "shapes, e.g. transformer.h.0.attn.c_attn.lora_A: 8x32 in the adapter, 8x16 in this base); give "
                    f"the base it was trained on ('{tiny_gpt2.resolve()}') with --base-model")


def test_base_model_with_a_full_model_is_refused_by_every_verb(tmp_path, tiny_gpt2, tiny_bert, run_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    for args in (["generate", "--model", tiny_gpt2, "Hello"], ["eval", "--model", tiny_gpt2],
                 ["classify", "--model", tiny_bert, "Hello"]):
        line = one_error_line(run_cli(*args, "--base-model", tiny_gpt2), 2)
        assert line == (f"Error: --base-model applies only to a LoRA adapter; '{args[2]}' is a full model: drop "
                        "--base-model")
    recipe = run_cli("finetune", ROOT / "recipes/lora-gpt2.yaml", f"model.name={tiny_gpt2}",
                     f"model.base_model={tiny_gpt2}", f"output_dir={tmp_path / 'x'}", *SMALL, "train.max_steps=1")
    assert "model.base_model applies only to a LoRA adapter" in one_error_line(recipe, 2)
    assert not (tmp_path / "x").exists()
