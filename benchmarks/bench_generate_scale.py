"""`llmtool generate` at scale: peak memory over 100,000 prompts, and the compiled decoder's speed on a GPU.

Usage:
  python benchmarks/bench_generate_scale.py                 # 100,000 vs 1,000 prompts (~2 min on 2 CPU cores);
                                                            # part 2 too where CUDA is present (~4 min on an H200,
                                                            # an estimate: it has not run on one yet)
  python benchmarks/bench_generate_scale.py --quick         # 10,000 vs 1,000 prompts (~30 s); part 2 shorter
  python benchmarks/bench_generate_scale.py --speed-on-cpu  # part 2 alone, on the CPU with a tiny model: checks its
                                                            # code path (about a minute), measures nothing of use
  python benchmarks/bench_generate_scale.py --speed-only    # part 2 alone, on CUDA (gpu_check.py runs this)
  ... --repeats N --json F                                  # part 2 best of N; write the measures to F (results.py)

1) Memory, everywhere. The real CLI, `llmtool generate --model TINY --file PROMPTS --output OUT.jsonl
   --max-new-tokens 4 --batch-size 64 --quiet --device cpu`, on 100,000 prompts and on 1,000, each run in its own
   process; each output is checked to hold one record a prompt. Target: peak resident set (100k) / peak (1k) < 1.2x.
   As a contrast, the same 100,000 prompts with --json to /dev/null, which holds every result until the end and
   then prints them as one document: what streaming to --output saves.
2) Speed, where torch.cuda.is_available(). A GPT-2-124M-shaped model with random weights (bench_generate.py's
   model, in bf16), greedy, 128 new tokens a prompt, 8 prompts at batch size 1 and 64 at batch size 32: tokens/s of
   (a) the loop a transformers user writes (bench_generate.py's: left-padded tokenizer batches, model.generate,
   dynamic cache) against (b) llmtool's `generate_stream(..., compiled=True)` (static KV cache, torch.compile),
   timed after one warm-up pass that pays the compile (its time is printed; each batch size compiles afresh, as
   in a CLI run of that size, after torch._dynamo.reset()). Best of 3 interleaved passes each; --quick: 32 new
   tokens, once.
   Targets: >= 2x at batch size 1, >= 3x at batch size 32. Also (c) in bf16, how far compiled and eager greedy
   outputs agree (llmtool's eager path, the same batches), and (d) in fp32 whether they are equal, token for token
   (at batch size 32).

Choices:
- Prompts: runs of 3-12 consecutive words of data/corpus.txt, each starting at a random word; random.Random(0)
  draws each run's length, then its start, so the 1,000-prompt file is the first 1,000 lines of the 100,000 one.
- The model is tests/fixtures/configs/gpt2.json (2 layers, 32 wide, 128 positions) with conftest.py's 600-token
  BPE tokenizer: the smallest GPT-2 the tests use, so the 100k run is ~1 minute and what grows is llmtool's, not
  the model's. Its weights are random: the output text is noise, of the same shape as real output.
- Peak memory is the child's own ru_maxrss from os.wait4 on its pid: the kernel's high-water mark of that one
  process (what /usr/bin/time -v prints). resource.getrusage(RUSAGE_CHILDREN) would be the largest of every child
  reaped so far, so a later, smaller run would report an earlier run's peak. While a run goes, its VmRSS is read
  from /proc every 0.2 s with the size of its output file, to print the RSS when its first results were written
  against the peak: the growth over the rest of the run. generate_stream decodes 1,024 prompts (16 batches) at a
  time, longest first, so the first results come within the first window: for the 1,000-prompt run (one window)
  the growth after them is that window's, for the 100,000-prompt run it is the other 97 windows'.
- The runs are on the CPU everywhere (--device cpu): the resident set is what is measured, and memory on a GPU
  is not part of it.
- Each CLI run uses one torch thread (OMP_NUM_THREADS=1). On 2 idle cores a second thread gains this model under
  10%, and while another process is busy it makes every step several times slower (20 s instead of 7 for 2,000
  prompts); memory is the measurement, and the setting is the same in every run.
- Part 2 reuses bench_generate.py's model builder and plain loop. End-of-sequence cannot stop a prompt early
  (min_new_tokens in the saved generation config), and every pass is checked to make exactly its tokens. The
  llmtool passes include tokenizing and decoding (a few ms here), the plain loop tokenizes but does not decode.
  Compiled and eager outputs of llmtool come from the same batches, so only the cache and the compiled kernels
  differ; bf16 rounding can flip a near-tie between two tokens, after which a greedy continuation diverges.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: a benchmark never downloads

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus.txt"
TINY_GPT2 = ROOT / "tests" / "fixtures" / "configs" / "gpt2.json"
TINY_VOCAB = 600  # as tests/conftest.py builds it
PROMPT_WORDS = (3, 12)
CLI_ARGS = ("--max-new-tokens", "4", "--batch-size", "64", "--quiet", "--device", "cpu")
POLL_SECONDS = 0.2
TARGET_MEMORY_RATIO = 1.2
TARGET_SPEEDUP = {1: 2.0, 32: 3.0}  # compiled llmtool / plain eager loop, by batch size
MIB = 2**20


# ---------------------------------------------------------------- 1) memory of the CLI


def corpus_prompts(count: int, seed: int = 0):
    """`count` prompts: runs of 3-12 consecutive corpus words; the first n are the same for every count."""
    words = CORPUS.read_text(encoding="utf-8").split()
    rng = random.Random(seed)
    for _ in range(count):
        length = rng.randint(*PROMPT_WORDS)
        start = rng.randrange(len(words) - length)
        yield " ".join(words[start:start + length])


@dataclass
class CliRun:
    seconds: float
    peak: int  # bytes: the process's peak resident set
    rss_at_first_results: int | None  # bytes: VmRSS when the output file first held results (--output runs)


def resident_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux, or the process is exiting
        pass
    return None


def run_generate(model: Path, prompts: Path, output: Path | None) -> CliRun:
    """`llmtool generate` in its own process: to `output` with --output, else --json to /dev/null."""
    where = ["--output", str(output), "--overwrite"] if output else ["--json"]
    command = [sys.executable, "-m", "llmtool", "generate", "--model", str(model), "--file", str(prompts),
               *CLI_ARGS, *where]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    rss_at_first_results = None
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)  # usage: this child's own, once it has exited
        if pid:
            break
        if rss_at_first_results is None and output and output.exists() and output.stat().st_size:
            rss_at_first_results = resident_bytes(child.pid)
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait for it again
    if child.returncode != 0:
        raise SystemExit(f"llmtool generate failed (exit {child.returncode}): {' '.join(command)}")
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere
    return CliRun(seconds, peak, rss_at_first_results)


def check_output(output: Path, prompts: Path, count: int) -> None:
    """The output has one record a prompt, and its last record is the last prompt's: all there, in order."""
    with output.open("rb") as handle:
        lines = sum(1 for _ in handle)
    last_prompt = prompts.read_text(encoding="utf-8").splitlines()[-1]
    with output.open("rb") as handle:
        handle.seek(max(0, output.stat().st_size - 4096))
        last_record = json.loads(handle.read().splitlines()[-1])
    if lines != count or last_record["prompt"] != last_prompt:
        raise RuntimeError(f"{output} has {lines} lines for {count} prompts, or its last record is for another prompt")
    print(f"  output checked: {lines:,} lines, one a prompt, the last for the last prompt")


def memory_part(large: int, small: int = 1_000) -> list[dict]:
    from llmtool.scratch import build_from_scratch

    print(f"1) memory: llmtool generate --file ({small:,} vs {large:,} prompts) --output OUT.jsonl "
          f"{' '.join(CLI_ARGS)}", flush=True)
    print(f"  machine load before the runs (1-minute average): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts = CORPUS.read_text(encoding="utf-8").splitlines()
        model = build_from_scratch(json.loads(TINY_GPT2.read_text()), texts, tmp / "model", vocab_size=TINY_VOCAB)
        prompt_files = {count: tmp / f"prompts-{count}.txt" for count in (small, large)}
        for count, path in prompt_files.items():
            path.write_text("".join(p + "\n" for p in corpus_prompts(count)), encoding="utf-8")
        runs: dict[str, CliRun] = {}
        for count, path in prompt_files.items():
            output = tmp / f"out-{count}.jsonl"
            runs[f"--output, {count:,} prompts"] = run = run_generate(model, path, output)
            print(f"  --output, {count:,} prompts: {run.seconds:.1f} s", file=sys.stderr, flush=True)
            check_output(output, path, count)
        runs[f"--json to /dev/null, {large:,} prompts"] = run = run_generate(model, prompt_files[large], None)
        print(f"  --json, {large:,} prompts: {run.seconds:.1f} s", file=sys.stderr, flush=True)

    print(f"  {'run':<38}{'wall time':>10}{'peak RSS':>13}{'RSS at first results':>22}{'growth after':>14}")
    for label, run in runs.items():
        first = run.rss_at_first_results
        first_text = f"{first / MIB:>18.1f} MiB" if first else f"{'-':>22}"
        growth = f"{(run.peak - first) / MIB:>10.1f} MiB" if first else f"{'-':>14}"
        print(f"  {label:<38}{run.seconds:>8.1f} s{run.peak / MIB:>9.1f} MiB{first_text}{growth}")
    small_run, large_run, json_run = runs.values()
    ratio = large_run.peak / small_run.peak
    met = "met" if ratio < TARGET_MEMORY_RATIO else "NOT met"
    print(f"  peak ({large:,}) / peak ({small:,}) with --output: {ratio:.3f}x  "
          f"(target < {TARGET_MEMORY_RATIO}x: {met})")
    print(f"  for contrast, --json / --output at {large:,} prompts: {json_run.peak / large_run.peak:.2f}x "
          f"(+{(json_run.peak - large_run.peak) / MIB:.0f} MiB: every record is held to the end, then serialised "
          "as one indented document)")
    print(f"  machine load after the runs (1-minute average): {os.getloadavg()[0]:.2f}")
    return [record(f"generate --output: peak memory, {large:,} / {small:,} prompts", ratio, TARGET_MEMORY_RATIO, "<")]


# ---------------------------------------------------------------- 2) speed of the compiled decoder


@dataclass(frozen=True)
class SpeedPlan:
    model_shape: dict
    new_tokens: int
    runs: tuple[tuple[int, int], ...]  # (batch size, prompts)
    repeats: int


GPT2_124M = dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024)
GPU_FULL = SpeedPlan(GPT2_124M, new_tokens=128, runs=((1, 8), (32, 64)), repeats=3)
GPU_QUICK = SpeedPlan(GPT2_124M, new_tokens=32, runs=((1, 8), (32, 64)), repeats=1)
CPU_CHECK = SpeedPlan(dict(n_layer=2, n_head=2, n_embd=128, n_positions=1024), new_tokens=8,
                      runs=((1, 2), (32, 32)), repeats=1)


def llmtool_pass(lm, prompts: list[str], batch_size: int, new_tokens: int, compiled: bool):
    """One greedy pass of llmtool's generate_stream: (seconds, the new token ids of each prompt)."""
    from bench_generate import check_token_count
    from llmtool.generation import GenerationSettings, generate_stream

    settings = GenerationSettings(max_new_tokens=new_tokens, batch_size=batch_size, do_sample=False)
    start = time.perf_counter()
    ids = [g.token_ids[0] for g in generate_stream(lm, prompts, settings, compiled=compiled)]
    seconds = time.perf_counter() - start
    check_token_count(sum(map(len, ids)), len(prompts) * new_tokens,
                      f"llmtool {'compiled' if compiled else 'eager'} at batch size {batch_size}")
    return seconds, ids


def agreement(eager: list[list[int]], compiled: list[list[int]]) -> tuple[str, float]:
    """How far two runs' greedy tokens agree, in words (up to each prompt's first difference, and position by
    position), and as the share of new tokens before each prompt's first difference."""
    total = sum(map(len, eager))
    prefix = sum(next((i for i, (a, b) in enumerate(zip(e, c)) if a != b), len(e)) for e, c in zip(eager, compiled))
    same = sum(a == b for e, c in zip(eager, compiled) for a, b in zip(e, c))
    identical = sum(e == c for e, c in zip(eager, compiled))
    return (f"{identical}/{len(eager)} prompts identical; {prefix / total:.1%} of new tokens before each prompt's "
            f"first difference, {same / total:.1%} equal position by position"), prefix / total


def speed_part(plan: SpeedPlan, device: str) -> list[dict]:
    import torch
    from transformers import AutoTokenizer

    from bench_generate import Plan, build_model, plain_loop_tokens_per_second
    from llmtool.models import load_model

    shape = ", ".join(f"{k} {v}" for k, v in plan.model_shape.items())
    print(f"2) speed on {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'a dry run: no targets'}): "
          f"GPT-2 ({shape}, 50257-row LM head, random weights), greedy, {plan.new_tokens} new tokens a prompt, "
          f"best of {plan.repeats}", flush=True)
    prompts = list(corpus_prompts(max(count for _, count in plan.runs)))
    judged = device == "cuda"  # the targets are for the GPU; on a CPU this only checks the code path
    measures = []
    with tempfile.TemporaryDirectory() as model_dir:
        build_model(Path(model_dir), Plan(plan.model_shape, plan.new_tokens, plan.repeats))
        lm = load_model(model_dir, device=device, dtype="bf16")
        plain_tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        plain_tokenizer.pad_token = plain_tokenizer.eos_token  # GPT-2 style tokenizers have no pad token
        plain_loop_tokens_per_second(lm.model, plain_tokenizer, prompts[:2], 2, plan.new_tokens)  # CUDA warm-up

        for batch_size, count in plan.runs:
            chosen = prompts[:count]
            torch._dynamo.reset()  # each batch size compiles from scratch, as in a CLI run of that batch size
            warm_up, _ = llmtool_pass(lm, chosen, batch_size, plan.new_tokens, compiled=True)
            _, eager_ids = llmtool_pass(lm, chosen, batch_size, plan.new_tokens, compiled=False)
            plain = compiled = 0.0
            for _ in range(plan.repeats):  # interleaved, best kept
                plain = max(plain, plain_loop_tokens_per_second(lm.model, plain_tokenizer, chosen, batch_size,
                                                                plan.new_tokens))
                seconds, compiled_ids = llmtool_pass(lm, chosen, batch_size, plan.new_tokens, compiled=True)
                compiled = max(compiled, count * plan.new_tokens / seconds)
            speedup, target = compiled / plain, TARGET_SPEEDUP[batch_size]
            verdict = "met" if speedup >= target else "NOT met"
            print(f"  batch size {batch_size}, {count} prompts: warm-up pass (pays the compile) {warm_up:.1f} s, "
                  f"then a pass takes {count * plan.new_tokens / compiled:.2f} s")
            print(f"    a) plain eager loop {plain:9.1f} tokens/s")
            print(f"    b) llmtool compiled {compiled:9.1f} tokens/s: {speedup:.2f}x  "
                  f"(target >= {target}x: {verdict if judged else 'not judged on a CPU'})")
            words, share = agreement(eager_ids, compiled_ids)
            print(f"    c) bf16 compiled vs eager: {words}", flush=True)
            measures += [
                record(f"generate: compiled / eager loop, bf16, batch {batch_size}", speedup,
                        target if judged else None),
                record(f"generate: bf16 compiled tokens before a difference, batch {batch_size}", share, unit="%"),
            ]

        del lm
        batch_size, count = plan.runs[-1]
        lm32 = load_model(model_dir, device=device, dtype="fp32")
        torch._dynamo.reset()
        _, eager_ids = llmtool_pass(lm32, prompts[:count], batch_size, plan.new_tokens, compiled=False)
        _, compiled_ids = llmtool_pass(lm32, prompts[:count], batch_size, plan.new_tokens, compiled=True)
        equal = "equal" if eager_ids == compiled_ids else "NOT equal"
        print(f"  d) fp32, batch size {batch_size}: compiled greedy outputs {equal} to eager ones: "
              f"{agreement(eager_ids, compiled_ids)[0]}")
    measures.append(record(f"generate: fp32 compiled tokens = eager, batch {batch_size}", eager_ids == compiled_ids,
                           True, "==", unit=""))
    return measures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 vs 1,000 prompts; part 2 shorter")
    parser.add_argument("--speed-on-cpu", action="store_true",
                        help="part 2 alone, on the CPU with a tiny model: checks its code path")
    parser.add_argument("--speed-only", action="store_true", help="part 2 alone, on CUDA (none: an error)")
    parser.add_argument("--repeats", type=int, help="part 2: best of this many passes (default: 3; --quick: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the measures to FILE (see results.py)")
    args = parser.parse_args()

    def speed_plan(plan: SpeedPlan) -> SpeedPlan:
        return replace(plan, repeats=args.repeats) if args.repeats else plan

    if args.speed_on_cpu:
        write_json(args.json, "bench_generate_scale", "cpu", speed_part(speed_plan(CPU_CHECK), "cpu"))
        return
    measures = [] if args.speed_only else memory_part(large=10_000 if args.quick else 100_000)

    import torch

    if torch.cuda.is_available():
        measures += speed_part(speed_plan(GPU_QUICK if args.quick else GPU_FULL), "cuda")
    elif args.speed_only:
        raise SystemExit(f"--speed-only: torch {torch.__version__} sees no CUDA GPU here "
                         "(--speed-on-cpu checks the code path on the CPU)")
    else:
        print(f"2) speed: skipped: torch {torch.__version__} sees no CUDA GPU here, and the compiled decoder's gain "
              "is a GPU one (run --speed-on-cpu to check the code path)")
    write_json(args.json, "bench_generate_scale", "cuda" if torch.cuda.is_available() else "cpu", measures)


if __name__ == "__main__":
    main()
