"""Semantic search over an index (vectors.Index): queries embedded by the model that made the index, with the
pooling it recorded, then ranked by cosine similarity, exactly or through its HNSW graph; and retrieval scored
against judged queries (recall@k, MRR; the scores themselves are evaluation's)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from llmtool import embedding, evaluation, models
from llmtool.errors import LlmtoolError, SettingError, literal
from llmtool.vectors import Index

# Queries embedded and searched together: one pass over the index serves them all.
QUERY_BATCH = 64


def check_model(index: Index, model: str | None) -> str:
    """The model to embed queries with: the index's. A `model` given that is another is refused, as is an index
    whose model is no longer where it was recorded."""
    recorded = index.settings["model"]
    if model is not None and models.model_identity(model) != recorded:
        raise SettingError(f"{{model}} '{literal(model)}' is not the model that made index '{literal(index.path)}' "
                           f"('{literal(recorded)}'): "
                           "queries must be embedded by the model of their documents; drop {model}")
    if Path(recorded).is_absolute() and not Path(recorded).exists():
        raise LlmtoolError(f"index '{index.path}' was made with model '{recorded}', which is not there any more; "
                           "put it back, or build the index again with llmtool embed")
    return recorded


def query_encoder(index: Index, model: str | None = None, *, device: str | None = None, dtype: str = "auto",
                  trust_remote_code: bool = False) -> embedding.Encoder:
    """The encoder that embeds queries as the index's texts were: its model, pooling, normalization, max length."""
    settings = index.settings
    pooling = embedding.Pooling(modes=tuple(settings["pooling"]), normalize=settings["normalize"],
                                max_length=settings["max_length"], lower_case=settings["lower_case"],
                                origin="index")
    return embedding.load_encoder(check_model(index, model), pooling, device=device, dtype=dtype,
                                  trust_remote_code=trust_remote_code)


def read_query_lines(text: str, where: str) -> list[str]:
    """Queries one a line (a file's or stdin's text); an empty line is refused by its number (a blank query
    matches nothing in particular). The line break at the end of the last line ends it and opens no new one."""
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise LlmtoolError(f"{where} line {number} is empty; every query needs some text")
    if not lines:
        raise LlmtoolError(f"{where} holds no query")
    return lines


@dataclass
class Hit:
    rank: int
    id: int | str
    score: float
    text: str

    def record(self) -> dict:
        return {"rank": self.rank, "id": self.id, "score": self.score, "text": self.text}


def search(index: Index, encoder: embedding.Encoder, queries: list[str], top_k: int, *, approximate: bool = False,
           batch_size: int = 32, on_batch: Callable[[int], None] | None = None) -> Iterator[list[Hit]]:
    """The `top_k` best documents of each query, in query order, QUERY_BATCH queries at a time."""
    if top_k < 1:
        raise SettingError(f"{{top_k}} must be at least 1 (got {top_k})")
    for start in range(0, len(queries), QUERY_BATCH):
        batch = queries[start:start + QUERY_BATCH]
        vectors = embedding.embed(encoder, batch, batch_size).vectors
        scores, rows = index.search(vectors, top_k, approximate=approximate)
        for query_scores, query_rows in zip(scores.tolist(), rows.tolist()):
            yield [Hit(rank, index.id(row), score, index.text(row))
                   for rank, (score, row) in enumerate(zip(query_scores, query_rows), 1) if row >= 0]
        if on_batch is not None:
            on_batch(len(batch))


def read_judgements(path: str, text: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Judged queries from JSON lines, {"query": text, "relevant": [ids of the documents that answer it]}:
    (queries, relevant ids as strings). A line that is not such a record is refused by its number."""
    where = "stdin" if path == "-" else f"'{path}'"
    if text is None:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except FileNotFoundError:
            raise LlmtoolError(f"queries file {where} does not exist") from None
        except (OSError, UnicodeDecodeError) as err:
            raise LlmtoolError(f"queries file {where} could not be read ({getattr(err, 'strerror', None) or err})") \
                from None
    queries, relevant = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        ids = record.get("relevant") if isinstance(record, dict) else None
        query = record.get("query") if isinstance(record, dict) else None
        if (not isinstance(query, str) or not query.strip() or not isinstance(ids, list) or not ids
                or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids)):
            raise LlmtoolError(f"{where} line {number} is not a judged query; write one {{\"query\": \"text\", "
                               "\"relevant\": [document ids]}} a line")
        queries.append(query)
        relevant.append([str(i) for i in ids])
    if not queries:
        raise LlmtoolError(f"{where} holds no judged query")
    return queries, relevant


def evaluate(index: Index, encoder: embedding.Encoder, queries: list[str], relevant: list[list[str]],
             names: list[str], batch_size: int = 32) -> dict:
    """Retrieval scores (evaluation.retrieval_scores) of exact search over `index` for judged queries."""
    depth = evaluation.retrieval_depth(names)
    ranked = [[str(hit.id) for hit in hits] for hits in search(index, encoder, queries, depth,
                                                                batch_size=batch_size)]
    return evaluation.retrieval_scores(ranked, relevant, names)
