"""Generation throughput (greedy, and sampled) through llmtool's path, on a GPT-2-124M-shaped model with random weights.

Usage:
  python benchmarks/bench_generate.py           # GPT-2 124M shape, 32 new tokens, best of 3 (~7 min on 2 idle CPU cores)
  python benchmarks/bench_generate.py --quick   # a 2-layer, 128-wide model, 8 new tokens, one run (a smoke run)
  python benchmarks/bench_generate.py --repeats 1 --json F  # best of 1; write the ratios to F too (results.py)

Measured side by side in one run, over the same 32 corpus prompts of mixed length, every prompt getting exactly
the same number of new tokens:
  a) llmtool at batch size 32 against llmtool at batch size 1 (one prompt at a time); target at least 8x.
  b) llmtool against the loop a transformers user writes (tokenizer with left padding, then model.generate) at the
     same batch size, with the same batches: both sort prompts longest first. Target at least 0.95x.
  c) the cost of llmtool's seeded sampling, where every prompt draws from a random stream of its own: llmtool
     sampling against the plain loop sampling (model.generate with do_sample=True: one multinomial draw a step
     for the whole batch) at batch size 32, same batches. Target at least 0.95x (under 5% slower).
Each measurement is repeated and the best run kept; the repeats interleave the paths so machine noise hits all
alike. Uses CUDA when available, else the CPU; fp32 on either.

Choices:
- The tokenizer is a byte-level BPE trained on data/corpus.txt (under 2k tokens), but the model keeps GPT-2's
  50257-row LM head, so every step does GPT-2's real amount of work. Ids past the tokenizer's vocabulary decode to
  nothing, which is fine for a throughput measurement.
- The saved generation config sets min_new_tokens to the new-token count, so end-of-sequence cannot cut a sequence
  short in either path (both read that config); the token counts are checked after every run.
- Times cover the same work in both paths: padding, model.generate, and moving the new tokens to Python lists
  (which also waits for a GPU). llmtool tokenizes all prompts before its clock starts and decodes after it stops;
  the plain loop tokenizes each batch inside its clock (under a millisecond a batch here) and does not decode.
  llmtool also runs under torch.inference_mode, where the plain loop relies on generate's own no_grad.
- On a CPU shared with other busy processes, torch's threads slow down many-fold and unevenly; the run prints the
  load average it started under, and the best-of-N keeps the clean repeats.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: a benchmark never downloads

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus.txt"
GPT2_VOCAB_SIZE = 50257
TOKENIZER_VOCAB_SIZE = 50257  # an upper bound: the small corpus runs out of merges long before it
PROMPT_COUNT = 32
PROMPT_TOKENS = (8, 32)  # shortest and longest prompt, in tokens
BIG_BATCH = 32
TARGET_BATCH_SPEEDUP = 8.0
TARGET_VS_PLAIN_LOOP = 0.95


@dataclass(frozen=True)
class Plan:
    model_shape: dict
    new_tokens: int
    repeats: int


FULL = Plan(model_shape=dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024), new_tokens=32, repeats=3)
QUICK = Plan(model_shape=dict(n_layer=2, n_head=2, n_embd=128, n_positions=1024), new_tokens=8, repeats=1)


def pick_prompts(tokenizer) -> list[str]:
    """PROMPT_COUNT corpus lines spread evenly over the PROMPT_TOKENS range, so batches need real padding."""
    lines = sorted(set(CORPUS.read_text(encoding="utf-8").splitlines()))
    shortest, longest = PROMPT_TOKENS
    by_length = sorted(
        (len(ids), line)
        for line, ids in zip(lines, tokenizer(lines)["input_ids"])
        if shortest <= len(ids) <= longest
    )
    step = (len(by_length) - 1) / (PROMPT_COUNT - 1)
    return [by_length[round(i * step)][1] for i in range(PROMPT_COUNT)]


def build_model(out_dir: Path, plan: Plan) -> None:
    """A random-weight GPT-2 with GPT-2's vocabulary size and a corpus-trained tokenizer, saved to `out_dir`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from llmtool.scratch import train_tokenizer

    hf_logging.disable_progress_bar()  # a "Writing model shards" bar would land in the middle of the results
    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    tokenizer = train_tokenizer(texts, "bpe", vocab_size=TOKENIZER_VOCAB_SIZE,
                                model_max_length=plan.model_shape["n_positions"])
    config = GPT2Config(**plan.model_shape, vocab_size=GPT2_VOCAB_SIZE,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model.generation_config.min_new_tokens = plan.new_tokens
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def llmtool_tokens_per_second(lm, prompts: list[str], batch_size: int, new_tokens: int,
                              sample: bool = False) -> float:
    from llmtool.generation import GenerationSettings, generate

    settings = GenerationSettings(max_new_tokens=new_tokens, do_sample=sample, seed=0 if sample else None,
                                  batch_size=batch_size)
    report = generate(lm, prompts, settings)
    check_token_count(report.new_tokens, len(prompts) * new_tokens, f"llmtool at batch size {batch_size}")
    return report.new_tokens / report.seconds


def plain_loop_tokens_per_second(model, tokenizer, prompts: list[str], batch_size: int, new_tokens: int,
                                 sample: bool = False) -> float:
    """What a transformers user writes: tokenize a left-padded batch, generate, keep the new tokens."""
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    # The same batches as llmtool's: longest prompts first, ties in prompt order.
    ordered = [prompts[i] for i in sorted(range(len(prompts)), key=lambda i: lengths[i], reverse=True)]
    generated = 0
    start = time.perf_counter()
    for first in range(0, len(ordered), batch_size):
        batch = tokenizer(ordered[first:first + batch_size], padding=True, return_tensors="pt").to(model.device)
        sampling = {"do_sample": True, "top_k": 0} if sample else {"do_sample": False}  # top_k 0: the whole vocabulary
        sequences = model.generate(**batch, max_new_tokens=new_tokens, pad_token_id=tokenizer.pad_token_id,
                                   **sampling)
        rows = sequences[:, batch["input_ids"].shape[1]:].tolist()
        generated += sum(len(row) for row in rows)
    seconds = time.perf_counter() - start
    check_token_count(generated, len(prompts) * new_tokens, f"plain loop at batch size {batch_size}")
    return generated / seconds


def check_token_count(got: int, expected: int, path: str) -> None:
    # Not a timing assert: a run that stopped early did less work, so its tokens/s would not be comparable.
    if got != expected:
        raise RuntimeError(f"{path} generated {got} tokens, expected {expected}; end-of-sequence was not blocked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model, 8 new tokens, one run: a smoke run")
    parser.add_argument("--repeats", type=int, help="best of this many runs (default: 3; --quick: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the measures to FILE (see results.py)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)

    import torch
    from transformers import AutoTokenizer

    from llmtool.models import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # torch's CPU threads slow down many-fold when another process holds a core, so say how busy the machine was.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as model_dir:
        build_model(Path(model_dir), plan)
        lm = load_model(model_dir, device=device, dtype="fp32")
        plain_tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        plain_tokenizer.pad_token = plain_tokenizer.eos_token  # GPT-2 style tokenizers have no pad token
        prompts = pick_prompts(plain_tokenizer)

        runs = {
            ("llmtool", BIG_BATCH): lambda: llmtool_tokens_per_second(lm, prompts, BIG_BATCH, plan.new_tokens),
            ("plain loop", BIG_BATCH): lambda: plain_loop_tokens_per_second(
                lm.model, plain_tokenizer, prompts, BIG_BATCH, plan.new_tokens),
            ("llmtool", 1): lambda: llmtool_tokens_per_second(lm, prompts, 1, plan.new_tokens),
            ("plain loop", 1): lambda: plain_loop_tokens_per_second(
                lm.model, plain_tokenizer, prompts, 1, plan.new_tokens),
            ("llmtool sampled", BIG_BATCH): lambda: llmtool_tokens_per_second(
                lm, prompts, BIG_BATCH, plan.new_tokens, sample=True),
            ("plain sampled", BIG_BATCH): lambda: plain_loop_tokens_per_second(
                lm.model, plain_tokenizer, prompts, BIG_BATCH, plan.new_tokens, sample=True),
        }
        # Warm-up: the first generate call pays one-off costs (lazy imports, allocator growth) that neither path owns.
        llmtool_tokens_per_second(lm, prompts[:2], 2, plan.new_tokens)
        plain_loop_tokens_per_second(lm.model, plain_tokenizer, prompts[:2], 2, plan.new_tokens)
        best: dict[tuple[str, int], float] = {}
        for repeat in range(plan.repeats):
            for (path, batch_size), run in runs.items():
                start = time.perf_counter()
                best[path, batch_size] = max(best.get((path, batch_size), 0.0), run())
                print(f"  repeat {repeat + 1}/{plan.repeats}: {path} at batch size {batch_size} took "
                      f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)

    shape = plan.model_shape
    threads = f", {torch.get_num_threads()} threads" if device == "cpu" else ""
    prompt_lengths = sorted(len(ids) for ids in plain_tokenizer(prompts)["input_ids"])
    print(f"bench_generate: GPT-2-shaped model, {shape['n_layer']} layers, {shape['n_head']} heads, "
          f"{shape['n_embd']} wide, {GPT2_VOCAB_SIZE}-row LM head, random weights"
          f"{' (--quick: not GPT-2 124M)' if args.quick else ''}")
    print(f"  device {device}{threads}, fp32, greedy unless sampled; {len(prompts)} prompts of {prompt_lengths[0]}-"
          f"{prompt_lengths[-1]} tokens, {plan.new_tokens} new tokens each; best of {plan.repeats}, interleaved")
    print(f"  machine load before the run (1-minute average): {load_before:.2f} on {os.cpu_count()} cores"
          f"{'; other work was running or had just run, so numbers may be noisy' if load_before > 0.5 else ''}")
    print(f"  tokenizer: byte-level BPE of {len(plain_tokenizer)} tokens trained on {CORPUS.relative_to(ROOT)}")
    for (path, batch_size), tokens_per_second in best.items():
        print(f"  {path:<15} batch size {batch_size:>2}: {tokens_per_second:8.1f} new tokens/s")

    speedup = best["llmtool", BIG_BATCH] / best["llmtool", 1]
    print(f"  a) llmtool batch size {BIG_BATCH} / batch size 1: {speedup:.2f}x  "
          f"(target >= {TARGET_BATCH_SPEEDUP}x: {'met' if speedup >= TARGET_BATCH_SPEEDUP else 'NOT met'})")
    measures = [record(f"generate: llmtool batch {BIG_BATCH} / batch 1", speedup, TARGET_BATCH_SPEEDUP)]
    # What batching gains on this hardware without llmtool in the way: tells a slow llmtool from a slow machine.
    plain_speedup = best["plain loop", BIG_BATCH] / best["plain loop", 1]
    print(f"     for reference, plain loop batch size {BIG_BATCH} / batch size 1: {plain_speedup:.2f}x")
    for batch_size in (BIG_BATCH, 1):
        ratio = best["llmtool", batch_size] / best["plain loop", batch_size]
        print(f"  b) llmtool / plain loop at batch size {batch_size}: {ratio:.2f}x  "
              f"(target >= {TARGET_VS_PLAIN_LOOP}x: {'met' if ratio >= TARGET_VS_PLAIN_LOOP else 'NOT met'})")
        measures.append(record(f"generate: llmtool / plain loop, batch {batch_size}", ratio, TARGET_VS_PLAIN_LOOP))
    ratio = best["llmtool sampled", BIG_BATCH] / best["plain sampled", BIG_BATCH]
    print(f"  c) llmtool seeded sampling / plain loop sampling at batch size {BIG_BATCH}: {ratio:.2f}x  "
          f"(target >= {TARGET_VS_PLAIN_LOOP}x: {'met' if ratio >= TARGET_VS_PLAIN_LOOP else 'NOT met'})")
    measures.append(record(f"generate: seeded sampling / plain sampling, batch {BIG_BATCH}", ratio,
                           TARGET_VS_PLAIN_LOOP))
    write_json(args.json, "bench_generate", device, measures)


if __name__ == "__main__":
    main()
