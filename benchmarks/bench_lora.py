"""Memory and step time of LoRA fine-tuning against full fine-tuning, on a GPT-2-124M-shaped model.

Usage:
  python benchmarks/bench_lora.py           # GPT-2 124M shape, 16 steps per run, best of 2 (~4 min on 2 idle CPU cores)
  python benchmarks/bench_lora.py --quick   # a 2-layer, 128-wide model, 3 steps per run, once: a smoke run
  python benchmarks/bench_lora.py --repeats 1 --json F   # once each; write the ratios to F too (results.py)

Both runs go through llmtool's own path (`config.load_recipe` on recipes/lora-gpt2.yaml, then
`finetuning.finetune`) on the same random-weight model, the same data (data/corpus.txt packed into 64-token blocks,
batch 8) and the same number of steps; full fine-tuning is the same recipe with `model.lora=null`. Each run is its
own process, so one run's memory cannot hide in the other's. Measured side by side in one run:
  a) optimizer-state memory: the bytes of every tensor in the optimizer's state after the run (AdamW: two moments
     per trainable weight). Reported with the ratio LoRA / full.
  b) peak memory. On a CPU, the process's resident set: the whole-process peak (ru_maxrss: libraries, data, base
     weights and training) and the peak growth during training (the training phase's peak minus the RSS when
     training starts, once the model is ready on its device). The target, LoRA <= 0.5x full, applies to the
     training growth: both runs hold the same base weights and libraries, which only dilute the whole-process
     ratio. With CUDA, the same two numbers from torch.cuda.max_memory_allocated.
  c) step time: the median time per optimizer step, the first step excluded as warm-up. Reported with the ratio.
Each configuration runs twice, interleaved, and the run with the faster steps is kept (memory varies little
between repeats; time does, when other processes share the CPU).

Choices:
- The model is GPT-2 124M's shape (12 layers, 12 heads, 768 wide, 50257 embedding rows: 124M weights); its
  tokenizer is a byte-level BPE trained on data/corpus.txt (under 2k tokens), so most embedding rows are never
  looked up, but they are scored in every logit and, in full fine-tuning, get gradients and optimizer state as in
  real GPT-2. (`--quick` keeps the tokenizer's own small vocabulary.)
- LoRA uses the recipe's settings (rank 8 on c_attn), without the merged model at the end; both runs use the
  recipe's learning rate and schedule. Nothing is evaluated or checkpointed during the runs.
- Training starts when `Accelerator.prepare` returns in the engine's loop: the model is on its device, the data is
  tokenized, the optimizer exists but holds no state yet. Every weight is read there first: the base weights are
  memory-mapped from safetensors and would otherwise only become resident during the first forward pass, adding
  the same ~330 MiB (87M fp32 weights) to both runs' training growth. On Linux the kernel's peak-RSS mark is then
  reset (/proc/self/clear_refs), so loading (which can peak above training) does not mask the training peak;
  where that reset is refused, the training peak is read from ru_maxrss and flagged when loading may have set it.
- The median step rather than the mean: on 2 cores shared with another busy process, torch's two threads wait on
  each other and a step can take 20x its clean time; the median keeps the clean steps. The load average before and
  after the run is printed: a run where most steps overlapped other work is noise.
- The child process captures the optimizer by wrapping `llmtool.training.optimizer_for`, and times steps with an
  optimizer step hook; nothing in llmtool is changed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: a benchmark never downloads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "data" / "corpus.txt"
RECIPE = ROOT / "recipes" / "lora-gpt2.yaml"
TOKENIZER_VOCAB_SIZE = 50257  # an upper bound: the small corpus runs out of merges long before it
TARGET_PEAK_RATIO = 0.5  # LoRA's peak training memory at most half of full fine-tuning's
MIB = 2**20


@dataclass(frozen=True)
class Plan:
    model_shape: dict
    steps: int
    repeats: int
    vocab_rows: int | None = None  # embedding rows, when more than the tokenizer's vocabulary


FULL = Plan(model_shape=dict(model_type="gpt2", n_layer=12, n_head=12, n_embd=768, n_positions=1024), steps=16,
            repeats=2, vocab_rows=50257)
QUICK = Plan(model_shape=dict(model_type="gpt2", n_layer=2, n_head=2, n_embd=128, n_positions=1024), steps=3,
             repeats=1)


def overrides(model_dir: Path, out: Path, steps: int, lora: bool) -> list[str]:
    return [f"model.name={model_dir}", f"output_dir={out}", f"train.max_steps={steps}", "train.batch_size=8",
            "data.packing=true", "data.block_size=64", "data.max_length=64", "data.validation_split=0",
            "train.save_every=null", "train.log_every=1000",
            "model.lora.merge=false" if lora else "model.lora=null"]


# ---------------------------------------------------------------- one run, in its own process


def resident_kib(field: str) -> int | None:
    """VmRSS or VmHWM (the peak since the last reset) of this process, in KiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def max_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def reset_peak_rss() -> bool:
    """Set the kernel's peak-RSS mark of this process back to its current RSS (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class TrainingProbe:
    """Hooks into one finetune run: keeps the optimizer, marks where training starts, stamps each step's end."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.optimizer = None
        self.started = False
        self.step_ends: list[float] = []
        self.at_start = self.peak_before = 0
        self.peak_reset = False

    def install(self) -> None:
        import torch
        from accelerate import Accelerator

        from llmtool import training

        make_optimizer, prepare = training.optimizer_for, Accelerator.prepare

        def optimizer_for(*args, **kwargs):
            self.optimizer = make_optimizer(*args, **kwargs)
            self.optimizer.register_step_post_hook(lambda *_: self.step_end())
            return self.optimizer

        def prepare_then_mark(accelerator, *args, **kwargs):
            prepared = prepare(accelerator, *args, **kwargs)
            if self.optimizer is not None and not self.started:  # the loop's own prepare: training starts now
                self.mark_start([item for item in prepared if isinstance(item, torch.nn.Module)])
            return prepared

        training.optimizer_for = optimizer_for
        Accelerator.prepare = prepare_then_mark

    def mark_start(self, models: list) -> None:
        import gc

        import torch

        self.started = True
        gc.collect()
        with torch.no_grad():  # read every weight: memory-mapped base weights become resident before the mark
            for model in models:
                for tensor in (*model.parameters(), *model.buffers()):
                    tensor.sum()
        if self.cuda:
            self.peak_before = torch.cuda.max_memory_allocated()
            self.at_start = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            self.peak_reset = True
        else:
            self.peak_before = max_rss_bytes()
            self.at_start = (resident_kib("VmRSS") or 0) * 1024
            self.peak_reset = reset_peak_rss()

    def step_end(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()  # the step's kernels are done: its time is real
        self.step_ends.append(time.perf_counter())

    def report(self, result) -> dict:
        import torch

        state_bytes = sum(t.numel() * t.element_size() for state in self.optimizer.state.values()
                          for t in state.values() if torch.is_tensor(t))
        if self.cuda:
            training_peak = torch.cuda.max_memory_allocated()
            whole_peak = max(self.peak_before, training_peak)
        else:
            whole_peak = max(self.peak_before, max_rss_bytes())
            hwm = resident_kib("VmHWM") if self.peak_reset else None
            training_peak = hwm * 1024 if hwm is not None else max_rss_bytes()
        intervals = sorted(b - a for a, b in zip(self.step_ends, self.step_ends[1:]))  # the first step is warm-up
        return {
            "optimizer_state_bytes": state_bytes, "whole_peak": whole_peak, "at_start": self.at_start,
            "training_peak": training_peak, "peak_reset": self.peak_reset,
            # without a reset, a peak set while loading shows as the training peak: flag it
            "peak_maybe_from_loading": not self.peak_reset and training_peak <= self.peak_before,
            "step_seconds": statistics.median(intervals) if intervals else float("nan"),
            "steps": result.steps, "trainable_parameters": result.trainable_parameters,
            "train_loss": result.train_loss,
        }


def child(spec: dict) -> None:
    """One finetune run; prints its measurements as one JSON line on stdout."""
    import torch

    from llmtool import config, finetuning

    probe = TrainingProbe(cuda=torch.cuda.is_available())
    probe.install()
    recipe = config.load_recipe(RECIPE, overrides(Path(spec["model"]), Path(spec["out"]), spec["steps"],
                                                  spec["lora"]))
    result = finetuning.finetune(recipe, overwrite=True)
    print(json.dumps(probe.report(result)), flush=True)


def measure(model_dir: Path, out: Path, steps: int, lora: bool) -> dict:
    spec = json.dumps({"model": str(model_dir), "out": str(out), "steps": steps, "lora": lora})
    done = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"the {'LoRA' if lora else 'full'} fine-tuning run failed (exit {done.returncode}); "
                         "its stderr is above")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the comparison


def build_model(out_dir: Path, plan: Plan) -> tuple[int, int]:
    """The random-weight model both runs start from; returns (vocabulary size, parameter count)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from llmtool.scratch import build_from_scratch

    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    build_from_scratch(plan.model_shape, texts, out_dir, vocab_size=TOKENIZER_VOCAB_SIZE, seed=0)
    config = AutoConfig.from_pretrained(out_dir)
    if plan.vocab_rows and plan.vocab_rows > config.vocab_size:  # GPT-2's own embedding size; the extra rows idle
        config.vocab_size = plan.vocab_rows
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config).save_pretrained(out_dir)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    return config.vocab_size, parameters


def faster(kept: dict | None, new: dict) -> dict:
    return new if kept is None or new["step_seconds"] < kept["step_seconds"] else kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model, 3 steps per run, once: a smoke run")
    parser.add_argument("--repeats", type=int, help="best of this many runs each (default: 2; --quick: 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the measures to FILE (see results.py)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one run, in its own process (JSON spec)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    print(f"machine load before the run (1-minute average): {os.getloadavg()[0]:.2f}", flush=True)

    import torch

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vocab, parameters = build_model(tmp / "model", plan)
        full = lora = None
        for _ in range(plan.repeats):  # interleaved; the run with the faster steps is kept
            full = faster(full, measure(tmp / "model", tmp / "full", plan.steps, lora=False))
            lora = faster(lora, measure(tmp / "model", tmp / "lora", plan.steps, lora=True))
    if full["steps"] != plan.steps or lora["steps"] != plan.steps:  # the ratios compare the same work, or nothing
        raise RuntimeError(f"runs took {full['steps']} (full) and {lora['steps']} (LoRA) steps, not {plan.steps}")

    shape = ", ".join(f"{k} {v}" for k, v in plan.model_shape.items() if k != "model_type")
    where = "CUDA" if cuda else f"CPU threads {torch.get_num_threads()}"
    print(f"bench_lora: GPT-2 ({shape}, vocab {vocab}, {parameters / 1e6:.1f}M weights), {plan.steps} steps of "
          f"8 x 64 tokens per run, best of {plan.repeats}, {where}")
    print(f"  machine load after the run (1-minute average): {os.getloadavg()[0]:.2f}")
    print(f"  {'':38s}{'full':>12s}{'LoRA':>12s}{'LoRA/full':>12s}")

    def row(label: str, key: str, scale: float = MIB, unit: str = "MiB", digits: int = 1) -> float:
        ratio = lora[key] / full[key]
        print(f"  {label:38s}{full[key] / scale:>8.{digits}f} {unit:3s}{lora[key] / scale:>8.{digits}f} {unit:3s}"
              f"{ratio:>11.4f}x")
        return ratio

    row("trainable weights", "trainable_parameters", 1e6, "M", 2)
    state_ratio = row("a) optimizer state", "optimizer_state_bytes")
    for run in (full, lora):
        run["training_growth"] = run["training_peak"] - run["at_start"]
    row(f"{'CUDA memory' if cuda else 'RSS'} when training starts", "at_start")
    growth_ratio = row("b) peak growth during training", "training_growth")
    whole_ratio = row("   whole-process peak", "whole_peak")
    time_ratio = row("c) time per step (median, not the 1st)", "step_seconds", 1e-3, "ms", 0)
    print(f"  final train loss (last window): full {full['train_loss']:.3f}, LoRA {lora['train_loss']:.3f}")

    met = "met" if growth_ratio <= TARGET_PEAK_RATIO else "NOT met"
    print(f"  a) optimizer state LoRA / full: {state_ratio:.4f}x")
    print(f"  b) peak training memory LoRA / full: {growth_ratio:.2f}x  (target <= {TARGET_PEAK_RATIO}x: {met})")
    print(f"     the target applies to the growth during training; the whole-process peak, {whole_ratio:.2f}x, "
          "adds the same base weights and libraries to both")
    if any(run["peak_maybe_from_loading"] for run in (full, lora)):
        print("     warning: the peak-RSS mark could not be reset, and a training peak is no higher than the peak "
              "before training: that growth may be loading's, not training's")
    print(f"  c) time per step LoRA / full: {time_ratio:.2f}x")
    write_json(args.json, "bench_lora", "cuda" if cuda else "cpu", [
        record("LoRA / full: peak memory growth in training", growth_ratio, TARGET_PEAK_RATIO, "<="),
        record("LoRA / full: optimizer state", state_ratio),
        record("LoRA / full: time per step", time_ratio),
    ])


if __name__ == "__main__":
    main()
