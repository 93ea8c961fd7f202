"""Build the demo's models offline: a small GPT-2 and a small T5, each with a tokenizer trained on data/corpus.txt.

Usage: python demo/build_models.py OUT_DIR   (writes OUT_DIR/gpt2 and OUT_DIR/t5; skips what is already built)
The weights are freshly initialised, so the demo shows the mechanics, not good text.
"""

import json
import sys
from pathlib import Path

from llmtool.scratch import build_from_scratch

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "data" / "corpus.txt"


def main(out_root: Path) -> None:
    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    for family in ("gpt2", "t5"):
        out_dir = out_root / family
        if (out_dir / "config.json").exists():
            continue
        settings = json.loads((HERE / f"{family}.json").read_text(encoding="utf-8"))
        build_from_scratch(settings, texts, out_dir, vocab_size=2000, seed=0)
        print(f"built {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/demo"))
