"""A conversation with a causal LM through its chat template (`llmtool chat`).

The conversation is a system turn and the turns after it. Each reply sees what fits the model's positions beside
it: the oldest exchanges are dropped first, the system turn never. What the model sees is rendered by the
template and tokenized as the template wrote it (no special tokens added: no double BOS), and answered by
generation's decoder, which stops at the template's end-of-turn token as it does at the end-of-sequence token.
A conversation is saved as JSON messages, through the output guard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from llmtool import chat, generation
from llmtool.errors import SettingError, literal
from llmtool.models import LoadedModel
from llmtool.results_file import claim_output, write_whole

USER, SYSTEM = "user", "system"
# A reply's new tokens when none are asked for: a few paragraphs, or half the model's positions where that is less
# (the other half is for the conversation).
DEFAULT_MAX_NEW_TOKENS = 256


@dataclass
class Reply:
    text: str
    prompt_tokens: int  # the rendered conversation the model saw
    new_tokens: int  # the reply's, its end-of-turn token not counted


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """What a model answering `messages` sees: the conversation as its template renders it, the reply's start
    added, tokenized as the template wrote it (no special tokens added)."""
    text = chat.render(tokenizer, messages, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


class Conversation:
    """A conversation with `lm` through its chat template: its tokenizer's own, else `template` (a shipped one or a
    Jinja file). `messages` ({role, content} turns) start it; `settings.max_new_tokens` None takes the default."""

    def __init__(self, lm: LoadedModel, settings: generation.GenerationSettings, template: str | None = None,
                 messages: list[dict] | None = None):
        added = chat.use_template(lm.tokenizer, template)
        if added:  # ChatML's markers, new to this vocabulary: their embeddings are untrained, no turn would end
            raise SettingError(f"{{chat_template}} '{literal(template)}' adds tokens this model has never been trained "
                               f"with ({', '.join(added)}); fine-tune it with that template first, or use zephyr")
        self.lm = lm
        self.limit = generation.shared_positions(lm)
        budget = settings.max_new_tokens
        if budget is None:
            budget = min(DEFAULT_MAX_NEW_TOKENS, self.limit // 2) if self.limit else DEFAULT_MAX_NEW_TOKENS
        elif self.limit is not None and budget >= self.limit:
            raise SettingError(f"{{max_new_tokens}} {budget} fills this model's {self.limit} positions and leaves "
                               "none for the conversation; lower it")
        self.settings = replace(settings, max_new_tokens=budget, batch_size=1,
                                stop_token_ids=[chat.end_of_turn_id(lm.tokenizer)])
        turns = list(messages or [])
        self.system = turns.pop(0)["content"] if turns and turns[0]["role"] == SYSTEM else None
        self.turns = turns
        self.first = 0  # the oldest of `turns` that the model still sees

    @property
    def messages(self) -> list[dict]:
        """The whole conversation, dropped turns included, as {role, content} turns."""
        return self._with_system(self.turns)

    def _with_system(self, turns: list[dict]) -> list[dict]:
        return ([{"role": SYSTEM, "content": self.system}] if self.system is not None else []) + turns

    def _prompt_ids(self, first: int) -> list[int]:
        """The tokens of the conversation from turn `first` on (the system turn first), the reply's start added."""
        return prompt_ids(self.lm.tokenizer, self._with_system(self.turns[first:]))

    def add(self, text: str) -> int:
        """The user's turn added, and the conversation fitted to the model (`fit`): how many turns the model no
        longer sees. A message that does not fit even alone is refused and not added."""
        self.turns.append({"role": USER, "content": text})
        try:
            return self.fit()
        except BaseException:  # refused, or stopped (Ctrl-C): the conversation is as it was
            self.turns.pop()
            raise

    def fit(self) -> int:
        """Leave the model only the turns that fit its positions beside a reply of `max_new_tokens`, dropping the
        oldest exchange (a user turn and what follows it up to the next) first; the system turn stays. Returns
        how many turns were dropped."""
        if self.limit is None:
            return 0
        room = self.limit - self.settings.max_new_tokens
        first = self.first
        while (length := len(self._prompt_ids(first))) > room:
            later = [i for i in range(first + 1, len(self.turns)) if self.turns[i]["role"] == USER]
            if not later:
                system = " with the system turn" if self.system is not None else ""
                raise SettingError(f"the last message is {length} tokens{literal(system)} as the template renders it; "
                                   f"with a reply of {{max_new_tokens}} {self.settings.max_new_tokens} that passes "
                                   f"this model's {self.limit} positions: shorten it, or lower {{max_new_tokens}}")
            first = later[0]
        dropped, self.first = first - self.first, first
        return dropped

    def answer(self, streamer=None) -> Reply:
        """The model's reply to the last user turn, added to the conversation. A `streamer` (transformers') is
        given the reply's tokens as they come."""
        ids = self._prompt_ids(self.first)
        [[new]] = generation.generate_ids(self.lm, [ids], self.settings, streamer=streamer)
        text = self.lm.tokenizer.decode(new, skip_special_tokens=True)
        self.turns.append({"role": chat.ASSISTANT, "content": text})
        return Reply(text=text, prompt_tokens=len(ids), new_tokens=len(new))

    def cut_short(self, shown: str) -> None:
        """A reply stopped part way (Ctrl-C): the part the user saw is kept as the reply, so the conversation goes
        on from what was read; where nothing was shown, the unanswered user turn goes too."""
        if shown:
            self.turns.append({"role": chat.ASSISTANT, "content": shown})
        else:
            self.turns.pop()

    def set_system(self, text: str | None) -> None:
        self.system = text or None

    def reset(self) -> None:
        """Every turn gone but the system turn."""
        self.turns, self.first = [], 0

    def save(self, path: Path, inputs: Mapping[str, str | Path | None] | None = None) -> None:
        """The whole conversation as a JSON list of messages in a new file, through the output guard
        (`claim_output`: never one of `inputs`, never a directory, never a file another run writes). A file that
        holds anything is refused: a save never replaces one."""
        if path.is_file() and path.stat().st_size > 0:
            raise SettingError(f"{{output}} '{literal(path)}' already exists and a save never replaces a file; give a "
                               "new name")
        lock = claim_output(path, inputs)
        try:
            write_whole(path, (json.dumps(self.messages, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
        finally:
            if lock is not None:
                lock.release()
