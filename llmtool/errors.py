"""Errors meant for a user: the message says what is wrong and what to do about it."""


class LlmtoolError(Exception):
    """A problem the user can fix. The CLI prints its message as one red line and exits with `exit_code`."""

    exit_code = 1


class UsageError(LlmtoolError):
    """Bad options or recipe values: the command was called wrongly (exit 2, like click's usage errors)."""

    exit_code = 2


class Interrupted(LlmtoolError):
    """The user stopped a run (Ctrl-C): the message says where it stopped and what was kept (exit 130, as shells
    report SIGINT)."""

    exit_code = 130
