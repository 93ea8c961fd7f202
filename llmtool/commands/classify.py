"""`llmtool classify`: label texts (or text pairs) with a sequence-classification model, and score it against
labels when the file has them."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands._output import ResultsDisplay, writing_results
from llmtool.commands._output import is_terminal as _is_terminal
from llmtool.commands.options import BaseModelOption, DeviceOption, DtypeOption, NewHeadOption, TrustRemoteCodeOption
from llmtool.errors import UsageError

SETTING_NAMES: dict[str, str | None] = {}  # its options name every setting its errors can name
CLASSIFIER_ENV = "LLMTOOL_CLASSIFIER"
ENV_DEFAULTS = {"model": CLASSIFIER_ENV}
# Rows classified, written and dropped at a time: output streams and memory stays flat, however long the file.
CHUNK_ROWS = 4096


def classify(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to classify; or use --file, or pipe them on stdin.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Texts: .txt one a line, or a csv/tsv/jsonl/parquet file with named columns ('-' for stdin).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help=f"Sequence-classification model: local directory or Hub id. (default: ${CLASSIFIER_ENV}; one of the two is required)", show_default=False)] = None,
    text_column: Annotated[Optional[str], typer.Option(help="Column of --file that holds the texts. (default: text)", show_default=False)] = None,
    pair_column: Annotated[Optional[str], typer.Option(help="Column of --file with each text's second sentence (NLI-style pairs).")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Column of --file with true labels: report accuracy, precision, recall, F1 and the confusion matrix.")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Also give the k most likely labels with their scores.")] = None,
    all_scores: Annotated[bool, typer.Option("--all-scores", help="Also give every label's score.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON record a line (JSON lines), in input order.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the JSON lines to this file as they are ready (stdout stays empty).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --output: replace a file that is not empty.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass (grouped by length).")] = 32,
    max_length: Annotated[Optional[int], typer.Option(help="Cut inputs to this many tokens; how many were cut is reported. (default: the model's limit)", show_default=False)] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Dynamic int8 quantization of the linear layers: faster on a CPU, slightly less exact (CPU only).")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
    new_head: NewHeadOption = False,
    base_model: BaseModelOption = None,
) -> None:
    """Label texts with a sequence-classification model (sentiment, topic, NLI, ...).

    Texts come from the arguments, from --file, or from stdin, one a line. The model is --model, else $LLMTOOL_CLASSIFIER; there is no built-in default.

    Output: on a terminal, a table; piped or redirected, one line per text, label<TAB>score<TAB>text (--top-k and --all-scores add label<TAB>score pairs before the text; tabs and line breaks inside a text become spaces). --json prints one JSON record per text instead, in input order, and --output writes those records to a file as they are ready. With --label-column, accuracy, precision, recall and F1 (macro and per label) and the confusion matrix follow on stderr, and as a last {"metrics": ...} record of the JSON lines. Progress, notes and metrics go to stderr: stdout holds only results.

    Examples:

      llmtool classify --model ./runs/sentiment "The pizza was great." "The film was awful."

      llmtool classify --model ./runs/sentiment --file data/sentiment/test.csv --label-column label

      llmtool classify --model ./nli --file pairs.jsonl --text-column premise --pair-column hypothesis --json

      cat reviews.txt | llmtool classify --model ./runs/sentiment --top-k 2 > labels.tsv

      llmtool classify --model ./runs/sentiment --file big.parquet --output labels.jsonl --int8 --batch-size 64
    """
    from llmtool import classification, evaluation, models
    from llmtool.model_facts import label_names
    from llmtool.results_file import ResultsFile
    from llmtool.tasks import CLASSIFICATION

    _check_options(texts, file, text_column, pair_column, label_column, top_k, all_scores, json_output, output,
                   overwrite, batch_size, max_length, int8, device, dtype)
    model = model or os.environ.get(CLASSIFIER_ENV)
    if not model:
        raise UsageError(f"no classifier given; pass --model (a directory or Hub id) or set ${CLASSIFIER_ENV}")
    # Claimed (checked, and locked until it is closed) before the input is read or the model loads; the file changes
    # only once records arrive.
    sink = ResultsFile(output, inputs={"input file": file}, overwrite=overwrite) if output else None
    try:
        rows, from_file = _read_inputs(texts, file, text_column, pair_column, label_column)

        lm = models.load_model(
            model, task=CLASSIFICATION, allowed_tasks=(CLASSIFICATION,), verb="classify",
            device="cpu" if int8 else device, dtype=dtype, trust_remote_code=trust_remote_code,
            allow_new_head=new_head, base_model=base_model,
        )
        from llmtool.commands._output import stderr_console

        if new_head and models.head_status(lm.model.config, CLASSIFICATION) == models.HEAD_NEW:
            stderr_console().print("Note: the classification head is untrained (--new-head): its labels mean "
                                   "nothing yet", style="yellow", soft_wrap=True, markup=False)
        names = label_names(lm.model.config)
        if top_k is not None and top_k > len(names):
            raise UsageError(f"--top-k {top_k} is more than the model's {len(names)} labels ({', '.join(names)})")
        _check_max_length(lm, max_length, pair_column is not None)
        references = (evaluation.reference_ids(rows["label"], classification.label_ids(lm), f"'{file}'")
                      if label_column else None)
        if int8:
            classification.quantize_int8(lm)

        view = _View(names, top_k=len(names) if all_scores else top_k, ranked=not all_scores,
                     pairs=pair_column is not None, with_truth=references is not None)
        written = truncated = 0
        predictions: list[int] = []  # kept only to score against references
        with writing_results(lambda: f"interrupted after {written} of {len(rows)} texts"
                             + (f"; {output} holds the first {written} records" if output else "")):
            with ResultsDisplay("classifying", total=len(rows), progress=from_file) as display:
                for start in range(0, len(rows), CHUNK_ROWS):
                    chunk = rows[start:start + CHUNK_ROWS]
                    result = classification.classify(lm, chunk["text"], chunk.get("pair"), batch_size, max_length,
                                                      on_batch=display.advance)
                    truncated += result.truncated
                    chunk_predictions = [max(range(len(p)), key=p.__getitem__) for p in result.probabilities]
                    truth = None
                    if references is not None:
                        predictions += chunk_predictions
                        truth = references[start:start + len(chunk_predictions)]
                    records = view.records(chunk, result.probabilities, chunk_predictions, truth)
                    if sink is not None:
                        for record in records:
                            sink.write(record)
                    elif json_output:
                        display.write(_json_lines(records))
                    elif _is_terminal(sys.stdout):
                        display.print(view.table(records))
                    else:
                        display.write(_plain_lines(records))
                    written += len(records)
            report = (evaluation.classification_report(predictions, references, names) if references is not None
                      else None)
            if report is not None and sink is not None:
                sink.write({"metrics": report})
            elif report is not None and json_output:
                display.write(_json_lines([{"metrics": report}]))
    finally:
        if sink is not None:
            sink.close()

    console = stderr_console()
    if truncated:
        limit = max_length or classification.max_input_length(lm)
        console.print(f"Note: {truncated} of {len(rows)} inputs were longer than {limit} tokens and were cut to fit "
                      "(--max-length)", style="yellow", soft_wrap=True, markup=False)
    if report is not None:
        console.print(_metrics_tables(report, names))
    if output:
        console.print(f"Wrote {written} records to {output}", soft_wrap=True, markup=False)


def _check_options(texts, file, text_column, pair_column, label_column, top_k, all_scores, json_output, output,
                   overwrite, batch_size, max_length, int8, device, dtype) -> None:
    """Everything wrong with the options at once, before any input is read or model loaded (the --output file
    itself is checked next, by the output guard)."""
    problems = []
    if texts and file is not None:
        problems.append("give texts as arguments or with --file, not both")
    from_columns = file is not None and str(file) != "-"
    for option, value in (("--text-column", text_column), ("--pair-column", pair_column),
                          ("--label-column", label_column)):
        if value is not None and not from_columns:
            source = "texts given as arguments" if texts else "stdin"
            problems.append(f"{option} names a column of a csv/tsv/jsonl/parquet --file, which {source} does not have")
    if top_k is not None and top_k < 1:
        problems.append("--top-k must be at least 1")
    if top_k is not None and all_scores:
        problems.append("--top-k and --all-scores do not mix; choose one")
    if json_output and output is not None:
        problems.append("--json prints the records that --output writes; choose one")
    if batch_size < 1:
        problems.append("--batch-size must be at least 1")
    if max_length is not None and max_length < 1:
        problems.append("--max-length must be at least 1")
    if int8 and device is not None and device.split(":")[0] != "cpu":
        problems.append(f"--int8 runs on the CPU only; drop --device {device} or use --device cpu")
    if int8 and dtype not in ("auto", "fp32"):
        problems.append(f"--int8 quantizes fp32 weights; drop --dtype {dtype}")
    if overwrite and output is None:
        problems.append("--overwrite works on the file given with --output FILE")
    if problems:
        raise UsageError("; ".join(problems))


def _read_inputs(texts, file, text_column, pair_column, label_column):
    """The rows to classify as a `datasets.Dataset` (columns text, and pair/label when asked), and whether they
    came from a file (which gets a progress bar)."""
    from llmtool import data

    if texts:
        for i, text in enumerate(texts, 1):
            if not text.strip():
                raise UsageError(f"text {i} is empty; give some text to classify")
        import datasets

        return datasets.Dataset.from_dict({"text": list(texts)}), False
    if file is None or str(file) == "-":
        if file is None and (sys.stdin is None or sys.stdin.isatty()):
            raise UsageError('no text given; pass some (llmtool classify --model M "Great film!"), --file, or stdin')
        return data.load_inputs("-", {"text": ("stdin", "text")}, read_stdin()), False
    columns = {"text": ("--text-column", text_column or "text")}
    if pair_column is not None:
        columns["pair"] = ("--pair-column", pair_column)
    if label_column is not None:
        columns["label"] = ("--label-column", label_column)
    return data.load_inputs(str(file), columns), True


def _check_max_length(lm, max_length: int | None, pairs: bool) -> None:
    from llmtool import classification

    if max_length is None:
        return
    limit = classification.max_input_length(lm)
    if max_length > limit:
        raise UsageError(f"--max-length {max_length} is past the model's limit of {limit} tokens")
    special = lm.tokenizer.num_special_tokens_to_add(pair=pairs)
    if max_length <= special + pairs:
        raise UsageError(f"--max-length {max_length} leaves no room for text after the model's {special} special "
                         f"tokens; use at least {special + 1 + pairs}")


@dataclass
class _View:
    """How one chunk's results become records (the JSON form, which plain lines are also made from) and tables."""

    names: list[str]
    top_k: int | None  # how many (label, score) pairs each record lists under "scores"; None: none
    ranked: bool  # those pairs most likely first (--top-k), or in the model's label order (--all-scores)
    pairs: bool
    with_truth: bool

    def records(self, chunk: dict, probabilities: list[list[float]], predictions: list[int],
                truth: list[int] | None) -> list[dict]:
        records = []
        for i, (row, best) in enumerate(zip(probabilities, predictions)):
            record = {"text": chunk["text"][i]}
            if self.pairs:
                record["pair"] = chunk["pair"][i]
            record["label"], record["score"] = self.names[best], row[best]
            if self.top_k is not None:
                order = sorted(range(len(row)), key=lambda j: -row[j]) if self.ranked else range(len(row))
                record["scores"] = {self.names[j]: row[j] for j in list(order)[:self.top_k]}
            if truth is not None:
                record["true_label"] = self.names[truth[i]]
            records.append(record)
        return records

    def table(self, records: list[dict]):
        from rich.table import Table
        from rich.text import Text

        table = Table(show_lines=False)
        table.add_column("text", overflow="fold", ratio=3)
        if self.pairs:
            table.add_column("pair", overflow="fold", ratio=2)
        table.add_column("label", no_wrap=True)
        table.add_column("score", justify="right")
        if self.top_k is not None:
            table.add_column("scores")
        if self.with_truth:
            table.add_column("true label", no_wrap=True)
        for r in records:
            cells = [Text(r["text"])] + ([Text(r["pair"])] if self.pairs else [])
            cells += [Text(r["label"], style="bold"), f"{r['score']:.4f}"]
            if self.top_k is not None:
                cells.append(Text("\n".join(f"{name} {score:.4f}" for name, score in r["scores"].items())))
            if self.with_truth:
                right = r["true_label"] == r["label"]
                cells.append(Text(r["true_label"], style="green" if right else "red"))
            table.add_row(*cells)
        return table


def _one_line(text: str) -> str:
    """Plain output is one line per input with tab-separated fields: tabs and line breaks in a text become spaces."""
    return " ".join(text.replace("\t", " ").splitlines())


def _plain_lines(records: list[dict]) -> str:
    lines = []
    for r in records:
        fields = [r["label"], f"{r['score']:.4f}"]
        for name, score in r.get("scores", {}).items():
            fields += [name, f"{score:.4f}"]
        fields.append(_one_line(r["text"]))
        if "pair" in r:
            fields.append(_one_line(r["pair"]))
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


def _json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _metrics_tables(report: dict, names: list[str]):
    from rich.console import Group
    from rich.table import Table

    per_class = Table(title=f"{report['rows']} labelled rows: accuracy {report['accuracy']:.4f}", title_justify="left")
    for column in ("label", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="left" if column == "label" else "right")
    for name, s in report["per_class"].items():
        per_class.add_row(name, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["support"]))
    per_class.add_row("macro average", f"{report['precision']:.4f}", f"{report['recall']:.4f}", f"{report['f1']:.4f}",
                      str(report["rows"]), style="bold")
    confusion = Table(title="confusion matrix", title_justify="left")
    confusion.add_column("true \\ predicted")
    for name in names:
        confusion.add_column(name, justify="right")
    for name, row in zip(names, report["confusion_matrix"]["matrix"]):
        confusion.add_row(name, *(str(n) for n in row))
    return Group(per_class, confusion)
