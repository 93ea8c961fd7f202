"""`llmtool search`: the documents of an index (llmtool embed --output NAME.index) most like each query."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands._output import ResultsDisplay, writing_results
from llmtool.commands.options import DeviceOption, DtypeOption, TrustRemoteCodeOption
from llmtool.errors import UsageError

SETTING_NAMES: dict[str, str | None] = {}  # its options name every setting its errors can name


def search(
    queries: Annotated[Optional[list[str]], typer.Argument(help="Queries; or use --file, or pipe them on stdin.", show_default=False)] = None,
    index: Annotated[Optional[Path], typer.Option("--index", "-i", help="The index to search, written by llmtool embed --output NAME.index. Required.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Queries: .txt one a line (an empty line is refused), or a csv/tsv/jsonl/parquet file with named columns ('-' for stdin).")] = None,
    text_column: Annotated[Optional[str], typer.Option(help="Column of --file that holds the queries. (default: query)", show_default=False)] = None,
    top_k: Annotated[int, typer.Option(help="Documents to give for each query, best first.")] = 10,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="The model to embed queries with; it must be the one that made the index. (default: the index's)", show_default=False)] = None,
    approximate: Annotated[bool, typer.Option("--approximate", help="Search the index's HNSW graph (built by llmtool embed --approximate) instead of every vector: faster on large indexes, may miss a few of the best.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one {\"query\", \"results\": [{\"rank\", \"id\", \"score\", \"text\"}]} record a line.")] = False,
    batch_size: Annotated[int, typer.Option(help="Queries per forward pass of the model.")] = 32,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
) -> None:
    """Search an index for the documents most like each query, by cosine similarity.

    The index (llmtool embed --output NAME.index) records the model and pooling that made it; queries are embedded with the same, so --model is needed only to say which it is, and another model is refused. Search is exact by default: every vector is scored, reading the memory-mapped index a chunk at a time. Queries come from the arguments, from --file, or from stdin, one a line.

    Output: for each query, one line per document: rank<TAB>score<TAB>id<TAB>text (tabs and line breaks inside a text become spaces); with several queries, each block opens with a "# query" line and ends with an empty one. --json prints one record per query instead.

    Examples:

      llmtool search --index docs.index "Where does the fox live?"

      llmtool search --index docs.index --file questions.txt --top-k 3 --json

      llmtool search --index docs.index --approximate "What colour is Nina's bicycle?"
    """
    from llmtool import retrieval, vectors

    _check_options(queries, index, file, text_column, top_k, approximate, batch_size)
    opened = vectors.open_index(index)
    if approximate:
        opened.require_graph()
    texts, from_file = _read_queries(queries, file, text_column)
    encoder = retrieval.query_encoder(opened, model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    several = len(texts) > 1
    with writing_results():
        with ResultsDisplay("searching", total=len(texts), progress=from_file) as display:
            results = retrieval.search(opened, encoder, texts, top_k, approximate=approximate, batch_size=batch_size,
                                       on_batch=display.advance)
            for query, hits in zip(texts, results):
                if json_output:
                    import json

                    display.write(json.dumps({"query": query, "results": [hit.record() for hit in hits]},
                                             ensure_ascii=False) + "\n")
                else:
                    display.write(_plain(query, hits, several))


def _check_options(queries, index, file, text_column, top_k, approximate, batch_size) -> None:
    """Everything wrong with the options at once, before the index is opened or a model loaded."""
    from llmtool import vectors

    problems = []
    if index is None:
        problems.append("no index given; pass --index NAME.index (written by llmtool embed --output NAME.index)")
    if queries and file is not None:
        problems.append("give queries as arguments or with --file, not both")
    if text_column is not None and (file is None or str(file) == "-"):
        problems.append("--text-column names a column of a csv/tsv/jsonl/parquet --file")
    if top_k < 1:
        problems.append(f"--top-k must be at least 1 (got {top_k})")
    if approximate and not vectors.have_faiss():
        problems.append("--approximate needs faiss, which is not installed: pip install 'llmtool[search]'")
    if batch_size < 1:
        problems.append("--batch-size must be at least 1")
    if problems:
        raise UsageError("; ".join(problems))


def _read_queries(queries, file, text_column) -> tuple[list[str], bool]:
    """The queries, and whether they came from a file (which gets a progress bar). Plain text is one query a
    line (retrieval.read_query_lines)."""
    from llmtool import data, retrieval

    if queries:
        for number, query in enumerate(queries, 1):
            if not query.strip():
                raise UsageError(f"query {number} is empty; every query needs some text")
        return list(queries), False
    if file is None or str(file) == "-":
        if file is None and (sys.stdin is None or sys.stdin.isatty()):
            raise UsageError('no query given; pass one (llmtool search --index I "a question"), --file, or stdin')
        return retrieval.read_query_lines(read_stdin(), "stdin"), False
    if data.is_plain_text(str(file)):
        path = Path(file).expanduser()
        if not path.is_file():
            raise UsageError(f"query file '{file}' {'is a directory' if path.is_dir() else 'does not exist'}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise UsageError(f"query file '{file}' is not UTF-8 text (byte {err.start}); re-save it as UTF-8") \
                from None
        return retrieval.read_query_lines(text, f"query file '{file}'"), True
    rows = data.load_inputs(str(file), {"text": ("--text-column", text_column or "query")})
    return list(rows["text"]), True


def _plain(query: str, hits, several: bool) -> str:
    def flat(text: str) -> str:
        return " ".join(text.replace("\t", " ").splitlines())

    lines = [f"# {flat(query)}"] if several else []
    lines += [f"{hit.rank}\t{hit.score:.4f}\t{flat(str(hit.id))}\t{flat(hit.text)}" for hit in hits]
    return "\n".join(lines) + ("\n\n" if several else "\n")
