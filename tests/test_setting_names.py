"""One bad setting, named as each caller's user typed it: the domain raises with the setting's key
(errors.SettingError), a command names its flag, a recipe verb its recipe key."""

import pytest
import torch

from llmtool import evaluation, models
from llmtool.commands import distill as distill_command
from llmtool.commands import finetune as finetune_command
from llmtool.errors import LlmtoolError, SettingError, UsageError, literal, naming

from conftest import ROOT, one_error_line

PAIRS = ROOT / "data" / "seq2seq" / "validation.jsonl"
TOO_MANY = "100000"  # new tokens, past the 512 that the tiny T5's tokenizer states


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    monkeypatch.chdir(ROOT)  # the recipes name their data relative to it
    return run_cli


def t5_distill_args(tiny_t5, *overrides):
    return ["distill", ROOT / "recipes/distill-gpt2.yaml", "task=seq2seq-lm", f"teacher.name={tiny_t5}",
            "student.layers=[0]", f"data.train={ROOT / 'data/seq2seq/train.jsonl'}", f"data.validation={PAIRS}",
            "data.packing=false", "train.max_steps=2", *overrides]


# ---------------------------------------------------------------- the mechanism


def test_a_setting_reads_as_its_key_until_a_caller_names_it():
    err = SettingError('{max_new_tokens} must be at least 1; write {"prompt": "..."} a line')
    assert str(err) == 'max_new_tokens must be at least 1; write {"prompt": "..."} a line'
    err.name({"max_new_tokens": "--max-new-tokens", "prompt": "--prompt"})
    assert str(err) == '--max-new-tokens must be at least 1; write {"prompt": "..."} a line'


def test_what_the_user_gave_stays_as_it_is_whatever_braces_it_holds():
    err = SettingError(f"{{output}} '{literal('/runs/{output}/{{x}}.jsonl')}' is a directory; check {{model}}")
    err.name({"output": "--output", "model": "--model"})
    assert str(err) == "--output '/runs/{output}/{{x}}.jsonl' is a directory; check --model"


def test_a_clause_appears_only_where_the_caller_has_the_setting():
    def refused(names):
        err = SettingError("no trained head", {"new_head": "; {new_head} accepts that"})
        err.name(names)
        return str(err)

    assert refused({"new_head": "--new-head"}) == "no trained head; --new-head accepts that"
    assert refused({"new_head": None}) == refused({}) == "no trained head"


def test_the_nearest_caller_names_a_setting_and_context_stays_text():
    with pytest.raises(SettingError) as caught, naming({"model": "--model", "task": "--task"}):
        with naming({"model": "teacher.name"}):
            raise SettingError("check {model} and {task}", exit_code=1)
    wrapped = caught.value.within(before="'{model}.csv': ")
    assert str(wrapped) == "'{model}.csv': check teacher.name and --task"
    assert str(caught.value) == "check teacher.name and --task" and wrapped.exit_code == 1


def test_domain_errors_name_keys_and_no_flag():
    with pytest.raises(UsageError) as dtype:
        models.select_dtype("fp8", torch.device("cpu"))
    assert str(dtype.value) == "unknown dtype 'fp8'; choose one of auto, fp32, fp16, bf16"
    with pytest.raises(LlmtoolError) as missing:
        models.resolve_source(str(ROOT / "no-such-model"))
    assert str(missing.value).endswith("does not exist; check model") and missing.value.exit_code == 1


# ---------------------------------------------------------------- too many new tokens for an encoder-decoder


def test_generate_names_its_flags(user_cli, tiny_t5):
    line = one_error_line(user_cli("generate", "--model", tiny_t5, "summarize: a dog", "--max-new-tokens", TOO_MANY),
                          2)
    assert line.endswith(f"{TOO_MANY} new tokens asked for, past the 512 this encoder-decoder model's outputs are "
                         "made for; lower --max-new-tokens/--max-length")


def test_eval_names_its_flag_and_no_flag_it_lacks(user_cli, tiny_t5):
    line = one_error_line(user_cli("eval", "--model", tiny_t5, "--data", PAIRS, "--max-new-tokens", TOO_MANY), 2)
    assert line == (f"Error: '{PAIRS}', model '{tiny_t5}': {TOO_MANY} new tokens asked for, past the 512 this "
                    "encoder-decoder model's outputs are made for; lower --max-new-tokens")


@pytest.mark.parametrize("verb", ["finetune", "distill"])
def test_a_recipe_names_its_key_before_training(user_cli, tiny_t5, tmp_path, verb):
    override = f"data.max_target_length={TOO_MANY}"
    args = (["finetune", ROOT / "recipes/seq2seq-t5.yaml", f"model.name={tiny_t5}", override] if verb == "finetune"
            else t5_distill_args(tiny_t5, override))
    line = one_error_line(user_cli(*args, "-o", tmp_path / "run"), 2)
    assert (f"data.max_target_length: {TOO_MANY} is past the 512 tokens that the outputs of '{tiny_t5}' are made "
            "for; set it to 512 or less") in line
    assert not (tmp_path / "run").exists()  # refused before any training


@pytest.mark.parametrize("command", [finetune_command, distill_command])
def test_a_recipe_names_its_key_when_the_answers_are_generated(tiny_t5, command):
    """A Hub model's tokenizer is not read at validation: the bound is met when validation answers are made."""
    lm = models.load_model(str(tiny_t5), device="cpu")
    sources = lm.tokenizer(["summarize: a dog"])["input_ids"]
    with pytest.raises(SettingError) as caught, naming(command.SETTING_NAMES):
        evaluation.generate_answers(lm.model, lm.tokenizer, sources, int(TOO_MANY), 8, lm.device)
    assert str(caught.value).endswith("outputs are made for; lower data.max_target_length")


# ---------------------------------------------------------------- a model that is not there


@pytest.mark.parametrize("verb", ["generate", "eval"])
def test_a_command_names_model(user_cli, tmp_path, verb):
    line = one_error_line(user_cli(verb, "--model", tmp_path / "gone", *(["hello"] if verb == "generate" else [])), 1)
    assert line == f"Error: model directory '{tmp_path / 'gone'}' does not exist; check --model"


def test_a_model_path_with_braces_is_shown_as_given(user_cli, tmp_path):
    gone = tmp_path / "{model}" / "{max_new_tokens}"
    line = one_error_line(user_cli("generate", "--model", gone, "hello"), 1)
    assert line == f"Error: model directory '{gone}' does not exist; check --model"


def test_finetune_names_model_name(user_cli, tmp_path):
    line = one_error_line(user_cli("finetune", ROOT / "recipes/causal-lm.yaml", f"model.name={tmp_path / 'gone'}",
                                   "-o", tmp_path / "run"), 1)
    assert line == f"Error: model directory '{tmp_path / 'gone'}' does not exist; check model.name"


@pytest.mark.parametrize("role, overrides", [
    ("teacher", ["teacher.name={gone}"]),
    ("student", ["student.layers=null", "student.name={gone}"]),
])
def test_distill_names_the_teacher_or_the_student(user_cli, tiny_gpt2, tmp_path, role, overrides):
    gone = tmp_path / "gone"
    args = ["distill", ROOT / "recipes/distill-gpt2.yaml", f"teacher.name={tiny_gpt2}",
            f"data.train={ROOT / 'data/corpus.txt'}", *(o.format(gone=gone) for o in overrides)]
    line = one_error_line(user_cli(*args, "-o", tmp_path / "run"), 1)
    assert line.endswith(f"directory '{gone}' does not exist; check {role}.name")


# ---------------------------------------------------------------- device and dtype


def test_device_and_dtype_name_the_flags(user_cli, tiny_gpt2):
    device = one_error_line(user_cli("generate", "--model", tiny_gpt2, "hi", "--device", "abacus"), 2)
    assert device == "Error: unknown --device 'abacus'; use cpu, cuda, cuda:N or mps"
    dtype = one_error_line(user_cli("eval", "--model", tiny_gpt2, "--dtype", "fp8"), 2)
    assert dtype == "Error: unknown --dtype 'fp8'; choose one of auto, fp32, fp16, bf16"
