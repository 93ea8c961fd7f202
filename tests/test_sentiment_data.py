"""data/sentiment: the shipped splits are what data/make_data.py writes; they are balanced and disjoint, and no
surface marker of negation, contrast or a question gives the label away (each occurs under both labels)."""

import csv
import re
import subprocess
import sys

import pytest

from conftest import ROOT

SENTIMENT = ROOT / "data" / "sentiment"
SPLITS = ("train", "validation", "test")
# Written here rather than taken from the generator, so its shares are checked against an independent reading.
MARKERS = {
    "negation": re.compile(r"\b(not|no|never|nothing|nobody)\b|n't\b", re.IGNORECASE),
    "contrast": re.compile(r"\b(but|though|although|however)\b", re.IGNORECASE),
    "question": re.compile(r"\?"),
}


@pytest.fixture(scope="module")
def rows():
    out = {}
    for split in SPLITS:
        with (SENTIMENT / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
            out[split] = list(csv.DictReader(handle))
    return out


def test_shipped_files_are_what_the_generator_writes(tmp_path):
    write = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import make_data; "
             "make_data.make_sentiment(Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", write, str(ROOT / "data"), str(tmp_path)], check=True, capture_output=True)
    for split in SPLITS:
        assert (tmp_path / f"{split}.csv").read_bytes() == (SENTIMENT / f"{split}.csv").read_bytes(), split


def test_splits_are_balanced_and_share_no_text_in_any_case(rows):
    seen = set()
    for split, split_rows in rows.items():
        labels = [row["label"] for row in split_rows]
        assert labels.count("positive") == labels.count("negative") == len(labels) // 2, split
        texts = {row["text"].lower() for row in split_rows}
        assert len(texts) == len(split_rows), f"{split} repeats a text"
        assert not texts & seen, f"{split} shares texts with an earlier split"
        seen |= texts


def test_negation_contrast_and_questions_occur_under_both_labels(rows):
    train = rows["train"]
    for name, marker in MARKERS.items():
        labels = [row["label"] for row in train if marker.search(row["text"])]
        assert len(labels) > 0.04 * len(train), f"too few rows with a {name}"
        share = labels.count("positive") / len(labels)
        assert 0.35 < share < 0.65, f"rows with a {name}: {share:.0%} positive"


def test_reviews_vary_in_length_and_stay_short(rows):
    lengths = [len(row["text"].split()) for row in rows["train"]]
    assert max(lengths) <= 35
    assert sum(n <= 5 for n in lengths) > 0.05 * len(lengths) and sum(n >= 20 for n in lengths) > 0.05 * len(lengths)
