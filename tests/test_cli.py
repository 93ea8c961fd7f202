"""The CLI shell: registry, help, version, error reporting, lazy imports."""

import os
import pkgutil
import subprocess
import sys

import pytest

import llmtool
import llmtool.commands
from llmtool.cli import app
from llmtool.commands import COMMANDS


def _run_module(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "llmtool", *args], capture_output=True, text=True, env=env)


def test_registry_matches_command_modules():
    modules = {m.name for m in pkgutil.iter_modules(llmtool.commands.__path__)}
    verb_modules = {m for m in modules if not m.startswith("_") and m != "options"}
    assert verb_modules == set(COMMANDS)
    registered = {c.name for c in app.registered_commands}
    assert registered == set(COMMANDS)


def test_version(run_cli):
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"llmtool {llmtool.__version__}"


def test_python_dash_m_works():
    result = _run_module("--version")
    assert result.returncode == 0, result.stderr
    assert llmtool.__version__ in result.stdout


@pytest.mark.parametrize("verb", COMMANDS)
def test_every_verb_has_help_with_examples(run_cli, verb):
    result = run_cli(verb, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert f"llmtool {verb}" in result.stdout


def test_top_level_help_lists_verbs(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    for verb in COMMANDS:
        assert verb in result.stdout


@pytest.mark.parametrize("args", [["--help"], *[[verb, "--help"] for verb in COMMANDS]])
def test_help_does_not_import_heavy_libraries(args):
    code = (
        "import sys\n"
        "from llmtool.cli import main\n"
        f"sys.argv = ['llmtool', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'evaluate', 'accelerate') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout


def test_user_error_is_one_red_line_without_traceback(tmp_path):
    result = _run_module("generate", "--model", str(tmp_path / "missing-model"), "hello")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: model directory") and "does not exist" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_usage_error_exits_2(tmp_path):
    result = _run_module("generate", "--model", str(tmp_path), "hello", "--top-p", "1.5")
    assert result.returncode == 2
    assert "--top-p must be in (0, 1]" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_env_shows_traceback(tmp_path):
    result = _run_module("generate", "--model", str(tmp_path / "missing"), "hello", env_extra={"LLMTOOL_DEBUG": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "llmtool.errors.SettingError" in result.stderr  # a LlmtoolError


def test_tests_see_the_real_exception(run_cli, tmp_path):
    from llmtool.errors import LlmtoolError

    result = run_cli("generate", "--model", tmp_path / "missing", "hello")
    assert isinstance(result.exception, LlmtoolError)


def test_unknown_option_is_a_usage_error(run_cli):
    result = run_cli("generate", "--temprature", "0.5", "hi")
    assert result.exit_code == 2
    assert "--temprature" in result.output


def test_ctrl_c_outside_a_training_loop_is_one_line_and_exit_130(run_cli, tiny_gpt2, monkeypatch):
    from llmtool import generation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generation, "generate_stream", interrupted)
    monkeypatch.delenv("LLMTOOL_DEBUG")
    result = run_cli("generate", "--model", tiny_gpt2, "hello")
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == ["Error: interrupted"]


@pytest.mark.parametrize("args, message", [
    (["generate", "--max-new-tokens", "ten", "hi"], "Invalid value for '--max-new-tokens'"),
    (["generate", "--temprature", "1", "hi"], "No such option: --temprature"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_command_line_usage_errors_are_one_line(args, message):
    result = _run_module(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert lines[0].endswith("--help)")


@pytest.mark.parametrize("verb", ["generate", "embed", "search"])
def test_a_reader_that_leaves_early_ends_each_streaming_verb_without_a_traceback(verb, tiny_models, tmp_path):
    """`llmtool VERB ... | head -n 1`: the writes after head has gone meet a closed pipe; the verb stops quietly with
    exit code 1 and nothing on stderr, as classify does (test_classify)."""
    model = tiny_models("gpt2" if verb == "generate" else "bert")
    texts = tmp_path / "texts.txt"
    texts.write_text("the cat sat on the mat\n" * 5000, encoding="utf-8")  # several batches or chunks of output
    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    tool = f"'{sys.executable}' -m llmtool"
    if verb == "search":
        index = tmp_path / "texts.index"
        built = subprocess.run(f"{tool} embed --model '{model}' --file '{texts}' --output '{index}'", shell=True,
                               capture_output=True, text=True, env=env, timeout=300)
        assert built.returncode == 0, built.stderr
        command = f"{tool} search --index '{index}' --model '{model}' --file '{texts}' --top-k 3"
    elif verb == "generate":
        command = f"{tool} generate --model '{model}' --file '{texts}' --max-new-tokens 1 --batch-size 256"
    else:
        command = f"{tool} embed --model '{model}' --file '{texts}'"
    result = subprocess.run(f"{command} | head -n 1; exit ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash",
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.stdout.count("\n") == 1
    assert result.stderr == "" and result.returncode == 1
