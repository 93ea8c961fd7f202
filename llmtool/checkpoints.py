"""Checkpoints of a training run: written atomically, each with a manifest of its files' sizes and checksums, so
that a resume can tell a whole checkpoint from a damaged one and fall back to the newest good one.

A checkpoint is built in `checkpoints/.tmp-step-N`, its files flushed to disk, its manifest written last, and only
then renamed to `checkpoints/step-N`: a listed checkpoint is complete, and its manifest proves it is unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from llmtool.errors import LlmtoolError

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
STATE = "trainer_state.json"
RECIPE = "recipe.yaml"  # the resolved recipe that trained the checkpoint: what a resume may not change is checked on it
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def step_of(path: Path) -> int:
    return int(path.name.split("-")[1])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def fsync_tree(directory: Path) -> None:
    """Flush every file, and the directories naming them, so a rename that follows publishes whole files."""
    for path in [*_files(directory), *sorted(p for p in directory.rglob("*") if p.is_dir()), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_manifest(directory: Path) -> None:
    files = {str(p.relative_to(directory)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in _files(directory)}
    (directory / MANIFEST).write_text(json.dumps({"files": files}, indent=2) + "\n")


def problem(directory: Path) -> str | None:
    """What is wrong with a checkpoint (a file missing, resized or changed since it was written), or None."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {MANIFEST} is missing or unreadable"
    for name, expected in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != expected["bytes"]:
            return f"{name} has {size} bytes, {expected['bytes']} were written"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def listed(out: Path) -> list[Path]:
    """The run's complete checkpoints (renamed into place, with a manifest), oldest first."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step-*") if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(done, key=step_of)


def latest(out: Path) -> Path | None:
    """The newest complete checkpoint (not verified: see `newest_good`)."""
    done = listed(out)
    return done[-1] if done else None


def newest_good(out: Path, notify: Callable[[str], None]) -> Path | None:
    """The newest checkpoint whose files match its manifest; each damaged newer one is named through `notify`."""
    for checkpoint in reversed(listed(out)):
        wrong = problem(checkpoint)
        if wrong is None:
            return checkpoint
        notify(f"checkpoint '{checkpoint}' is damaged ({wrong}); skipping it")
    return None


def _disk_full(err: BaseException, where: Path) -> bool:
    """torch.save reports a full disk only as a failed write position, so the free space is asked too."""
    if getattr(err, "errno", None) in DISK_FULL or "no space left" in str(err).lower():
        return True
    try:
        return shutil.disk_usage(where).free < (1 << 20)
    except OSError:
        return False


def write_failure(err: BaseException, what: str, where: Path, resume_from: Path | None) -> LlmtoolError | None:
    """One line for a write that failed on a full disk, or for the system's own I/O error; None for anything else
    (a bug keeps its traceback). With a checkpoint to go on from (`resume_from`) the error is `resumable`: the
    recipe verb ends it with the exact --resume command."""
    kept = f"the last good checkpoint is '{resume_from}'" if resume_from else "no checkpoint of the run is kept"
    if _disk_full(err, where):
        failure = LlmtoolError(f"the disk is full: {what} could not be written to '{where}' (the partial files were "
                               f"removed); {kept}. Free some space, then "
                               + ("resume from it" if resume_from else "run again"))
    elif isinstance(err, OSError):
        failure = LlmtoolError(f"{what} could not be written to '{where}' ({err.strerror or err}); {kept}")
    else:
        return None
    failure.resumable = resume_from is not None
    return failure


def publish(tmp: Path, final: Path, keep: int) -> None:
    """Seal a fully written checkpoint directory: flush, manifest, rename into place, keep only the newest `keep`."""
    fsync_tree(tmp)
    write_manifest(tmp)
    fsync_tree(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in listed(final.parent.parent)[:-keep]:
        shutil.rmtree(old)


# ---------------------------------------------------------------- what a checkpoint holds, saved and restored


def rng_state() -> dict:
    import torch

    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_model(accelerator, model, tokenizer, directory: Path) -> None:
    state_dict = accelerator.get_state_dict(model)  # a collective under FSDP/DeepSpeed: every process calls it
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(directory, state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(directory)


@contextmanager
def staged(accelerator, tmp: Path, what: str, resume_from: Callable[[], Path | None]):
    """A fresh directory to write `what` into (made by the main process, every process waits for it). On any
    failure it is removed; a failed write (a full disk, an I/O error) becomes one line that names the checkpoint the
    run can go on from, `resume_from()` (None: none that outlives the failure)."""
    main = accelerator.is_main_process
    try:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        yield tmp
        accelerator.wait_for_everyone()
    except BaseException as err:
        failure = write_failure(err, what, tmp.parent, resume_from()) if isinstance(err, Exception) else None
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        if failure is not None:
            raise failure from err
        raise


AUX = "aux.safetensors"


def save(accelerator, model, tokenizer, optimizer, scheduler, state: dict, work: Path, keep: int,
         aux=None, recipe: dict | None = None, outlives_failure: bool = True) -> Path:
    """Write checkpoint step-N of the run in `work`: model, tokenizer, optimizer, scheduler, each process's random
    state, the loop's state, the modules that train beside the model (`aux`) and the resolved recipe that trained
    it; sealed with a manifest and renamed into place. A failed write leaves no partial checkpoint behind and the
    earlier ones as they were (`outlives_failure`: false where the run's directory goes with a failed run)."""
    import torch
    import yaml

    name = f"step-{state['step']:07d}"
    final = work / CHECKPOINTS / name
    with staged(accelerator, work / CHECKPOINTS / f".tmp-{name}", f"checkpoint {name}",
                lambda: latest(work) if outlives_failure else None) as tmp:
        save_model(accelerator, model, tokenizer, tmp)
        torch.save(rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            (tmp / STATE).write_text(json.dumps(state, indent=2))
            if recipe is not None:
                (tmp / RECIPE).write_text(yaml.safe_dump(recipe, sort_keys=False))
            if aux is not None:
                from safetensors.torch import save_file

                weights = accelerator.unwrap_model(aux).state_dict()
                save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, tmp / AUX)
        accelerator.wait_for_everyone()  # every process's files are in before the manifest seals them
        if accelerator.is_main_process:
            publish(tmp, final, keep)
    return final


def trained_recipe(directory: Path) -> dict | None:
    """The resolved recipe that trained a checkpoint (or a finished run's final model, in its directory); None
    where none is kept (a checkpoint written before checkpoints kept one)."""
    import yaml

    path = directory / RECIPE
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_state(checkpoint: Path, optimizer, scheduler, process_index: int, aux=None) -> dict:
    """Restore optimizer, scheduler, the modules beside the model and this process's random state (safe loads
    only); the loop's state back."""
    import torch

    if aux is not None:
        from safetensors.torch import load_file

        aux.load_state_dict(load_file(checkpoint / AUX))
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
    rng_file = checkpoint / f"rng-{process_index}.pt"
    if rng_file.exists():
        restore_rng(torch.load(rng_file, weights_only=True))
    return json.loads((checkpoint / STATE).read_text())
