"""Training throughput of `llmtool finetune`, against a plain loop and across its own data options.

Usage:
  python benchmarks/bench_finetune.py           # ~3 minutes on 2 idle CPU cores
  python benchmarks/bench_finetune.py --quick   # tiny models, a few steps: a smoke run

Measured side by side in one run; tokens/s counts real (non-padding) tokens, training time only:
  a) llmtool vs a plain PyTorch loop doing the same work (same model, data, batch size, steps, optimizer): the
     loop a transformers user writes from the no-trainer examples (shuffled DataLoader, DataCollatorWithPadding,
     model(**batch).loss). Target >= 1.0x. Reported with and without llmtool's length grouping.
  b) causal LM on short texts (data/corpus.txt lines, ~17 tokens): packing into 64-token blocks vs padding each
     shuffled batch to its longest text. Target >= 1.5x. Also reported against llmtool's default, padding
     length-grouped batches, which removes most of the padding on its own.
  c) classification: dynamic padding + length grouping vs padding every batch to max_length (128). Reported.
Each configuration runs three times, interleaved, and the best run is kept; all classification runs share one
tokenizer.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSIFIER = "model.config={model_type: distilbert, n_layers: 2, n_heads: 4, dim: 256, hidden_dim: 1024, max_position_embeddings: 128}"
CLASSIFIER_QUICK = "model.config={model_type: distilbert, n_layers: 1, n_heads: 2, dim: 32, hidden_dim: 64, max_position_embeddings: 128}"
DECODER = "model.config={model_type: gpt2, n_layer: 4, n_head: 4, n_embd: 256, n_positions: 128}"
DECODER_QUICK = "model.config={model_type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, n_positions: 128}"


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

    from llmtool.scratch import model_config as build_config

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = datasets.load_dataset("csv", data_files=str(ROOT / "data/sentiment/train.csv"), split="train")
    names = sorted(set(rows["label"]))
    encoded = rows.map(lambda b: {**tokenizer(b["text"], truncation=True, max_length=max_length),
                                  "labels": [names.index(v) for v in b["label"]]},
                       batched=True, remove_columns=rows.column_names)
    config = build_config(model_config, tokenizer)
    config.num_labels = len(names)
    model = AutoModelForSequenceClassification.from_config(config).train()
    from llmtool.data import StepBatches

    order = StepBatches([0] * len(encoded), batch_size, seed=42, group_by_length=False)  # the recipe's seed
    loader = torch.utils.data.DataLoader(encoded, batch_sampler=order.epoch(0),
                                         collate_fn=DataCollatorWithPadding(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=steps)
    tokens, done = 0, 0
    start = time.perf_counter()
    while done < steps:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            done += 1
            if done == steps:
                break
    return tokens / (time.perf_counter() - start)


def best_of(runs: int, measure) -> float:
    return max(measure() for _ in range(runs))


def verdict(ratio: float, target: float | None) -> str:
    return "" if target is None else f"  (target >= {target}x: {'met' if ratio >= target else 'NOT met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and a few steps: a smoke run")
    quick = parser.parse_args().quick
    runs = 1 if quick else 3
    steps = 5 if quick else 40
    classifier = CLASSIFIER_QUICK if quick else CLASSIFIER
    decoder = DECODER_QUICK if quick else DECODER
    print(f"machine load before the run (1-minute average): {os.getloadavg()[0]:.2f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        common = [classifier, f"train.max_steps={steps}", "train.batch_size=32", "data.max_length=128",
                  "train.lr=1e-3", "train.warmup_ratio=0"]
        # One tokenizer for every run (a from-scratch run trains its own, and the WordPiece trainer's ties vary
        # between runs): then every run tokenizes, pads and computes exactly the same batches.
        llmtool_run("sentiment.yaml", tmp / "tokenizer", [*common, "train.max_steps=1"])
        common.append(f"model.tokenizer={tmp / 'tokenizer'}")
        import yaml

        settings = yaml.safe_load(classifier.split("=", 1)[1])
        grouped = ungrouped = plain = 0.0
        for _ in range(runs):  # interleaved, best kept
            grouped = max(grouped, llmtool_run("sentiment.yaml", tmp / "grouped", common))
            ungrouped = max(ungrouped, llmtool_run("sentiment.yaml", tmp / "ungrouped",
                                                   [*common, "data.group_by_length=false"]))
            plain = max(plain, plain_loop(tmp / "tokenizer", settings, steps, 32, 128))
        padded_to_max = best_of(runs, lambda: llmtool_run("sentiment.yaml", tmp / "padmax",
                                                          [*common, "data.pad_to_max_length=true"]))

        lm_common = [decoder, "model.vocab_size=2000", f"train.max_steps={steps}", "train.batch_size=16",
                     "train.warmup_ratio=0"]
        packed = padded = padded_grouped = 0.0
        for _ in range(runs):
            packed = max(packed, llmtool_run("pretrain-gpt2.yaml", tmp / "packed",
                                             [*lm_common, "data.packing=true", "data.block_size=64"]))
            padded = max(padded, llmtool_run("pretrain-gpt2.yaml", tmp / "padded",
                                             [*lm_common, "data.packing=false", "data.max_length=64",
                                              "data.group_by_length=false"]))
            padded_grouped = max(padded_grouped, llmtool_run("pretrain-gpt2.yaml", tmp / "padded-grouped",
                                                             [*lm_common, "data.packing=false", "data.max_length=64"]))

    print(f"bench_finetune: {steps} steps per run, best of {runs}, CPU threads {__import__('torch').get_num_threads()}")
    print(f"  classification ({classifier.split('=', 1)[1]}), batch 32, real tokens/s:")
    print(f"    llmtool (dynamic padding, length-grouped)  {grouped:10.0f}")
    print(f"    llmtool (dynamic padding, shuffled only)   {ungrouped:10.0f}")
    print(f"    plain PyTorch loop (dynamic padding)       {plain:10.0f}")
    print(f"    llmtool padded to max_length (128)         {padded_to_max:10.0f}")
    print(f"  a) llmtool without length grouping / plain loop, identical batches: {ungrouped / plain:.2f}x"
          f"{verdict(ungrouped / plain, 1.0)}")
    print(f"     llmtool with length grouping (its default) / plain loop: {grouped / plain:.2f}x")
    print(f"  c) dynamic padding + grouping / pad to max_length: {grouped / padded_to_max:.2f}x")
    print(f"  causal LM on corpus lines ({decoder.split('=', 1)[1]}), batch 16, real tokens/s:")
    print(f"    packed into 64-token blocks            {packed:10.0f}")
    print(f"    padded, shuffled batches               {padded:10.0f}")
    print(f"    padded, length-grouped (the default)   {padded_grouped:10.0f}")
    print(f"  b) packing / padding: {packed / padded:.2f}x{verdict(packed / padded, 1.5)}")
    print(f"     packing / length-grouped padding: {packed / padded_grouped:.2f}x (grouping already removes most padding)")


if __name__ == "__main__":
    main()
