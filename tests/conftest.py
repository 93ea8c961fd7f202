"""Shared fixtures: tiny offline models built from configs in tests/fixtures, and a CLI runner."""

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before any Hugging Face import: tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).parent / "fixtures" / "configs"
CORPUS = ROOT / "data" / "corpus.txt"


@pytest.fixture(autouse=True)
def _raise_user_errors(monkeypatch):
    """Tests see the real LlmtoolError (result.exception); tests of the red line unset this."""
    monkeypatch.setenv("LLMTOOL_DEBUG", "1")


def _build(family: str, root: Path) -> Path:
    from llmtool.scratch import build_from_scratch

    settings = json.loads((CONFIGS / f"{family}.json").read_text())
    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    return build_from_scratch(settings, texts, root / family, vocab_size=600, seed=0)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Builds each tiny model once per session, on first use."""
    root = tmp_path_factory.mktemp("tiny-models")
    cache: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in cache:
            cache[family] = _build(family, root)
        return cache[family]

    return get


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_models) -> Path:
    return tiny_models("gpt2")


@pytest.fixture(scope="session")
def tiny_t5(tiny_models) -> Path:
    return tiny_models("t5")


@pytest.fixture(scope="session")
def tiny_bert(tiny_models) -> Path:
    return tiny_models("bert")


@pytest.fixture(scope="session")
def tiny_distilbert(tiny_models) -> Path:
    return tiny_models("distilbert")


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process; returns click's Result (stdout and stderr kept apart)."""
    from llmtool.cli import app

    runner = CliRunner()

    def invoke(*args, input=None, catch_exceptions=True):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=catch_exceptions)

    return invoke


def one_error_line(result, exit_code: int) -> str:
    """The user's view of a refused command: the exit code, one red line on stderr, no traceback, no output."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def run_on_a_terminal(args, stdout_too: bool, exit_code: int = 0) -> tuple[bytes, bytes]:
    """Run llmtool with stderr (and, with `stdout_too`, stdout) on a pseudo-terminal: (terminal bytes, stdout).
    It must end with `exit_code`."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"} | {"TERM": "xterm", "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "llmtool", *map(str, args)], env=env, stderr=follower,
                               stdout=follower if stdout_too else subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(follower)
    terminal = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the process closed its end
                return
            if not chunk:
                return
            terminal.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stdout, _ = process.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(leader)
    assert process.returncode == exit_code, terminal.decode(errors="replace")
    return bytes(terminal), stdout or b""
