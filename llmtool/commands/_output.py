"""What the commands print: results on stdout, progress and errors on stderr (rich only where it is used)."""

from __future__ import annotations

import functools
import json
import sys


@functools.cache
def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def print_error(message: str) -> None:
    """One red line on stderr (never wrapped, never parsed as markup)."""
    from rich.text import Text

    stderr_console().print(Text(f"Error: {message}", style="bold red"), soft_wrap=True)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
