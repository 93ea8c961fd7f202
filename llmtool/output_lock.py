"""The lock that keeps two llmtool runs from writing to one output at once: a run directory (rundir) or a results
file (results_file).

It is an OS file lock (flock) on `.NAME.lock` beside the output, which records the holder's pid. The system drops
it when the process ends, however it ends, so a crashed run never leaves it stuck: the lock file it leaves
behind is locked anew by the next run. A run that ends well removes the file; one that opened that file just
before it went locks a file no longer there, sees so, and locks the live one.

A leaf: it imports no other llmtool module.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputLock:
    """The lock on the output at `output`: `acquire` takes it or says who holds it, `release` gives it up."""

    def __init__(self, output: Path):
        self.path = output.parent / f".{output.name}.lock"
        self.holder = ""  # after a refused `acquire`, who holds the lock: "another llmtool run (pid N)"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock (it is the caller's until `release`), or False where another process holds it. OSError
        where the lock file cannot be opened or made."""
        import fcntl  # here: Windows has no fcntl, and importing this module should not fail there

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 64, 0).decode(errors="replace").strip()
                self.holder = f"another llmtool run (pid {pid})" if pid else "another llmtool run"
                os.close(fd)
                return False
            # The lock file may have been removed and re-created by a run that just ended: lock the live one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        try:
            os.unlink(self.path)
        except OSError:  # gone already, or in a folder that takes no change: the OS lock goes all the same
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
