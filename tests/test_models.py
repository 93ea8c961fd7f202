"""Model resolution: task from config, device/dtype choice, and clear errors for bad paths."""

import pytest
import torch

from llmtool import models, tasks
from llmtool.errors import LlmtoolError, UsageError, naming


@pytest.mark.parametrize(
    "family, task",
    [("gpt2", tasks.CAUSAL_LM), ("t5", tasks.SEQ2SEQ_LM), ("bert", tasks.CLASSIFICATION),
     ("distilbert", tasks.CLASSIFICATION)],
)
def test_task_is_read_from_the_config(tiny_models, family, task):
    config = models.load_config(str(tiny_models(family)))
    assert models.infer_task(config) == task


@pytest.mark.parametrize(
    "family, auto_class_name",
    [("gpt2", "GPT2LMHeadModel"), ("t5", "T5ForConditionalGeneration"), ("bert", "BertForSequenceClassification"),
     ("distilbert", "DistilBertForSequenceClassification")],
)
def test_load_model_picks_the_auto_class(tiny_models, family, auto_class_name):
    lm = models.load_model(str(tiny_models(family)), device="cpu")
    assert type(lm.model).__name__ == auto_class_name
    assert not lm.model.training
    assert lm.device.type == "cpu"


def test_task_override_with_a_new_head(tiny_gpt2):
    lm = models.load_model(str(tiny_gpt2), task=tasks.CLASSIFICATION, device="cpu", num_labels=3,
                           allow_new_head=True)
    assert type(lm.model).__name__ == "GPT2ForSequenceClassification"


def test_unknown_task_is_rejected(tiny_gpt2):
    with pytest.raises(UsageError, match="unknown task 'summarize' \\(--task\\)"), naming({"task": "--task"}):
        models.load_model(str(tiny_gpt2), task="summarize")


def test_missing_directory(tmp_path):
    with pytest.raises(LlmtoolError, match="does not exist"):
        models.resolve_source(str(tmp_path / "nope"))


def test_directory_without_config(tmp_path):
    with pytest.raises(LlmtoolError, match="no config.json"):
        models.resolve_source(str(tmp_path))


def test_hub_id_while_offline_says_how_to_fix():
    with (pytest.raises(LlmtoolError, match="Hub is offline .*set --model to a directory"),
          naming({"model": "--model"})):
        models.load_model("some-org/some-model-that-is-not-cached")


def test_default_model_env(monkeypatch):
    monkeypatch.delenv("LLMTOOL_MODEL", raising=False)
    assert models.default_generation_model() == "gpt2"
    monkeypatch.setenv("LLMTOOL_MODEL", "/models/mine")
    assert models.default_generation_model() == "/models/mine"


def test_device_and_dtype_choice():
    cpu = torch.device("cpu")
    assert models.select_dtype("auto", cpu) == torch.float32
    assert models.select_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(UsageError, match="fp16 is not supported on the CPU"):
        models.select_dtype("fp16", cpu)
    with pytest.raises(UsageError, match="unknown --dtype 'fp8'"), naming({"dtype": "--dtype"}):
        models.select_dtype("fp8", cpu)
    assert models.select_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert models.select_device().type in ("cpu", "mps")
        with pytest.raises(UsageError, match="no CUDA GPU"):
            models.select_device("cuda")


def test_bf16_model_loads_in_bf16(tiny_gpt2):
    lm = models.load_model(str(tiny_gpt2), device="cpu", dtype="bf16")
    assert next(lm.model.parameters()).dtype == torch.bfloat16


def test_trust_remote_code_is_off_by_default(tiny_gpt2, monkeypatch):
    seen = {}
    import transformers

    original = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen["trust_remote_code"] = kwargs.get("trust_remote_code")
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    models.load_model(str(tiny_gpt2), device="cpu")
    assert seen["trust_remote_code"] is False


def test_pickle_only_checkpoint_is_refused(tiny_gpt2, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((tiny_gpt2 / name).read_bytes())
    with pytest.raises(LlmtoolError, match="no safetensors weights"):
        models.load_model(str(tmp_path), device="cpu")


def test_scratch_tokenizers_add_family_special_tokens(tiny_bert, tiny_t5):
    bert_tok = models.load_tokenizer(str(tiny_bert))
    ids = bert_tok("the dog")["input_ids"]
    assert ids[0] == bert_tok.cls_token_id and ids[-1] == bert_tok.sep_token_id
    t5_tok = models.load_tokenizer(str(tiny_t5))
    ids = t5_tok("the dog")["input_ids"]
    assert ids[-1] == t5_tok.eos_token_id
    assert t5_tok.pad_token_id == 0
