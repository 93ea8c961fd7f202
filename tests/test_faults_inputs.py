"""Fault injection, inputs: damaged model directories, forced tasks, bad option values, hostile training data and
recipes. Each case is caused for real (a file cut short, a cell emptied) and must end in one red line, the right
exit code, no traceback, and nothing written."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, one_error_line


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    monkeypatch.chdir(ROOT)
    return run_cli


def copy_model(source, tmp_path, name="model"):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def edit_config(directory, **changes):
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))


def truncate(path, keep=4000):
    path.write_bytes(path.read_bytes()[:keep])


def edit_tokenizer_vocab(directory, vocab):
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    tokenizer["model"].update(vocab=vocab, merges=[])
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))


def remove_tokenizer(directory):
    for item in directory.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens", "vocab", "merges")):
            item.unlink()


DAMAGE = {
    "weights cut short": (lambda d: truncate(d / "model.safetensors"), "model.safetensors' is cut short"),
    "weights empty": (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors' is empty"),
    "weights random": (lambda d: (d / "model.safetensors").write_bytes(os.urandom(20000)),
                       "model.safetensors' is not a safetensors file"),
    "config not JSON": (lambda d: (d / "config.json").write_text("{model_type: gpt2"),
                        "config.json' is not valid JSON (Expecting property name"),
    "config wrong type": (lambda d: edit_config(d, n_embd="big"), "config.json' is not a valid model config"),
    "config a list": (lambda d: (d / "config.json").write_text("[]"), "config.json' is not a JSON object"),
    "config and weights disagree": (lambda d: edit_config(d, n_layer=0), "weights that its config.json does not"),
    "config shapes differ": (lambda d: edit_config(d, n_embd=64), "shapes differ from what its config.json"),
    "tokenizer corrupt": (lambda d: (d / "tokenizer.json").write_text('{"model": '),
                          "tokenizer.json' is not valid JSON"),
    "tokenizer missing": (remove_tokenizer, "has an empty vocabulary: special tokens only, no text (none of its "
                                            "files is there: tokenizer.json"),
    "tokenizer emptied": (lambda d: edit_tokenizer_vocab(d, {}), "has an empty vocabulary: special tokens only, no "
                                                                 "text (tokenizer.json holds none)"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_model_directory_is_named_by_file(user_cli, tiny_gpt2, tmp_path, damage):
    model = copy_model(tiny_gpt2, tmp_path)
    harm, expected = DAMAGE[damage]
    harm(model)
    line = one_error_line(user_cli("generate", "--model", model, "hello", "--max-new-tokens", "2"), 1)
    assert expected in line
    assert "Hub" not in line and str(model) in line


@pytest.mark.parametrize("damage", ["weights cut short", "config not JSON", "tokenizer missing"])
def test_damaged_model_directory_in_a_recipe_writes_nothing(user_cli, tiny_gpt2, tmp_path, damage):
    model = copy_model(tiny_gpt2, tmp_path)
    harm, expected = DAMAGE[damage]
    harm(model)
    out = tmp_path / "run"
    line = one_error_line(user_cli("finetune", "recipes/causal-lm.yaml", f"model.name={model}", "-o", out), 1)
    assert expected in line
    assert not out.exists()


def test_forced_task_without_a_trained_head_is_refused_unless_accepted(user_cli, tiny_bert):
    line = one_error_line(user_cli("generate", "--model", tiny_bert, "--task", "causal-lm", "hi"), 2)
    assert "without a trained causal-lm head" in line and "--new-head accepts that" in line
    accepted = user_cli("generate", "--model", tiny_bert, "--task", "causal-lm", "--new-head", "hi",
                        "--max-new-tokens", "2")
    assert accepted.exit_code == 0, accepted.output


def test_forced_task_the_family_cannot_do(user_cli, tiny_gpt2):
    line = one_error_line(user_cli("generate", "--model", tiny_gpt2, "--task", "seq2seq-lm", "hi"), 2)
    assert "gpt2 model, which has no seq2seq-lm form" in line and "causal-lm" in line


def test_task_message_is_true_to_what_was_typed(user_cli, tiny_gpt2, tiny_bert):
    typed = one_error_line(user_cli("generate", "--model", tiny_gpt2, "--task", "classification", "hi"), 2)
    assert "(asked for with --task)" in typed
    inferred = one_error_line(user_cli("generate", "--model", tiny_bert, "hi"), 2)
    assert "(read from its config)" in inferred and "use --task" not in inferred


def test_recipe_task_the_model_cannot_do_names_recipe_keys(user_cli, tiny_bert, tmp_path):
    out = tmp_path / "run"
    line = one_error_line(user_cli("finetune", "recipes/causal-lm.yaml", f"model.name={tiny_bert}", "-o", out), 2)
    assert "without a trained causal-lm head" in line and "model.new_head: true accepts that" in line
    assert "--" not in line.replace(str(tiny_bert), "")  # no CLI flag is named for a recipe
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "nan"], "--temperature must be a finite number"),
        (["--temperature", "inf"], "--temperature must be a finite number"),
        (["--top-p", "nan"], "--top-p must be a finite number"),
        (["--repetition-penalty", "inf"], "--repetition-penalty must be a finite number"),
        (["--seed", "-1"], "--seed must be between 0 and 4294967295"),
        (["--seed", str(2**40)], "--seed must be between 0 and 4294967295"),
        (["--batch-size", "-3"], "--batch-size must be at least 1"),
        (["--max-length", "0"], "--max-length must be at least 1"),
    ],
)
def test_option_values_are_checked_before_the_model_loads(user_cli, tmp_path, args, message):
    # The model path does not exist: an option error (exit 2) proves the options were checked first.
    line = one_error_line(user_cli("generate", "--model", tmp_path / "no-model", "hi", *args), 2)
    assert message in line


def test_encoder_decoder_new_tokens_are_bounded(user_cli, tiny_t5):
    line = one_error_line(user_cli("generate", "--model", tiny_t5, "summarize: a dog", "--max-new-tokens",
                                   "10000000"), 2)
    assert "10000000 new tokens asked for, past the 512" in line


@pytest.mark.parametrize(
    "override, key",
    [("train.lr=.nan", "train.lr"), ("train.lr=nan", "train.lr"), ("train.weight_decay=.inf", "train.weight_decay"),
     ("train.warmup_ratio=-.inf", "train.warmup_ratio"), ("data.validation_split=NaN", "data.validation_split")],
)
def test_non_finite_recipe_numbers_name_the_key(user_cli, override, key, tmp_path):
    line = one_error_line(user_cli("finetune", "recipes/sentiment.yaml", override, "-o", tmp_path / "run"), 2)
    assert f"{key}: must be a finite number" in line
    assert not (tmp_path / "run").exists()


def test_non_finite_model_config_value_names_the_key(user_cli, tmp_path):
    override = "model.config={model_type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, layer_norm_epsilon: .nan}"
    line = one_error_line(user_cli("finetune", "recipes/pretrain-gpt2.yaml", override, "-o", tmp_path / "run"), 2)
    assert "model.config.layer_norm_epsilon: must be a finite number" in line


def test_max_length_past_the_positions_is_caught_at_validation(user_cli, tiny_gpt2, tmp_path):
    scratch = one_error_line(user_cli("finetune", "recipes/sentiment.yaml", "data.max_length=512", "--dry-run"), 2)
    assert "data.max_length: 512 is past the 128 positions of model.config" in scratch
    local = one_error_line(user_cli("finetune", "recipes/causal-lm.yaml", f"model.name={tiny_gpt2}",
                                    "data.max_length=1000", "--dry-run"), 2)
    assert "data.max_length: 1000 is past the 128 positions" in local
    packed = one_error_line(user_cli("finetune", "recipes/pretrain-gpt2.yaml", "data.block_size=256", "--dry-run"), 2)
    assert "data.block_size: 256 is past the 128 positions" in packed


def test_malformed_jsonl_row_names_its_line(user_cli, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"source": "a b", "target": "a"}\n{"source": "c d", "target": "c"}\n{"source": "e f", target}\n')
    line = one_error_line(user_cli("finetune", "recipes/seq2seq-t5.yaml", f"data.train={data}", "--dry-run"), 2)
    assert f"data.train: '{data}' line 3 is not valid JSON" in line


SENTIMENT_SMALL = ["recipes/sentiment.yaml", "train.max_steps=2", "train.batch_size=4", "data.max_eval_samples=8",
                   "model.config={model_type: distilbert, n_layers: 1, n_heads: 2, dim: 32, hidden_dim: 64, "
                   "max_position_embeddings: 64}"]


def write_csv(path, rows):
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def sentiment_rows(n=40):
    return [(f"the film was {'good' if i % 2 else 'bad'} number {i}", "positive" if i % 2 else "negative")
            for i in range(n)]


def test_empty_text_cell_is_refused_with_its_row_or_dropped_when_asked(user_cli, tmp_path):
    rows = sentiment_rows()
    rows[6] = ("", "positive")
    rows[9] = ("   ", "negative")
    data = write_csv(tmp_path / "train.csv", rows)
    line = one_error_line(user_cli("finetune", *SENTIMENT_SMALL, f"data.train={data}", "-o", tmp_path / "a"), 1)
    assert "2 rows have an empty 'text' cell (data.text_column; rows count from 1 after any header): rows 7, 10" in line
    assert "data.drop_empty=true" in line
    assert not (tmp_path / "a").exists()
    dropped = user_cli("finetune", *SENTIMENT_SMALL, f"data.train={data}", "data.drop_empty=true", "-o", tmp_path / "b")
    assert dropped.exit_code == 0, dropped.output
    assert "dropped 2 rows with empty cells from the training data" in dropped.stderr


def test_every_empty_cell_is_reported_at_once(user_cli, tmp_path, tiny_bert):
    rows = sentiment_rows()
    for i in (2, 8, 11, 14, 17, 20):
        rows[i] = ("", rows[i][1])
    rows[3], rows[5] = (rows[3][0], ""), ("", " ")
    data = write_csv(tmp_path / "train.csv", rows)
    line = one_error_line(user_cli("finetune", *SENTIMENT_SMALL, f"data.train={data}", "-o", tmp_path / "a"), 1)
    assert line.endswith(f"training data '{data}': 8 rows have empty cells (rows count from 1 after any header): "
                         "'text' (data.text_column) in rows 3, 6, 9, 12, 15 and 2 more; 'label' (data.label_column) "
                         "in rows 4, 6; fill those cells, or set data.drop_empty=true to drop them")
    table = tmp_path / "reviews.csv"
    table.write_text("review,gold\nfine,LABEL_0\n,LABEL_1\nok,\n,\n")
    line = one_error_line(user_cli("classify", "--model", tiny_bert, "--file", table, "--text-column", "review",
                                   "--label-column", "gold"), 1)
    assert line.endswith(f"input file '{table}': 3 rows have empty cells (rows count from 1 after any header): "
                         "'review' (--text-column) in rows 2, 4; 'gold' (--label-column) in rows 3, 4; fill those cells")


@pytest.mark.parametrize("name, content, problem", [
    ("rows.json", '[{"text": "a fine film}]', "is not valid JSON (Unterminated string starting at line 1, column 11)"),
    ("rows.jsonl", '{"text": "a"}\n{"text": "b}\n',
     "line 2 is not valid JSON (Unterminated string starting at column 10); write one JSON object a line"),
])
def test_a_json_syntax_error_says_where_once(user_cli, tmp_path, tiny_bert, name, content, problem):
    data = tmp_path / name
    data.write_text(content)
    line = one_error_line(user_cli("classify", "--model", tiny_bert, "--file", data), 1)
    assert line.endswith(f"input file '{data}' {problem}")


def test_missing_label_is_refused_with_its_row(user_cli, tmp_path):
    rows = sentiment_rows()
    rows[3] = ("a fine film", "")
    data = write_csv(tmp_path / "train.csv", rows)
    line = one_error_line(user_cli("finetune", *SENTIMENT_SMALL, f"data.train={data}", "-o", tmp_path / "a"), 1)
    assert "row 4 has an empty 'label' cell (data.label_column" in line


def test_mixed_label_types_are_refused(user_cli, tmp_path):
    data = tmp_path / "train.jsonl"
    rows = [{"text": f"text number {i}", "label": i % 2} for i in range(20)]
    rows[5]["label"] = "positive"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = one_error_line(user_cli("finetune", *SENTIMENT_SMALL, f"data.train={data}", "data.validation=null",
                                   "-o", tmp_path / "a"), 1)
    assert "mixes label types (int, str" in line and "row 6 is 'positive'" in line


def test_numeric_text_column_is_read_as_text(user_cli, tmp_path):
    data = write_csv(tmp_path / "train.csv", [(str(1000 + i), "positive" if i % 2 else "negative") for i in range(40)])
    result = user_cli("finetune", *SENTIMENT_SMALL, f"data.train={data}", "data.validation=null", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output


def test_label_set_of_a_trained_classifier_is_checked(user_cli, tiny_bert, tmp_path):
    # The tiny BERT classifier's head knows LABEL_0 and LABEL_1 (a head trained on integer labels).
    common = ["recipes/sentiment.yaml", "model.config=null", f"model.name={tiny_bert}", "train.max_steps=2",
              "train.batch_size=4", "data.validation=null"]
    words = write_csv(tmp_path / "words.csv", sentiment_rows())
    line = one_error_line(user_cli("finetune", *common, f"data.train={words}", "-o", tmp_path / "a"), 1)
    assert "classifies into ['LABEL_0', 'LABEL_1']" in line and "['negative', 'positive']" in line
    assert "model.new_head: true" in line
    new_head = user_cli("finetune", *common, f"data.train={words}", "model.new_head=true", "-o", tmp_path / "b")
    assert new_head.exit_code == 0, new_head.output
    assert "a new classification head for labels ['negative', 'positive']" in new_head.stderr
    digits = write_csv(tmp_path / "digits.csv", [(text, "1" if label == "positive" else "0")
                                                 for text, label in sentiment_rows()])
    kept = user_cli("finetune", *common, f"data.train={digits}", "-o", tmp_path / "c")
    assert kept.exit_code == 0, kept.output
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved["id2label"] == {"0": "0", "1": "1"}


def test_tiny_temperature_is_refused_before_sampling_overflows(user_cli, tiny_gpt2):
    line = one_error_line(user_cli("generate", "--model", tiny_gpt2, "hi", "--temperature", "1e-45"), 2)
    assert "--temperature must be at least 0.001 when sampling" in line


def test_stream_writes_nothing_when_the_prompt_is_refused(user_cli, tiny_gpt2):
    line = one_error_line(user_cli("generate", "--model", tiny_gpt2, "--stream", "word " * 200,
                                   "--max-new-tokens", "5"), 2)
    assert "past this model's limit of 128" in line


@pytest.mark.parametrize("settings, message", [
    ("{model_type: gpt2, n_layer: -1}", "model.config.n_layer: must not be negative, got -1"),
    ("{model_type: gpt2, n_embd: big}", "Field 'n_embd' expected int, got str"),
    ("{model_type: gpt2, n_head: 3, n_embd: 32}", "must be divisible by num_heads"),
    ("{model_type: gpt2, vocab_size: 100}", "model.config.vocab_size: the vocabulary size of a trained tokenizer"),
])
def test_from_scratch_config_is_checked_at_validation(user_cli, settings, message):
    line = one_error_line(user_cli("finetune", "recipes/pretrain-gpt2.yaml", f"model.config={settings}", "--dry-run"), 2)
    assert message in line


def test_csv_row_with_extra_cells_names_its_line(user_cli, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\ngood film,positive\nbad, really bad film,negative\n")
    line = one_error_line(user_cli("finetune", "recipes/sentiment.yaml", f"data.train={data}", "--dry-run"), 2)
    assert "line 3 has 3 cells, but the header has 2" in line


def test_missing_tokenizer_directory_is_not_blamed_on_the_hub(user_cli, tmp_path):
    out = tmp_path / "run"
    line = one_error_line(user_cli("finetune", "recipes/pretrain-gpt2.yaml", f"model.tokenizer={tmp_path / 'tok'}",
                                   "-o", out), 1)
    assert f"tokenizer directory '{tmp_path / 'tok'}' does not exist; check model.tokenizer" in line
    assert not out.exists()


def test_overwrite_refuses_an_output_directory_that_holds_the_training_data(user_cli, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    data = out / "train.txt"
    data.write_text((ROOT / "data" / "corpus.txt").read_text())
    line = one_error_line(user_cli("finetune", "recipes/pretrain-gpt2.yaml", f"data.train={data}", "-o", out,
                                   "--overwrite"), 2)
    assert "data.train" in line and "lies inside the output directory" in line
    assert data.is_file()


def test_returned_sequences_are_bounded(user_cli, tmp_path):
    line = one_error_line(user_cli("generate", "--model", tmp_path / "no-model", "hi", "--do-sample", "-n", "200000"), 2)
    assert "--num-return-sequences must be between 1 and 1024" in line


# ---------------------------------------------------------------- stdin, model names, adapters, tokenizers


@pytest.mark.parametrize("verb, args", [
    ("generate", ["--file", "-"]),
    ("classify", ["--file", "-"]),
    ("eval", ["--data", "-"]),
])
def test_a_closed_stdin_is_one_line(tiny_models, verb, args):
    model = tiny_models("bert" if verb == "classify" else "gpt2")
    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "llmtool", verb, "--model", model, *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, preexec_fn=lambda: os.close(0))  # `<&-`
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: stdin is closed, so '-' has nothing to read; pipe the input "
                                                  "in, or give a file"]


def test_a_model_file_is_not_said_to_lack_config_json(user_cli, tiny_gpt2):
    line = one_error_line(user_cli("generate", "--model", tiny_gpt2 / "config.json", "hi"), 1)
    assert f"is a file, not a model directory; point --model at the directory that holds it, '{tiny_gpt2}'" in line
    assert "no config.json" not in line


@pytest.mark.parametrize("verb, variable", [("generate", "LLMTOOL_MODEL"), ("eval", "LLMTOOL_MODEL"),
                                            ("classify", "LLMTOOL_CLASSIFIER")])
def test_a_model_from_the_environment_is_named_by_its_variable(user_cli, tmp_path, monkeypatch, verb, variable):
    monkeypatch.setenv(variable, str(tmp_path / "no-model"))
    line = one_error_line(user_cli(verb, *(["hi"] if verb != "eval" else [])), 1)
    assert f"model directory '{tmp_path / 'no-model'}' does not exist; check ${variable}" in line
    given = one_error_line(user_cli(verb, "--model", tmp_path / "other", *(["hi"] if verb != "eval" else [])), 1)
    assert "check --model" in given


@pytest.fixture(scope="module")
def adapter(tiny_gpt2, tmp_path_factory):
    from llmtool import config, finetuning

    out = tmp_path_factory.mktemp("adapter") / "run"
    finetuning.finetune(config.load_recipe(ROOT / "recipes" / "lora-gpt2.yaml", [
        f"model.name={tiny_gpt2}", f"output_dir={out}", "model.lora.merge=false", "train.max_steps=2",
        "data.max_train_samples=32", "data.validation_split=0", "train.batch_size=8", "train.save_every=null"]))
    return out


ADAPTER_DAMAGE = {
    "cut short": (lambda w, base: truncate(w, keep=w.stat().st_size // 2), "is cut short"),
    "header cut short": (lambda w, base: truncate(w, keep=100), "is cut short"),
    "empty": (lambda w, base: w.write_bytes(b""), "is empty or cut short"),
    "random": (lambda w, base: w.write_bytes(os.urandom(20000)), "is not a safetensors file"),
    "foreign": (lambda w, base: shutil.copy(base / "model.safetensors", w), "holds no LoRA weights"),
}


@pytest.mark.parametrize("damage", ADAPTER_DAMAGE)
def test_damaged_adapter_weights_are_named_by_file(user_cli, adapter, tiny_gpt2, tmp_path, damage):
    damaged = copy_model(adapter, tmp_path, "adapter")
    harm, expected = ADAPTER_DAMAGE[damage]
    harm(damaged / "adapter_model.safetensors", tiny_gpt2)
    line = one_error_line(user_cli("generate", "--model", damaged, "hello", "--max-new-tokens", "2"), 1)
    assert f"'{damaged / 'adapter_model.safetensors'}' {expected}" in line


def test_t5_without_tokenizer_files_is_a_damaged_directory(user_cli, tiny_t5, tmp_path):
    model = copy_model(tiny_t5, tmp_path)
    remove_tokenizer(model)
    line = one_error_line(user_cli("generate", "--model", model, "summarize: a dog", "--max-new-tokens", "4"), 1)
    assert (f"the tokenizer in '{model}' has an empty vocabulary: special tokens only, no text (none of its files "
            "is there: tokenizer.json, spiece.model)") in line
