"""Training throughput of `llmtool finetune`, against a plain loop, against transformers' Trainer, and across its
own data options.

Usage:
  python benchmarks/bench_finetune.py             # parts a-c and e (~4 minutes on 2 idle CPU cores); d where CUDA is
  python benchmarks/bench_finetune.py --quick     # tiny models, a few steps, part d on the CPU too: a smoke run
  python benchmarks/bench_finetune.py --parts a,d --repeats 2 --json F   # some parts, best of 2; measures to F
                                                                         # (results.py; gpu_check.py runs this)

Measured side by side in one run; tokens/s counts real (non-padding) tokens, training time only:
  a) llmtool vs a plain PyTorch loop doing the same work (same model, data, batch size, steps, optimizer): the
     loop a transformers user writes from the no-trainer examples (shuffled DataLoader, DataCollatorWithPadding,
     model(**batch).loss; on a GPU under bf16 autocast, as llmtool's train.precision auto runs). Target >= 1.0x.
     Reported with and without llmtool's length grouping.
  b) causal LM on short texts (data/corpus.txt lines, ~17 tokens): packing into 64-token blocks vs padding each
     shuffled batch to its longest text. Target >= 1.5x. Also reported against llmtool's default, padding
     length-grouped batches, which removes most of the padding on its own.
  c) classification: dynamic padding + length grouping vs padding every batch to max_length (128). Reported.
  d) on CUDA (on the CPU only with --quick, on a tiny model: a code-path check): a GPT-2-124M-shaped model
     (50257-row LM head, random weights) trained as a causal LM on data/corpus.txt packed into 1024-token blocks,
     batch 8, 50 steps, bf16: llmtool (recipes/lora-gpt2.yaml with model.lora=null) against transformers'
     Trainer driven the way its run_clm.py example drives it (text dataset, tokenize, concatenate and cut into
     blocks, default_data_collator), with the same learning rate, schedule, warm-up, clipping and seed. Target
     >= 1.0x. Also llmtool's model FLOPs utilisation: 6 x parameters x tokens/s against the GPU's dense bf16
     peak (PEAK_BF16_FLOPS). Reported.
  e) masked LM (BERT, recipes/pretrain-bert.yaml) on the same short texts: packing into 64-token [CLS] ... [SEP]
     blocks vs a row per text padded to the longest of its shuffled batch. Target >= 1.5x. Also reported against
     length-grouped padding, the recipe's default.
Each configuration runs three times (--repeats), interleaved, and the best run is kept; all classification runs
share one tokenizer.

Choices for d:
- Every step of both paths is 8 full blocks (8,192 tokens, no padding), so tokens/s compare the same work. Both
  clocks run from the training loop's start to its end, first step included, and stop after the GPU is done
  (llmtool reads the last losses back; the Trainer's clock waits for the GPU).
- MFU counts 6 FLOPs per parameter per token (forward and backward of every weight matrix; the LM head is the
  tied embedding, counted once) and leaves out attention's own products (at 1024 tokens, about 15% more), as in
  the PaLM paper's definition without its attention term.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "data" / "corpus.txt"
PARTS = ("a", "b", "c", "d", "e")

CLASSIFIER = "model.config={model_type: distilbert, n_layers: 2, n_heads: 4, dim: 256, hidden_dim: 1024, max_position_embeddings: 128}"
CLASSIFIER_QUICK = "model.config={model_type: distilbert, n_layers: 1, n_heads: 2, dim: 32, hidden_dim: 64, max_position_embeddings: 128}"
DECODER = "model.config={model_type: gpt2, n_layer: 4, n_head: 4, n_embd: 256, n_positions: 128}"
DECODER_QUICK = "model.config={model_type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, n_positions: 128}"
ENCODER = ("model.config={model_type: bert, num_hidden_layers: 4, num_attention_heads: 4, hidden_size: 256, "
           "intermediate_size: 1024, max_position_embeddings: 128}")
ENCODER_QUICK = ("model.config={model_type: bert, num_hidden_layers: 1, num_attention_heads: 2, hidden_size: 32, "
                 "intermediate_size: 64, max_position_embeddings: 128}")

# Dense bf16 tensor-core peak in FLOP/s, by the name torch.cuda.get_device_name() gives: half of NVIDIA's datasheet
# figure "with sparsity" (H100 SXM and H200 SXM: 1,979 TFLOPS -> 989.5 dense). A large bf16 matrix product on
# random data reaches about 0.8 of it on an H200, so MFU near 0.8 x this would be the ceiling in practice.
PEAK_BF16_FLOPS = {"NVIDIA H200": 989.5e12, "NVIDIA H100 80GB HBM3": 989.5e12}


@dataclass(frozen=True)
class CausalPlan:
    """Part d's run: the model shape, tokens per block and blocks per step, steps, and the learning rate."""

    model_shape: dict
    vocab_rows: int | None  # embedding rows, when more than the tokenizer's vocabulary
    block: int
    batch: int
    steps: int
    lr: float = 6e-4  # GPT-2 small's pretraining rate; the run is about throughput, not the loss
    warmup_steps: int = 5


GPT2_124M = CausalPlan(dict(model_type="gpt2", n_layer=12, n_head=12, n_embd=768, n_positions=1024),
                       vocab_rows=50257, block=1024, batch=8, steps=50)
GPT2_QUICK = CausalPlan(dict(model_type="gpt2", n_layer=2, n_head=2, n_embd=128, n_positions=64),
                        vocab_rows=None, block=64, batch=4, steps=3, warmup_steps=1)


def llmtool_run(recipe_name: str, out: Path, overrides: list[str]) -> float:
    from llmtool import config, finetuning

    recipe = config.load_recipe(ROOT / "recipes" / recipe_name,
                                [*overrides, f"output_dir={out}", "train.save_every=null", "data.validation=null",
                                 "data.validation_split=0", "train.log_every=1000"])
    return finetuning.finetune(recipe, overwrite=True).tokens_per_second


def plain_loop(tokenizer_dir: Path, model_config: dict, steps: int, batch_size: int, max_length: int) -> float:
    """The hand-written baseline on the sentiment data: shuffle, pad each batch, forward, backward, step. Its
    shuffle is llmtool's ungrouped one (same seed, same rows per step), so that against llmtool without length
    grouping both runs pad and compute exactly the same batches and only the loops differ."""
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, \
        get_scheduler

    from llmtool.data import StepBatches
    from llmtool.scratch import model_config as build_config

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = datasets.load_dataset("csv", data_files=str(ROOT / "data/sentiment/train.csv"), split="train")
    names = sorted(set(rows["label"]))
    encoded = rows.map(lambda b: {**tokenizer(b["text"], truncation=True, max_length=max_length),
                                  "labels": [names.index(v) for v in b["label"]]},
                       batched=True, remove_columns=rows.column_names)
    config = build_config(model_config, tokenizer)
    config.num_labels = len(names)
    model = AutoModelForSequenceClassification.from_config(config).to(device).train()
    order = StepBatches([0] * len(encoded), batch_size, seed=42, group_by_length=False)  # the recipe's seed
    loader = torch.utils.data.DataLoader(encoded, batch_sampler=order.epoch(0),
                                         collate_fn=DataCollatorWithPadding(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=steps)
    tokens, done = 0, 0
    start = time.perf_counter()
    while done < steps:
        for batch in loader:
            tokens += int(batch["attention_mask"].sum())  # counted on the host: no wait for the GPU
            batch = batch.to(device)
            # llmtool's train.precision auto: bf16 autocast on a GPU, fp32 on the CPU
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - start)


def llmtool_causal(model_dir: Path, out: Path, plan: CausalPlan) -> float:
    """Part d through llmtool: full fine-tuning on packed corpus blocks; real tokens/s of its training loop."""
    return llmtool_run("lora-gpt2.yaml", out, [
        f"model.name={model_dir}", "model.lora=null", "data.packing=true", f"data.block_size={plan.block}",
        f"data.max_length={plan.block}", f"train.batch_size={plan.batch}", f"train.max_steps={plan.steps}",
        f"train.lr={plan.lr}", f"train.warmup_steps={plan.warmup_steps}", "train.warmup_ratio=0"])


def trainer_causal(model_dir: Path, out: Path, plan: CausalPlan) -> float:
    """Part d through transformers' Trainer, as examples/pytorch/language-modeling/run_clm.py drives it; tokens/s
    from the training loop's start (on_train_begin) to its end (on_train_end)."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments, \
        default_data_collator

    def group_texts(examples: dict) -> dict:  # run_clm.py's: concatenate, cut into blocks, drop the remainder
        concatenated = {k: list(chain(*examples[k])) for k in examples}
        total = len(concatenated["input_ids"]) // plan.block * plan.block
        blocks = {k: [t[i:i + plan.block] for i in range(0, total, plan.block)] for k, t in concatenated.items()}
        blocks["labels"] = blocks["input_ids"].copy()
        return blocks

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.start

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lines = datasets.load_dataset("text", data_files=str(CORPUS), split="train")
    tokenized = lines.map(lambda rows: tokenizer(rows["text"]), batched=True, remove_columns=["text"])
    blocks = tokenized.map(group_texts, batched=True)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=plan.batch, max_steps=plan.steps, learning_rate=plan.lr,
        lr_scheduler_type="linear", warmup_steps=plan.warmup_steps, max_grad_norm=1.0, seed=42,
        bf16=torch.cuda.is_available(), dataloader_drop_last=True, save_strategy="no", logging_strategy="no",
        report_to="none", disable_tqdm=True)
    clock = Clock()
    trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=blocks,
                      data_collator=default_data_collator, callbacks=[clock])
    trainer.train()
    if trainer.state.global_step != plan.steps:  # the ratio compares the same work, or nothing
        raise RuntimeError(f"the Trainer took {trainer.state.global_step} steps, not {plan.steps}")
    return plan.steps * plan.batch * plan.block / clock.seconds


def best_of(runs: int, run) -> float:
    return max(run() for _ in range(runs))


def verdict(ratio: float, target: float | None) -> str:
    return "" if target is None else f"  (target >= {target}x: {'met' if ratio >= target else 'NOT met'})"


# ---------------------------------------------------------------- the parts


def classification_parts(tmp: Path, parts: set[str], classifier: str, steps: int, runs: int) -> list[dict]:
    """Parts a and c: one tokenizer, then llmtool (grouped, ungrouped, padded to max_length) and the plain loop."""
    import yaml

    common = [classifier, f"train.max_steps={steps}", "train.batch_size=32", "data.max_length=128",
              "train.lr=1e-3", "train.warmup_ratio=0"]
    # One tokenizer for every run (a from-scratch run trains its own, and the WordPiece trainer's ties vary
    # between runs): then every run tokenizes, pads and computes exactly the same batches.
    llmtool_run("sentiment.yaml", tmp / "tokenizer", [*common, "train.max_steps=1"])
    common.append(f"model.tokenizer={tmp / 'tokenizer'}")
    settings = yaml.safe_load(classifier.split("=", 1)[1])
    grouped = ungrouped = plain = 0.0
    for _ in range(runs):  # interleaved, best kept
        grouped = max(grouped, llmtool_run("sentiment.yaml", tmp / "grouped", common))
        if "a" in parts:
            ungrouped = max(ungrouped, llmtool_run("sentiment.yaml", tmp / "ungrouped",
                                                   [*common, "data.group_by_length=false"]))
            plain = max(plain, plain_loop(tmp / "tokenizer", settings, steps, 32, 128))
    measures = []
    print(f"  classification ({classifier.split('=', 1)[1]}), batch 32, real tokens/s:")
    print(f"    llmtool (dynamic padding, length-grouped)  {grouped:10.0f}")
    if "a" in parts:
        print(f"    llmtool (dynamic padding, shuffled only)   {ungrouped:10.0f}")
        print(f"    plain PyTorch loop (dynamic padding)       {plain:10.0f}")
        print(f"  a) llmtool without length grouping / plain loop, identical batches: {ungrouped / plain:.2f}x"
              f"{verdict(ungrouped / plain, 1.0)}")
        print(f"     llmtool with length grouping (its default) / plain loop: {grouped / plain:.2f}x")
        measures += [record("finetune: llmtool / plain loop, classifier, same batches", ungrouped / plain, 1.0),
                     record("finetune: llmtool grouped / plain loop, classifier", grouped / plain)]
    if "c" in parts:
        padded_to_max = best_of(runs, lambda: llmtool_run("sentiment.yaml", tmp / "padmax",
                                                          [*common, "data.pad_to_max_length=true"]))
        print(f"    llmtool padded to max_length (128)         {padded_to_max:10.0f}")
        print(f"  c) dynamic padding + grouping / pad to max_length: {grouped / padded_to_max:.2f}x")
        measures.append(record("finetune: dynamic padding / pad to max_length", grouped / padded_to_max))
    return measures


def packing_part(tmp: Path, recipe: str, model: str, steps: int, runs: int) -> tuple[float, float, float]:
    """Real tokens/s of one recipe on corpus lines, best of `runs` interleaved: (packed into 64-token blocks,
    padded shuffled batches, padded length-grouped batches)."""
    common = [model, "model.vocab_size=2000", f"train.max_steps={steps}", "train.batch_size=16",
              "train.warmup_ratio=0", "data.max_length=64"]
    packed = padded = padded_grouped = 0.0
    for _ in range(runs):
        packed = max(packed, llmtool_run(recipe, tmp / "packed", [*common, "data.packing=true", "data.block_size=64"]))
        padded = max(padded, llmtool_run(recipe, tmp / "padded",
                                         [*common, "data.packing=false", "data.group_by_length=false"]))
        padded_grouped = max(padded_grouped, llmtool_run(recipe, tmp / "padded-grouped",
                                                         [*common, "data.packing=false"]))
    return packed, padded, padded_grouped


def report_packing(part: str, what: str, model: str, speeds: tuple[float, float, float]) -> list[dict]:
    packed, padded, padded_grouped = speeds
    print(f"  {what} on corpus lines ({model.split('=', 1)[1]}), batch 16, real tokens/s:")
    print(f"    packed into 64-token blocks            {packed:10.0f}")
    print(f"    padded, shuffled batches               {padded:10.0f}")
    print(f"    padded, length-grouped (the default)   {padded_grouped:10.0f}")
    print(f"  {part}) packing / padding: {packed / padded:.2f}x{verdict(packed / padded, 1.5)}")
    print(f"     packing / length-grouped padding: {packed / padded_grouped:.2f}x (grouping already removes most padding)")
    return [record(f"finetune: packing / padding, {what}", packed / padded, 1.5)]


def trainer_part(tmp: Path, plan: CausalPlan, runs: int) -> list[dict]:
    """Part d: llmtool against the Trainer on one GPT-2, and llmtool's MFU."""
    import torch

    from bench_lora import Plan, build_model

    vocab, parameters = build_model(tmp / "gpt2", Plan(plan.model_shape, plan.steps, runs, plan.vocab_rows))
    ours = theirs = 0.0
    for _ in range(runs):  # interleaved, best kept
        ours = max(ours, llmtool_causal(tmp / "gpt2", tmp / "llmtool-gpt2", plan))
        theirs = max(theirs, trainer_causal(tmp / "gpt2", tmp / "trainer-gpt2", plan))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = PEAK_BF16_FLOPS.get(device)
    mfu = 6 * parameters * ours / peak if peak else None
    shape = "GPT-2 124M" if plan is GPT2_124M else "tiny GPT-2"
    precision = "bf16" if torch.cuda.is_available() else "fp32"
    print(f"  causal LM, {shape} ({parameters / 1e6:.1f}M weights, vocab {vocab}), {plan.batch} x {plan.block}-token "
          f"blocks a step, {plan.steps} steps, {precision} on {device}, real tokens/s:")
    print(f"    llmtool                        {ours:10.0f}")
    print(f"    transformers Trainer (run_clm) {theirs:10.0f}")
    print(f"  d) llmtool / Trainer: {ours / theirs:.2f}x{verdict(ours / theirs, 1.0)}")
    if mfu is None:
        print(f"     MFU: not computed: no dense bf16 peak is known for {device} (PEAK_BF16_FLOPS)")
    else:
        print(f"     MFU of llmtool: 6 x {parameters / 1e6:.1f}M x {ours:.0f} tokens/s / {peak / 1e12:.1f} TFLOP/s "
              f"= {mfu:.1%}")
    return [record(f"finetune: llmtool / Trainer, {shape}, {precision}", ours / theirs, 1.0),
            record(f"finetune: MFU of llmtool, {shape}, {precision}", mfu, unit="%")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and a few steps: a smoke run")
    parser.add_argument("--parts", default=",".join(PARTS), help="which parts, comma-separated (default: all)")
    parser.add_argument("--repeats", type=int, help="best of this many runs (default: 3; --quick: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the measures to FILE (see results.py)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}; not {', '.join(sorted(parts - set(PARTS)))}")
    quick = args.quick
    runs = args.repeats or (1 if quick else 3)
    steps = 5 if quick else 40

    import torch

    cuda = torch.cuda.is_available()
    if "d" in parts and not cuda and not quick:
        print("d) skipped: it measures a GPU (--quick runs it on a tiny model on the CPU, as a code-path check)")
        parts.discard("d")
    print(f"machine load before the run (1-minute average): {os.getloadavg()[0]:.2f}", flush=True)
    print(f"bench_finetune: parts {', '.join(sorted(parts))}; {steps} steps per run in a-c and e, best of {runs}, "
          f"{'CUDA' if cuda else f'CPU threads {torch.get_num_threads()}'}", flush=True)
    measures = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if parts & {"a", "c"}:
            measures += classification_parts(tmp, parts, CLASSIFIER_QUICK if quick else CLASSIFIER, steps, runs)
        if "b" in parts:
            decoder = DECODER_QUICK if quick else DECODER
            measures += report_packing("b", "causal LM", decoder,
                                       packing_part(tmp, "pretrain-gpt2.yaml", decoder, steps, runs))
        if "e" in parts:
            encoder = ENCODER_QUICK if quick else ENCODER
            measures += report_packing("e", "masked LM", encoder,
                                       packing_part(tmp, "pretrain-bert.yaml", encoder, steps, runs))
        if "d" in parts:
            measures += trainer_part(tmp, GPT2_QUICK if quick else GPT2_124M, runs)
    write_json(args.json, "bench_finetune", "cuda" if cuda else "cpu", measures)


if __name__ == "__main__":
    main()
