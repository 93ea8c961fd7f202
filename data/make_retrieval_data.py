"""Generate data/retrieval: documents, and queries that paraphrase some of them, for semantic search and its
evaluation (llmtool embed --output, llmtool search, llmtool eval --index).

Run from any directory:

    python data/make_retrieval_data.py            # writes data/retrieval/{docs,queries}.jsonl and README.md
    python data/make_retrieval_data.py OUT_DIR    # the same files, into OUT_DIR

docs.jsonl: {"id": "d001", "text": ...} a line. Each document states one fact in a corpus-style sentence (the
names, places and words are make_data.py's), often followed by an unrelated corpus sentence, as a passage would
be. Facts of one kind share their template and differ in their names and values, so a query must be matched on
what it asks about, not on the template: "Nina has a red bicycle." sits beside "Nina has a blue hat." and "Tom has
a red bicycle."

queries.jsonl: {"query": ..., "relevant": [id]} a line: a question or statement that says the same fact in other
words ("What colour is the bicycle that belongs to Nina?"), relevant to the one document it paraphrases.

Standard library only; `random.Random` seeded from make_data.SEED (RETRIEVAL_SEED), so every run writes
byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from make_data import (
    CITIES, COLOURS, DATA_DIR, DISHES, HOBBIES, MONTHS, NAMES, OWNED_THINGS, PLACES, SEED, SUBJECTS, TRANSPORT,
    WEATHER, _animals, _arithmetic, _quick_fox, a_or_an, cap,
)

RETRIEVAL_SEED = SEED + 5  # make_data.py's files use SEED + 1 to + 4
DOCS_PER_KIND = 30  # weather: one a city, and there are 16
QUERIES_PER_KIND = 12
FOLLOW_UP_RATE = 0.5  # documents that go on with an unrelated corpus sentence
LOST_ITEMS = ["umbrella", "key", "camera", "notebook", "scarf", "wallet", "ticket", "glove", "watch", "map"]


def _owned(r: random.Random) -> tuple[tuple, str, list[str]]:
    name, colour, thing = r.choice(NAMES), r.choice(COLOURS), r.choice(OWNED_THINGS)
    return (name, thing), f"{name} has {a_or_an(colour)} {thing}.", [
        f"What colour is the {thing} that belongs to {name}?",
        f"The {thing} owned by {name} is {colour}.",
    ]


def _weather(r: random.Random) -> tuple[tuple, str, list[str]]:
    (weather, item), city, name = r.choice(WEATHER), r.choice(CITIES), r.choice(NAMES)
    return (city,), f"It is {weather} in {city} today. {name} takes {item}.", [
        f"What is the weather like in {city} at the moment?",
        f"Why does {name} bring {item} in {city}?",
    ]


def _travel(r: random.Random) -> tuple[tuple, str, list[str]]:
    name, (start, end), how = r.choice(NAMES), r.sample(CITIES, 2), r.choice(TRANSPORT)
    return (name, start), f"{name} took the {how} from {start} to {end}.", [
        f"How did {name} get to {end}, leaving from {start}?",
        f"Leaving {start}, {name} went by {how} to {end}.",
    ]


def _hobby(r: random.Random) -> tuple[tuple, str, list[str]]:
    first, second = r.sample(NAMES, 2)
    hobby = r.choice(HOBBIES)
    return tuple(sorted((first, second))), f"{first} and {second} enjoy {hobby}.", [
        f"What pastime do {second} and {first} share?",
        f"{hobby.capitalize()} is something {second} and {first} love to do together.",
    ]


def _dinner(r: random.Random) -> tuple[tuple, str, list[str]]:
    name, dish = r.choice(NAMES), r.choice(DISHES)
    return (name,), f"{name} cooks {dish} for dinner.", [
        f"What does {name} make for the evening meal?",
        f"In the evening {name} prepares {dish}.",
    ]


def _birthday(r: random.Random) -> tuple[tuple, str, list[str]]:
    name, month = r.choice(NAMES), r.choice(MONTHS)
    return (name,), f"{name} was born in {month}.", [
        f"When is {name}'s birthday?",
        f"{name} celebrates a birthday every {month}.",
    ]


def _lost(r: random.Random) -> tuple[tuple, str, list[str]]:
    owner, finder = r.sample(NAMES, 2)
    item, place = r.choice(LOST_ITEMS), r.choice(PLACES)
    return (item, place), f"{owner} lost a {item} in the {place}. Later, {finder} found it.", [
        f"Who found the {item} that {owner} left at the {place}?",
        f"{finder} discovered the missing {item} of {owner} at the {place}.",
    ]


def _subject(r: random.Random) -> tuple[tuple, str, list[str]]:
    name, (liked, other) = r.choice(NAMES), r.sample(SUBJECTS, 2)
    return (name,), f"{name} likes {liked} more than {other}.", [
        f"Which school subject does {name} prefer to {other}?",
        f"For {name}, {liked} is better than {other}.",
    ]


def _home(r: random.Random) -> tuple[tuple, str, list[str]]:
    name, city = r.choice(NAMES), r.choice(CITIES)
    return (name,), f"{name} lives in a small flat in {city}.", [
        f"In which city is {name}'s home?",
        f"{name}'s little apartment is in {city}.",
    ]


KINDS = {"owned": _owned, "weather": _weather, "travel": _travel, "hobby": _hobby, "dinner": _dinner,
         "birthday": _birthday, "lost": _lost, "subject": _subject, "home": _home}
FOLLOW_UPS = (_animals, _arithmetic, _quick_fox)  # corpus sentences about nothing the facts above state


def _facts(r: random.Random, make, count: int) -> list[tuple[str, list[str]]]:
    """`count` facts of one kind, no two about the same thing (their keys differ)."""
    facts: dict[tuple, tuple[str, list[str]]] = {}
    while len(facts) < count:
        key, text, queries = make(r)
        facts.setdefault(key, (text, queries))
    return list(facts.values())


def make(out_dir: Path) -> tuple[int, int]:
    r = random.Random(RETRIEVAL_SEED)
    documents, judged = [], []
    for make_fact in KINDS.values():
        facts = _facts(r, make_fact, min(DOCS_PER_KIND, len(CITIES)) if make_fact is _weather else DOCS_PER_KIND)
        asked = set(r.sample(range(len(facts)), QUERIES_PER_KIND))
        for number, (text, queries) in enumerate(facts):
            if r.random() < FOLLOW_UP_RATE:
                text = f"{text} {cap(r.choice(FOLLOW_UPS)(r))}"
            documents.append(text)
            if number in asked:
                judged.append((r.choice(queries), len(documents) - 1))
    order = list(range(len(documents)))
    r.shuffle(order)
    ids = {old: f"d{new + 1:03d}" for new, old in enumerate(order)}
    r.shuffle(judged)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "docs.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for old in sorted(order, key=lambda i: ids[i]):
            handle.write(json.dumps({"id": ids[old], "text": documents[old]}, ensure_ascii=False) + "\n")
    with (out_dir / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for query, old in judged:
            handle.write(json.dumps({"query": query, "relevant": [ids[old]]}, ensure_ascii=False) + "\n")
    (out_dir / "README.md").write_text(README.format(
        documents=len(documents), queries=len(judged), kinds=len(KINDS), per_kind=DOCS_PER_KIND,
        cities=min(DOCS_PER_KIND, len(CITIES)), asked=QUERIES_PER_KIND), encoding="utf-8")
    return len(documents), len(judged)


README = """# data/retrieval/

Documents and judged queries for semantic search (`llmtool embed --output NAME.index`, `llmtool search`,
`llmtool eval --index`), written by `python data/make_retrieval_data.py` (after `make_data.py`, whose names,
places and word lists it imports; standard library only, seeded: every run writes these files byte for byte).
Edit the script, not the files.

| File | Rows | Format |
|------|------|--------|
| `docs.jsonl` | {documents} | JSON lines with keys `id` (`d001`, ...) and `text` |
| `queries.jsonl` | {queries} | JSON lines with keys `query` and `relevant` (a list of document ids) |

Each document states one fact in a corpus-style sentence; about half go on with an unrelated corpus sentence
(animals, sums, the quick fox), as a passage would. {kinds} kinds of fact (the colour of someone's thing, the
weather in a city, a trip, a shared hobby, a dinner, a birth month, a lost and found thing, a preferred school
subject, a home town), {per_kind} of each (weather: one a city, {cities}), no two of a kind about the same thing.
Facts of one kind share their template, so "Nina has a red bicycle." sits beside "Nina has a blue hat." and
"Tom has a red bicycle.": a query must be matched on what it asks, not on its template. {asked} facts of each
kind are asked about, each by one query that says the fact in other words, as a question or a statement ("What
colour is the bicycle that belongs to Nina?", "Leaving Rome, Sam went by train to Oslo."), relevant to exactly
the document it paraphrases. all-MiniLM-L6-v2 ranks that document in its top 5 for 99% of the queries, first
for 87% (tests/test_search.py checks recall@5 >= 0.95).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=DATA_DIR / "retrieval")
    out_dir = parser.parse_args().out_dir
    documents, queries = make(out_dir)
    print(f"wrote {documents} documents and {queries} queries to {out_dir}")


if __name__ == "__main__":
    main()
