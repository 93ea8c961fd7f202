"""data/chat: the shipped files are what data/make_chat_data.py writes, and every conversation is well formed,
answerable by exact match (sums recomputed here, other answers copied from earlier in the conversation), and
none is shared between splits."""

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT

CHAT = ROOT / "data" / "chat"
SPLITS = ("train", "validation", "test")
# The words for 0..18, written out here rather than taken from the generator, so the sums are checked
# against an independent table.
NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
          "sixteen seventeen eighteen".split()
SUM = re.compile(r"(?:What|How much) is (\w+) (plus|minus) (\w+)\?")


@pytest.fixture(scope="module")
def conversations():
    return {split: [json.loads(line) for line in (CHAT / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
            for split in SPLITS}


def test_shipped_files_are_what_the_generator_writes(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "data" / "make_chat_data.py"), str(tmp_path)],
                   check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in CHAT.iterdir())
    for split in SPLITS:
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (CHAT / f"{split}.jsonl").read_bytes(), split


def test_every_conversation_is_well_formed(conversations):
    for split, rows in conversations.items():
        assert rows, split
        for row in rows:
            assert list(row) == ["messages"], row
            messages = row["messages"]
            assert all(list(m) == ["role", "content"] for m in messages), row
            assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages), row
            roles = [m["role"] for m in messages]
            if roles[0] == "system":
                roles = roles[1:]
            assert roles and roles == ["user", "assistant"] * (len(roles) // 2), row


def test_sums_are_right_and_other_answers_come_from_the_conversation(conversations):
    sums = 0
    for rows in conversations.values():
        for row in rows:
            messages = row["messages"]
            for i, message in enumerate(messages):
                if message["role"] != "assistant":
                    continue
                question, answer = messages[i - 1]["content"], message["content"]
                asked = SUM.fullmatch(question)
                if asked:
                    x, op, y = NUMBERS.index(asked[1]), asked[2], NUMBERS.index(asked[3])
                    assert x < 10 and y < 10, question
                    assert answer == NUMBERS[x + y if op == "plus" else x - y], row
                    sums += 1
                    continue
                # The context: every turn before, and the user turn's sentences before its question.
                context = [m["content"] for m in messages[:i - 1]] + [re.sub(r"[^.?]*\?$", "", question)]
                assert " " not in answer and answer in re.findall(r"[\w']+", " ".join(context)), row
    assert sums > 500


def test_no_conversation_is_in_two_splits(conversations):
    keys = {split: {json.dumps(row, sort_keys=True) for row in rows} for split, rows in conversations.items()}
    assert all(len(keys[split]) == len(conversations[split]) for split in SPLITS)
    assert not keys["test"] & keys["train"]
    assert not keys["test"] & keys["validation"]
    assert not keys["validation"] & keys["train"]
