"""The `evaluate` modules shipped in llmtool/metrics, each checked against its reference package called directly."""

import ast
import math
import os
import random
import socket
from importlib import resources

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn import metrics as sk

from llmtool import metrics
from llmtool.errors import UsageError

SHIPPED = ["accuracy", "bleu", "confusion_matrix", "exact_match", "f1", "precision", "recall", "rouge"]
REFERENCE_PACKAGE = {"accuracy": "sklearn", "precision": "sklearn", "recall": "sklearn", "f1": "sklearn",
                     "confusion_matrix": "sklearn", "rouge": "rouge_score", "bleu": "sacrebleu", "exact_match": None}
SCORERS = {"precision": sk.precision_score, "recall": sk.recall_score, "f1": sk.f1_score}
SEEDS = [0, 1, 2, 3, 4]
WORDS = "the a cat cats dog dogs sat sits on mat mats running runs quickly red blue house".split()


@pytest.fixture(scope="module")
def module():
    """Each metric loaded once for this file: evaluate.load copies the script into the modules cache each time."""
    loaded = {}

    def get(name):
        if name not in loaded:
            loaded[name] = metrics.load(name)
        return loaded[name]

    return get


def labels_for(seed, n=60):
    """References over classes 0-3 and predictions over 0, 1, 2, 4: class 3 is never predicted (its precision
    divides by zero) and class 4 never occurs in the references (its recall divides by zero)."""
    rng = random.Random(seed)
    references = [rng.choice([0, 1, 2, 3]) for _ in range(n)]
    predictions = [r if r != 3 and rng.random() < 0.5 else rng.choice([0, 1, 2, 4]) for r in references]
    assert 3 in references and 3 not in predictions and 4 in predictions and 4 not in references
    return predictions, references


def texts_for(seed, n=12):
    rng = random.Random(seed)

    def sentence():
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(rng.randint(1, 2))]
        return "\n".join(lines)  # some rows have two lines: rougeLsum differs from rougeL there

    references = [sentence() for _ in range(n)]
    predictions = [r if rng.random() < 0.2 else sentence() for r in references]
    return predictions, references


def assert_plain(value):
    """Python floats (lists of them), never numpy scalars: they go into CSV rows and JSON as they are."""
    if isinstance(value, list):
        assert value and all(type(v) is float for v in value), value
    else:
        assert type(value) is float, type(value)


# ---------------------------------------------------------------- the shipped set

def test_available_lists_every_shipped_metric():
    assert metrics.available() == SHIPPED


def test_unknown_metric_is_a_usage_error_naming_the_shipped_ones():
    with pytest.raises(UsageError) as caught:
        metrics.load("nope")
    message = str(caught.value)
    assert "'nope'" in message
    assert all(name in message for name in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_module_imports_only_datasets_evaluate_and_its_reference_package(name):
    """evaluate copies each script alone into its cache, so it cannot import llmtool or a sibling; its import
    scanner also reads `import a, b` as one package named "a,", so every import has a line of its own."""
    path = resources.files(metrics) / name / f"{name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            assert len(node.names) == 1, f"{name}.py: one import per line"
            imported.add(node.names[0].name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}.py: no relative imports"
            imported.add(node.module.split(".")[0])
    assert imported == {"datasets", "evaluate"} | ({REFERENCE_PACKAGE[name]} - {None})
    assert not any(isinstance(node, (ast.Import, ast.ImportFrom)) for cls in tree.body
                   if isinstance(cls, ast.ClassDef) for node in ast.walk(cls))


def test_every_metric_loads_and_computes_with_the_network_refused(monkeypatch):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by conftest.py before any Hugging Face import

    def refuse(*args, **kwargs):
        raise AssertionError("a metric tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in SHIPPED:
        loaded = metrics.load(name)
        assert loaded.keep_in_memory  # nothing written under the metrics cache
        if REFERENCE_PACKAGE[name] == "sklearn":
            result = loaded.compute(predictions=[0, 1, 1], references=[0, 1, 0])
        else:
            result = loaded.compute(predictions=["a b c d"], references=["a b c d"])
        assert name in result or {"rouge1", "rougeL"} <= set(result)


# ---------------------------------------------------------------- scikit-learn

@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_scikit_learn(module, seed):
    predictions, references = labels_for(seed)
    result = module("accuracy").compute(predictions=predictions, references=references)
    assert set(result) == {"accuracy"}
    assert_plain(result["accuracy"])
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(references, predictions))
    assert result["accuracy"] == pytest.approx(sum(p == r for p, r in zip(predictions, references)) / len(references))
    counted = module("accuracy").compute(predictions=predictions, references=references, normalize=False)
    assert counted["accuracy"] == sk.accuracy_score(references, predictions, normalize=False)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_default_is_macro_average_with_zero_division_0(module, name, seed):
    predictions, references = labels_for(seed)
    result = module(name).compute(predictions=predictions, references=references)
    assert set(result) == {name}
    assert_plain(result[name])
    expected = SCORERS[name](references, predictions, average="macro", zero_division=0)
    assert result[name] == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
@pytest.mark.parametrize("zero_division", [0, 1])
def test_averages_and_zero_division_match_scikit_learn(module, name, average, zero_division, seed):
    predictions, references = labels_for(seed)
    result = module(name).compute(predictions=predictions, references=references, average=average,
                                  zero_division=zero_division)[name]
    expected = SCORERS[name](references, predictions, average=average, zero_division=zero_division)
    assert_plain(result)
    if average is None:
        assert len(result) == 5  # classes 0-4, sorted
        assert result == pytest.approx(expected.tolist())
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize("zero_division", [0, 1])
def test_zero_division_sets_the_score_of_an_undefined_label(module, zero_division):
    predictions, references = labels_for(0)

    def per_label(name, labels=None):
        return module(name).compute(predictions=predictions, references=references, average=None, labels=labels,
                                    zero_division=zero_division)[name]

    assert per_label("precision")[3] == zero_division  # class 3 is never predicted
    assert per_label("recall")[4] == zero_division  # class 4 is never a reference
    # F1 is 2tp / (2tp + fp + fn): undefined only for a label in neither list, like 5
    assert per_label("f1", labels=[3, 4, 5]) == [0.0, 0.0, float(zero_division)]


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_labels_and_binary_average_match_scikit_learn(module, name, seed):
    predictions, references = labels_for(seed)
    scorer, computed = SCORERS[name], module(name)
    for labels in ([0, 1, 3], [4, 2]):
        for average in ("macro", None):
            result = computed.compute(predictions=predictions, references=references, labels=labels,
                                      average=average)[name]
            expected = scorer(references, predictions, labels=labels, average=average, zero_division=0)
            assert result == pytest.approx(expected if average else expected.tolist())
    binary_predictions, binary_references = [p % 2 for p in predictions], [r % 2 for r in references]
    for pos_label in (0, 1):
        result = computed.compute(predictions=binary_predictions, references=binary_references, average="binary",
                                  pos_label=pos_label)[name]
        expected = scorer(binary_references, binary_predictions, average="binary", pos_label=pos_label)
        assert result == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_scikit_learn(module, seed):
    predictions, references = labels_for(seed)
    result = module("confusion_matrix").compute(predictions=predictions, references=references)
    assert set(result) == {"confusion_matrix"}
    matrix = result["confusion_matrix"]
    assert all(type(cell) is int for row in matrix for cell in row)
    assert matrix == sk.confusion_matrix(references, predictions).tolist()
    assert sum(map(sum, matrix)) == len(references)
    labels = [4, 3, 2, 1, 0]
    reordered = module("confusion_matrix").compute(predictions=predictions, references=references, labels=labels)
    assert reordered["confusion_matrix"] == sk.confusion_matrix(references, predictions, labels=labels).tolist()


def test_finetune_usage_accuracy_and_f1_keys(module):
    """finetuning.evaluate_model: compute(predictions=list, references=list), then reads "accuracy" and "f1"."""
    results = {}
    for name in ("accuracy", "f1"):
        results.update(module(name).compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]))
    assert results == pytest.approx({"accuracy": 0.75, "f1": (1 + 2 / 3 + 2 / 3) / 3})


# ---------------------------------------------------------------- rouge_score

@pytest.mark.parametrize("seed", SEEDS)
def test_rouge_is_the_mean_f_measure_of_rouge_score(module, seed):
    predictions, references = texts_for(seed)
    kinds = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(kinds, use_stemmer=False)
    rows = [scorer.score(r, p) for p, r in zip(predictions, references)]
    result = module("rouge").compute(predictions=predictions, references=references)
    assert set(result) == set(kinds)
    for kind in kinds:
        assert_plain(result[kind])
        assert result[kind] == pytest.approx(sum(row[kind].fmeasure for row in rows) / len(rows))


def test_rouge_options_pass_through(module):
    predictions, references = texts_for(7)
    kinds = ["rouge1", "rougeL"]
    scorer = rouge_scorer.RougeScorer(kinds, use_stemmer=True)
    rows = [scorer.score(r, p) for p, r in zip(predictions, references)]
    result = module("rouge").compute(predictions=predictions, references=references, rouge_types=kinds,
                                     use_stemmer=True)
    assert result == pytest.approx({kind: sum(row[kind].fmeasure for row in rows) / len(rows) for kind in kinds})


def test_rouge_by_hand(module):
    # "the cat sat" against "the cat": precision 1, recall 2/3, F 0.8; unigrams only in common for the second row
    result = module("rouge").compute(predictions=["the cat", "sat on"], references=["the cat sat", "on sat"],
                                     rouge_types=["rouge1", "rouge2"])
    assert result == pytest.approx({"rouge1": (0.8 + 1.0) / 2, "rouge2": (2 / 3 + 0.0) / 2})


# ---------------------------------------------------------------- sacrebleu

@pytest.mark.parametrize("seed", SEEDS)
def test_bleu_matches_sacrebleu(module, seed):
    predictions, references = texts_for(seed)
    predictions, references = [p.replace("\n", " ") for p in predictions], [r.replace("\n", " ") for r in references]
    expected = sacrebleu.corpus_bleu(predictions, [references])
    result = module("bleu").compute(predictions=predictions, references=references)
    assert set(result) == {"bleu", "precisions", "brevity_penalty", "length_ratio", "translation_length",
                           "reference_length"}
    for key in ("bleu", "precisions", "brevity_penalty", "length_ratio"):
        assert_plain(result[key])
    assert result["bleu"] == pytest.approx(expected.score)  # sacrebleu's 0-100 scale
    assert result["precisions"] == pytest.approx(expected.precisions)
    assert result["brevity_penalty"] == pytest.approx(expected.bp)
    assert result["length_ratio"] == pytest.approx(expected.sys_len / expected.ref_len)
    assert (result["translation_length"], result["reference_length"]) == (expected.sys_len, expected.ref_len)


def test_bleu_scale_and_options(module):
    same = ["the cat sat on the mat", "a dog runs"]
    assert module("bleu").compute(predictions=same, references=same)["bleu"] == pytest.approx(100.0)
    predictions, references = ["The Cat sat on the mat ."], ["the cat sat on a mat."]
    for options in ({"lowercase": True}, {"tokenize": "char"}, {"smooth_method": "floor"}):
        expected = sacrebleu.corpus_bleu(predictions, [references], **options)
        result = module("bleu").compute(predictions=predictions, references=references, **options)
        assert result["bleu"] == pytest.approx(expected.score)


# ---------------------------------------------------------------- exact match

def test_exact_match_by_hand(module):
    predictions = [" a", "b ", "B", "c d", "c  d", "e.", "\tf\n"]
    references = ["a", "b", "b", "c d", "c d", "e", "f"]
    # equal once stripped: "a", "b", "c d", "f"; case, inner spaces and punctuation count
    result = module("exact_match").compute(predictions=predictions, references=references)
    assert set(result) == {"exact_match"}
    assert_plain(result["exact_match"])
    assert result["exact_match"] == pytest.approx(4 / 7)


# ---------------------------------------------------------------- edge cases

@pytest.mark.parametrize("name", SHIPPED)
def test_no_rows_gives_nan_scores_not_an_error(module, name):
    result = module(name).compute(predictions=[], references=[])
    if name == "confusion_matrix":
        assert result == {"confusion_matrix": []}
    elif name == "rouge":
        assert all(math.isnan(v) for v in result.values())
    else:
        assert math.isnan(result[name])


def test_mismatched_lengths_are_refused(module):
    with pytest.raises(ValueError, match="Mismatch"):
        module("accuracy").compute(predictions=[0, 1], references=[0])
