"""What the commands read from the user beyond their options: standard input, as UTF-8 text."""

from __future__ import annotations

import sys

from llmtool.errors import LlmtoolError, UsageError


def read_stdin() -> str:
    if sys.stdin is None:  # the command was started with stdin closed (`<&-`)
        raise UsageError("stdin is closed, so '-' has nothing to read; pipe the input in, or give a file")
    try:
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    except OSError as err:  # its descriptor closed after the start, a hung-up terminal
        raise UsageError(f"stdin cannot be read ({err.strerror or err}); pipe the input in, or give a file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LlmtoolError(f"stdin is not UTF-8 text (byte {err.start}); re-encode it as UTF-8") from None
