"""Datasets for training: loading through `datasets`, tokenization per task, batching by length, collation."""

from __future__ import annotations

import difflib
import functools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from llmtool import chat as chat_lib
from llmtool import masking as masking_lib
from llmtool.errors import LlmtoolError, json_problem
from llmtool.masking import NOT_A_WORD, Masking
from llmtool.tasks import CAUSAL_LM, CHAT, CLASSIFICATION, MASKED_LM, SEQ2SEQ_LM

DATA_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
                 ".txt": "text", ".text": "text"}


class DataFileError(ValueError):
    """What is wrong with a local data file, phrased to follow its name: "'x.csv' <message>"."""


def is_local_data(spec: str) -> bool:
    return Path(spec).suffix.lower() in DATA_BUILDERS or Path(spec).exists()


def is_plain_text(source: str) -> bool:
    """Whether load_inputs reads `source` as plain text: stdin ('-'), a .txt file, or one of no table format."""
    return source == "-" or DATA_BUILDERS.get(Path(source).suffix.lower(), "text") == "text"


def _json_records(text: str) -> list[str]:
    """Column names of a JSON array or JSON-lines text; every line must be one JSON object (named by its number)."""
    import json

    first = text.lstrip()
    if first.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFileError(f"is not valid JSON ({json_problem(err)})") from None
        if not records:
            raise DataFileError("holds an empty list")
        if not all(isinstance(r, dict) for r in records):
            raise DataFileError("must be a list of JSON objects (one per row)")
        return list(records[0])
    columns = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(f"line {number} is not valid JSON ({json_problem(err, with_line=False)}); write one "
                                "JSON object a line") from None
        if not isinstance(record, dict):
            raise DataFileError(f"line {number} is not a JSON object; write one {{\"column\": value, ...}} a line")
        columns = columns or list(record)
    return columns or []


def file_columns(path: Path) -> list[str]:
    """Column names of a local data file, after checking that it is readable: UTF-8, not empty, and (JSON lines)
    one valid object a line. Raises DataFileError saying what is wrong."""
    import csv
    import io

    builder = DATA_BUILDERS.get(path.suffix.lower())
    try:
        if builder == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with path.open(encoding="utf-8") as handle:
            text = handle.read()  # also proves the whole file is UTF-8
    except UnicodeDecodeError as err:
        raise DataFileError(f"is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None
    except OSError as err:
        raise DataFileError(f"could not be read ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 - pyarrow's errors for a damaged parquet file
        raise DataFileError(f"is not a readable parquet file ({err})") from None
    if not text.strip():
        raise DataFileError("is empty")
    if builder == "text":
        return ["text"]
    if builder == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(rows, [])
        count = 0
        for row in rows:
            if len(row) > len(header):
                raise DataFileError(f"line {rows.line_num} has {len(row)} cells, but the header has {len(header)} "
                                    "(a text with an unquoted delimiter? quote such cells)")
            count += bool(row)
        if not count:
            raise DataFileError("has a header but no rows")
        return header
    return _json_records(text)


@contextmanager
def _datasets_quietly() -> Iterator[None]:
    """`datasets` draws a "Generating train split" bar (on a terminal, a blank line once done) and logs as it reads
    a file: noise before a command's own progress, results or error line. Silenced here, for llmtool's loads only:
    left as they were afterwards."""
    import datasets
    from datasets.utils import logging as datasets_logging

    asked_for = datasets.config.HF_DATASETS_DISABLE_PROGRESS_BARS is False  # the user set the variable to 0
    silence = not asked_for and not datasets.utils.are_progress_bars_disabled()
    verbosity = datasets_logging.get_verbosity()
    if silence:
        datasets.disable_progress_bars()
    datasets_logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets_logging.set_verbosity(verbosity)
        if silence:
            datasets.enable_progress_bars()


def _load_one(spec: str, default_split: str, hub_config: str | None):
    import datasets

    try:
        with _datasets_quietly():
            if is_local_data(spec):
                path = Path(spec).expanduser()
                builder = DATA_BUILDERS[path.suffix.lower()]
                extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
                return datasets.load_dataset(builder, data_files=str(path), split="train", **extra)
            name, _, split = spec.partition(":")
            return datasets.load_dataset(name, hub_config, split=split or default_split)
    except (FileNotFoundError, ValueError, OSError, datasets.exceptions.DatasetsError) as err:
        if "offline" in str(err).lower() or "couldn't reach" in str(err).lower():
            raise LlmtoolError(f"dataset '{spec}' is not a local file and the Hub cannot be reached; give a local "
                               "csv/json/jsonl/parquet/txt file") from err
        cause = err.__cause__ or err.__context__ if isinstance(err, datasets.exceptions.DatasetsError) else None
        first_line = (str(cause or err).strip().splitlines() or [type(err).__name__])[0]
        raise LlmtoolError(f"could not load dataset '{spec}': {first_line}") from err


def _empty_rows(dataset, column: str) -> list[int]:
    """Rows (0-based) whose cell is missing or only whitespace, found with Arrow compute (no Python loop)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = dataset.data.column(column)
    empty = pc.is_null(values)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), False)
        empty = pc.or_(empty, blank)
    return pc.indices_nonzero(empty).to_pylist()


# Row numbers an empty-cells error lists per column; the rest are counted.
ROWS_NAMED = 5


def _row_numbers(rows: list[int]) -> str:
    """'row 4', 'rows 2, 7' or 'rows 1, 2, 3, 4, 5 and 9 more' (0-based rows, said from 1)."""
    named = ", ".join(str(row + 1) for row in rows[:ROWS_NAMED])
    more = f" and {len(rows) - ROWS_NAMED} more" if len(rows) > ROWS_NAMED else ""
    return f"row{'s' * (len(rows) > 1)} {named}{more}"


def _empty_cells(empty: dict[tuple[str, str], list[int]], rows: int) -> str:
    """Every empty cell at once: {(name the user knows the column by, column): its empty rows}, `rows` in all."""
    counting = "rows count from 1 after any header"
    if len(empty) == 1:
        ((key, column), where), = empty.items()
        if len(where) == 1:
            return f"row {where[0] + 1} has an empty '{column}' cell ({key}; {counting})"
        return f"{len(where)} rows have an empty '{column}' cell ({key}; {counting}): {_row_numbers(where)}"
    cells = "; ".join(f"'{column}' ({key}) in {_row_numbers(where)}" for (key, column), where in empty.items())
    return f"{rows} rows have empty cells ({counting}): {cells}"


def clean_rows(dataset, columns: list[tuple[str, str]], source: str, drop_option: str | None = None,
               drop: bool = False, labels: tuple[str, ...] = ()):
    """Refuse (or, with `drop`, drop) rows with an empty cell in any of `columns` ((name the user gave it by,
    column) pairs); `drop_option` is the switch named in the refusal. Columns other than `labels` that hold
    numbers (a CSV column of digits) become strings. Returns (dataset, rows dropped)."""
    import datasets

    empty = {(key, column): rows for key, column in columns if (rows := _empty_rows(dataset, column))}
    bad = {row for rows in empty.values() for row in rows}
    if bad and not drop:
        remedy = f", or set {drop_option} to drop them" if drop_option else ""
        raise LlmtoolError(f"{source}: {_empty_cells(empty, len(bad))}; fill those cells{remedy}")
    if bad:
        dataset = dataset.select(sorted(set(range(len(dataset))) - bad))
    for key, column in columns:
        feature = dataset.features[column]
        if column not in labels and not (isinstance(feature, datasets.Value) and "string" in feature.dtype):
            try:
                dataset = dataset.cast_column(column, datasets.Value("string"))
            except (ValueError, TypeError) as err:
                raise LlmtoolError(f"{source}: column '{column}' ({key}) does not hold text ({err})") from None
    return dataset, len(bad)


# The roles whose cells load_inputs keeps as they are, not made text: a classifier's labels (ids or names), a
# conversation's list of turns.
KEPT_ROLES = ("label", "messages")


def load_inputs(source: str, columns: dict[str, tuple[str, str]], stdin_text: str | None = None,
                whole_text: bool = False):
    """Rows to run a model on, for the inference verbs: from a local file (.txt or any other extension: one text
    a line; .csv/.tsv/.json/.jsonl/.parquet: named columns) or, with source '-', from `stdin_text` (one text a
    line). `columns` maps each role ("text", "pair", "label", ...) to (the option that names it, column); the
    result has one column per role. Blank lines are skipped; a missing column or an empty cell is one error.
    With `whole_text`, plain text (a text file, stdin) is one row: the text as it is, blank lines and line
    breaks included (what a language model's perplexity is of)."""
    import datasets

    plain = "one text" if whole_text else "one text a line"
    named = {role: role for role in columns}  # each role's column in the dataset read: in a table, the user's

    def plain_rows(text: str) -> list[str]:
        if whole_text:
            return [text] if text.strip() else []
        return [line for line in text.splitlines() if line.strip()]

    if source == "-":
        where = "stdin"
        if set(columns) != {"text"}:
            raise LlmtoolError(f"stdin gives {plain}; for other columns, pass a csv/jsonl/parquet file")
        dataset = datasets.Dataset.from_dict({"text": plain_rows(stdin_text or "")})
    else:
        path = Path(source).expanduser()
        where = f"input file '{source}'"
        if not path.exists():
            raise LlmtoolError(f"{where} does not exist")
        if path.is_dir():
            raise LlmtoolError(f"{where} is a directory, not a file")
        lines = is_plain_text(source)
        try:
            found = file_columns(path) if not lines else ["text"]
            if lines:
                text = path.read_bytes().decode("utf-8")
        except DataFileError as err:
            raise LlmtoolError(f"{where} {err}") from None
        except UnicodeDecodeError as err:
            raise LlmtoolError(f"{where} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None
        if lines:
            if set(columns) != {"text"}:
                raise LlmtoolError(f"{where} is plain text ({plain}); for other columns, use a csv, jsonl or parquet "
                                   "file")
            dataset = datasets.Dataset.from_dict({"text": plain_rows(text)})
        else:
            missing = [(option, column) for option, column in columns.values() if column not in found]
            if missing:
                option, column = missing[0]
                hint = difflib.get_close_matches(column, found, n=1)
                raise LlmtoolError(f"{where} has no column '{column}' ({option}); its columns are: "
                                   f"{', '.join(found)}" + (f"; did you mean '{hint[0]}'?" if hint else ""))
            dataset = _load_one(str(path), "train", None)
            dataset = dataset.select_columns([column for _, column in columns.values()])
            named = {role: column for role, (_, column) in columns.items()}
    if len(dataset) == 0:
        raise LlmtoolError(f"{where} has no rows (it is empty)")
    dataset, _ = clean_rows(dataset, [(option, named[role]) for role, (option, _) in columns.items()], where,
                            labels=tuple(column for role, column in named.items() if role in KEPT_ROLES))
    return dataset.rename_columns({column: role for role, column in named.items() if column != role})


def load_splits(train: str, validation: str | None = None, *, columns: list[tuple[str, str]],
                labels: str | None = None, hub_config: str | None = None, validation_split: float = 0.0,
                seed: int = 0, max_train: int | None = None, max_eval: int | None = None, drop_empty: bool = False,
                drop_option: str | None = None, notify: Callable[[str], None] | None = None):
    """(train, validation or None) as `datasets.Dataset`s: local files or Hub datasets ("name" or "name:split").
    `columns` are the (name the user knows it by, column) pairs the task reads, `labels` the label column if any.
    Rows with an empty cell are refused (naming `drop_option`), or dropped with `drop_empty` (`notify` is told
    how many). Then the validation split (seeded) and the sample limits."""
    train_rows = _load_one(train, "train", hub_config)
    validation_rows = _load_one(validation, "validation", hub_config) if validation else None
    for name, spec, rows in (("training", train, train_rows), ("validation", validation, validation_rows)):
        if rows is None:
            continue
        missing = [f"'{column}' ({key})" for key, column in columns if column not in rows.column_names]
        if missing:
            raise LlmtoolError(f"{name} data '{spec}' has no column {', '.join(missing)}; its columns are: "
                               f"{', '.join(rows.column_names)}")
        cleaned, dropped = clean_rows(rows, columns, f"{name} data '{spec}'", drop_option, drop_empty,
                                      labels=(labels,) if labels else ())
        if dropped and notify is not None:
            notify(f"dropped {dropped} row{'s' * (dropped > 1)} with empty cells from the {name} data")
        if name == "training":
            train_rows = cleaned
        else:
            validation_rows = cleaned
    if validation_rows is None and validation_split > 0:
        parts = train_rows.train_test_split(test_size=validation_split, seed=seed)
        train_rows, validation_rows = parts["train"], parts["test"]
    if max_train is not None:
        train_rows = train_rows.select(range(min(max_train, len(train_rows))))
    if validation_rows is not None and max_eval is not None:
        validation_rows = validation_rows.select(range(min(max_eval, len(validation_rows))))
    if len(train_rows) == 0:
        raise LlmtoolError(f"training data '{train}' has no rows")
    if validation_rows is not None and len(validation_rows) == 0:
        raise LlmtoolError(f"validation data '{validation or train}' has no rows")
    return train_rows, validation_rows


def _describe_types(values: list, column: str, source: str) -> None:
    """Labels must all be written one way: all text, or all numbers."""
    kinds: dict[str, int] = {}
    for row, value in enumerate(values):
        kinds.setdefault(type(value).__name__, row)
    kinds.pop("NoneType", None)
    if any(kind not in ("str", "int", "float", "bool") for kind in kinds):
        odd = next(kind for kind in kinds if kind not in ("str", "int", "float", "bool"))
        raise LlmtoolError(f"{source}: label in row {kinds[odd] + 1} of column '{column}' is a {odd}; labels must be "
                           "text or numbers")
    numeric = {"int", "float"}
    if len(kinds) > 1 and not set(kinds) <= numeric:
        examples = ", ".join(f"row {row + 1} is {values[row]!r}" for row in sorted(kinds.values())[:2])
        raise LlmtoolError(f"{source}: column '{column}' mixes label types ({', '.join(sorted(kinds))}: {examples}); "
                           "write every label the same way")


def label_set(train, validation, column: str, source: str) -> list[str]:
    """The sorted set of training labels (from `column`), as strings; validation labels must be among them."""
    train_labels = train[column][:]  # one read, not row by row (see `column`)
    _describe_types(train_labels, column, f"training data '{source}'")
    values = sorted(set(train_labels), key=lambda v: (str(type(v)), v))
    if any(v is None for v in values):
        raise LlmtoolError(f"column '{column}' of the training data has empty labels; fill or drop those rows")
    names = [str(v) for v in values]
    if len(names) < 2:
        raise LlmtoolError(f"column '{column}' has only one label ({names[0]!r}); classification needs two or more")
    if validation is not None:
        validation_labels = validation[column][:]
        _describe_types(validation_labels, column, "validation data")
        unseen = sorted({str(v) for v in validation_labels} - set(names))
        if unseen:
            raise LlmtoolError(f"validation labels {unseen} never occur in the training data; "
                               "every label must appear in train")
    return names


def _conversations(batch, indices, *, tokenizer, columns: tuple[str, str, str], train_on: str, max_length: int,
                   end_id: int) -> dict:
    """data.tokenize for chat: each row's conversation encoded (chat.encode), cut to `max_length` at a turn
    (`cut` 1) or dropped (`cut` 2, no targets), its mask checked (chat.mask_problem)."""
    out: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": [], "n_targets": [], "length": [],
                            "cut": []}
    for j, i in enumerate(indices):
        messages = chat_lib.as_messages({key: values[j] for key, values in batch.items()}, *columns)
        encoded = chat_lib.encode(tokenizer, messages, train_on, max_length)
        if encoded is None:
            ids, labels, cut = [], [], 2
        else:
            problem = chat_lib.mask_problem(encoded, end_id, train_on)
            if problem:
                raise LlmtoolError(f"row {i + 1}: {problem}; see how rows render with --show-masks")
            ids, labels, cut = encoded.input_ids, encoded.labels, int(encoded.cut)
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append(labels)
        out["n_targets"].append(sum(label != chat_lib.IGNORE for label in labels[1:]))
        out["length"].append(len(ids))
        out["cut"].append(cut)
    return out


def _pack_conversations(batch, size: int) -> dict:
    """Tokenized conversations packed into rows of at most `size` tokens (first fit, longest first), each keeping
    to itself: its positions restart at 0, which is how transformers' attention masks tell packed sequences apart
    (no attention mask is passed), and its first token is not a target (it would be predicted from the one
    before, another conversation's)."""
    order = sorted(range(len(batch["input_ids"])), key=lambda i: (-len(batch["input_ids"][i]), i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(batch["input_ids"][i])
        fit = next((b for b, left in enumerate(room) if left >= n), None)
        if fit is None:
            bins.append([i])
            room.append(size - n)
        else:
            bins[fit].append(i)
            room[fit] -= n
    out: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], "n_targets": [], "length": []}
    for members in bins:
        ids, labels, positions = [], [], []
        for i in members:
            ids += batch["input_ids"][i]
            labels += [chat_lib.IGNORE] + batch["labels"][i][1:]
            positions += list(range(len(batch["input_ids"][i])))
        out["input_ids"].append(ids)
        out["labels"].append(labels)
        out["position_ids"].append(positions)
        out["n_targets"].append(sum(label != chat_lib.IGNORE for label in labels[1:]))
        out["length"].append(len(ids))
    return out


def _packed_blocks(batch, *, tokenizer, text: str, size: int) -> dict:
    """Texts joined with EOS and cut into full blocks; the tail that does not fill a block is dropped."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream = [t for ids in tokenizer(batch[text])["input_ids"] for t in ids + eos]
    blocks = [stream[i:i + size] for i in range(0, len(stream) - size + 1, size)]
    return {"input_ids": blocks, "attention_mask": [[1] * size for _ in blocks],
            "n_targets": [size - 1] * len(blocks), "length": [size] * len(blocks)}


def _masked_lm_texts(batch, *, tokenizer, text: str, size: int) -> dict:
    """data.tokenize for masked-lm: each text with the tokenizer's special tokens (BERT: [CLS] ... [SEP]), cut
    to `size` tokens, and each token's word (masking.word_ids)."""
    enc = tokenizer(batch[text], truncation=True, max_length=size, return_token_type_ids=False)
    enc["word_ids"] = [masking_lib.word_ids(enc, i, tokenizer) for i in range(len(enc["input_ids"]))]
    return _maskable(enc)


def _masked_lm_blocks(batch, *, tokenizer, text: str, size: int) -> dict:
    """Texts joined, each followed by the separator token, cut into pieces that become blocks of `size` tokens
    as BERT reads them: [CLS] piece [SEP] (the tokenizer has both: recipe_data.masking). The tail that does not
    fill a block is dropped. Words are numbered across the texts, so that no two texts share one."""
    enc = tokenizer(batch[text], add_special_tokens=False, return_token_type_ids=False,
                    return_attention_mask=False, verbose=False)  # a text past the positions is cut into blocks
    stream, words, first_word = [], [], 0
    for i, ids in enumerate(enc["input_ids"]):
        numbered = [w if w == NOT_A_WORD else first_word + w for w in masking_lib.word_ids(enc, i, tokenizer)]
        stream += ids + [tokenizer.sep_token_id]
        words += numbered + [NOT_A_WORD]
        first_word = max(numbered, default=first_word - 1) + 1
    room = size - 2
    starts = range(0, len(stream) - room + 1, room)
    return _maskable({
        "input_ids": [[tokenizer.cls_token_id, *stream[i:i + room], tokenizer.sep_token_id] for i in starts],
        "word_ids": [[NOT_A_WORD, *words[i:i + room], NOT_A_WORD] for i in starts],
        "attention_mask": [[1] * size for _ in starts]})


def _maskable(enc) -> dict:
    """A masked-LM row's `n_targets` (the tokens it may mask) and `length`."""
    enc["n_targets"] = [sum(w != NOT_A_WORD for w in words) for words in enc["word_ids"]]
    enc["length"] = [len(ids) for ids in enc["input_ids"]]
    return enc


def _fixed_masks(rows, masking: Masking):
    """Masked-LM validation rows with their masks applied once, each from the validation stream of its index
    (masking.Masking.apply with no epoch): the same masks at every evaluation. `n_targets`: the masked tokens."""

    def apply(batch, indices):
        masked = [masking.apply(ids, words, i) for ids, words, i in zip(batch["input_ids"], batch["word_ids"], indices)]
        return {"input_ids": [ids for ids, _ in masked], "labels": [labels for _, labels in masked],
                "n_targets": [sum(label != -100 for label in labels) for _, labels in masked]}

    return rows.map(apply, batched=True, with_indices=True, remove_columns=["word_ids"], desc="masking validation")


def _conversations_done(dataset, name: str, max_length: int, packing: bool, notify: Callable[[str], None] | None):
    """Tokenized conversations after `_conversations`: the cut and dropped ones counted (to `notify`), and with
    `packing`, packed into rows of `max_length` (`_pack_conversations`)."""
    cuts = column(dataset, "cut")
    cut, dropped = cuts.count(1), cuts.count(2)
    if notify is not None and (cut or dropped):
        notify(f"{name} data: {cut} conversation{'s' * (cut != 1)} cut after the last assistant turn that fits "
               f"data.max_length {max_length}, {dropped} dropped (not even their first assistant turn fits)")
    dataset = dataset.remove_columns("cut")
    if not packing:
        return dataset
    dataset = dataset.filter(lambda n: n > 0, input_columns="n_targets")
    return dataset.map(_pack_conversations, batched=True, batch_size=None, fn_kwargs={"size": max_length},
                       remove_columns=dataset.column_names, desc=f"packing {name}")


@dataclass
class TokenizedData:
    train: Any  # datasets.Dataset with input_ids (+ labels), n_targets and length
    validation: Any | None


def tokenize(task: str, tokenizer, train, validation=None, labels: list[str] | None = None, *,
             text: str = "text", label: str = "label", source: str = "source", target: str = "target",
             prefix: str = "", max_length: int = 128, max_target_length: int = 64, packing: bool = False,
             block_size: int = 128, conversation: tuple[str, str, str] = ("messages", "prompt", "completion"),
             train_on: str = "assistant", masking: Masking | None = None, notify=None) -> TokenizedData:
    """Tokenize per task with batched `datasets.map`; every row gets `length` (for batching) and `n_targets`
    (the loss terms it contributes, so a step's loss can be averaged over the whole global batch; a masked-LM
    training row: the tokens it may mask, its masks drawn per epoch by the collator). `text`... name the columns
    (chat's: `conversation`); `labels` are the label names, in id order (chat: `_conversations`); `masking`
    masks the masked-LM validation rows once; `notify` (a callable) is told of conversations cut or dropped."""
    label_ids = {name: i for i, name in enumerate(labels or [])}

    def classification(batch):
        enc = tokenizer(batch[text], truncation=True, max_length=max_length)
        enc["labels"] = [label_ids[str(v)] for v in batch[label]]
        enc["n_targets"] = [1] * len(enc["labels"])
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    def seq2seq(batch):
        sources = [prefix + s for s in batch[source]]
        enc = tokenizer(sources, truncation=True, max_length=max_length)
        enc["labels"] = tokenizer(text_target=batch[target], truncation=True,
                                  max_length=max_target_length)["input_ids"]
        enc["n_targets"] = [len(ids) for ids in enc["labels"]]
        enc["length"] = [len(a) + len(b) for a, b in zip(enc["input_ids"], enc["labels"])]
        return enc

    def causal(batch):
        enc = tokenizer(batch[text], truncation=True, max_length=max_length)
        enc["n_targets"] = [max(len(ids) - 1, 0) for ids in enc["input_ids"]]
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    if task == CLASSIFICATION:
        fn = classification
    elif task == SEQ2SEQ_LM:
        fn = seq2seq
    elif task == CHAT:  # the end token is found (or the template refused) before any row
        fn = functools.partial(_conversations, tokenizer=tokenizer, columns=conversation, train_on=train_on,
                               max_length=max_length, end_id=chat_lib.end_of_turn_id(tokenizer))
    elif task == MASKED_LM:
        fn = functools.partial(_masked_lm_blocks if packing else _masked_lm_texts, tokenizer=tokenizer, text=text,
                               size=block_size if packing else max_length)
    else:
        fn = functools.partial(_packed_blocks, tokenizer=tokenizer, text=text, size=block_size) if packing else causal

    def run(dataset, name):
        if dataset is None:
            return None
        try:
            out = dataset.map(fn, batched=True, batch_size=1000, remove_columns=dataset.column_names,
                              desc=f"tokenizing {name}", with_indices=task == CHAT)
        except LlmtoolError as err:
            raise err.within(before=f"{name} data ") from None
        out = _conversations_done(out, name, max_length, packing, notify) if task == CHAT else out
        out = _fixed_masks(out, masking) if task == MASKED_LM and name == "validation" else out
        return _usable(out, name, packing)

    return TokenizedData(train=run(train, "training"), validation=run(validation, "validation"))


def _usable(rows, name: str, packing: bool):
    """Tokenized rows without those that have no target; none left is an error."""
    if 0 in column(rows, "n_targets"):  # a filter leaves an index table that every batch read then goes through
        rows = rows.filter(lambda n: n > 0, input_columns="n_targets")
    if len(rows) == 0:
        raise LlmtoolError(f"{name} data has no usable rows after tokenization (texts too short"
                           + (" to fill one packed block" if packing else "") + ")")
    return rows


class StepBatches:
    """The examples of each optimizer step, for every epoch: a seeded shuffle, then (optionally) sorting within
    mega-batches so each step holds similar lengths. Same seed and epoch, same plan: that is what makes resuming
    and multi-process runs reproducible. Incomplete last steps are dropped."""

    def __init__(self, lengths: list[int], step_size: int, seed: int, group_by_length: bool):
        self.lengths = lengths
        self.step_size = step_size
        self.seed = seed
        self.group_by_length = group_by_length

    def __len__(self) -> int:
        return len(self.lengths) // self.step_size

    def epoch(self, epoch: int) -> list[list[int]]:
        import torch

        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        if self.group_by_length:
            mega = self.step_size * 50
            order = [i for start in range(0, len(order), mega)
                     for i in sorted(order[start:start + mega], key=lambda i: -self.lengths[i])]
        steps = [order[i:i + self.step_size] for i in range(0, len(self) * self.step_size, self.step_size)]
        if self.group_by_length:  # keep the long-first grouping but not its order across the epoch
            perm = torch.randperm(len(steps), generator=generator).tolist()
            steps = [steps[i] for i in perm]
        return steps


def sorted_batches(lengths: list[int], batch_size: int,
                   fits: Callable[[list[int]], bool] | None = None) -> list[list[int]]:
    """Row indices in batches of similar length, longest first (least padding, and an out-of-memory error shows
    at once). Callers put each result back at its index, so output keeps input order. `fits(candidate)` may
    refuse to grow a batch (generation uses it to keep token budgets and positions in bounds)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) == batch_size or (fits is not None and not fits(current + [i]))):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def micro_batches(step_indices: list[int], rank: int, world: int, accumulation: int) -> list[list[int]]:
    """This process's micro-batches of one optimizer step: the step is cut into accumulation x world equal parts."""
    per = len(step_indices) // (accumulation * world)
    return [step_indices[(m * world + rank) * per:(m * world + rank + 1) * per] for m in range(accumulation)]


def eval_batches(lengths: list[int], batch_size: int, rank: int, world: int) -> list[list[int]]:
    """This process's share of the evaluation rows, longest first, in batches."""
    mine = sorted(range(rank, len(lengths), world), key=lambda i: -lengths[i])
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


def pad_on_the_right(tokenizer, *models) -> None:
    """Padding for training and classification: on the right, with the end-of-text token where a tokenizer has no
    pad token (GPT-2), and each model told which id that is (a decoder classifier finds its last real token so)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    for model in models:
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "right"


def column(dataset, name: str) -> list:
    """A column as a plain list, read in one pass (iterating a datasets Column reads it row by row: 10x slower)."""
    return dataset[name][:]


def model_inputs(dataset):
    """The columns the model reads (bookkeeping columns dropped), for the collator."""
    return dataset.select_columns([c for c in dataset.column_names if c not in ("n_targets", "length")])


class Collator:
    """Pads a list of tokenized rows into tensors: dynamic (to the longest row) unless pad_to is given. Masked-LM
    rows that carry their words, not labels (training rows), are masked first, for the epoch (`masking`)."""

    def __init__(self, task: str, tokenizer, model=None, pad_to: int | None = None, masking: Masking | None = None):
        from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

        self.task = task
        self.tokenizer = tokenizer
        self.pad_to = pad_to
        self.masking = masking
        self.drawn: tuple[int | None, dict] = (None, {})  # (epoch, index -> masked row) of the last `targets`
        padding = "max_length" if pad_to else "longest"
        if task in (SEQ2SEQ_LM, CHAT, MASKED_LM):  # labels of their own, padded with the loss's ignore index
            self.inner = DataCollatorForSeq2Seq(tokenizer, model=model if task == SEQ2SEQ_LM else None,
                                                padding=padding, max_length=pad_to, label_pad_token_id=-100)
        else:
            self.inner = DataCollatorWithPadding(tokenizer, padding=padding, max_length=pad_to)

    def __call__(self, inputs, indices: list[int], epoch: int | None = None) -> dict:
        """The rows at `indices` of a `model_inputs` dataset (one Arrow take for all), padded into tensors; masked-LM
        training rows with their masks of `epoch` (the other tasks have none to draw)."""
        columns = inputs[indices]
        if "position_ids" in columns:
            return self._packed(columns)
        if "word_ids" in columns:
            masked = self._masks(columns.pop("word_ids"), columns["input_ids"], indices, epoch)
            columns["input_ids"], columns["labels"] = [ids for ids, _ in masked], [labels for _, labels in masked]
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        batch = self.inner(rows)
        if self.task == CAUSAL_LM:  # labels are the inputs; padding never counts in the loss
            batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch

    def _masks(self, words: list[list[int]], input_ids: list[list[int]], indices: list[int], epoch: int | None):
        """The rows masked for `epoch`: those `targets` drew for the step already, the others drawn now."""
        drawn = self.drawn[1] if epoch is not None and self.drawn[0] == epoch else {}
        return [drawn[i] if i in drawn else self.masking.apply(ids, row_words, i, epoch)
                for ids, row_words, i in zip(input_ids, words, indices)]

    def targets(self, inputs, indices: list[int], epoch: int) -> int:
        """The tokens that the masks of `epoch` choose in the masked-LM rows at `indices`: a step's loss terms.
        At least 1: a step that happens to choose none adds a loss of 0, not 0/0. The masks are kept for the
        step's batches (drawn again, they would be the same)."""
        columns = inputs[indices]
        masked = self._masks(columns["word_ids"], columns["input_ids"], indices, epoch)
        self.drawn = (epoch, dict(zip(indices, masked)))
        return max(1, sum(label != -100 for _, labels in masked for label in labels))

    def _packed(self, columns: dict) -> dict:
        """Packed conversations (see _pack_conversations), padded at the end with positions that start a
        sequence of their own and labels the loss skips; no attention mask, so that the positions set it."""
        import torch
        from transformers import BatchEncoding

        width = self.pad_to or max(len(ids) for ids in columns["input_ids"])

        def padded(rows, fill, positions=False):
            return torch.tensor([row + (list(range(width - len(row))) if positions else [fill] * (width - len(row)))
                                 for row in rows])

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0  # never a target
        return BatchEncoding({"input_ids": padded(columns["input_ids"], pad),
                              "labels": padded(columns["labels"], -100),
                              "position_ids": padded(columns["position_ids"], 0, positions=True)})

