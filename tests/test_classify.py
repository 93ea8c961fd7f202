"""`llmtool classify`: batching, agreement with transformers' pipeline, int8, metrics against scikit-learn, output
formats, streaming to a file, truncation, and every bad input as one red line."""

import csv
import json
import os
import subprocess
import sys

import pytest
from sklearn import metrics as sk

from llmtool import classification, config, finetuning, models
from llmtool.commands import classify as classify_command
from llmtool.errors import Interrupted, UsageError

from conftest import ROOT, one_error_line, run_on_a_terminal

TEST_CSV = ROOT / "data" / "sentiment" / "test.csv"
# A one-layer DistilBERT that learns the shipped sentiment data well above chance (0.88 on the test split) in 300
# steps, about 3 s on 2 CPU cores (150 were enough for the template reviews before issue 22).
SMALL_SENTIMENT = [
    "model.config={model_type: distilbert, n_layers: 1, n_heads: 2, dim: 64, hidden_dim: 128, "
    "max_position_embeddings: 64}",
    f"data.train={ROOT / 'data/sentiment/train.csv'}", f"data.validation={ROOT / 'data/sentiment/validation.csv'}",
    "data.max_length=32", "data.max_eval_samples=64", "train.max_steps=300", "train.lr=3e-3", "train.log_every=50",
]
TEXTS = ["The pizza was great.", "Awful.",
         "After lunch the service was slow, the soup was cold and the bill was wrong.",
         "I loved the room, the view and the staff, and I would stay again next year with my whole family.",
         "fine", "The film was boring and far too long."]


@pytest.fixture(scope="module")
def sentiment_model(tmp_path_factory):
    """A sentiment classifier (labels negative/positive) fine-tuned once for this file."""
    out = tmp_path_factory.mktemp("classify") / "sentiment"
    recipe = config.load_recipe(ROOT / "recipes" / "sentiment.yaml", [f"output_dir={out}", *SMALL_SENTIMENT])
    finetuning.finetune(recipe)
    return out


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


def classify_json(run_cli, model, *args, input=None):
    """(records, metrics or None) of a --json run."""
    result = run_cli("classify", "--model", model, "--json", *args, input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # every stdout line is a JSON record
    metrics = lines.pop()["metrics"] if lines and "metrics" in lines[-1] else None
    return lines, metrics


def sentiment_rows(n=None):
    with TEST_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:n] if n else rows


# ---------------------------------------------------------------- results


def test_batched_equals_one_by_one_in_input_order_across_chunks(run_cli, sentiment_model, monkeypatch, tmp_path):
    texts = TEXTS + [row["text"] for row in sentiment_rows(34)]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    monkeypatch.setattr(classify_command, "CHUNK_ROWS", 16)  # three chunks, the last one short
    batched, _ = classify_json(run_cli, sentiment_model, "--file", path, "--batch-size", "7")
    single, _ = classify_json(run_cli, sentiment_model, "--file", path, "--batch-size", "1")
    assert [r["text"] for r in batched] == texts == [r["text"] for r in single]
    assert [r["label"] for r in batched] == [r["label"] for r in single]
    for b, s in zip(batched, single):
        assert b["score"] == pytest.approx(s["score"], abs=1e-5)
    assert {r["label"] for r in batched} == {"negative", "positive"}


def test_labels_and_scores_equal_transformers_pipeline(run_cli, sentiment_model):
    from transformers import pipeline

    records, _ = classify_json(run_cli, sentiment_model, *TEXTS)
    expected = pipeline("text-classification", model=str(sentiment_model), device="cpu")(TEXTS)
    assert [r["label"] for r in records] == [e["label"] for e in expected]
    for r, e in zip(records, expected):
        assert r["score"] == pytest.approx(e["score"], abs=1e-5)


def test_int8_quantizes_and_keeps_accuracy(run_cli, sentiment_model):
    fp32, fp32_metrics = classify_json(run_cli, sentiment_model, "--file", TEST_CSV, "--label-column", "label")
    int8, int8_metrics = classify_json(run_cli, sentiment_model, "--file", TEST_CSV, "--label-column", "label",
                                       "--int8")
    assert fp32_metrics["accuracy"] > 0.85  # a trained model, so accuracy means something
    assert int8_metrics["accuracy"] >= fp32_metrics["accuracy"] - 0.01
    assert [r["score"] for r in int8] != [r["score"] for r in fp32]  # int8 really ran
    import torch

    lm = models.load_model(str(sentiment_model), device="cpu")
    engine = torch.backends.quantized.engine
    classification.quantize_int8(lm)
    assert torch.backends.quantized.engine == engine  # the process-wide setting is left as it was
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    layers = list(lm.model.modules())
    assert any(isinstance(m, DynamicQuantizedLinear) for m in layers)
    assert not any(isinstance(m, torch.nn.Linear) for m in layers)


def test_metrics_equal_scikit_learn(run_cli, sentiment_model):
    result = run_cli("classify", "--model", sentiment_model, "--file", TEST_CSV, "--label-column", "label", "--json")
    assert result.exit_code == 0, result.output
    *records, last = [json.loads(line) for line in result.stdout.splitlines()]
    metrics = last["metrics"]
    names = ["negative", "positive"]
    truth = [row["label"] for row in sentiment_rows()]
    predicted = [r["label"] for r in records]
    assert [r["true_label"] for r in records] == truth
    assert metrics["rows"] == len(truth) == 500
    assert metrics["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    for name, scorer in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
        assert metrics[name] == pytest.approx(scorer(truth, predicted, average="macro", labels=names))
        per_label = scorer(truth, predicted, average=None, labels=names)
        assert [metrics["per_class"][n][name] for n in names] == pytest.approx(list(per_label))
    assert metrics["confusion_matrix"] == {"labels": names,
                                           "matrix": sk.confusion_matrix(truth, predicted, labels=names).tolist()}
    assert [metrics["per_class"][n]["support"] for n in names] == [truth.count(n) for n in names]
    assert "accuracy" in result.stderr and "confusion matrix" in result.stderr  # the table for people


def test_numeric_labels_for_a_model_with_default_label_names(run_cli, tiny_bert, tmp_path):
    path = tmp_path / "gold.csv"
    path.write_text("text,label\nthe cat sat,0\na dog ran,1\nthe red house,1\n", encoding="utf-8")
    records, metrics = classify_json(run_cli, tiny_bert, "--file", path, "--label-column", "label")
    assert [r["true_label"] for r in records] == ["LABEL_0", "LABEL_1", "LABEL_1"]
    assert metrics["rows"] == 3 and 0 <= metrics["accuracy"] <= 1


def test_sentence_pairs_from_columns(run_cli, tiny_bert, tmp_path):
    pairs = [("A man plays a guitar.", "Someone makes music."), ("The cat sleeps.", "A dog barks loudly at night.")]
    path = tmp_path / "nli.jsonl"
    path.write_text("".join(json.dumps({"premise": p, "hypothesis": h}) + "\n" for p, h in pairs), encoding="utf-8")
    records, _ = classify_json(run_cli, tiny_bert, "--file", path, "--text-column", "premise",
                               "--pair-column", "hypothesis", "--all-scores")
    lm = models.load_model(str(tiny_bert), device="cpu")
    expected = classification.classify(lm, [p for p, _ in pairs], [h for _, h in pairs]).probabilities
    alone = classification.classify(lm, [p for p, _ in pairs]).probabilities
    assert [(r["text"], r["pair"]) for r in records] == pairs
    for record, probabilities in zip(records, expected):
        assert list(record["scores"]) == ["LABEL_0", "LABEL_1"]  # --all-scores: the model's label order
        assert list(record["scores"].values()) == pytest.approx(probabilities, abs=1e-6)
    assert expected != alone  # the pair text reached the model


def test_plain_lines_when_stdout_is_not_a_terminal(run_cli, sentiment_model):
    result = run_cli("classify", "--model", sentiment_model, "The pizza was great.", "Bad\tfood,\nbad\r\nservice.",
                     "--top-k", "2")
    assert result.exit_code == 0, result.output
    records, _ = classify_json(run_cli, sentiment_model, "The pizza was great.", "Bad\tfood,\nbad\r\nservice.",
                               "--top-k", "2")
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line, record in zip(lines, records):
        fields = line.split("\t")
        (first, second), scores = list(record["scores"]), list(record["scores"].values())
        assert fields[:2] == [record["label"], f"{record['score']:.4f}"]
        assert fields[2:6] == [first, f"{scores[0]:.4f}", second, f"{scores[1]:.4f}"]  # most likely first
        assert scores[0] >= scores[1] and first == record["label"]
    assert lines[0].endswith("\tThe pizza was great.")
    assert lines[1].endswith("\tBad food, bad service.")  # one line per input, tab-separated fields


def test_table_on_a_terminal(run_cli, sentiment_model, monkeypatch):
    monkeypatch.setattr(classify_command, "_is_terminal", lambda stream: True)
    result = run_cli("classify", "--model", sentiment_model, "The pizza was great.", "[bold]not markup[/bold]")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "text" in line)
    assert "label" in header and "score" in header
    assert "The pizza was great." in result.stdout and "[bold]not markup[/bold]" in result.stdout


def test_output_file_equals_json_stdout_and_stdout_stays_empty(run_cli, sentiment_model, tmp_path, monkeypatch):
    monkeypatch.setattr(classify_command, "CHUNK_ROWS", 64)  # the file is written chunk by chunk
    args = ["--file", TEST_CSV, "--label-column", "label", "--top-k", "1"]
    printed = run_cli("classify", "--model", sentiment_model, *args, "--json")
    out = tmp_path / "labels.jsonl"
    written = run_cli("classify", "--model", sentiment_model, *args, "--output", out)
    assert written.exit_code == 0, written.output
    assert written.stdout == ""
    assert out.read_text(encoding="utf-8") == printed.stdout
    assert len(printed.stdout.splitlines()) == 501  # 500 records and the metrics
    assert f"Wrote 500 records to {out}" in written.stderr
    assert "classifying" not in printed.stderr  # no progress bar when stderr is not a terminal


def test_an_existing_output_is_replaced_only_with_overwrite(run_cli, sentiment_model, tmp_path):
    out = tmp_path / "labels.jsonl"
    out.write_text("earlier results\n", encoding="utf-8")
    refused = run_cli("classify", "--model", sentiment_model, "Great food.", "--output", out)
    assert isinstance(refused.exception, UsageError)
    assert f"--output '{out}' is not empty; add --overwrite to replace it" in str(refused.exception)
    assert out.read_text(encoding="utf-8") == "earlier results\n"
    replaced = run_cli("classify", "--model", sentiment_model, "Great food.", "--output", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(out.read_text(encoding="utf-8"))["text"] == "Great food."
    alone = run_cli("classify", "--model", sentiment_model, "Great food.", "--overwrite")
    assert "--overwrite works on the file given with --output FILE" in str(alone.exception)


def test_interrupt_keeps_the_finished_chunks(run_cli, tiny_bert, tmp_path, monkeypatch):
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"text number {i}\n" for i in range(40)), encoding="utf-8")
    monkeypatch.setattr(classify_command, "CHUNK_ROWS", 16)
    real, calls = classification.classify, []

    def interrupted_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(classification, "classify", interrupted_second_time)
    out = tmp_path / "out.jsonl"
    result = run_cli("classify", "--model", tiny_bert, "--file", path, "--output", out)
    assert isinstance(result.exception, Interrupted)
    assert str(result.exception) == f"interrupted after 16 of 40 texts; {out} holds the first 16 records"
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == [f"text number {i}" for i in range(16)]


def test_truncation_is_counted_and_reported(run_cli, sentiment_model):
    lm = models.load_model(str(sentiment_model), device="cpu")
    lengths = [len(ids) for ids in lm.tokenizer(TEXTS)["input_ids"]]
    limit = 8
    expected = sum(length > limit for length in lengths)
    assert 0 < expected < len(TEXTS)
    result = run_cli("classify", "--model", sentiment_model, *TEXTS, "--max-length", limit)
    assert result.exit_code == 0, result.output
    assert f"Note: {expected} of {len(TEXTS)} inputs were longer than {limit} tokens" in result.stderr
    quiet = run_cli("classify", "--model", sentiment_model, *TEXTS)
    assert "Note:" not in quiet.stderr  # nothing cut, nothing said


def test_stdin_and_dash_read_one_text_a_line(run_cli, tiny_bert):
    expected, _ = classify_json(run_cli, tiny_bert, "the cat sat", "a dog ran")
    piped, _ = classify_json(run_cli, tiny_bert, input="the cat sat\n\na dog ran\n")
    dashed, _ = classify_json(run_cli, tiny_bert, "--file", "-", input="the cat sat\na dog ran\n")
    assert piped == expected == dashed


def test_default_model_comes_from_env(run_cli, tiny_bert, monkeypatch):
    monkeypatch.setenv("LLMTOOL_CLASSIFIER", str(tiny_bert))
    result = run_cli("classify", "the cat sat", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["label"] in {"LABEL_0", "LABEL_1"}


def test_new_head_runs_a_model_without_a_classifier_and_says_so(run_cli, tiny_gpt2):
    result = run_cli("classify", "--model", tiny_gpt2, "the cat sat", "--new-head", "--json")
    assert result.exit_code == 0, result.output
    assert "untrained" in result.stderr
    assert json.loads(result.stdout)["label"] in {"LABEL_0", "LABEL_1"}


@pytest.fixture
def numbered_texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"the cat sat on mat {i}\n" for i in range(300)), encoding="utf-8")
    return path


def test_progress_on_a_terminal_stderr_never_reaches_piped_stdout(tiny_bert, numbered_texts):
    terminal, stdout = run_on_a_terminal(["classify", "--model", tiny_bert, "--file", numbered_texts,
                                          "--batch-size", "16"], stdout_too=False)
    assert b"classifying" in terminal  # the bar was drawn on the terminal
    lines = stdout.decode().splitlines()
    assert len(lines) == 300 and all(line.split("\t")[0] in {"LABEL_0", "LABEL_1"} for line in lines)
    assert lines[7].endswith("\tthe cat sat on mat 7")


def test_results_and_the_bar_share_one_terminal_without_overdrawing(tiny_bert, numbered_texts):
    terminal, _ = run_on_a_terminal(["classify", "--model", tiny_bert, "--file", numbered_texts, "--batch-size", "16",
                                     "--json"], stdout_too=True)
    assert b"classifying" in terminal
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.decode())  # drop cursor moves and colours
    records = [json.loads(line) for line in text.replace("\r", "\n").splitlines() if line.startswith("{")]
    assert [r["text"] for r in records] == [f"the cat sat on mat {i}" for i in range(300)]


@pytest.fixture
def datasets_bars_on():
    """datasets' progress bars as a user's process starts with them: on (a training run in this process turns
    them off for good)."""
    import datasets

    was_off = datasets.utils.are_progress_bars_disabled()
    datasets.enable_progress_bars()
    yield
    if was_off:
        datasets.disable_progress_bars()


def labelled_csv(path, labels):
    path.write_text("text,label\n" + "".join(f"the cat sat on mat {i},{label}\n" for i, label in enumerate(labels)))
    return path


def test_datasets_own_progress_never_shows(user_cli, tiny_bert, tmp_path, datasets_bars_on):
    import datasets

    data = labelled_csv(tmp_path / "labelled.csv", ["LABEL_0", "LABEL_1"] * 3)  # a new file: datasets reads it anew
    result = user_cli("classify", "--model", tiny_bert, "--file", data, "--label-column", "label", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("6 labelled rows: accuracy"), result.stderr  # not "Generating train split"
    refused = user_cli("classify", "--model", tiny_bert, "--file", labelled_csv(tmp_path / "other.csv", ["x", "y"]),
                       "--label-column", "label")
    assert "labels the model does not know" in one_error_line(refused, 1)
    assert not datasets.utils.are_progress_bars_disabled()  # silenced for llmtool's loads only


def test_an_error_after_the_model_loads_is_the_first_line_on_a_terminal(tiny_bert, tmp_path):
    data = labelled_csv(tmp_path / "labelled.csv", ["x", "y"])  # the labels are checked against the loaded model
    terminal, _ = run_on_a_terminal(["classify", "--model", tiny_bert, "--file", data, "--label-column", "label"],
                                    stdout_too=True, exit_code=1)
    assert terminal.startswith(b"\x1b[1;31mError: "), terminal  # no blank line (nor datasets' bar) before it
    assert b"labels the model does not know" in terminal and terminal.count(b"\n") == 1


# ---------------------------------------------------------------- bad input: one red line, the right exit code


@pytest.fixture
def bad_files(tmp_path):
    files = {
        "empty.csv": b"",
        "empty.txt": b"",
        "latin1.txt": b"caf\xe9 au lait\n",
        "neutral.csv": b"text,label\nfine,positive\nmeh,neutral\nso so,mixed\n",
        "texts.csv": b"text,label\nfine,positive\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize("args, exit_code, message", [
    (["--file", "texts.csv", "--text-column", "review"], 1, "has no column 'review' (--text-column)"),
    (["--file", "texts.csv", "--label-column", "gold"], 1,
     "has no column 'gold' (--label-column); its columns are: text, label"),
    (["--file", "empty.csv"], 1, "'empty.csv' is empty"),
    (["--file", "empty.txt"], 1, "has no rows"),
    (["--file", "latin1.txt"], 1, "is not UTF-8"),
    (["--file", "neutral.csv", "--label-column", "label"], 1,
     "labels the model does not know in its --label-column: 'mixed', 'neutral'; the model's labels are: negative, "
     "positive"),
    (["--file", "-", "--pair-column", "hypothesis"], 2,
     "--pair-column names a column of a csv/tsv/jsonl/parquet --file"),
    (["hello", "--label-column", "label"], 2, "--label-column names a column"),
    (["hello", "--int8", "--device", "cuda"], 2, "--int8 runs on the CPU only"),
    (["hello", "--int8", "--dtype", "bf16"], 2, "--int8 quantizes fp32 weights"),
    (["hello", "--json", "--output", "out.jsonl"], 2, "--json prints the records that --output writes"),
    (["hello", "--top-k", "1", "--all-scores"], 2, "--top-k and --all-scores do not mix"),
    (["hello", "--top-k", "3"], 2, "--top-k 3 is more than the model's 2 labels (negative, positive)"),
    (["hello", "--file", "texts.csv"], 2, "give texts as arguments or with --file, not both"),
    (["hello", "--batch-size", "0"], 2, "--batch-size must be at least 1"),
    (["hello", "--max-length", "65"], 2, "--max-length 65 is past the model's limit of 64 tokens"),
    (["hello", "--max-length", "2"], 2, "--max-length 2 leaves no room for text"),
    (["hello", "--output", "nowhere/out.jsonl"], 2, "nowhere' does not exist; create it first"),
    (["--file", "texts.csv", "--output", "texts.csv"], 2, "--output 'texts.csv' is the input file itself"),
    ([" "], 2, "text 1 is empty"),
])
def test_bad_input_is_one_red_line(user_cli, sentiment_model, bad_files, monkeypatch, args, exit_code, message):
    monkeypatch.chdir(bad_files)
    result = user_cli("classify", "--model", sentiment_model, *args, input="a premise\n")
    assert message in one_error_line(result, exit_code)
    assert (bad_files / "texts.csv").read_bytes() == b"text,label\nfine,positive\n"  # inputs never touched


def test_model_without_a_classification_head_is_refused(user_cli, tiny_gpt2):
    line = one_error_line(user_cli("classify", "--model", tiny_gpt2, "hello"), 2)
    assert "without a trained classification head" in line and "--new-head" in line


def test_no_model_is_a_usage_error(user_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_CLASSIFIER", raising=False)
    line = one_error_line(user_cli("classify", "hello"), 2)
    assert "pass --model" in line and "$LLMTOOL_CLASSIFIER" in line


def test_several_option_problems_are_reported_at_once(user_cli, tiny_bert):
    line = one_error_line(user_cli("classify", "--model", tiny_bert, "hi", "--batch-size", "0", "--top-k", "0"), 2)
    assert "--batch-size" in line and "--top-k" in line


def test_a_reader_that_leaves_early_ends_the_run_without_a_traceback(tiny_bert, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("the cat sat on the mat\n" * 5000, encoding="utf-8")  # two chunks: the second meets a closed pipe
    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    command = f"'{sys.executable}' -m llmtool classify --model '{tiny_bert}' --file '{path}' --batch-size 512"
    result = subprocess.run(f"{command} | head -n 1", shell=True, capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\tthe cat sat on the mat\n")
    assert result.stderr == ""
