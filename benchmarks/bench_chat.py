"""Chat fine-tuning (recipes/chat-gpt2.yaml, finetune task chat) on the shipped data/chat/train.jsonl: packed against
padded conversations, and what the per-row mask check costs tokenization.

Usage:
  python benchmarks/bench_chat.py           # 20 steps a run, best of 3; tokenization best of 6 (under 5 min on
                                            # 2 CPU cores at a load average of 7; less on an idle machine)
  python benchmarks/bench_chat.py --quick   # 5 steps a run, each measure once: a smoke run
  python benchmarks/bench_chat.py --repeats 2 --json F   # best of 2; write the measures to F too (results.py)

Measured side by side in one run:
  a) real (non-padding) tokens/s of the training loop, data.packing true against false, same steps and batch size
     (the recipe's 16 rows): packed, each row holds as many whole conversations as fit data.max_length (128) tokens;
     padded, each row is one conversation and rows are length-grouped (data.group_by_length, the recipe's default),
     so a step pads little. The gain is more conversations (and real tokens) a step, while a step costs about
     the same at these sizes; the rows, conversations and real tokens a step of each are printed beside it.
     Target >= 1.5x.
  b) the cost of the mask check every chat row goes through (chat.mask_problem: a trained token, each assistant
     turn's end token trained): the time of recipe_data.tokenize on the loaded rows, as a run calls it, with the
     check as it is against with it replaced by a no-op, same rows, interleaved, best of each. The cost is the
     difference as a fraction of tokenization with the check. Target <= 5%. For reference, the time spent inside
     mask_problem itself over one tokenization is printed too (the difference is noisy at this size).
Each configuration runs --repeats times, interleaved (tokenization: twice as many, alternating which goes first),
and the best run is kept.

Choices:
- The model is a GPT-2 with random weights and a byte-level BPE trained on data/corpus.txt (about 1,750 tokens,
  like the one the demo's pretraining trains); ChatML adds its two markers to it. On a CPU (or with --quick) it is
  shaped like the demo's (4 layers, 4 heads, 128 wide, 128 positions); on CUDA like GPT-2 124M, trained as the
  recipe runs there (bf16 autocast). Its embedding has the tokenizer's rows, not GPT-2's 50257: a run resizes it
  to the tokenizer when the template adds its markers, so larger rows would not survive anyway.
- datasets' caching is switched off (datasets.disable_caching()) for the whole run. Rows loaded from a data file
  are backed by an Arrow cache file, so `map` caches too: a repeat of the same tokenization would read the first
  one's result back from its cache file (0.01 s instead of about 1 s, measured) and cost nothing. With caching
  off every tokenization does the work (and still writes its Arrow file, to a temporary folder, as a run writes
  its cache). Progress bars are off too, so the output stays readable.
- On a CPU shared with other busy processes, torch's threads slow down many-fold and unevenly; the run prints the
  load average it started under, and the best-of-N keeps the clean repeats.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: a benchmark never downloads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RECIPE = ROOT / "recipes" / "chat-gpt2.yaml"
TRAIN = ROOT / "data" / "chat" / "train.jsonl"  # the recipe's data.train, from any working directory
TARGET_PACKING = 1.5
TARGET_CHECK_COST = 0.05


@dataclass(frozen=True)
class Plan:
    model_shape: dict
    steps: int
    repeats: int


DEMO_SHAPE = dict(model_type="gpt2", n_layer=4, n_head=4, n_embd=128, n_positions=128)
CPU = Plan(DEMO_SHAPE, steps=20, repeats=3)
CUDA = Plan(dict(model_type="gpt2", n_layer=12, n_head=12, n_embd=768, n_positions=1024), steps=30, repeats=3)
QUICK = Plan(DEMO_SHAPE, steps=5, repeats=1)


def chat_recipe(model_dir: Path, out: Path, steps: int, packing: bool):
    from llmtool import config

    return config.load_recipe(RECIPE, [
        f"model.name={model_dir}", f"data.train={TRAIN}", f"output_dir={out}", f"train.max_steps={steps}",
        "train.save_every=null", "data.validation=null", f"train.log_every={steps}",
        f"data.packing={str(packing).lower()}"])


def training_tokens_per_second(model_dir: Path, out: Path, steps: int, packing: bool) -> float:
    """One fine-tuning run of the recipe; the engine's real tokens/s (row lengths: no padding) of its loop."""
    from llmtool import finetuning

    return finetuning.finetune(chat_recipe(model_dir, out, steps, packing), overwrite=True).tokens_per_second


def run_inputs(recipe):
    """What a run has in hand when it tokenizes (finetuning.build_job): the loaded rows and the model's tokenizer,
    padding on the right, with the recipe's template (and ChatML's markers)."""
    from llmtool import chat, data, models, recipe_data

    rows, _ = recipe_data.load_data(recipe)
    tokenizer = models.load_tokenizer(recipe.model.name)
    data.pad_on_the_right(tokenizer)
    chat.use_template(tokenizer, recipe.model.chat_template)
    return tokenizer, rows


def tokenize(recipe, tokenizer, rows):
    from llmtool import recipe_data

    return recipe_data.tokenize(recipe, tokenizer, rows, None, None).train


def tokenize_seconds(recipe, tokenizer, rows, check: bool) -> float:
    """Seconds of one tokenization of `rows`, with the mask check as it is, or with it a no-op."""
    from llmtool import chat

    no_check = mock.patch.object(chat, "mask_problem", lambda encoded, end_id, train_on: None)
    with nullcontext() if check else no_check:
        start = time.perf_counter()
        tokenize(recipe, tokenizer, rows)
        return time.perf_counter() - start


def seconds_inside_check(recipe, tokenizer, rows) -> float:
    """The time spent inside chat.mask_problem over one tokenization, summed call by call."""
    from llmtool import chat

    check, spent = chat.mask_problem, [0.0]

    def timed(*args):
        start = time.perf_counter()
        try:
            return check(*args)
        finally:
            spent[0] += time.perf_counter() - start

    with mock.patch.object(chat, "mask_problem", timed):
        tokenize(recipe, tokenizer, rows)
    return spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 steps a run, each measure once: a smoke run")
    parser.add_argument("--repeats", type=int, help="best of this many runs (default: 3; --quick: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the measures to FILE (see results.py)")
    args = parser.parse_args()

    import datasets
    import torch

    from bench_lora import Plan as ModelPlan
    from bench_lora import build_model

    from llmtool.data import column

    cuda = torch.cuda.is_available()
    plan = QUICK if args.quick else CUDA if cuda else CPU
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    datasets.disable_caching()  # see Choices: otherwise a repeat reads the first run's result from its cache
    datasets.disable_progress_bars()
    load_before = os.getloadavg()[0]  # torch's CPU threads slow down many-fold when another process holds a core

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vocab, parameters = build_model(tmp / "model", ModelPlan(plan.model_shape, plan.steps, plan.repeats))
        # a) training, interleaved, best kept
        best = {True: 0.0, False: 0.0}
        for repeat in range(plan.repeats):
            for packing in (True, False):
                start = time.perf_counter()
                best[packing] = max(best[packing], training_tokens_per_second(
                    tmp / "model", tmp / ("packed" if packing else "padded"), plan.steps, packing))
                print(f"  repeat {repeat + 1}/{plan.repeats}: {'packed' if packing else 'padded'} run took "
                      f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)

        # What a step holds each way, from the rows the runs trained on.
        recipe = chat_recipe(tmp / "model", tmp / "unused", plan.steps, packing=False)
        tokenizer, rows = run_inputs(recipe)
        padded_rows = tokenize(recipe, tokenizer, rows)
        packed_rows = tokenize(chat_recipe(tmp / "model", tmp / "unused", plan.steps, packing=True), tokenizer, rows)
        batch = recipe.train.batch_size
        conversations, real_tokens = len(padded_rows), sum(column(padded_rows, "length"))

        # b) tokenization with and without the check: twice the repeats each, alternating which goes first
        tokenize_seconds(recipe, tokenizer, rows, check=True)  # warm-up: the template's compile, lazy imports
        fastest = {True: float("inf"), False: float("inf")}
        for repeat in range(2 * plan.repeats):
            for check in ((True, False) if repeat % 2 == 0 else (False, True)):
                fastest[check] = min(fastest[check], tokenize_seconds(recipe, tokenizer, rows, check))
        inside = seconds_inside_check(recipe, tokenizer, rows)

    shape = plan.model_shape
    device = "cuda" if cuda else "cpu"
    threads = "" if cuda else f", {torch.get_num_threads()} threads"
    print(f"bench_chat: chat fine-tuning, {RECIPE.relative_to(ROOT)} (ChatML, loss on the assistant's turns) on "
          f"{TRAIN.relative_to(ROOT)} ({len(rows)} conversations, {real_tokens / conversations:.1f} tokens on average)")
    print(f"  device {device}{threads}, {'bf16 autocast' if cuda else 'fp32'}; GPT-2-shaped model, {shape['n_layer']} "
          f"layers, {shape['n_head']} heads, {shape['n_embd']} wide, {shape['n_positions']} positions, "
          f"{parameters / 1e6:.1f}M weights, random; tokenizer: corpus BPE of {vocab} tokens + ChatML's 2 markers")
    print(f"  machine load before the run (1-minute average): {load_before:.2f} on {os.cpu_count()} cores"
          f"{'; other work was running or had just run, so numbers may be noisy' if load_before > 0.5 else ''}")
    print(f"  training: batch {batch} rows, {plan.steps} steps a run, best of {plan.repeats} interleaved; "
          f"real tokens/s:")
    per_packed_row = conversations / len(packed_rows)
    print(f"    packed into rows of <= {recipe.data.max_length} tokens  {best[True]:10.0f}   a step: {batch} rows = "
          f"{batch * per_packed_row:.1f} conversations, {batch * real_tokens / len(packed_rows):.0f} real tokens")
    print(f"    padded, length-grouped (default)    {best[False]:10.0f}   a step: {batch} rows = {batch} "
          f"conversations, {batch * real_tokens / conversations:.0f} real tokens")
    ratio = best[True] / best[False]
    print(f"  a) packed / padded: {ratio:.2f}x  (target >= {TARGET_PACKING}x: "
          f"{'met' if ratio >= TARGET_PACKING else 'NOT met'})")
    cost = (fastest[True] - fastest[False]) / fastest[True]
    print(f"  tokenization of the {len(rows)} conversations (recipe_data.tokenize, as a run calls it), best of "
          f"{2 * plan.repeats} interleaved:")
    print(f"    with the mask check (chat.mask_problem)  {fastest[True]:7.3f} s")
    print(f"    with the check a no-op                   {fastest[False]:7.3f} s")
    print(f"  b) mask check cost: {cost:.1%} of tokenization  (target <= {TARGET_CHECK_COST:.0%}: "
          f"{'met' if cost <= TARGET_CHECK_COST else 'NOT met'})")
    print(f"     for reference, time inside mask_problem over one tokenization: {inside * 1e3:.1f} ms "
          f"({inside / fastest[True]:.1%})")
    write_json(args.json, "bench_chat", device, [
        record("chat: packed / padded, real tokens/s", ratio, TARGET_PACKING),
        record("chat: mask check / tokenization time", cost, TARGET_CHECK_COST, "<=", unit="%"),
    ])


if __name__ == "__main__":
    main()
