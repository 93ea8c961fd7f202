"""What the commands read from the user beyond their options: standard input, as UTF-8 text."""

from __future__ import annotations

import sys

from llmtool.errors import LlmtoolError


def read_stdin() -> str:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LlmtoolError(f"stdin is not UTF-8 text (byte {err.start}); re-encode it as UTF-8") from None
