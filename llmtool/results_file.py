"""The files that commands write results to, and the one guard each of them passes before any model loads.

The guard (`claim_output`) refuses an output that would destroy something or could not be written: an input of
the run (compared by inode, so a hard link or a symlink to it counts), a directory, a folder that does not exist,
a place that takes no new file, a file that another llmtool run is writing, and a file that is not empty unless
the user said to replace it. It locks the file (OutputLock, as a run directory is locked) before it looks at what
the file holds, and the run holds that lock until the file is written: two runs never share one. Results then
reach the file in one of two ways, neither of which cuts a file in place: a whole document, or the records of a
run that cannot be resumed, is written to a temporary file beside the output and renamed into place; a resumable
`ResultsFile` grows a record at a time, each flushed as it is written, so a stopped run loses only its last,
unfinished line and a resumed run continues after its last whole record. A pipe or a device (`-o /dev/null`) is
written straight, as there is nothing in it to keep.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from llmtool.errors import LlmtoolError, SettingError, literal
from llmtool.output_lock import OutputLock

SETTINGS_SUFFIX = ".settings.json"  # beside a resumable results file: the settings its records were made with


def _target(path: Path) -> Path:
    """The file that writing `path` changes: a symlink's target, which keeps the link."""
    return Path(os.path.realpath(path))


def _is_special(target: Path) -> bool:
    """A pipe or a device: written straight, never replaced or resumed."""
    return target.exists() and not target.is_file() and not target.is_dir()


def claim_output(path: Path, inputs: Mapping[str, str | Path | None] | None = None, *,
                 overwrite: bool = False) -> OutputLock | None:
    """Refuse `path` as an output, before anything loads, where writing it would destroy something or fail: when
    it is one of `inputs` (what it is -> its path; '-' and None are not files), a directory, in a folder that does
    not exist or takes no new file, a file that cannot be replaced, one that another llmtool run is writing, or,
    unless `overwrite`, a file that is not empty. Errors name the option by the key `output`.

    The file is locked against other llmtool runs (OutputLock) before its content is looked at, and the lock is
    returned: the caller holds it until the file is written, and then releases it. A pipe or a device is not
    locked (None): nothing in it is kept."""
    target = _target(path)
    if target.is_dir():
        raise SettingError(f"{{output}} '{literal(path)}' is a directory; give a file name")
    if not target.parent.is_dir():
        raise SettingError(f"{{output}} '{literal(path)}': directory '{literal(target.parent)}' does not exist; create "
                           "it first")
    for what, given in (inputs or {}).items():
        if given is None or str(given) == "-" or not Path(given).exists() or not target.exists():
            continue
        if os.path.samefile(target, given):
            alias = "" if _target(Path(given)) == target else " under another name (a link to it)"
            raise SettingError(f"{{output}} '{literal(path)}' is the {what} itself{literal(alias)}; write the results "
                               "to another file")
    if _is_special(target):
        return None
    _check_writable(path, target)
    lock = _lock(path, target)
    if not overwrite and target.exists() and target.stat().st_size > 0:
        lock.release()
        raise SettingError(f"{{output}} '{literal(path)}' is not empty; add {{overwrite}} to replace it",
                           {"resume": " or {resume} to continue it"})
    return lock


def _lock(path: Path, target: Path) -> OutputLock:
    """The output's lock, taken; refused in one line where another llmtool run holds it."""
    lock = OutputLock(target)
    try:
        taken = lock.acquire()
    except OSError as err:
        raise SettingError(f"{{output}} '{literal(path)}' cannot be written: its lock file '{literal(lock.path)}' "
                           f"cannot be made ({err.strerror or err}); choose another place") from None
    if not taken:
        raise SettingError(f"{{output}} '{literal(path)}' is being written by {literal(lock.holder)}; wait for it to "
                           "finish, or choose another {output}", exit_code=LlmtoolError.exit_code)
    return lock


def _check_writable(path: Path, target: Path) -> None:
    """The folder takes a new file (the temporary one that is renamed into place) and the file itself, where it
    exists, can be written (an immutable or append-only file cannot)."""
    try:
        handle, probe = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as err:
        raise SettingError(f"{{output}} '{literal(path)}' cannot be written: directory '{literal(target.parent)}' "
                           f"takes no new file ({err.strerror or err}); choose another place") from None
    os.close(handle)
    os.unlink(probe)
    if target.exists():
        try:
            os.close(os.open(target, os.O_WRONLY))
        except OSError as err:
            raise SettingError(f"{{output}} '{literal(path)}' cannot be written ({err.strerror or err}); choose "
                               "another file") from None


def _temporary_beside(target: Path):
    """A new file in the target's folder, with the mode the target has (or a new file gets): (handle, path)."""
    if target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.fchmod(descriptor, mode)
    return os.fdopen(descriptor, "wb"), Path(name)


def _close(handle) -> None:
    handle.flush()
    if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # a pipe or a device has nothing to sync
        os.fsync(handle.fileno())
    handle.close()


def write_whole(path: Path, data: bytes) -> None:
    """`data` as the whole of the file at `path` (claimed with `claim_output`): written beside it and renamed into
    place, so that the file is never seen half-written and a failure leaves what was there."""
    target = _target(path)
    try:
        if _is_special(target):
            with target.open("wb") as handle:
                handle.write(data)
            return
        handle, temporary = _temporary_beside(target)
        try:
            handle.write(data)
            _close(handle)
            os.replace(temporary, target)
        finally:
            handle.close()
            temporary.unlink(missing_ok=True)
    except OSError as err:
        raise SettingError(f"could not write {{output}} '{literal(path)}' ({err.strerror or err})",
                           exit_code=LlmtoolError.exit_code) from None


def _show(value) -> str:
    return "unset" if value is None else json.dumps(value, ensure_ascii=False)


class ResultsFile:
    """Results written to `path`, one JSON object a line. The file is claimed (`claim_output`: checked, and locked
    against other llmtool runs until `close`) when this is made, before anything in it is read.

    A `resumable` file (generate) grows record by record, each record with a "prompt" field. A file that already
    holds results is refused unless `resume` (keep its whole records, which must be for the first of `prompts`, in
    order, and append) or `overwrite` (replace it) is given. `settings` (key -> value: what decides a record's
    text) are recorded beside the file (NAME.settings.json, with the record each set starts from), and a resumed
    run must have those of the records it continues, unless `mix_settings`. A file that cannot be resumed
    (classify) is written to a temporary file that takes the output's place when it is closed.

    Either way nothing is written or cut until the first new record arrives, so a run refused for another reason
    leaves the file as it was.
    """

    def __init__(self, path: Path, prompts: Iterable[str] = (), *,
                 inputs: Mapping[str, str | Path | None] | None = None, overwrite: bool = False,
                 resumable: bool = False, resume: bool = False, settings: dict | None = None,
                 mix_settings: bool = False):
        self._lock = claim_output(path, inputs, overwrite=overwrite or resume)
        self.path = path
        self.target = _target(path)
        self.settings_path = self.target.with_name(self.target.name + SETTINGS_SUFFIX)
        self.kept = 0  # whole records already in the file that a resumed run keeps
        self._kept_bytes = 0
        self._handle = None
        self._pending: Path | None = None  # the temporary file that takes the output's place when closed
        self._resumable, self._resume = resumable, resume
        self._settings = json.loads(json.dumps(settings)) if settings is not None else None  # as read back
        self._made_with: list[dict] = []  # the sets of settings the kept records were made with
        if resume and not _is_special(self.target) and self.target.exists() and self.target.stat().st_size > 0:
            try:
                self.kept, self._kept_bytes, more = self._whole_records(prompts)
                if self.kept and more and self._settings is not None:
                    self._continue_settings(mix_settings)
            except BaseException:  # refused: the file is left to the next run
                self._release()
                raise

    def _whole_records(self, prompts: Iterable[str]) -> tuple[int, int, bool]:
        """How many whole records the file starts with and their size in bytes, once each is checked to be for the
        next of `prompts`; and whether prompts are left after them. A last line without its line break is a record
        cut short by a stopped run: it is dropped, to be written again."""
        prompts = iter(prompts)
        count = size = 0
        with self.target.open("rb") as handle:
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
        return count, size, next(prompts, None) is not None

    def _record(self, n: int, line: bytes) -> dict:
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise LlmtoolError(f"output '{self.path}' line {n} is not a result record; this file was not written by "
                               "this command: give another output file")
        return record

    def _continue_settings(self, mix: bool) -> None:
        """The kept records were made with this run's settings, or the caller mixes settings knowingly."""
        try:
            made_with = json.loads(self.settings_path.read_text(encoding="utf-8"))["made_with"]
            made_with = [entry for entry in made_with if entry["from_record"] <= self.kept]
            recorded = made_with[-1]["settings"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            made_with, recorded = [], None
        self._made_with = made_with
        if mix:
            return
        if recorded is None:
            raise SettingError(f"{{output}} '{literal(self.path)}' holds results without a record of the settings they "
                               f"were made with ('{literal(self.settings_path)}' is missing or unreadable); add "
                               f"{{mix_settings}} to "
                               "continue it anyway")
        keys = dict.fromkeys([*recorded, *self._settings])  # None and absent both mean unset
        differ = [f"{{{key}}} was {_show(recorded.get(key))} and is {_show(self._settings.get(key))} now"
                  for key in keys if recorded.get(key) != self._settings.get(key)]
        if differ:
            raise SettingError(f"{{output}} '{literal(self.path)}' holds results made with other settings: "
                               f"{', '.join(differ)}; resume with the settings they were made with, or add "
                               "{mix_settings} to add results made with these")

    def write(self, record: dict) -> None:
        if self._handle is None:
            self._open()
        self._handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._handle.flush()  # a record is whole on disk before the next one starts

    def _open(self) -> None:
        if _is_special(self.target):  # nothing to keep, and no folder of its own for the settings
            self._handle = self.target.open("wb")
            return
        if self._resume and self.target.exists():
            self._handle = self.target.open("r+b")
            self._handle.truncate(self._kept_bytes)  # a cut-short last line goes
            self._handle.seek(self._kept_bytes)
        else:
            self._handle, self._pending = _temporary_beside(self.target)
            if self._resumable:  # in place from the first record on, for --resume
                os.replace(self._pending, self.target)
                self._pending = None
        if self._settings is not None:
            self._record_settings()

    def _record_settings(self) -> None:
        """The settings the records from here on are made with, after those of the kept records."""
        made_with = self._made_with if self.kept else []
        if not made_with or made_with[-1]["settings"] != self._settings:
            made_with = [*made_with, {"from_record": self.kept + 1, "settings": self._settings}]
        write_whole(self.settings_path, (json.dumps({"made_with": made_with}, indent=2) + "\n").encode())

    def close(self) -> None:
        """The file whole in its place, and its lock released (a run that stopped on an error closes it too)."""
        try:
            if self._handle is not None:
                _close(self._handle)
                self._handle = None
                if self._pending is not None:
                    os.replace(self._pending, self.target)
                    self._pending = None
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class OutputFile:
    """A file written in pieces (at any offset: `handle` is a seekable binary file) to a temporary file beside
    `path`, which takes the output's place at `commit`; until then, and for good when the run fails or is
    stopped, the file is as it was. Claimed (claim_output: checked, and locked against other llmtool runs until
    `close`) when this is made. Embeddings use it: a vectors file whose header states its size cannot be kept
    half-written, as JSON lines can."""

    def __init__(self, path: Path, inputs: Mapping[str, str | Path | None] | None = None, *,
                 overwrite: bool = False):
        self._lock = claim_output(path, inputs, overwrite=overwrite)
        self.path = path
        self.target = _target(path)
        self._handle = None
        self._temporary: Path | None = None

    @property
    def handle(self):
        if self._handle is None:
            try:
                if _is_special(self.target):  # a pipe or a device: written straight, nothing to keep
                    self._handle = self.target.open("wb")
                else:
                    self._handle, self._temporary = _temporary_beside(self.target)
            except OSError as err:
                raise SettingError(f"could not write {{output}} '{literal(self.path)}' ({err.strerror or err})",
                                   exit_code=LlmtoolError.exit_code) from None
        return self._handle

    def commit(self) -> None:
        """The file whole in its place."""
        handle = self.handle
        try:
            _close(handle)
            if self._temporary is not None:
                os.replace(self._temporary, self.target)
                self._temporary = None
        except OSError as err:
            raise SettingError(f"could not write {{output}} '{literal(self.path)}' ({err.strerror or err})",
                               exit_code=LlmtoolError.exit_code) from None

    def close(self) -> None:
        """The lock released; an uncommitted temporary file removed."""
        try:
            if self._handle is not None:
                self._handle.close()
            if self._temporary is not None:
                self._temporary.unlink(missing_ok=True)
                self._temporary = None
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
