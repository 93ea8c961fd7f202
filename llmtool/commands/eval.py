"""`llmtool eval`: score one or more models on the same data (perplexity, classification or generation metrics;
chat models on conversations)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmtool.commands._input import read_stdin
from llmtool.commands.options import BaseModelOption, DeviceOption, DtypeOption, TrustRemoteCodeOption
from llmtool.errors import LlmtoolError, SettingError, UsageError
from llmtool.models import MODEL_ENV

# Its options name every setting its errors can name. There is no --new-head: an untrained head measures nothing.
SETTING_NAMES: dict[str, str | None] = {}
ENV_DEFAULTS = {"model": MODEL_ENV}
SHIPPED_TEXT = "eval.txt"  # in llmtool/assets: the default text for perplexity
# The option that names each column a task reads (roles as in evaluation.TASK_INPUTS).
COLUMN_OPTIONS = {"text": "--text-column", "label": "--label-column", "source": "--source-column",
                  "target": "--target-column", "messages": "--messages-column", "prompt": "--prompt-column",
                  "completion": "--completion-column"}


@dataclass
class _Planned:
    name: str
    task: str
    metrics: list[str]
    positions: int | None  # from its config


def eval(  # noqa: A001 - the verb's name: cli.py registers each verb by its function's name
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", metavar="MODEL", help="Local model directory or Hub id; repeat to compare models side by side. (default: $LLMTOOL_MODEL, else gpt2)", show_default=False)] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", metavar="NAME", help="perplexity (causal and seq2seq LMs, chat), accuracy, precision, recall, f1 (classifiers), exact_match, rouge, bleu (seq2seq, chat); repeat, or separate by commas. (default: perplexity; classifiers: accuracy and f1; seq2seq: exact_match and rouge; chat: all three)", show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option("--data", "-d", metavar="FILE", help="csv/tsv/json/jsonl/parquet file, or a text file ('-' for stdin): a causal LM's perplexity is of the whole text as it is, blank lines and line breaks included. (default: a short English text shipped with llmtool)", show_default=False)] = None,
    text_column: Annotated[str, typer.Option(help="Column of texts (causal LMs, classifiers).")] = "text",
    label_column: Annotated[str, typer.Option(help="Column of labels (classifiers): label names, or ids.")] = "label",
    source_column: Annotated[str, typer.Option(help="Column of sources (seq2seq).")] = "source",
    target_column: Annotated[str, typer.Option(help="Column of expected outputs (seq2seq).")] = "target",
    messages_column: Annotated[str, typer.Option(help="Column of conversations, each a list of {role, content} turns: a causal LM given data with it is scored as a chat model.")] = "messages",
    prompt_column: Annotated[str, typer.Option(help="Chat data without a --messages-column: column of user turns, each answered by its --completion-column (one exchange a row).")] = "prompt",
    completion_column: Annotated[str, typer.Option(help="Chat: column of the assistant's answers to --prompt-column.")] = "completion",
    chat_template: Annotated[Optional[str], typer.Option(metavar="NAME|FILE", help="Chat: the template conversations are rendered with: chatml, zephyr or a Jinja file; one that adds tokens the model lacks is refused. (default: the model's own)", show_default=False)] = None,
    prefix: Annotated[str, typer.Option(help="Text put before every source (a T5 task prefix, e.g. 'summarize: ').")] = "",
    context: Annotated[Optional[int], typer.Option(min=2, help="Perplexity: tokens each window sees. (default: the model's positions)", show_default=False)] = None,
    stride: Annotated[Optional[int], typer.Option(min=1, help="Perplexity: tokens a sliding window moves on; less than --context gives each scored token more history. (default: the context)", show_default=False)] = None,
    windows: Annotated[str, typer.Option(metavar="sliding|lm-eval", help="Perplexity of a causal LM: 'sliding' windows over the text as it is, as in the transformers guide; or 'lm-eval', as lm-evaluation-harness scores a text (loglikelihood_rolling: every token, the first given the BOS/EOS token; each row a text of its own), with its word_perplexity and byte_perplexity.")] = "sliding",
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Windows or rows per forward pass: speed and memory, not results. (default: 8; perplexity windows on a CPU: 1)", show_default=False)] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Seq2seq and chat: longest generated answer or reply, in tokens.")] = 64,
    task: Annotated[Optional[str], typer.Option(help="Override the task read from each model's config (and the data): causal-lm, seq2seq-lm, classification or chat.")] = None,
    index: Annotated[Optional[Path], typer.Option("--index", help="Retrieval: score search of this index (llmtool embed --output NAME.index) for the judged queries of --data, JSON lines of {\"query\", \"relevant\": [ids]}; metrics recall@K, mrr (mrr@K). (default metrics: recall@1, recall@5, recall@10, mrr)", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table: scores and how they were measured.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write the JSON to this file.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --output: replace a file that is not empty.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
    trust_remote_code: TrustRemoteCodeOption = False,
    base_model: BaseModelOption = None,
) -> None:
    """Evaluate models on the same data: perplexity for language models, accuracy/F1 for classifiers, exact match/ROUGE/BLEU for text-to-text models, recall@k/MRR for search over an index.

    Perplexity is of the text as it is: a text file's (or stdin's) whole text, blank lines and line breaks included, or a table's --text-column rows joined by newlines. A sliding window runs over it: each token is scored at most once, seeing up to --context tokens, and scored tokens weigh alike. It comes with a 95% interval and bits per byte (over the bytes of the scored tokens), which compares models with different tokenizers. --windows lm-eval scores as lm-evaluation-harness does, to reproduce its numbers. Classifiers are scored against --label-column; seq2seq models answer --source-column greedily and are scored against --target-column (their perplexity is that of the targets given the sources). A causal LM given conversations (--messages-column, or --prompt-column and --completion-column) is scored as a chat model: the perplexity of the assistant's turns (the tokens that llmtool finetune trains), and its greedy reply to every assistant turn, given the conversation before it, against that turn. With several --model, each gets one row.

    Examples:

      llmtool eval

      llmtool eval --model gpt2 --model ./my-gpt2 --data notes.txt --context 512 --stride 256

      llmtool eval --model gpt2 --data wikitext-docs.jsonl --windows lm-eval

      llmtool eval --model ./sentiment --data test.csv --metric accuracy --metric f1 --json

      llmtool eval --model ./my-t5 --data pairs.jsonl --metric rouge,bleu,perplexity -o scores.json

      llmtool eval --model runs/chat-gpt2 --data data/chat/test.jsonl

      llmtool eval --index docs.index --data data/retrieval/queries.jsonl --metric recall@5,mrr
    """
    from llmtool import evaluation, models, results_file
    from llmtool.tasks import CAUSAL_LM, CHAT, TASKS, model_task

    if index is not None:
        return _eval_retrieval(index, data, model, metric, json_output, output, overwrite, batch_size, device, dtype,
                               trust_remote_code)
    requested = _metric_names(metric)
    if task is not None and task not in TASKS:
        raise UsageError(f"unknown --task '{task}'; choose one of {', '.join(TASKS)}")
    claim = None  # the --output file's lock, held until the report is written
    if output is not None:
        claim = results_file.claim_output(output, {"data file": data}, overwrite=overwrite)
    elif overwrite:
        raise UsageError("--overwrite works on the file given with --output FILE")
    try:
        names = model or [models.default_generation_model()]
        # --base-model is for the adapters among several models; given where none is one, loading refuses it.
        bases = _bases(names, base_model)
        columns = dict(zip(COLUMN_OPTIONS, (text_column, label_column, source_column, target_column,
                                            messages_column, prompt_column, completion_column)))
        conversation_roles = _conversation_roles(data, columns)
        # Every model checked (files, config, tokenizer) before any is scored: a broken last one costs no work.
        planned = [_plan(name, task, requested, trust_remote_code, bases[name], conversation_roles, chat_template)
                   for name in names]
        if chat_template is not None and not any(p.task == CHAT for p in planned):
            raise UsageError("--chat-template renders the conversations of a chat evaluation, and no model here has "
                             "one: give a causal LM --data with a --messages-column (or --prompt-column and "
                             "--completion-column)")
        sliding = [p for p in planned if p.task == CAUSAL_LM and "perplexity" in p.metrics]
        if (context or stride or windows != evaluation.SLIDING) and not sliding:
            raise UsageError("--context, --stride and --windows set the windows of a causal LM's perplexity, and no "
                             "model here computes one")
        for plan in sliding:  # before any data or weights load
            try:
                evaluation.window_settings(context, stride, plan.positions, windows)
            except SettingError as err:
                raise err.within(before=f"model '{plan.name}': ") from None

        roles = sorted({role for p in planned
                        for role in (conversation_roles if p.task == CHAT else evaluation.TASK_INPUTS[p.task])},
                       key=list(COLUMN_OPTIONS).index)
        rows, where, whole = _read_rows(data, roles, planned, columns)
        if "source" in rows and prefix:
            rows["source"] = [prefix + source for source in rows["source"]]
        if any(p.task == CHAT for p in planned):  # every conversation's shape checked before any model loads
            try:
                given = {role: rows.pop(role) for role in conversation_roles}
                rows["messages"] = evaluation.as_conversations(given)
            except LlmtoolError as err:
                raise err.within(before=f"{where} ") from None

        results = []
        for number, plan in enumerate(planned, 1):
            _progress(f"evaluating {plan.name} ({plan.task}; {', '.join(plan.metrics)})"
                      + (f" [{number}/{len(planned)}]" if len(planned) > 1 else ""))
            lm = models.load_model(plan.name, task=model_task(task) if task else None, verb="eval", device=device,
                                   dtype=dtype, trust_remote_code=trust_remote_code, base_model=bases[plan.name])
            try:
                scored = evaluation.evaluate_loaded(lm, plan.metrics, rows, context=context, stride=stride,
                                                    batch_size=batch_size, max_new_tokens=max_new_tokens,
                                                    window_kind=windows, task=plan.task, chat_template=chat_template)
            except LlmtoolError as err:  # the data or a setting, for this model
                raise err.within(before=f"{where}, model '{plan.name}': ") from None
            _warn_if_few_tokens(plan.name, scored.perplexity)
            _warn_if_cut(plan, scored)
            results.append(_result(plan, lm, scored))
            del lm  # one model in memory at a time

        report = {"data": where, "rows": len(next(iter(rows.values()))), "results": results}
        if output is not None:
            import json

            text = json.dumps(_finite(report), ensure_ascii=False, indent=2) + "\n"
            results_file.write_whole(output, text.encode())
    finally:
        if claim is not None:
            claim.release()
    if json_output:
        from llmtool.commands._output import print_json

        print_json(_finite(report))
    else:
        _print_table(report, whole)


def _metric_names(given: list[str] | None) -> list[str]:
    """The metrics asked for (repeated or comma-separated), each one llmtool eval knows."""
    from llmtool.evaluation import EVAL_METRICS

    names = [name.strip().lower() for item in given or [] for name in item.split(",") if name.strip()]
    for name in names:
        if name not in EVAL_METRICS:
            raise UsageError(f"unknown --metric '{name}'; llmtool eval knows: {_known_metrics()}")
    return list(dict.fromkeys(names))


def _known_metrics() -> str:
    from llmtool.evaluation import EVAL_METRICS

    by_tasks: dict[tuple[str, ...], list[str]] = {}
    for name, tasks in EVAL_METRICS.items():
        by_tasks.setdefault(tasks, []).append(name)
    return "; ".join(f"{', '.join(names)} ({' and '.join(tasks)} models)" for tasks, names in by_tasks.items())


def _plan(name: str, task: str | None, requested: list[str], trust_remote_code: bool, base_model: str | None,
          conversation_roles: tuple[str, ...], chat_template: str | None) -> _Planned:
    """A model's task (from its config; chat for a causal LM given conversations) and the metrics it gets, which
    must fit that task; its files checked as load_model would check them, short of reading its weights
    (models.check_model), and a chat model's template as the evaluation will render with it."""
    from llmtool import evaluation, models
    from llmtool.model_facts import position_limit
    from llmtool.tasks import CAUSAL_LM, CHAT, model_task

    config = models.check_model(name, trust_remote_code, base_model=base_model)
    if task is not None:  # a task the checkpoint has no trained head for is refused before any data loads
        models.check_task(name, config, model_task(task), allow_new_head=False)
    else:
        task = models.infer_task(config)
        if task == CAUSAL_LM and conversation_roles:
            task = CHAT
    if task not in evaluation.DEFAULT_EVAL_METRICS:
        raise UsageError(f"model '{name}' is a {task} model, which llmtool eval does not score (yet); its validation "
                         "numbers come from llmtool finetune, its fills from llmtool generate")
    if task == CHAT:
        if not conversation_roles:
            raise UsageError(f"model '{name}' is scored as a chat model (--task chat), which needs conversations: "
                             "give --data FILE with a --messages-column, or a --prompt-column and --completion-column")
        try:
            evaluation.chat_end_id(models.model_tokenizer(name, trust_remote_code, base_model), chat_template)
        except LlmtoolError as err:
            raise err.within(before=f"model '{name}': ") from None
    metrics = requested or list(evaluation.DEFAULT_EVAL_METRICS[task])
    misfits = [m for m in metrics if task not in evaluation.EVAL_METRICS[m]]
    if misfits:
        raise UsageError(f"--metric {', '.join(misfits)} does not fit model '{name}', a {task} model; for it "
                         f"choose from: {', '.join(evaluation.metrics_for(task))}")
    return _Planned(name, task, metrics, position_limit(config))


def _bases(names: list[str], base_model: str | None) -> dict[str, str | None]:
    """The base model each name loads with: --base-model for adapters; all of them get it when none is an
    adapter (so that loading names the misplaced option)."""
    from llmtool import lora

    adapters = {name for name in names if lora.is_adapter(name)}
    return {name: base_model if name in adapters or not adapters else None for name in names}


def _conversation_roles(data: str | None, columns: dict[str, str]) -> tuple[str, ...]:
    """The conversation columns a table given as --data has, by role: its --messages-column, else its
    --prompt-column and --completion-column; none where it has neither, or is plain text, or cannot be read
    (reading it says why)."""
    from llmtool import data as data_lib
    from llmtool.evaluation import CHAT_EXCHANGE_INPUTS, TASK_INPUTS
    from llmtool.tasks import CHAT

    path = Path(data).expanduser() if data is not None else None
    if path is None or data_lib.is_plain_text(data) or not path.is_file():
        return ()
    try:
        found = data_lib.file_columns(path)
    except data_lib.DataFileError:
        return ()
    return next((roles for roles in (TASK_INPUTS[CHAT], CHAT_EXCHANGE_INPUTS)
                 if all(columns[role] in found for role in roles)), ())


def _read_rows(data: str | None, roles: list[str], planned: list[_Planned],
               columns: dict[str, str]) -> tuple[dict[str, list], str, bool]:
    """The columns every model needs, read once through data.load_inputs: {role: values}, where from, and
    whether it is plain text (read whole, as one text)."""
    from importlib import resources

    import datasets

    from llmtool import data as data_lib

    datasets.disable_progress_bars()  # "Generating train split" bars are noise between a command and its result
    wanted = {role: (COLUMN_OPTIONS[role], columns[role]) for role in roles}
    # A column that serves two roles (a causal LM's texts are a seq2seq model's targets) is read once.
    first_role = {column: role for role, (_, column) in reversed(wanted.items())}
    read = {role: wanted[role] for role in first_role.values()}
    if data is None:
        if roles != ["text"]:
            from llmtool.evaluation import TASK_INPUTS

            needy = next(p for p in planned if TASK_INPUTS[p.task] != ("text",))
            needs = TASK_INPUTS[needy.task]
            raise UsageError(f"model '{needy.name}' is a {needy.task} model: it needs data with "
                             f"{' and '.join(role + 's' for role in needs)}; give --data FILE (its columns are "
                             f"named by {' and '.join(COLUMN_OPTIONS[role] for role in needs)})")
        with resources.as_file(resources.files("llmtool.assets") / SHIPPED_TEXT) as path:
            dataset = data_lib.load_inputs(str(path), read, whole_text=True)
        where = f"the shipped evaluation text (llmtool/assets/{SHIPPED_TEXT})"
    else:
        stdin_text = read_stdin() if data == "-" else None
        dataset = data_lib.load_inputs(data, read, stdin_text, whole_text=True)
        where = "stdin" if data == "-" else f"'{data}'"
    whole = data is None or data_lib.is_plain_text(data)
    return {role: list(dataset[first_role[columns[role]]]) for role in roles}, where, whole



def _result(plan: _Planned, lm, scored) -> dict:
    """One model's row of the report: its scores, and how perplexity was measured."""
    scores = dict(scored.scores)
    result = {"model": plan.name, "task": plan.task, "metrics": plan.metrics, "device": str(lm.device),
              "dtype": str(lm.model.dtype).removeprefix("torch."), "rows": scored.rows, "scores": scores}
    report = scored.perplexity
    if report is not None:
        scores.update(perplexity_interval=list(report.perplexity_interval), nll=report.nll,
                      nll_stderr=report.stderr)
        result["perplexity_method"] = {key: getattr(report, key) for key in (
            "method", "context", "stride", "windows", "tokens", "scored_tokens", "bytes", "texts", "words")
            if key not in ("texts", "words") or getattr(report, key) is not None}
    if plan.task == "classification":
        result["truncated"] = scored.truncated
    if plan.task == "chat":  # conversations cut or dropped to fit the positions, as finetune fits them
        result.update(truncated=scored.truncated, dropped=scored.dropped)
    if scored.turns is not None:
        result.update(assistant_turns=scored.turns, unfinished_replies=scored.unfinished)
    return result


def _finite(value):
    """NaN and infinity become null: JSON has no such numbers (a stderr from one scored token is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# Table columns per metric (keys of a result's scores) and how each is headed and written.
COLUMNS = {"perplexity": ("perplexity", "perplexity_interval", "bits_per_byte", "word_perplexity", "byte_perplexity"),
           "rouge": ("rouge1", "rouge2", "rougeL", "rougeLsum")}
HEADERS = {"perplexity_interval": "95% interval", "bits_per_byte": "bits/byte", "exact_match": "exact match",
           "word_perplexity": "word perplexity", "byte_perplexity": "byte perplexity"}


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "perplexity_interval":
        return f"{value[0]:,.2f} to {value[1]:,.2f}" if all(math.isfinite(v) for v in value) else "-"
    if key in ("perplexity", "word_perplexity", "bleu"):
        return f"{value:,.2f}"
    return f"{value:.4f}"


def _print_table(report: dict, whole: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = list(dict.fromkeys(key for r in report["results"] for name in r["metrics"]
                              for key in COLUMNS.get(name, (name,)) if key in r["scores"]))
    read = "its whole text" if whole else f"{report['rows']} rows"
    table = Table(title=f"llmtool eval on {report['data']}, {read}", title_justify="left")
    table.add_column("model", overflow="fold")
    table.add_column("task")
    for key in keys:
        table.add_column(HEADERS.get(key, key), justify="right")
    for r in report["results"]:
        table.add_row(r["model"], r["task"], *(_cell(key, r["scores"].get(key)) for key in keys))
    # Piped output keeps every column whole rather than squeezed into 80 characters.
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200).print(table)


def _warn_if_few_tokens(name: str, report) -> None:
    """A perplexity from fewer than evaluation.FEW_SCORED_TOKENS tokens, said with its count on stderr (stdout
    keeps the results alone)."""
    from llmtool.commands._output import stderr_console
    from llmtool.evaluation import FEW_SCORED_TOKENS

    if report is None or report.scored_tokens >= FEW_SCORED_TOKENS:
        return
    count = f"{report.scored_tokens} scored token{'' if report.scored_tokens == 1 else 's'}"
    stderr_console().print(f"Warning: model '{name}': its perplexity is from {count} only; under {FEW_SCORED_TOKENS} "
                           "it means little: give more text", style="yellow", soft_wrap=True, markup=False,
                           highlight=False)


def _warn_if_cut(plan: _Planned, scored) -> None:
    """Conversations cut or dropped to fit the model's positions, counted on stderr: their later turns are not
    scored."""
    from llmtool.commands._output import stderr_console

    if plan.task != "chat" or not (scored.truncated or scored.dropped):
        return
    cut, dropped = scored.truncated, scored.dropped
    stderr_console().print(f"Warning: model '{plan.name}': {cut} conversation{'s' * (cut != 1)} cut after the last "
                           f"assistant turn that fits its {plan.positions} positions, {dropped} dropped (not even "
                           "their first assistant turn fits)", style="yellow", soft_wrap=True, markup=False,
                           highlight=False)


def _progress(message: str) -> None:
    """Which model is running, for a person watching (a log or a pipe gets only results and errors)."""
    from llmtool.commands._output import stderr_console

    console = stderr_console()
    if console.is_terminal:
        console.print(message, markup=False, highlight=False, soft_wrap=True)


def _eval_retrieval(index: Path, data: str | None, model: list[str] | None, metric: list[str] | None,
                    json_output: bool, output: Path | None, overwrite: bool, batch_size: int | None,
                    device: str | None, dtype: str, trust_remote_code: bool) -> None:
    """eval --index: exact search of the index for judged queries, scored (retrieval.evaluate), reported as the
    other evaluations are (one row: the index's model)."""
    from llmtool import evaluation, results_file, retrieval, vectors

    names = evaluation.retrieval_metric_names(metric or [])
    if data is None:
        raise UsageError("--index scores search for judged queries: give them with --data FILE, JSON lines of "
                         '{"query": "text", "relevant": [document ids]}')
    if model is not None and len(model) > 1:
        raise UsageError("--index is searched with the one model that made it; give --model once, or not at all")
    claim = results_file.claim_output(output, {"data file": data, "index": index},
                                      overwrite=overwrite) if output is not None else None
    if claim is None and overwrite:
        raise UsageError("--overwrite works on the file given with --output FILE")
    try:
        opened = vectors.open_index(index)
        queries, relevant = retrieval.read_judgements(data, read_stdin() if data == "-" else None)
        encoder = retrieval.query_encoder(opened, model[0] if model else None, device=device, dtype=dtype,
                                          trust_remote_code=trust_remote_code)
        scores = retrieval.evaluate(opened, encoder, queries, relevant, names, batch_size or 32)
        report = {"data": "stdin" if data == "-" else f"'{data}'", "rows": len(queries),
                  "results": [{"model": encoder.model, "task": "retrieval", "metrics": names, "index": str(index),
                               "documents": opened.rows, "device": str(encoder.lm.device), "scores": scores}]}
        if output is not None:
            import json

            results_file.write_whole(output, (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode())
    finally:
        if claim is not None:
            claim.release()
    if json_output:
        from llmtool.commands._output import print_json

        print_json(report)
    else:
        _print_table(report, whole=False)
