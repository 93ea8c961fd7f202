"""Errors meant for a user: the message says what is wrong and what to do about it.

The domain names a setting by its key (`SettingError`); whoever called it for a user, a command or a recipe verb,
says how that user spells the key (`naming`): `--max-new-tokens` on the command line, `data.max_target_length` in
a recipe.
"""

from __future__ import annotations

import copy
import json
import re
from contextlib import contextmanager
from typing import Iterator, Mapping


class LlmtoolError(Exception):
    """A problem the user can fix. The CLI prints its message as one red line and exits with `exit_code`."""

    exit_code = 1

    def within(self, before: str = "", after: str = "") -> LlmtoolError:
        """The same error with the caller's context around its message (which file, which model)."""
        return type(self)(f"{before}{self}{after}")


class UsageError(LlmtoolError):
    """Bad options or recipe values: the command was called wrongly (exit 2, like click's usage errors)."""

    exit_code = 2


class Interrupted(LlmtoolError):
    """The user stopped a run (Ctrl-C): the message says where it stopped and what was kept (exit 130, as shells
    report SIGINT)."""

    exit_code = 130


# A setting in a SettingError's message: its key in braces. Other braces ({"prompt": "..."}) are text, and so is
# anything `literal` wrapped: its braces come doubled, and read as one.
SETTING = re.compile(r"\{\{|\}\}|\{([a-z][a-z0-9_]*)\}")


def literal(value) -> str:
    """What the user gave (a path, a name, a label) as it goes into a SettingError's message: shown as it is, never
    read as a setting's key, whatever braces it holds ('/data/{train}.csv' stays that)."""
    return str(value).replace("{", "{{").replace("}", "}}")


class SettingError(UsageError):
    """A setting's value is wrong, said in the domain's terms: `message` names each setting by its key in braces
    ("{max_new_tokens} must be at least 1 (got 0)"), and the caller spells the keys for its user with `naming`.
    A key no caller has spelt reads as itself.

    `clauses` (key -> text) end the message only where the caller names that key, for advice that holds only
    where the user has the setting: {"new_head": "; {new_head} accepts that"}. The exit code is a usage
    error's, or `exit_code` for one that has always been an ordinary error (a model directory that is not there).
    """

    def __init__(self, message: str, clauses: Mapping[str, str] | None = None,
                 exit_code: int = UsageError.exit_code):
        super().__init__(message)
        self.template = message
        self.clauses = dict(clauses or {})
        self.exit_code = exit_code
        self.names: dict[str, str | None] = {}
        self.context = ("", "")  # text the callers put before and after the message (`within`)

    def name(self, names: Mapping[str, str | None]) -> None:
        """Spell the keys as `names` says: how the user writes each setting, or None where the user has no such
        setting. A key already spelt by a caller nearer the error keeps that spelling."""
        self.names = {**names, **self.names}

    def within(self, before: str = "", after: str = "") -> SettingError:
        wrapped = copy.copy(self)
        wrapped.context = (before + self.context[0], self.context[1] + after)
        return wrapped

    def __str__(self) -> str:
        text = self.template + "".join(clause for key, clause in self.clauses.items() if self.names.get(key))
        spelt = SETTING.sub(lambda key: key[0][0] if key[1] is None else self.names.get(key[1]) or key[1], text)
        return f"{self.context[0]}{spelt}{self.context[1]}"


def json_problem(err: json.JSONDecodeError, with_line: bool = True) -> str:
    """A json.JSONDecodeError said where it is: "Expecting value at line 2, column 5". The decoder's own message
    may end in "at" ("Unterminated string starting at"), which the position then follows."""
    where = f"line {err.lineno}, column {err.colno}" if with_line else f"column {err.colno}"
    return f"{err.msg.removesuffix(' at')} at {where}"


@contextmanager
def naming(names: Mapping[str, str | None]) -> Iterator[None]:
    """A SettingError raised in the block spells its keys as `names` says (see SettingError.name)."""
    try:
        yield
    except SettingError as err:
        err.name(names)
        raise
