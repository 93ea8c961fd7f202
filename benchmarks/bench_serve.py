"""`llmtool serve` under load: continuous batching against one request at a time, the same server and requests,
measured side by side in one run over loopback.

Usage:
  python benchmarks/bench_serve.py           # 64 requests from 16 concurrent clients, 48 new tokens each
  python benchmarks/bench_serve.py --quick   # 32 requests, 24 new tokens each (a smoke run)
  python benchmarks/bench_serve.py --json F  # also write the measures to F (results.py)

Measured:
  The real `llmtool serve` (its own process, on a free 127.0.0.1 port) serving a demo-shaped GPT-2 (the shape
  `make demo` pretrains: 4 layers, 4 heads, 128 wide, 128 positions, a 2,000-token BPE trained on
  data/corpus.txt; random weights), started twice: with --max-concurrency 1 (one request decoded at a time, the
  rest queued) and with --max-concurrency 16 (continuous batching). Against each, the same requests from 16
  concurrent clients (asyncio + httpx, streamed): prompts of 8 to 40 tokens from the corpus, each sampled with a
  seed of its own (temperature 1, OpenAI's default) for a fixed number of new tokens. Reported for each: requests/s
  and new tokens/s over the whole run, time to first token and latency (p50, p99), and how every request ended:
  answered whole ([DONE]), refused with 429, or anything else (which should never happen). The two runs' texts
  must be identical (batching never changes a result), which the run checks.
  Targets: batched >= 4x the one-at-a-time requests/s on the CPU; batched latency p99 <= 2x its p50.

Each server is warmed first with a burst of 16 short requests (its first forward passes pay one-time costs). The server runs
with one torch thread (--threads to change it): the load-generating client shares the machine's cores with it,
and on 2 cores shared with other busy processes torch's two threads waited on each other so much that a decoding
step of this model took 314 ms instead of 3.8 ms with one (measured, `generate` alone, load average 5.7). The run
prints the load average it started under.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: a benchmark never downloads

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "data" / "corpus.txt"
DEMO_SHAPE = dict(model_type="gpt2", n_layer=4, n_head=4, n_embd=128, n_positions=128)
CLIENTS = 16
TARGET_THROUGHPUT = 4.0
TARGET_TAIL = 2.0  # p99 / p50 latency, batched


@dataclass(frozen=True)
class Plan:
    requests: int
    new_tokens: int


FULL = Plan(requests=64, new_tokens=48)
QUICK = Plan(requests=32, new_tokens=24)


@dataclass
class Outcome:
    status: str  # "whole", "429" or what went wrong
    text: str = ""
    tokens: int = 0
    first_token: float | None = None
    latency: float = 0.0


@dataclass
class Run:
    label: str
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def whole(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "whole"]

    def rate(self) -> float:
        return len(self.whole) / self.seconds

    def tokens_per_second(self) -> float:
        return sum(o.tokens for o in self.whole) / self.seconds

    def latency(self, q: float) -> float:
        return percentile([o.latency for o in self.whole], q)

    def first_token(self, q: float) -> float:
        return percentile([o.first_token for o in self.whole if o.first_token is not None], q)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def build_model(root: Path) -> Path:
    from llmtool.scratch import build_from_scratch

    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    return build_from_scratch(DEMO_SHAPE, texts, root / "demo-gpt2", vocab_size=2000, seed=0)


def prompts(model: Path, count: int) -> list[str]:
    """Corpus lines joined to 8-40 tokens, a different length for each request."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = []
    for i in range(count):
        want, text, j = 8 + (i * 13) % 33, "", i * 7
        while len(tokenizer(text)["input_ids"]) < want:
            text = (text + " " + lines[j % len(lines)]).strip()
            j += 1
        chosen.append(tokenizer.decode(tokenizer(text)["input_ids"][:want]))
    return chosen


def start_server(model: Path, concurrency: int, threads: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([sys.executable, "-m", "llmtool", "serve", "--model", f"demo={model}", "--port", "0",
                                "--max-concurrency", str(concurrency), "--max-queue", "64", "--device", "cpu"],
                               stderr=subprocess.PIPE, text=True, env=env)
    line = process.stderr.readline()
    found = re.search(r"at (http://[\d.]+:\d+)/v1", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    return process, found.group(1)


def stop_server(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        _, log = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, log = process.communicate()
    return log


async def one_request(client, url: str, prompt: str, seed: int, new_tokens: int) -> Outcome:
    body = {"model": "demo", "prompt": prompt, "max_tokens": new_tokens, "seed": seed, "stream": True,
            "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    outcome = Outcome(status="no [DONE]")
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        if response.status_code == 429:
            await response.aread()
            return Outcome(status="429", latency=time.perf_counter() - start)
        if response.status_code != 200:
            return Outcome(status=f"HTTP {response.status_code}", latency=time.perf_counter() - start)
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                outcome.status = "whole"
                break
            chunk = json.loads(data)
            if "error" in chunk:
                outcome.status = f"error {chunk['error']['code']}"
                break
            if chunk["choices"] and chunk["choices"][0]["text"]:
                outcome.text += chunk["choices"][0]["text"]
                if outcome.first_token is None:
                    outcome.first_token = time.perf_counter() - start
            if chunk.get("usage"):
                outcome.tokens = chunk["usage"]["completion_tokens"]
    outcome.latency = time.perf_counter() - start
    return outcome


async def load_test(url: str, texts: list[str], new_tokens: int, label: str) -> Run:
    """Every prompt sent once, by CLIENTS clients each sending its next request when the last one is answered."""
    import httpx

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        # warm-up, a burst like the run's: the first forward passes of each batch shape pay one-time costs
        await asyncio.gather(*(one_request(client, url, text, 10_000 + i, 4) for i, text in enumerate(texts[:CLIENTS])))
        queue: asyncio.Queue = asyncio.Queue()
        for i, text in enumerate(texts):
            queue.put_nowait((i, text))
        outcomes: list[Outcome | None] = [None] * len(texts)

        async def worker():
            while not queue.empty():
                i, text = queue.get_nowait()
                outcomes[i] = await one_request(client, url, text, i, new_tokens)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        return Run(label, time.perf_counter() - start, outcomes)


def measure(model: Path, texts: list[str], new_tokens: int, concurrency: int, threads: int,
            label: str) -> tuple[Run, str]:
    process, url = start_server(model, concurrency, threads)
    try:
        run = asyncio.run(load_test(url, texts, new_tokens, label))
    finally:
        log = stop_server(process)
    return run, log


def report(run: Run) -> None:
    ended = {}
    for outcome in run.outcomes:
        ended[outcome.status] = ended.get(outcome.status, 0) + 1
    print(f"  {run.label:<22} {run.rate():6.2f} req/s  {run.tokens_per_second():7.1f} tokens/s  "
          f"first token p50 {run.first_token(50) * 1000:6.0f} ms p99 {run.first_token(99) * 1000:6.0f} ms  "
          f"latency p50 {run.latency(50):6.2f} s p99 {run.latency(99):6.2f} s  ({run.seconds:.1f} s)")
    print(f"  {'':<22} ended: " + ", ".join(f"{count} {status}" for status, count in sorted(ended.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and tokens: a smoke run")
    parser.add_argument("--json", help="also write the measures to this file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server (OMP_NUM_THREADS)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    print(f"load average {os.getloadavg()[0]:.1f}; {plan.requests} requests from {CLIENTS} clients, "
          f"{plan.new_tokens} new tokens each, demo-shaped GPT-2 on the CPU, {args.threads} torch thread(s)")
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(Path(folder))
        texts = prompts(model, plan.requests)
        alone, _ = measure(model, texts, plan.new_tokens, 1, args.threads, "--max-concurrency 1")
        report(alone)
        batched, _ = measure(model, texts, plan.new_tokens, CLIENTS, args.threads, f"--max-concurrency {CLIENTS}")
        report(batched)

    answered = all(o.status in ("whole", "429") for run in (alone, batched) for o in run.outcomes)
    same = [o.text for o in alone.outcomes] == [o.text for o in batched.outcomes]
    throughput = batched.rate() / alone.rate() if alone.whole and batched.whole else None
    tail = batched.latency(99) / batched.latency(50) if batched.whole else None
    print(f"every request answered whole or refused with 429: {'yes' if answered else 'NO'}; "
          f"the same texts both ways: {'yes' if same else 'NO'}")
    if throughput is not None:
        print(f"batched / one at a time, requests/s: {throughput:.2f}x (target >= {TARGET_THROUGHPUT}x: "
              f"{'met' if throughput >= TARGET_THROUGHPUT else 'NOT met'})")
        print(f"batched latency p99 / p50: {tail:.2f}x (target <= {TARGET_TAIL}x: "
              f"{'met' if tail <= TARGET_TAIL else 'NOT met'})")
    write_json(args.json, "bench_serve", "cpu", [
        record("serve: batched / one at a time, requests/s", throughput, TARGET_THROUGHPUT),
        record("serve: batched latency p99 / p50", tail, TARGET_TAIL, "<="),
        record("serve: every request answered or refused with 429", answered, True, "=="),
        record("serve: batched texts equal one-at-a-time texts", same, True, "=="),
        record("serve: batched tokens/s", batched.tokens_per_second(), None, unit=""),
        record("serve: one-at-a-time tokens/s", alone.tokens_per_second(), None, unit=""),
    ])


if __name__ == "__main__":
    main()
