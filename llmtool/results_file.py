"""A JSONL results file that grows a record at a time: each record is flushed as it is written, so a stopped
run loses only its last, unfinished line, and a resumed run continues the file after its last whole record."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from llmtool.errors import LlmtoolError, SettingError


class ResultsFile:
    """Results written to `path`, one JSON object a line; to be resumed, each record has a "prompt" field.

    A file that already holds results is refused unless `resume` (keep its whole records, which must be for the
    first of `prompts`, in order, and append) or `overwrite` (replace it) is given; either way nothing is written or
    cut until the first new record arrives, so a run refused for another reason leaves the file as it was.
    """

    def __init__(self, path: Path, prompts: Iterable[str] = (), *, resume: bool = False, overwrite: bool = False,
                 inputs: Path | None = None):
        self.path = path
        self.kept = 0  # whole records already in the file that a resumed run keeps
        self._kept_bytes = 0
        self._handle = None
        self._resume = resume
        if path.is_dir():
            raise LlmtoolError(f"output '{path}' is a directory; give a file name, such as {path / 'results.jsonl'}")
        if not path.parent.is_dir():
            raise LlmtoolError(f"output folder '{path.parent}' does not exist; create it first")
        if inputs is not None and inputs.exists() and path.exists() and path.samefile(inputs):
            raise LlmtoolError(f"output '{path}' is the prompt file itself; write the results to another file")
        if path.exists() and path.stat().st_size > 0:
            if resume:
                self.kept, self._kept_bytes = self._whole_records(prompts)
            elif not overwrite:
                raise SettingError(f"output '{path}' already holds results; add {{resume}} to continue it or "
                                   "{overwrite} to replace it", exit_code=LlmtoolError.exit_code)

    def _whole_records(self, prompts: Iterable[str]) -> tuple[int, int]:
        """How many whole records the file starts with, and their size in bytes, once each is checked to be for the
        next of `prompts`. A last line without its line break is a record cut short by a stopped run: it is
        dropped, to be written again."""
        prompts = iter(prompts)
        count = size = 0
        with self.path.open("rb") as handle:
            for n, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    break
                recorded = self._record(n, line)["prompt"]
                prompt = next(prompts, None)
                if prompt is None:
                    raise LlmtoolError(f"output '{self.path}' holds more results than the input's {n - 1} prompts; "
                                       "resume with the same prompts, or give another output file")
                if prompt != recorded:
                    raise LlmtoolError(f"output '{self.path}' line {n} is for another prompt than prompt {n} of the "
                                       "input; resume with the same prompts, or give another output file")
                count, size = count + 1, size + len(line)
        return count, size

    def _record(self, n: int, line: bytes) -> dict:
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise LlmtoolError(f"output '{self.path}' line {n} is not a result record; this file was not written by "
                               "this command: give another output file")
        return record

    def write(self, record: dict) -> None:
        if self._handle is None:
            self._open()
        self._handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._handle.flush()  # a record is whole on disk before the next one starts

    def _open(self) -> None:
        if self._resume and self.path.exists():
            self._handle = self.path.open("r+b")
            self._handle.truncate(self._kept_bytes)  # a cut-short last line goes
            self._handle.seek(self._kept_bytes)
        else:
            self._handle = self.path.open("wb")

    def close(self) -> None:
        if self._handle is not None:
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
