"""What the commands print: results on stdout, progress and errors on stderr (rich only where it is used)."""

from __future__ import annotations

import functools
import json
import sys
from contextlib import contextmanager
from typing import Callable, Iterator


@functools.cache
def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def print_error(message: str) -> None:
    """One red line on stderr (never wrapped, never parsed as markup)."""
    from rich.text import Text

    stderr_console().print(Text(f"Error: {message}", style="bold red"), soft_wrap=True)


def note(text: str) -> None:
    """A line for the user on stderr, as it is (never wrapped, never parsed as markup)."""
    stderr_console().print(text, markup=False, highlight=False, soft_wrap=True)


def print_json(data) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)  # in pieces: a large document is never one string
    sys.stdout.write("\n")


def is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _same_terminal(a, b) -> bool:
    import os

    try:
        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


class ResultsDisplay:
    """Where results go while a long input is worked through: stdout, with a progress bar on stderr (`label`,
    items done of `total`, time left; tokens/s with `rate`), shown when `progress` is asked and stderr is a
    terminal. When stdout is that same terminal, results go through the bar's console, which prints them above
    the bar; written past it, they would be overdrawn by its next refresh."""

    def __init__(self, label: str, total: int, progress: bool, rate: bool = False):
        self.bar = None
        if progress and is_terminal(sys.stderr):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            rate_column = [TextColumn("{task.fields[rate]} tok/s")] if rate else []
            self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *rate_column,
                                TimeRemainingColumn(), console=stderr_console(), transient=True,
                                redirect_stdout=False, redirect_stderr=False)
            self.task = self.bar.add_task(label, total=total, rate="-")
        self.tokens = 0

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, items: int, tokens: int = 0) -> None:
        if self.bar is not None:
            self.tokens += tokens
            elapsed = self.bar.tasks[0].elapsed
            self.bar.update(self.task, advance=items,
                            rate=f"{self.tokens / elapsed:,.0f}" if elapsed else "-")

    def _shares_the_terminal(self) -> bool:
        return self.bar is not None and _same_terminal(sys.stdout, sys.stderr)

    def write(self, text: str) -> None:
        if self._shares_the_terminal():
            self.bar.console.out(text, end="", highlight=False)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def print(self, table) -> None:
        if self._shares_the_terminal():
            self.bar.console.print(table)
        else:
            from rich.console import Console

            Console(file=sys.stdout).print(table)


def drop_stdout() -> None:
    """stdout's reader has gone (`| head`): send what is left to /dev/null, so that flushing stdout at exit does
    not fail again; the caller then stops quietly, as other Unix tools do."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@contextmanager
def writing_results(interrupted: Callable[[], str] | None = None) -> Iterator[None]:
    """The block writes results to stdout as they come. Ctrl-C ends the command with one line that `interrupted()`
    words at that moment (how far it got, what an output file holds); without it, Ctrl-C is left to the caller. A
    reader that has gone from stdout (`| head`) ends the command quietly with exit code 1."""
    import typer

    from llmtool.errors import Interrupted

    try:
        yield
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        raise Interrupted(interrupted()) from None
    except BrokenPipeError:
        drop_stdout()
        raise typer.Exit(1) from None
