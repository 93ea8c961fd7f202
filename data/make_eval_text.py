"""Generate llmtool/assets/eval.txt, the short English text that `llmtool eval` scores when given no --data.

Run from any directory, after make_data.py:

    python data/make_eval_text.py

The lines come from the corpus templates of make_data.py, drawn with their own seed, and a line is kept only if
none of its sentences occurs in corpus.txt (or earlier in the text): the corpus's style, with nothing a model
trained on the corpus has seen. Standard library only; every run writes byte-identical text.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import make_data

EVAL_LINES = 150
EVAL_SEED = make_data.SEED + 100
OUTPUT = Path(__file__).resolve().parents[1] / "llmtool" / "assets" / "eval.txt"


def sentences(line: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+", line) if part.strip()]


def make_eval_text(corpus: Path, out: Path) -> int:
    seen = {s for line in corpus.read_text(encoding="utf-8").splitlines() for s in sentences(line)}
    rng = random.Random(EVAL_SEED)
    lines: list[str] = []
    draws = 0
    while len(lines) < EVAL_LINES:
        draws += 1
        if draws > EVAL_LINES * 1000:
            raise RuntimeError(f"templates too narrow: only {len(lines)} of {EVAL_LINES} new lines")
        line = make_data._corpus_line(rng)
        if not any(s in seen for s in sentences(line)):
            seen.update(sentences(line))
            lines.append(line)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


if __name__ == "__main__":
    count = make_eval_text(make_data.DATA_DIR / "corpus.txt", OUTPUT)
    print(f"wrote {count} lines to {OUTPUT}")
