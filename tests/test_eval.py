"""`llmtool eval`: perplexity of a text as it is against the transformers documentation's strided loop, and of
lm-eval windows against lm-evaluation-harness itself; batch-size invariance, bits per byte over the scored
tokens' bytes by hand, classifier and seq2seq metrics against scikit-learn/rouge-score/sacrebleu on the same
predictions, several models side by side, nothing on stderr but llmtool's own lines, and bad input as one line."""

import json
import math
import shutil
from importlib import resources
from pathlib import Path

import pytest

from llmtool.errors import LlmtoolError, SettingError, UsageError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).parent / "fixtures" / "configs"
SENTIMENT = ROOT / "data" / "sentiment" / "validation.csv"
PAIRS = ROOT / "data" / "seq2seq" / "validation.jsonl"
# What eval scores for a text file: the whole text, as it is (its final newline included).
SHIPPED_TEXT = resources.files("llmtool.assets").joinpath("eval.txt").read_text(encoding="utf-8")
# The shipped text as notes are written: paragraphs of three lines apart by a blank line, and two at the end.
NOTES = "".join(line + ("\n" if i % 3 == 2 else "") for i, line in enumerate(SHIPPED_TEXT.splitlines(True))) + "\n"


def eval_json(run_cli, *args):
    result = run_cli("eval", "--json", *args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def only(report):
    (result,) = report["results"]
    return result


@pytest.fixture(scope="module")
def trained_gpt2(tiny_gpt2, tmp_path_factory):
    """The tiny GPT-2 trained briefly on the shipped text, so that what it predicts depends on how much context
    it sees (an untrained model predicts about uniformly: any windowing would give the same perplexity)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    ids = torch.tensor(tokenizer(SHIPPED_TEXT)["input_ids"])
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(100):
        starts = torch.randint(len(ids) - 128, (16,), generator=generator).tolist()
        batch = torch.stack([ids[start:start + 128] for start in starts])
        model(batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    path = tmp_path_factory.mktemp("trained") / "gpt2"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gpt2(trained_gpt2):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(trained_gpt2).eval(), AutoTokenizer.from_pretrained(trained_gpt2)


def documentation_perplexity(model, tokenizer, text, max_length, stride):
    """The strided loop of the transformers documentation ("Perplexity of fixed-length models"), as written there:
    one window at a time, context tokens masked with -100, each window's mean loss weighted by its valid targets
    less one (the label shift)."""
    import torch

    encodings = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    seq_len = encodings.input_ids.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = encodings.input_ids[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            outputs = model(input_ids, labels=target_ids)
            neg_log_likelihood = outputs.loss
        num_valid_tokens = (target_ids != -100).sum().item()
        num_loss_tokens = num_valid_tokens - target_ids.size(0)
        if num_loss_tokens:  # a one-token last window scores nothing (its loss is NaN: 0 x NaN would spoil the sum)
            nll_sum += neg_log_likelihood.item() * num_loss_tokens
        n_tokens += num_loss_tokens
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return math.exp(nll_sum / n_tokens), n_tokens, seq_len


# ---------------------------------------------------------------- perplexity


def byte_strings(tokenizer, ids) -> list[bytes]:
    """Each token's bytes, read off GPT-2's byte-level vocabulary (one character a byte) without llmtool."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    return [bytes(byte_of[char] for char in piece) for piece in tokenizer.convert_ids_to_tokens(ids)]


def one_token_last_window(tokenizer) -> int:
    """A context (= stride) that leaves the shipped text a last window of one token, which scores nothing."""
    n_tokens = len(tokenizer(SHIPPED_TEXT)["input_ids"])
    return next(c for c in range(4, 64) if n_tokens % c == 1)


@pytest.mark.parametrize("context, stride", [(128, 128), (128, 64), (128, 100), (None, None)],
                         ids=["stride=context", "stride=half", "stride=uneven", "one-token-last-window"])
def test_perplexity_matches_the_documentation_loop(run_cli, trained_gpt2, gpt2, context, stride):
    if context is None:
        context = stride = one_token_last_window(gpt2[1])
    expected, doc_tokens, n_tokens = documentation_perplexity(*gpt2, SHIPPED_TEXT, context, stride)
    result = only(eval_json(run_cli, "--model", trained_gpt2, "--context", context, "--stride", stride))
    assert result["scores"]["perplexity"] == pytest.approx(expected, rel=1e-4)
    method = result["perplexity_method"]
    assert method["method"] == "sliding window" and (method["context"], method["stride"]) == (context, stride)
    assert method["tokens"] == n_tokens
    if stride == context:  # each window's first token has no history: neither method scores it
        assert method["scored_tokens"] == doc_tokens
    else:  # overlapping windows score every token but the first once (the documentation undercounts by one a window)
        assert method["scored_tokens"] == n_tokens - 1
    print(f"context {context}, stride {stride}: llmtool {result['scores']['perplexity']!r}, documentation loop "
          f"{expected!r}, relative difference {result['scores']['perplexity'] / expected - 1:.2e}")


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_text_with_blank_lines_is_scored_as_it_is(run_cli, trained_gpt2, gpt2, tmp_path, source):
    """Notes with blank lines and a final newline: their perplexity is the documentation loop's on the same text,
    which is not that of their non-blank lines."""
    expected, _, n_tokens = documentation_perplexity(*gpt2, NOTES, 128, 128)
    non_blank, _, _ = documentation_perplexity(*gpt2, "\n".join(line for line in NOTES.splitlines() if line.strip()),
                                               128, 128)
    assert abs(non_blank / expected - 1) > 1e-3  # what dropping the blank lines would cost
    path = tmp_path / "notes.txt"
    path.write_text(NOTES, encoding="utf-8")
    data = path if source == "file" else "-"
    result = run_cli("eval", "--json", "--model", trained_gpt2, "--data", data, input=NOTES, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    scored = only(report)
    assert scored["scores"]["perplexity"] == pytest.approx(expected, rel=1e-4)
    assert scored["perplexity_method"]["tokens"] == n_tokens and report["rows"] == 1
    print(f"{source}: llmtool {scored['scores']['perplexity']!r}, documentation loop {expected!r}, relative "
          f"difference {scored['scores']['perplexity'] / expected - 1:.2e}; non-blank lines alone: {non_blank!r}")


def test_the_reference_model_depends_on_its_context(gpt2):
    """What makes the comparison above telling: too little context costs this model well over 0.1%."""
    full, _, _ = documentation_perplexity(*gpt2, SHIPPED_TEXT, 128, 128)
    short, _, _ = documentation_perplexity(*gpt2, SHIPPED_TEXT, 4, 4)
    assert short > 1.05 * full


def test_default_context_is_the_models_positions_and_text_is_shipped(run_cli, tiny_gpt2, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTOOL_MODEL", str(tiny_gpt2))
    report = eval_json(run_cli)
    result = only(report)
    assert result["model"] == str(tiny_gpt2) and result["task"] == "causal-lm"
    assert "eval.txt" in report["data"] and report["rows"] == 1  # the shipped text, whole
    assert result["perplexity_method"]["context"] == result["perplexity_method"]["stride"] == 128
    (tmp_path / "shipped.txt").write_text(SHIPPED_TEXT, encoding="utf-8")
    from_file = only(eval_json(run_cli, "--model", tiny_gpt2, "--data", tmp_path / "shipped.txt"))
    assert from_file["scores"] == result["scores"]


@pytest.mark.parametrize("stride", [None, 64, 100])
def test_batch_size_does_not_change_perplexity(run_cli, trained_gpt2, stride):
    window = ["--context", 128] + (["--stride", stride] if stride else [])
    values = [only(eval_json(run_cli, "--model", trained_gpt2, *window, "--batch-size", size))["scores"]
              for size in (1, 8)]
    for key in ("perplexity", "bits_per_byte", "nll_stderr"):
        assert values[0][key] == pytest.approx(values[1][key], rel=1e-9, abs=0)


def token_nll_by_hand(model, ids, begin, end):
    """NLL of ids[begin + 1:end] given what comes before them from `begin` on: one window, alone."""
    import torch

    window = torch.tensor([ids[begin:end]])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(window).logits[0, :-1].double(), dim=-1)
    return -log_probs.gather(1, window[0, 1:, None])[:, 0]


def test_bits_per_byte_and_stderr_by_hand(run_cli, trained_gpt2, gpt2, tmp_path):
    text = "The cat sat on the mat. Über straße, naïve café."  # multi-byte characters: bytes are not characters
    (tmp_path / "short.txt").write_text(text, encoding="utf-8")
    model, tokenizer = gpt2
    ids = tokenizer(text)["input_ids"]
    nll = token_nll_by_hand(model, ids, 0, len(ids))
    scored_bytes = len(text.encode()) - len(byte_strings(tokenizer, ids)[0])  # the first token is never predicted

    result = only(eval_json(run_cli, "--model", trained_gpt2, "--data", tmp_path / "short.txt"))
    scores = result["scores"]
    assert result["perplexity_method"]["bytes"] == scored_bytes
    assert scores["bits_per_byte"] == pytest.approx(nll.sum().item() / (math.log(2) * scored_bytes), rel=1e-5)
    assert scores["perplexity"] == pytest.approx(math.exp(nll.mean().item()), rel=1e-5)
    assert scores["nll_stderr"] == pytest.approx(nll.std().item() / math.sqrt(len(nll)), rel=1e-4)
    low, high = scores["perplexity_interval"]
    assert low < scores["perplexity"] < high


def test_bits_per_byte_leaves_out_the_bytes_of_every_unscored_token(run_cli, trained_gpt2, gpt2, tmp_path):
    """Windows that do not overlap leave each one's first token unscored: its loss and its bytes are left out
    alike, down to a token that holds part of a character."""
    model, tokenizer = gpt2
    text = "Über straße, naïve café: 日本の🙂 und Öl.\n\n" * 6
    ids = tokenizer(text)["input_ids"]
    pieces = byte_strings(tokenizer, ids)
    assert b"".join(pieces) == text.encode()

    def partial(piece):
        try:
            piece.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True

    # A window length that starts some window on a piece of a character.
    context = next(c for c in range(6, 40) if any(partial(pieces[i]) for i in range(c, len(ids), c)))
    unscored = [0, *range(context, len(ids), context)]
    nll = [token_nll_by_hand(model, ids, begin, min(begin + context, len(ids))) for begin in unscored]
    total = sum(part.sum().item() for part in nll)
    scored_bytes = len(text.encode()) - sum(len(pieces[i]) for i in unscored)

    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    result = only(eval_json(run_cli, "--model", trained_gpt2, "--data", path, "--context", context))
    method = result["perplexity_method"]
    assert method["scored_tokens"] == len(ids) - len(unscored) and method["bytes"] == scored_bytes
    assert result["scores"]["bits_per_byte"] == pytest.approx(total / (math.log(2) * scored_bytes), rel=1e-5)


def test_token_bytes_add_up_to_the_text(gpt2, tiny_t5, tiny_bert):
    """Byte-level BPE: each token's own bytes (a piece of a character included). Other tokenizers, by offsets:
    the bytes still add up to the text's."""
    from transformers import AutoTokenizer

    from llmtool.evaluation import token_bytes

    text = "  Über straße,\n\n naïve café 日本 🙂\tand  spaces  \n"
    tokenizer = gpt2[1]
    ids, sizes = token_bytes(tokenizer, text)
    assert ids == tokenizer(text)["input_ids"] and sizes == [len(p) for p in byte_strings(tokenizer, ids)]
    for other in (tiny_t5, tiny_bert):
        ids, sizes = token_bytes(AutoTokenizer.from_pretrained(other), text)
        assert sum(sizes) == len(text.encode()) and len(sizes) == len(ids) and min(sizes) >= 0


# ---------------------------------------------------------------- lm-eval windows against lm-evaluation-harness

# Texts of a rolling-loglikelihood task: the notes (longer than the model's 128 positions: many windows), a short
# text with a blank line, and one of multi-byte characters.
DOCUMENTS = [NOTES, "A short text.\n\nWith a blank line.", "Über straße, naïve café 🙂"]


@pytest.mark.parametrize("context", [None, 50])
def test_lm_eval_windows_equal_lm_evaluation_harness(run_cli, trained_gpt2, tmp_path, context):
    """lm_eval's HFLM.loglikelihood_rolling on the same model and texts, and its rolling-loglikelihood task's
    metrics (Task.count_words/count_bytes, weighted_perplexity, bits_per_byte); --context is its max_length."""
    from lm_eval.api.instance import Instance
    from lm_eval.api.metrics import bits_per_byte, weighted_perplexity
    from lm_eval.api.task import Task
    from lm_eval.models.huggingface import HFLM

    harness = HFLM(pretrained=str(trained_gpt2), device="cpu", batch_size=8,
                   **({"max_length": context} if context else {}))
    requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=i)
                for i, text in enumerate(DOCUMENTS)]
    loglikelihoods = harness.loglikelihood_rolling(requests, disable_tqdm=True)
    words = [(ll, Task.count_words(text)) for ll, text in zip(loglikelihoods, DOCUMENTS)]
    in_bytes = [(ll, Task.count_bytes(text)) for ll, text in zip(loglikelihoods, DOCUMENTS)]
    expected = {"word_perplexity": weighted_perplexity(words), "byte_perplexity": weighted_perplexity(in_bytes),
                "bits_per_byte": bits_per_byte(in_bytes)}

    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in DOCUMENTS), encoding="utf-8")
    (tmp_path / "notes.txt").write_text(NOTES, encoding="utf-8")
    window = ["--windows", "lm-eval"] + (["--context", context] if context else [])
    for data, texts in ((tmp_path / "notes.txt", DOCUMENTS[:1]), (path, DOCUMENTS)):
        result = only(eval_json(run_cli, "--model", trained_gpt2, "--data", data, *window))
        method, scores = result["perplexity_method"], result["scores"]
        total, reference = -scores["nll"] * method["scored_tokens"], sum(loglikelihoods[:len(texts)])
        assert method["method"] == "lm-eval rolling windows" and method["texts"] == len(texts)
        assert method["context"] == (context or 128) and method["windows"] > len(texts)
        assert total == pytest.approx(reference, rel=1e-6)
        print(f"{data.name}, context {method['context']}: total log-likelihood llmtool {total!r}, lm_eval "
              f"{reference!r}, relative difference {total / reference - 1:.1e}")
    for key, value in expected.items():  # of the three texts
        assert scores[key] == pytest.approx(value, rel=1e-6), key
        print(f"{key}: llmtool {scores[key]!r}, lm_eval {value!r}, relative difference {scores[key] / value - 1:.1e}")


# ---------------------------------------------------------------- classifiers


@pytest.fixture(scope="module")
def sentiment_classifier(tiny_bert, tmp_path_factory):
    """The tiny BERT classifier with named labels, as a fine-tuned sentiment model has them."""
    path = tmp_path_factory.mktemp("classifier") / "sentiment"
    shutil.copytree(tiny_bert, path)
    config = json.loads((path / "config.json").read_text())
    config.update(id2label={"0": "negative", "1": "positive"}, label2id={"negative": 0, "positive": 1})
    (path / "config.json").write_text(json.dumps(config))
    return path


def reference_predictions(model_dir, texts):
    """Each text alone through the model: argmax of its logits."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0].argmax().item() for text in texts]


def test_classifier_scores_equal_scikit_learn(run_cli, sentiment_classifier, tmp_path):
    import csv

    from sklearn import metrics as sk

    rows = list(csv.DictReader(SENTIMENT.open(encoding="utf-8")))[:120]
    path = tmp_path / "reviews.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:  # other column names than the defaults
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        writer.writerows((r["text"], r["label"]) for r in rows)
    predictions = reference_predictions(sentiment_classifier, [r["text"] for r in rows])
    references = [{"negative": 0, "positive": 1}[r["label"]] for r in rows]

    result = only(eval_json(run_cli, "--model", sentiment_classifier, "--data", path, "--text-column", "review",
                            "--label-column", "sentiment", "--metric", "accuracy,precision",
                            "--metric", "recall", "--metric", "f1", "--batch-size", 16))
    assert result["task"] == "classification" and result["rows"] == 120
    scores = result["scores"]
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(references, predictions), abs=1e-12)
    for name, scorer in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
        assert scores[name] == pytest.approx(scorer(references, predictions, average="macro", zero_division=0),
                                             abs=1e-12)


def test_classifier_defaults_to_accuracy_and_f1_and_takes_label_ids(run_cli, tiny_bert, tmp_path):
    """A model with transformers' default label names (LABEL_0, ...) takes labels written as ids."""
    from sklearn import metrics as sk

    texts = ["The pizza was fresh.", "The film was awful.", "Great hotel.", "Cold soup.", "Nice staff.", "Rude."]
    labels = [1, 0, 1, 0, 1, 0]
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(texts, labels)))
    predictions = reference_predictions(tiny_bert, texts)
    result = only(eval_json(run_cli, "--model", tiny_bert, "--data", path))
    assert result["metrics"] == ["accuracy", "f1"] and set(result["scores"]) == {"accuracy", "f1"}
    assert result["scores"]["accuracy"] == pytest.approx(sk.accuracy_score(labels, predictions))
    assert result["scores"]["f1"] == pytest.approx(sk.f1_score(labels, predictions, average="macro"))


# ---------------------------------------------------------------- seq2seq


@pytest.fixture(scope="module")
def t5_answers(tiny_t5):
    """Sources and the tiny T5's greedy answers, each generated alone with plain transformers."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5).eval()
    sources = [json.loads(line)["source"] for line in PAIRS.open(encoding="utf-8")][:12]
    with torch.no_grad():
        answers = [tokenizer.decode(model.generate(**tokenizer(s, return_tensors="pt"), max_new_tokens=8,
                                                   do_sample=False)[0], skip_special_tokens=True) for s in sources]
    return sources, answers


def test_seq2seq_scores_equal_rouge_score_and_sacrebleu(run_cli, tiny_t5, t5_answers, tmp_path):
    import sacrebleu
    from rouge_score import rouge_scorer

    sources, answers = t5_answers
    assert all(answers)
    # Half the targets are the model's own answers, half differ in part: every score is strictly between 0 and 1.
    targets = [a if i % 2 == 0 else " ".join(a.split()[:4] + ["the", "cat", "sat"]) for i, a in enumerate(answers)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"question": s, "answer": t}) + "\n" for s, t in zip(sources, targets)))

    result = only(eval_json(run_cli, "--model", tiny_t5, "--data", path, "--source-column", "question",
                            "--target-column", "answer", "--metric", "exact_match,rouge,bleu",
                            "--max-new-tokens", 8, "--batch-size", 5))
    scores = result["scores"]
    assert scores["exact_match"] == 0.5
    kinds = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(kinds)
    rows = [scorer.score(t, a) for t, a in zip(targets, answers)]
    for kind in kinds:
        expected = sum(row[kind].fmeasure for row in rows) / len(rows)
        assert 0 < expected < 1 and scores[kind] == pytest.approx(expected, abs=1e-12)
    expected_bleu = sacrebleu.corpus_bleu(answers, [targets]).score
    assert 0 < expected_bleu < 100 and scores["bleu"] == pytest.approx(expected_bleu, abs=1e-9)


def test_seq2seq_defaults_and_perplexity_of_targets_given_sources(run_cli, tiny_t5, tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    rows = [json.loads(line) for line in PAIRS.open(encoding="utf-8")][:10]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokenizer = AutoTokenizer.from_pretrained(tiny_t5)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5).eval()
    nll_sum, n_tokens = 0.0, 0
    with torch.no_grad():  # row by row: each target token weighs the same whatever its row's length
        for r in rows:
            labels = tokenizer(text_target=r["target"], return_tensors="pt").input_ids
            loss = model(**tokenizer(r["source"], return_tensors="pt"), labels=labels).loss
            nll_sum += loss.item() * labels.numel()
            n_tokens += labels.numel()
    n_bytes = sum(len(r["target"].encode()) for r in rows)

    default = only(eval_json(run_cli, "--model", tiny_t5, "--data", path))
    assert default["metrics"] == ["exact_match", "rouge"] and "rougeL" in default["scores"]
    result = only(eval_json(run_cli, "--model", tiny_t5, "--data", path, "--metric", "perplexity", "--batch-size", 4))
    assert result["scores"]["perplexity"] == pytest.approx(math.exp(nll_sum / n_tokens), rel=1e-5)
    assert result["scores"]["bits_per_byte"] == pytest.approx(nll_sum / (math.log(2) * n_bytes), rel=1e-5)
    method = result["perplexity_method"]
    assert method["method"] == "targets given sources" and method["scored_tokens"] == n_tokens
    assert method["context"] is None and method["bytes"] == n_bytes


# ---------------------------------------------------------------- several models


@pytest.fixture(scope="module")
def other_gpt2(tmp_path_factory):
    from llmtool.scratch import build_from_scratch

    settings = json.loads((CONFIGS / "gpt2.json").read_text())
    return build_from_scratch(settings, (ROOT / "data" / "corpus.txt").read_text(encoding="utf-8").splitlines(),
                              tmp_path_factory.mktemp("other") / "gpt2", vocab_size=600, seed=1)


def test_several_models_one_row_each(run_cli, tiny_gpt2, other_gpt2, tmp_path):
    report = eval_json(run_cli, "--model", tiny_gpt2, "--model", other_gpt2, "--stride", 64,
                       "--output", tmp_path / "scores.json")
    assert [r["model"] for r in report["results"]] == [str(tiny_gpt2), str(other_gpt2)]
    alone = [only(eval_json(run_cli, "--model", m, "--stride", 64))["scores"]["perplexity"]
             for m in (tiny_gpt2, other_gpt2)]
    assert [r["scores"]["perplexity"] for r in report["results"]] == alone and alone[0] != alone[1]
    assert json.loads((tmp_path / "scores.json").read_text()) == report

    table = run_cli("eval", "--model", tiny_gpt2, "--model", other_gpt2, catch_exceptions=False)
    assert table.exit_code == 0 and "perplexity" in table.stdout and "bits/byte" in table.stdout
    rows = [line for line in table.stdout.splitlines() if "causal-lm" in line]
    assert len(rows) == 2 and str(tiny_gpt2) in rows[0] and str(other_gpt2) in rows[1]


def test_models_of_different_tasks_side_by_side(run_cli, tiny_gpt2, tiny_t5, tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = PAIRS.open(encoding="utf-8").readlines()[:8]
    path.write_text("".join(lines))
    report = eval_json(run_cli, "--model", tiny_gpt2, "--model", tiny_t5, "--data", path, "--text-column", "source",
                       "--max-new-tokens", 4)
    gpt2_result, t5_result = report["results"]
    assert gpt2_result["metrics"] == ["perplexity"] and t5_result["metrics"] == ["exact_match", "rouge"]
    table = run_cli("eval", "--model", tiny_gpt2, "--model", tiny_t5, "--data", path, "--text-column", "source",
                    "--max-new-tokens", 4, catch_exceptions=False).stdout
    assert "perplexity" in table and "rouge1" in table and len([ln for ln in table.splitlines() if "-lm" in ln]) == 2


@pytest.mark.parametrize("damage, words", [
    ("tokenizer missing", "has an empty vocabulary: special tokens only, no text (none of its files is there"),
    ("weights missing", "holds no weights (model.safetensors or model.safetensors.index.json); the model directory "
                        "is damaged"),
])
def test_a_broken_model_is_named_before_any_model_is_scored(run_cli, tiny_gpt2, monkeypatch, tmp_path, damage,
                                                            words):
    from llmtool import evaluation, models

    broken = tmp_path / "broken"
    shutil.copytree(tiny_gpt2, broken)
    for item in broken.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens", "vocab", "merges") if damage == "tokenizer missing"
                                else "model.safetensors"):
            item.unlink()
    loaded = []
    monkeypatch.setattr(models, "load_model", lambda name, **options: loaded.append(name))
    monkeypatch.setattr(evaluation, "evaluate_loaded", lambda *args, **options: pytest.fail("a model was scored"))
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--model", broken,
                                     "--output", tmp_path / "scores.json")
    assert exit_code == 1 and str(broken) in line and words in line
    assert loaded == [] and not (tmp_path / "scores.json").exists()


def test_a_perplexity_from_few_tokens_is_said_on_stderr_with_their_count(run_cli, tiny_gpt2, tmp_path):
    from llmtool.evaluation import FEW_SCORED_TOKENS

    short = tmp_path / "short.txt"
    short.write_text("a\n")  # two tokens: the second is the only one predicted
    result = run_cli("eval", "--json", "--model", tiny_gpt2, "--data", short, catch_exceptions=False)
    assert result.exit_code == 0
    assert only(json.loads(result.stdout))["perplexity_method"]["scored_tokens"] == 1  # the results stay on stdout
    assert result.stderr.strip().splitlines() == [
        f"Warning: model '{tiny_gpt2}': its perplexity is from 1 scored token only; under {FEW_SCORED_TOKENS} it "
        "means little: give more text"]
    normal = run_cli("eval", "--json", "--model", tiny_gpt2, catch_exceptions=False)  # the shipped text
    assert only(json.loads(normal.stdout))["perplexity_method"]["scored_tokens"] >= FEW_SCORED_TOKENS
    assert normal.stderr == ""


# ---------------------------------------------------------------- stderr


def llmtool_process(*args):
    """llmtool run as a user runs it, in its own process: (exit code, stderr)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    run = subprocess.run([sys.executable, "-m", "llmtool", *map(str, args)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    return run.returncode, run.stderr


def test_stderr_carries_only_llmtools_own_lines(tiny_gpt2, tiny_t5, tmp_path):
    """No library notices on stderr (transformers' "Loading weights" bars and loss_type notice, peft's
    is_gradient_checkpointing FutureWarning): not from a LoRA fine-tune, nor from eval of a model, of an adapter,
    with lm-eval windows, or of an encoder-decoder (given labels). Off a terminal eval prints nothing there."""
    adapter = tmp_path / "lora"
    code, stderr = llmtool_process("finetune", ROOT / "recipes" / "lora-gpt2.yaml", f"model.name={tiny_gpt2}",
                                   "train.max_steps=2", "data.max_train_samples=32", "-o", adapter)
    assert code == 0, stderr
    assert all(line.startswith(("step ", "training ")) for line in stderr.splitlines() if line.strip()), stderr
    for args in (["--model", tiny_gpt2, "--model", adapter], ["--model", tiny_gpt2, "--windows", "lm-eval"],
                 ["--model", tiny_t5, "--data", PAIRS, "--metric", "perplexity,exact_match", "--max-new-tokens", 4]):
        code, stderr = llmtool_process("eval", *args)
        assert code == 0 and stderr == "", stderr


# ---------------------------------------------------------------- bad input


def one_line_error(run_cli, monkeypatch, *args):
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    result = run_cli("eval", *args)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return result.exit_code, lines[0]


@pytest.mark.parametrize("args, code, words", [
    (["--metric", "perplexty"], 2, ["unknown --metric 'perplexty'", "perplexity", "accuracy", "rouge"]),
    (["--metric", "accuracy"], 2, ["--metric accuracy does not fit", "causal-lm", "choose from: perplexity"]),
    (["--context", "256"], 2, ["256 tokens is past the model's 128 positions", "--context"]),
    (["--context", "64", "--stride", "100"], 2, ["stride must be between 1 and the context (64", "--stride"]),
    (["--stride", "200"], 2, ["stride", "(128 tokens), got 200", "--stride"]),
    (["--windows", "rolling"], 2, ["unknown --windows 'rolling'", "sliding or lm-eval"]),
    (["--windows", "lm-eval", "--stride", "64"], 2, ["lm-eval windows have no stride", "drop --stride",
                                                     "set --windows to sliding"]),
    (["--windows", "lm-eval", "--context", "256"], 2, ["past the model's 128 positions", "--context"]),
    (["--task", "seq2seq-lm"], 2, ["no seq2seq-lm form"]),
    (["--task", "classification"], 2, ["randomly initialised head"]),  # and no --new-head to suggest
])
def test_bad_options_for_a_causal_lm(run_cli, tiny_gpt2, monkeypatch, args, code, words):
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, *args)
    assert exit_code == code and "--new-head" not in line
    for word in words:
        assert word in line


def test_option_out_of_range_is_one_line_before_anything_loads(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    result = subprocess.run([sys.executable, "-m", "llmtool", "eval", "--model", str(tmp_path / "nothing"),
                             "--context", "1"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "--context" in line and "greater than or equal to 2" in line


@pytest.mark.parametrize("content, code, words", [
    (b"", 1, ["has no rows (it is empty)"]),
    (b"caf\xe9 au lait\n", 1, ["is not UTF-8 text (byte 3)"]),
    (b"\n \n\n", 1, ["has no rows (it is empty)"]),
    (b"a", 1, ["shorter than two tokens"]),  # one token; with its newline it would have two
])
def test_bad_text_files(run_cli, tiny_gpt2, monkeypatch, tmp_path, content, code, words):
    path = tmp_path / "text.txt"
    path.write_bytes(content)
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--data", path)
    assert exit_code == code and str(path) in line
    for word in words:
        assert word in line


def test_missing_column_and_unknown_labels(run_cli, sentiment_classifier, monkeypatch, tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,label\nGreat food.,positive\nAwful.,neutral\n")
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", sentiment_classifier, "--data", path)
    assert exit_code == 1 and "no column 'text' (--text-column)" in line and "review" in line
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", sentiment_classifier, "--data", path,
                                     "--text-column", "review")
    assert exit_code == 1 and "--label-column" in line and "'neutral'" in line and "negative, positive" in line


def test_tasks_that_need_data_or_have_no_window(run_cli, tiny_bert, tiny_t5, monkeypatch):
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_bert)
    assert exit_code == 2 and "--data" in line and "labels" in line
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_t5, "--metric", "accuracy")
    assert exit_code == 2 and "seq2seq-lm" in line and "perplexity, exact_match, rouge, bleu" in line
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_t5, "--context", 64, "--data", "x.jsonl")
    assert exit_code == 2 and "--context, --stride and --windows" in line and "no model here computes one" in line
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_t5, "--windows", "lm-eval", "--data",
                                     "x.jsonl")
    assert exit_code == 2 and "--windows" in line


def test_errors_are_raised_in_domain_terms_under_tests(run_cli, tiny_gpt2, tmp_path):
    from llmtool import evaluation

    (tmp_path / "one.txt").write_text("a")
    assert isinstance(run_cli("eval", "--model", tiny_gpt2, "--metric", "bleu").exception, UsageError)
    assert isinstance(run_cli("eval", "--model", tiny_gpt2, "--data", tmp_path / "one.txt").exception, LlmtoolError)
    for settings in ((None, 200, 128), (None, 64, 128, evaluation.LM_EVAL), (None, None, 128, "rolling")):
        with pytest.raises(SettingError) as caught:
            evaluation.window_settings(*settings)
        assert ("{stride}" in caught.value.template or "{windows}" in caught.value.template)
        assert "--" not in str(caught.value)
