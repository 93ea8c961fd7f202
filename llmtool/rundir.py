"""The output directory of a training run: checked before anything loads, locked against a second run, and
replaced (with --overwrite) only once the new run has finished.

A new run into an existing, non-empty directory writes into a sibling `.NAME.incoming` and takes the old one's
place at the end by two renames; until then the previous run is untouched, whatever happens to the new one. Those
renames are tried before the run starts (a directory that cannot be renamed, being immutable or in a folder that
takes no change, is refused then, not after training), and a finished run that still cannot take the old one's
place is kept beside it, as `NAME.new-TIME`, never thrown away. The lock is `OutputLock`'s, on `.NAME.lock` beside
the directory, which a crashed run never leaves stuck.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from llmtool.errors import LlmtoolError, UsageError
from llmtool.output_lock import OutputLock


def _sibling(out: Path, suffix: str) -> Path:
    return out.parent / f".{out.name}.{suffix}"


class RunDirectory:
    """Where a run writes (`work`) and where its result ends up (`out`). Only the main process touches the disk."""

    def __init__(self, out: Path, *, overwrite: bool, resume: bool, main: bool = True):
        self.out = out
        self.main = main
        self.resume = resume
        self.replaces = False
        self._held: OutputLock | None = None
        if overwrite and resume:
            raise UsageError("--overwrite and --resume do not mix: resume continues the run in place")
        self._check_path()
        if main:
            self._lock()
            self._recover()
        if not resume and out.is_dir() and any(out.iterdir()):
            if not overwrite:
                self.release()
                raise LlmtoolError(f"output directory '{out}' already exists; pass --overwrite to replace it, --resume "
                                   "to continue its run, or choose another with output_dir=DIR")
            self.replaces = True
            if main:
                self._check_replaceable()
        self.work = _sibling(out, "incoming") if self.replaces else out

    def _check_path(self) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise UsageError(f"output directory '{out}' is a file; choose a directory path (output_dir or -o)")
        parent = out.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"output directory '{out}' cannot be made: '{parent}' is a file")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"output directory '{out}' cannot be made ({err.strerror or err}); choose another "
                             "output_dir") from None

    def _check_replaceable(self) -> None:
        """--overwrite ends by renaming the previous run aside: try that rename now, and undo it."""
        aside = _sibling(self.out, "replaced")
        try:
            os.replace(self.out, aside)
        except OSError as err:
            self.release()
            raise UsageError(f"output directory '{self.out}' cannot be replaced ({err.strerror or err}): it, or "
                             f"'{self.out.parent}', does not let it be renamed (immutable or read-only); make them "
                             "writable, or choose another output_dir") from None
        os.replace(aside, self.out)  # a kill in between is undone by the next run's _recover

    def _lock(self) -> None:
        lock = OutputLock(self.out)
        try:
            taken = lock.acquire()
        except OSError as err:
            raise UsageError(f"output directory '{self.out}' is not writable ({err.strerror or err}); choose "
                             "another output_dir") from None
        if not taken:
            raise LlmtoolError(f"{lock.holder} is writing to '{self.out}'; wait for it to finish, or choose another "
                               "output_dir")
        self._held = lock

    def _recover(self) -> None:
        """Tidy what a killed run left: a half-done swap is finished or undone, an unfinished new run removed."""
        replaced = _sibling(self.out, "replaced")
        if replaced.exists():
            if self.out.exists():
                shutil.rmtree(replaced)
            else:
                os.replace(replaced, self.out)
        shutil.rmtree(_sibling(self.out, "incoming"), ignore_errors=True)

    def create(self) -> None:
        """Make the working directory once data and model are ready (nothing is written before)."""
        if self.main:
            self.work.mkdir(parents=True, exist_ok=True)

    def commit(self) -> None:
        """The finished run takes the output directory's place (the previous run is removed only now). Where the
        renames fail all the same, the previous run stays and the finished one is kept beside it."""
        if self.main and self.replaces:
            replaced = _sibling(self.out, "replaced")
            try:
                os.replace(self.out, replaced)
                try:
                    os.replace(self.work, self.out)
                except OSError:
                    os.replace(replaced, self.out)
                    raise
            except OSError as err:
                raise self._keep_beside(err) from None
            shutil.rmtree(replaced)
            self.work = self.out
            self.replaces = False

    def _keep_beside(self, err: OSError) -> LlmtoolError:
        """The finished run under a visible name beside the previous one (the next run would clear
        `.NAME.incoming`), and the error that says where it is."""
        kept = self.out.with_name(f"{self.out.name}.new-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.work, kept)
        except OSError:
            kept = self.work
        self.replaces = False  # nothing to abandon: the new run is kept
        move = f"; move it away before the next run into '{self.out}'" if kept == self.work else ""
        return LlmtoolError(f"the finished run could not take the place of '{self.out}' ({err.strerror or err}); "
                            f"it is kept in '{kept}'{move}, and the previous run is as it was")

    def abandon(self) -> None:
        """A failed --overwrite run leaves nothing behind; the previous run stays as it was."""
        if self.main and self.replaces:
            shutil.rmtree(self.work, ignore_errors=True)

    def release(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None
