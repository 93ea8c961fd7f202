"""`llmtool embed`: one vector per text, from a model's hidden states; to stdout, a file, or an index for search."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands._output import ResultsDisplay, note, writing_results
from llmtool.commands.options import DeviceOption, DtypeOption, TrustRemoteCodeOption
from llmtool.errors import LlmtoolError, UsageError

SETTING_NAMES: dict[str, str | None] = {}  # its options name every setting its errors can name
# Rows embedded, written and dropped at a time: output streams and memory stays flat, however long the file.
CHUNK_ROWS = 4096


def embed(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to embed; or use --file, or pipe them on stdin.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Texts: .txt one a line, or a csv/tsv/jsonl/parquet file with named columns ('-' for stdin).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Local model directory or Hub id (a sentence-transformers model, or any transformers model). Required.", show_default=False)] = None,
    text_column: Annotated[Optional[str], typer.Option(help="Column of --file that holds the texts. (default: text)", show_default=False)] = None,
    id_column: Annotated[Optional[str], typer.Option(help="Column of --file with each text's id. (default: its 'id' column where it has one, else each text's number, from 0)", show_default=False)] = None,
    pooling: Annotated[Optional[str], typer.Option(metavar="mean|cls|last", help="How token vectors become one: their mean, the first token's, or the last real token's. A sentence-transformers model pools as its own config says. (default: mean for encoders, last for decoders)", show_default=False)] = None,
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale each vector to length 1 (a sentence-transformers model with a Normalize module always is).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one {\"id\", \"text\", \"embedding\"} record a line.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file, its form by its name: NAME.jsonl (the --json records), NAME.npy (vectors; ids and texts in NAME.ids.jsonl), NAME.index or NAME.safetensors (an index for llmtool search).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --output: replace a file that is not empty.")] = False,
    approximate: Annotated[bool, typer.Option("--approximate", help="With an index --output: also build an HNSW graph (faiss) for llmtool search --approximate.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass (grouped by length).")] = 32,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
) -> None:
    """Embed texts: one vector per text, pooled from a model's last hidden states.

    Texts come from the arguments, from --file, or from stdin, one a line. A sentence-transformers model pools as it says (its modules.json, 1_Pooling/config.json and Normalize module, with its max_seq_length); any other model by --pooling (default: the mean over real tokens for encoders, the last real token for decoders), normalized with --normalize. Texts longer than the model takes are cut, and how many were is reported.

    Output: one line per text, the vector's numbers separated by commas, in input order; --json prints {"id", "text", "embedding"} records instead. --output writes a file as vectors are ready, in the form its name says; NAME.index builds an index of the texts for llmtool search, recording the model and pooling that made it. Progress and notes go to stderr.

    Examples:

      llmtool embed --model ./all-MiniLM-L6-v2 "A cat sleeps in the sun." "The dog plays in the park."

      llmtool embed --model ./my-bert --pooling cls --normalize --file texts.txt --json

      llmtool embed --model ./all-MiniLM-L6-v2 --file docs.jsonl --text-column text --output docs.index

      llmtool embed --model ./my-gpt2 --file big.parquet --output vectors.npy --batch-size 64
    """
    from llmtool import embedding, vectors

    _check_options(texts, file, model, text_column, id_column, pooling, json_output, output, overwrite,
                   approximate, batch_size)
    # Claimed (checked, and locked until closed) before the input is read or the model loads; written beside
    # and put in place only once every vector is there.
    claimed = vectors.claim(output, {"input file": file}, overwrite=overwrite) if output is not None else []
    try:
        rows, from_file, ids_from = _read_inputs(texts, file, text_column, id_column)
        encoder = embedding.load_encoder(model, pooling, normalize, device=device, dtype=dtype,
                                         trust_remote_code=trust_remote_code)
        writer = None
        if claimed:
            lengths = _lengths(rows, ids_from) if vectors.output_format(output) == "index" else (None, None)
            writer = vectors.open_writer(claimed, rows=len(rows), dimension=encoder.dimension,
                                         settings={**encoder.settings(), "id_column": ids_from},
                                         text_lengths=lengths[0], id_lengths=lengths[1], graph=approximate)
        done = truncated = 0
        with writing_results(lambda: f"interrupted after {done} of {len(rows)} texts"
                             + (f"; '{output}' is as it was" if output else "")):
            with ResultsDisplay("embedding", total=len(rows), progress=from_file) as display:
                for start in range(0, len(rows), CHUNK_ROWS):
                    chunk = rows[start:start + CHUNK_ROWS]
                    result = embedding.embed(encoder, chunk["text"], batch_size, on_batch=display.advance)
                    ids = chunk["id"] if ids_from else list(range(start, start + len(chunk["text"])))
                    if writer is not None:
                        writer.add(start, ids, chunk["text"], result.vectors)
                    elif json_output:
                        display.write(vectors.json_lines(ids, chunk["text"], result.vectors))
                    else:
                        display.write("".join(line + "\n" for line in vectors.vector_lines(result.vectors)))
                    done += len(ids)
                    truncated += result.truncated
            if writer is not None:
                writer.commit()
    finally:
        for claim in claimed:
            claim.close()
    if truncated:
        note(f"Note: {truncated} of {len(rows)} texts were longer than {encoder.max_length} tokens and were cut to "
             "fit")
    if output is not None:
        what = "an index of " if vectors.output_format(output) == "index" else ""
        note(f"Wrote {what}{done} vectors of {encoder.dimension} ({encoder.pooling.describe()}) to {output}")


def _check_options(texts, file, model, text_column, id_column, pooling, json_output, output, overwrite, approximate,
                   batch_size) -> None:
    """Everything wrong with the options at once, before any input is read or model loaded (the --output file
    itself is checked next, by the output guard)."""
    from llmtool import embedding, vectors

    problems = []
    if not model:
        problems.append("no model given; pass --model (a directory or Hub id)")
    if texts and file is not None:
        problems.append("give texts as arguments or with --file, not both")
    from_columns = file is not None and str(file) != "-"
    for option, value in (("--text-column", text_column), ("--id-column", id_column)):
        if value is not None and not from_columns:
            source = "texts given as arguments" if texts else "stdin"
            problems.append(f"{option} names a column of a csv/tsv/jsonl/parquet --file, which {source} does not have")
    if pooling is not None and pooling not in embedding.POOLINGS:
        problems.append(f"unknown --pooling '{pooling}'; choose one of {', '.join(embedding.POOLINGS)}")
    if json_output and output is not None:
        problems.append("--json prints the records that --output writes; choose one")
    if output is not None and vectors.output_format(output) is None:
        problems.append(f"--output '{output}': name the file NAME.jsonl, NAME.npy, NAME.index or NAME.safetensors; "
                        "its form follows its name")
    if overwrite and output is None:
        problems.append("--overwrite works on the file given with --output FILE")
    if approximate and (output is None or vectors.output_format(output) != "index"):
        problems.append("--approximate builds a graph into an index: give --output NAME.index")
    elif approximate and not vectors.have_faiss():
        problems.append("--approximate needs faiss, which is not installed: pip install 'llmtool[search]'")
    if batch_size < 1:
        problems.append("--batch-size must be at least 1")
    if problems:
        raise UsageError("; ".join(problems))


def _read_inputs(texts, file, text_column, id_column):
    """The rows to embed as a `datasets.Dataset` (columns text, and id when the file names them), whether they
    came from a file (which gets a progress bar), and the column the ids came from (None: the rows' numbers)."""
    from llmtool import data

    if texts:
        for i, text in enumerate(texts, 1):
            if not text.strip():
                raise UsageError(f"text {i} is empty; give some text to embed")
        import datasets

        return datasets.Dataset.from_dict({"text": list(texts)}), False, None
    if file is None or str(file) == "-":
        if file is None and (sys.stdin is None or sys.stdin.isatty()):
            raise UsageError('no text given; pass some (llmtool embed --model M "A text"), --file, or stdin')
        return data.load_inputs("-", {"text": ("stdin", "text")}, read_stdin()), False, None
    columns = {"text": ("--text-column", text_column or "text")}
    if id_column is None and not data.is_plain_text(str(file)) and Path(file).is_file():
        try:
            id_column = "id" if "id" in data.file_columns(Path(file)) else None
        except data.DataFileError:
            pass  # load_inputs says what is wrong with the file
    if id_column is not None:
        columns["id"] = ("--id-column", id_column)
    rows = data.load_inputs(str(file), columns)
    if id_column is not None:
        _check_unique(rows, file, id_column)
    return rows, True, id_column


def _check_unique(rows, file, column: str) -> None:
    """Ids name one text each: a repeated id is refused (counted by Arrow, without a Python string per row)."""
    import pyarrow.compute as pc

    ids = rows.with_format("arrow")["id"]
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        first = repeated[0].as_py()
        raise LlmtoolError(f"input file '{file}': id '{first['values']}' (--id-column {column}) occurs "
                           f"{first['counts']} times; each text needs an id of its own")


def _lengths(rows, ids_from):
    """The UTF-8 size of every text and id, which an index is laid out by before its first vector."""
    from llmtool import vectors

    table = rows.with_format("arrow")
    return (vectors.utf8_lengths(table["text"]),
            vectors.utf8_lengths(table["id"]) if ids_from else None)
