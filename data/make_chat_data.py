"""Generate data/chat, short conversations for chat fine-tuning of the tiny GPT-2 pretrained on corpus.txt.

Run from any directory:

    python data/make_chat_data.py            # writes data/chat/{train,validation,test}.jsonl
    python data/make_chat_data.py OUT_DIR    # the same files, into OUT_DIR

Each line is {"messages": [{"role": ..., "content": ...}, ...]}: an optional system turn, then user and
assistant turns in turn, ending with the assistant. Every answer is one word (a number word, colour, city, ...),
so it is scored by exact match, and each is either a sum the corpus states in words ("Two plus three is five.")
or copied from an earlier turn of the same conversation. The facts, names and words are make_data.py's, so the
vocabulary is the pretraining corpus's. Four kinds, in fixed shares of every split:

    arithmetic   "What is three plus four?" -> "seven" (single-digit operands; minus never goes below zero)
    fact         "Nina has a red bicycle. What colour is Nina's bicycle?" -> "red"
    system_fact  the fact is the system turn; the user asks the question
    multi_turn   two exchanges: two facts, asked about one at a time, or two sums

Standard library only; `random.Random` seeded from make_data.CHAT_SEED, so every run writes byte-identical files.
No conversation appears twice, in one split or across them.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from make_data import (
    ANIMALS, CHAT_SEED, CHAT_SPLITS, CITIES, COLOURS, DATA_DIR, MONTHS, NAMES, NUMBER_WORDS, OWNED_THINGS,
    TRANSPORT, WEATHER, a_or_an, plural, unique_draws,
)

KIND_SHARES = {"arithmetic": 0.25, "fact": 0.30, "system_fact": 0.20, "multi_turn": 0.25}
# Conversations of the kinds that allow one open with one of these; system_fact's fact may follow one.
SYSTEM_PROMPTS = ["You are a helpful assistant.", "Answer with one word.", "Give a short answer."]
SYSTEM_RATE = 0.3
ARITHMETIC_QUESTIONS = ["What is {x} {op} {y}?", "How much is {x} {op} {y}?"]

Message = tuple[str, str]  # (role, content); a conversation is a tuple of them, so it can be a set member


# --------------------------------------------------------------------------- one exchange


def _sum(r: random.Random) -> tuple[str, str]:
    """A question and its answer in words; both operands one digit, and a difference never below zero."""
    op = r.choice(["plus", "minus"])
    x, y = r.randint(0, 9), r.randint(0, 9)
    if op == "minus" and y > x:
        x, y = y, x
    answer = x + y if op == "plus" else x - y
    question = r.choice(ARITHMETIC_QUESTIONS).format(x=NUMBER_WORDS[x], op=op, y=NUMBER_WORDS[y])
    return question, NUMBER_WORDS[answer]


# Each fact is a corpus sentence, with a question whose answer is one of the sentence's words.
def _colour_fact(r: random.Random) -> tuple[str, str, str]:
    name, colour, thing = r.choice(NAMES), r.choice(COLOURS), r.choice(OWNED_THINGS)
    return f"{name} has {a_or_an(colour)} {thing}.", f"What colour is {name}'s {thing}?", colour


def _weather_fact(r: random.Random) -> tuple[str, str, str]:
    city, (weather, _) = r.choice(CITIES), r.choice(WEATHER)
    return f"It is {weather} in {city} today.", f"What is the weather like in {city} today?", weather


def _travel_fact(r: random.Random) -> tuple[str, str, str]:
    name, transport = r.choice(NAMES), r.choice(TRANSPORT)
    origin, destination = r.sample(CITIES, 2)
    return (f"{name} took the {transport} from {origin} to {destination}.",
            f"Which city did {name} travel to?", destination)


def _count_fact(r: random.Random) -> tuple[str, str, str]:
    animals, count = plural(r.choice(ANIMALS)), r.choice(NUMBER_WORDS[2:13])
    return f"There are {count} {animals} on the farm.", f"How many {animals} are on the farm?", count


def _birthday_fact(r: random.Random) -> tuple[str, str, str]:
    name, month = r.choice(NAMES), r.choice(MONTHS)
    return f"{name} was born in {month}.", f"In which month was {name} born?", month


FACTS = [_colour_fact, _weather_fact, _travel_fact, _count_fact, _birthday_fact]


# --------------------------------------------------------------------------- one conversation per kind


def _system(r: random.Random) -> tuple[Message, ...]:
    return (("system", r.choice(SYSTEM_PROMPTS)),) if r.random() < SYSTEM_RATE else ()


def _arithmetic(r: random.Random) -> tuple[Message, ...]:
    question, answer = _sum(r)
    return (*_system(r), ("user", question), ("assistant", answer))


def _fact(r: random.Random) -> tuple[Message, ...]:
    fact, question, answer = r.choice(FACTS)(r)
    return (*_system(r), ("user", f"{fact} {question}"), ("assistant", answer))


def _system_fact(r: random.Random) -> tuple[Message, ...]:
    fact, question, answer = r.choice(FACTS)(r)
    system = f"{r.choice(SYSTEM_PROMPTS)} {fact}" if r.random() < 0.5 else fact
    return (("system", system), ("user", question), ("assistant", answer))


def _multi_turn(r: random.Random) -> tuple[Message, ...]:
    if r.random() < 0.6:
        # Two facts of different templates up front, so each question has one sentence to copy from.
        (fact1, question1, answer1), (fact2, question2, answer2) = (make(r) for make in r.sample(FACTS, 2))
        exchanges = (("user", f"{fact1} {fact2} {question1}"), ("assistant", answer1),
                     ("user", question2), ("assistant", answer2))
    else:
        (question1, answer1), (question2, answer2) = _sum(r), _sum(r)
        exchanges = (("user", question1), ("assistant", answer1), ("user", question2), ("assistant", answer2))
    return (*_system(r), *exchanges)


KINDS = {"arithmetic": _arithmetic, "fact": _fact, "system_fact": _system_fact, "multi_turn": _multi_turn}
assert KINDS.keys() == KIND_SHARES.keys()


# --------------------------------------------------------------------------- files


def kind_counts(split_size: int) -> dict[str, int]:
    """How many conversations of each kind a split of this size holds (the shares' rounding goes to the last)."""
    counts = {kind: int(split_size * share) for kind, share in KIND_SHARES.items()}
    counts[list(KINDS)[-1]] += split_size - sum(counts.values())
    return counts


def make_chat(out_dir: Path) -> dict[str, dict[str, int]]:
    """Write {split}.jsonl into out_dir; return the number of conversations per split and kind."""
    rng = random.Random(CHAT_SEED)
    counts = {split: kind_counts(n) for split, n in CHAT_SPLITS.items()}
    drawn: dict[str, list] = {}
    seen: list = []
    for kind, make in KINDS.items():
        drawn[kind] = unique_draws(rng, make, sum(c[kind] for c in counts.values()), exclude=seen)
        seen += drawn[kind]
        # Late draws of a kind with few distinct conversations (arithmetic) lean to the rarer forms; shuffling
        # before the split keeps every split alike.
        rng.shuffle(drawn[kind])
    out_dir.mkdir(parents=True, exist_ok=True)
    start = dict.fromkeys(KINDS, 0)
    for split, per_kind in counts.items():
        rows = []
        for kind, n in per_kind.items():
            rows += drawn[kind][start[kind]:start[kind] + n]
            start[kind] += n
        rng.shuffle(rows)
        with open(out_dir / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for conversation in rows:
                messages = [{"role": role, "content": content} for role, content in conversation]
                f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=DATA_DIR / "chat",
                        help="directory to write train/validation/test.jsonl into (default: data/chat)")
    out_dir = parser.parse_args().out_dir
    for split, per_kind in make_chat(out_dir).items():
        kinds = ", ".join(f"{kind} {n}" for kind, n in per_kind.items())
        print(f"{out_dir / split}.jsonl: {sum(per_kind.values())} conversations ({kinds})")


if __name__ == "__main__":
    main()
