"""Evaluation that every verb shares: per-task loss and metrics over tokenized rows (finetune's validation, eval,
distill), classification scores from predictions, generated answers scored against targets, chat models on
conversations (their assistant turns' perplexity, their replies), and the perplexity of a text by a sliding
window. Plain arguments in, plain numbers out; no recipe, no CLI."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from llmtool import chat, classification, metrics
from llmtool import data as data_lib
from llmtool.errors import LlmtoolError, SettingError, UsageError, literal
from llmtool.generation import GenerationSettings, generate_ids
from llmtool.model_facts import position_limit
from llmtool.models import LoadedModel, quiet_false_mask_alarm
from llmtool.tasks import CAUSAL_LM, CAUSAL_TASKS, CHAT, CLASSIFICATION, MASKED_LM, SEQ2SEQ_LM

# What finetune reports after each evaluation, per task (besides the loss). chat: of the trained (assistant)
# tokens; masked-lm: of the masked tokens (exp of their loss), and the share of them predicted right.
TASK_METRICS = {CLASSIFICATION: ("accuracy", "f1"), CAUSAL_LM: ("perplexity",), SEQ2SEQ_LM: ("exact_match",),
                CHAT: ("perplexity",), MASKED_LM: ("masked_accuracy", "perplexity")}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
GENERATION_METRICS = ("exact_match", "rouge", "bleu")
# What a model can be evaluated on, by task (`llmtool eval`), and what it gets when no metric is named. A chat
# evaluation is of a causal LM on conversations: perplexity of the assistant's turns, and its replies scored.
EVAL_METRICS = {"perplexity": (CAUSAL_LM, SEQ2SEQ_LM, CHAT),
                **{name: (CLASSIFICATION,) for name in CLASSIFICATION_METRICS},
                **{name: (SEQ2SEQ_LM, CHAT) for name in GENERATION_METRICS}}
DEFAULT_EVAL_METRICS = {CAUSAL_LM: ("perplexity",), CLASSIFICATION: ("accuracy", "f1"),
                        SEQ2SEQ_LM: ("exact_match", "rouge"), CHAT: ("perplexity", "exact_match", "rouge")}
# The columns of data each task reads: causal LMs a text, classifiers a text and its label, seq2seq a source
# and its target, chat a conversation (or CHAT_EXCHANGE_INPUTS: a prompt and its completion, one exchange).
TASK_INPUTS = {CAUSAL_LM: ("text",), CLASSIFICATION: ("text", "label"), SEQ2SEQ_LM: ("source", "target"),
               CHAT: ("messages",)}
CHAT_EXCHANGE_INPUTS = ("prompt", "completion")


def metrics_for(task: str) -> list[str]:
    return [name for name, tasks in EVAL_METRICS.items() if task in tasks]


def loss_and_logits(task: str, model, batch: dict):
    """Sum of the per-target cross-entropy losses of a batch (padding excluded), and the logits."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "position_ids" in inputs:  # packed conversations: with a KV cache, transformers would not keep them apart
        inputs["use_cache"] = False
        quiet_false_mask_alarm()
    labels = batch["labels"]
    logits = model(**inputs).logits
    if task == CLASSIFICATION:
        return F.cross_entropy(logits.float(), labels, reduction="sum"), logits
    scored = logits[:, :-1] if task in CAUSAL_TASKS else logits
    targets = labels[:, 1:] if task in CAUSAL_TASKS else labels
    loss = F.cross_entropy(scored.float().reshape(-1, scored.size(-1)), targets.reshape(-1), ignore_index=-100,
                           reduction="sum")
    return loss, logits


def classification_scores(predictions: list[int], references: list[int], names=CLASSIFICATION_METRICS,
                          label_ids: list[int] | None = None, per_class: bool = False) -> dict:
    """Scores of predicted label ids against the true ones through the shipped metric modules (scikit-learn):
    accuracy, and precision/recall/F1 averaged over labels (macro). With `per_class`, each of those for every
    label in `label_ids` too, and the confusion matrix (rows: true label, columns: predicted)."""
    scores: dict = {}
    for name in names:
        options = {} if name == "accuracy" else {"labels": label_ids}
        scores.update(metrics.load(name).compute(predictions=predictions, references=references, **options))
    if per_class:
        for name in names:
            if name != "accuracy":
                result = metrics.load(name).compute(predictions=predictions, references=references, average=None,
                                                    labels=label_ids)
                scores[f"{name}_per_class"] = result[name]
        scores["confusion_matrix"] = metrics.load("confusion_matrix").compute(
            predictions=predictions, references=references, labels=label_ids)["confusion_matrix"]
    return scores


def classification_report(predictions: list[int], references: list[int], label_names: list[str]) -> dict:
    """Predicted label ids scored against the true ones, as a report carries them: macro averages, each label's
    precision/recall/F1/support, and the confusion matrix (rows: true label, columns: predicted)."""
    ids = list(range(len(label_names)))
    scores = classification_scores(predictions, references, label_ids=ids, per_class=True)
    support = [references.count(i) for i in ids]
    return {
        "rows": len(references),
        "accuracy": scores["accuracy"],
        "average": "macro",
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "per_class": {name: {"precision": scores["precision_per_class"][i], "recall": scores["recall_per_class"][i],
                             "f1": scores["f1_per_class"][i], "support": support[i]}
                      for i, name in enumerate(label_names)},
        "confusion_matrix": {"labels": label_names, "matrix": scores["confusion_matrix"]},
    }


def generation_scores(answers: list[str], targets: list[str], names=("exact_match",)) -> dict:
    """Generated answers scored against target texts: exact_match, rouge (rouge-score), bleu (sacrebleu)."""
    scores: dict = {}
    for name in names:
        scores.update(metrics.load(name).compute(predictions=answers, references=targets))
    return scores


def generate_answers(model, tokenizer, sources: list[list[int]], max_new_tokens: int, batch_size: int,
                     device) -> list[str]:
    """Greedy answers of an encoder-decoder to tokenized sources, through the shared generation path."""
    lm = LoadedModel(model=model, tokenizer=tokenizer, task=SEQ2SEQ_LM, device=device, source="")
    settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=False)
    return tokenizer.batch_decode([ids[0] for ids in generate_ids(lm, sources, settings)], skip_special_tokens=True)


def evaluate_model(task: str, model, tokenizer, dataset, collator, batch_size: int, accelerator,
                   max_new_tokens: int = 64) -> dict:
    """Loss per target over tokenized rows (as `data.tokenize` makes them), plus the task's metrics
    (TASK_METRICS): each process takes a share of the rows, the numbers are those of all rows. Seq2seq answers
    are generated greedily, at most `max_new_tokens` each; masked-LM rows come with their masks."""
    import torch
    from accelerate.utils import gather_object

    model.eval()
    lengths, n_targets = data_lib.column(dataset, "length"), data_lib.column(dataset, "n_targets")
    inputs = data_lib.model_inputs(dataset)
    loss_sum, targets, correct = (torch.zeros((), dtype=torch.float64, device=accelerator.device) for _ in range(3))
    predictions, references, mine = [], [], []
    with torch.no_grad():
        for indices in data_lib.eval_batches(lengths, batch_size, accelerator.process_index,
                                             accelerator.num_processes):
            batch = collator(inputs, indices).to(accelerator.device)
            with accelerator.autocast():
                loss, logits = loss_and_logits(task, model, batch)
            loss_sum += loss.double()
            targets += sum(n_targets[i] for i in indices)
            mine += indices
            if task == CLASSIFICATION:
                predictions += logits.argmax(-1).tolist()
                references += batch["labels"].tolist()
            elif task == MASKED_LM:
                masked = batch["labels"] != -100
                correct += (logits.argmax(-1)[masked] == batch["labels"][masked]).sum()
    totals = accelerator.reduce(torch.stack([loss_sum, targets, correct]), "sum")
    loss_value = (totals[0] / totals[1]).item()
    results = {"eval_loss": loss_value}
    if task == CLASSIFICATION:
        results.update(classification_scores(gather_object(predictions), gather_object(references),
                                              TASK_METRICS[task]))
    elif task == MASKED_LM:
        results.update(masked_accuracy=(totals[2] / totals[1]).item(), perplexity=math.exp(min(loss_value, 50.0)))
    elif task in CAUSAL_TASKS:
        results["perplexity"] = math.exp(min(loss_value, 50.0))
    else:
        rows = dataset.select_columns(["input_ids", "labels"])[mine] if mine else {"input_ids": [], "labels": []}
        answers = generate_answers(accelerator.unwrap_model(model), tokenizer, rows["input_ids"], max_new_tokens,
                                   batch_size, accelerator.device)
        expected = tokenizer.batch_decode([[t for t in ids if t != -100] for ids in rows["labels"]],
                                          skip_special_tokens=True)
        results.update(generation_scores(gather_object(answers), gather_object(expected), TASK_METRICS[task]))
    model.train()
    return results


# ---------------------------------------------------------------- perplexity of a text

# How a causal LM's text is cut into windows: "sliding", the strided windows of the transformers guide over the
# text as it is; "lm-eval", the rolling windows of lm-evaluation-harness (`loglikelihood_rolling`, lm_eval 0.4.13).
SLIDING, LM_EVAL = "sliding", "lm-eval"
WINDOW_KINDS = (SLIDING, LM_EVAL)
# lm-evaluation-harness's window for a model whose config and tokenizer state no length (its DEFAULT_MAX_LENGTH).
LM_EVAL_FALLBACK_CONTEXT = 2048
# A perplexity from fewer scored tokens than this means little, and eval warns with the count. A token's NLL
# spreads about as widely as its mean (a standard deviation s of 2 to 3 nats for a language model on prose), so
# the 95% interval, exp(nll -/+ 1.96 s / sqrt(n)), narrows to within a factor of 2 either way only at about
# n = (1.96 * 2.5 / ln 2)^2 = 50 tokens; at 10 it spans a factor of 5 either way, and 1 token has none.
FEW_SCORED_TOKENS = 50


@dataclass
class PerplexityReport:
    perplexity: float
    nll: float  # mean negative log-likelihood per scored token (nats)
    stderr: float  # standard error of that mean
    perplexity_interval: tuple[float, float]  # exp(nll -/+ 1.96 stderr): a 95% interval
    bits_per_byte: float  # total NLL in bits over the scored tokens' UTF-8 bytes: comparable across tokenizers
    tokens: int  # tokens in the text (seq2seq: in the targets; lm-eval: in all the texts)
    scored_tokens: int  # tokens predicted: all but the first, and (windows that do not overlap) each window's first
    bytes: int  # UTF-8 bytes of the scored tokens: the text's, less those of the tokens never predicted
    context: int | None  # windows only: tokens a window sees
    stride: int | None  # sliding windows only
    windows: int | None
    method: str = "sliding window"  # "lm-eval rolling windows", or "targets given sources" (encoder-decoder)
    texts: int | None = None  # lm-eval: texts scored each on its own
    words: int | None = None  # lm-eval: words of the texts, counted as lm-evaluation-harness counts them
    word_perplexity: float | None = None  # lm-eval: exp(total NLL / words)
    byte_perplexity: float | None = None  # lm-eval: exp(total NLL / bytes)

    def to_dict(self) -> dict:
        return asdict(self)


def window_settings(context: int | None, stride: int | None, positions: int | None, kind: str = SLIDING,
                    stated_length: int | None = None) -> tuple[int, int | None]:
    """The (context, stride) that windows of `kind` use. The context defaults to the model's positions; sliding
    windows move by the stride (default: the context, no overlap); lm-eval windows have none (each begins at the
    last token the one before predicted) and, as lm-evaluation-harness does, fall back on the tokenizer's
    `stated_length`, then 2048. Raises a SettingError for values the model or the windows cannot take."""
    if kind not in WINDOW_KINDS:
        raise SettingError(f"unknown {{windows}} '{literal(kind)}'; choose {' or '.join(WINDOW_KINDS)}")
    if context is not None and context < 2:
        raise SettingError(f"a context of {context} token(s) leaves nothing to predict; {{context}} must be at "
                           "least 2")
    if positions and context and context > positions:
        raise SettingError(f"a context of {context} tokens is past the model's {positions} positions; lower "
                           "{context}")
    if kind == LM_EVAL:
        if stride is not None:
            raise SettingError("lm-eval windows have no stride (each begins at the last token the one before "
                               "predicted, as lm-evaluation-harness has them); drop {stride}, or set {windows} "
                               "to sliding")
        stated = stated_length if isinstance(stated_length, int) and 0 < stated_length < 1_000_000 else None
        return context or positions or stated or LM_EVAL_FALLBACK_CONTEXT, None
    context = context or positions or 1024
    stride = stride or context
    if not 0 < stride <= context:
        raise SettingError(f"the stride must be between 1 and the context ({context} tokens), got {stride}; lower "
                           "{stride}, or raise {context}")
    return context, stride


def windows(n_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of each sliding window: every window sees up to `context` tokens and
    scores only those that no earlier window scored, with up to context - stride tokens of history (the strided
    method of the transformers documentation). Overlapping windows score every token after the first once;
    without overlap, a window's first token has no history and is not scored."""
    spans, previous_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + context, n_tokens)
        spans.append((begin, end, max(previous_end, begin + 1)))
        previous_end = end
        if end == n_tokens:
            break
    return spans


def lm_eval_windows(n_tokens: int, context: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of lm-evaluation-harness's rolling windows over a prefix token and a
    text's `n_tokens` tokens (position 0 is the prefix): each window takes `context` tokens and predicts the
    next `context`, from the token the one before predicted last (`get_rolling_token_windows` with context_len=1,
    then `make_disjoint_window`); the last one takes the `context` tokens before the text's end. Every token of
    the text is scored once."""
    spans = [(0, min(context, n_tokens) + 1, 1)]
    scored_to = spans[0][1]
    while scored_to <= n_tokens:
        end = min(scored_to + context, n_tokens + 1)
        spans.append((end - 1 - context, end, scored_to))
        scored_to = end
    return spans


def _window_batches(spans: list[tuple[int, int, int]], batch_size: int) -> list[list[tuple[int, int, int]]]:
    """Batches of windows alike in width and in scored tokens (in practice: the first window, the middle ones,
    the last): no batch needs padding, so a window's numbers do not depend on which windows share its batch,
    and the LM head runs only where a token is scored."""
    batches: list[list[tuple[int, int, int]]] = []
    for span in spans:
        shape = (span[1] - span[0], span[1] - span[2])
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and (last[0][1] - last[0][0], last[0][1] - last[0][2]) == shape:
            last.append(span)
        else:
            batches.append([span])
    return batches


def _takes_logits_to_keep(model) -> bool:
    import inspect

    return "logits_to_keep" in inspect.signature(model.forward).parameters


def _token_nll(model, ids: list[int], spans: list[tuple[int, int, int]], batch_size: int, device):
    """The NLL (nats, float64, on the CPU) of every token the windows score: a window (begin, end, first)
    predicts ids[first:end] from ids[begin:end - 1]. Windows run batched by shape, with no padding."""
    import torch
    import torch.nn.functional as F

    limit_logits = _takes_logits_to_keep(model)
    token_nll: list[torch.Tensor] = []
    model.eval()
    with torch.inference_mode():
        for group in _window_batches([span for span in spans if span[2] < span[1]], batch_size):
            keep = group[0][1] - group[0][2]  # logits only where they predict a scored token
            input_ids = torch.tensor([ids[begin:end - 1] for begin, end, _ in group], device=device)
            targets = torch.tensor([ids[first:end] for _, end, first in group], device=device)
            options = {"logits_to_keep": keep} if limit_logits else {}
            logits = model(input_ids=input_ids, use_cache=False, **options).logits[:, -keep:].float()
            losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
            token_nll.append(losses.double().cpu())
    return torch.cat(token_nll)


def _report(nll, n_tokens: int, n_bytes: int, **method) -> PerplexityReport:
    """Token-weighted perplexity, its standard error and bits per byte from every scored token's NLL and the
    scored tokens' bytes."""
    count = nll.numel()
    mean = nll.mean().item()
    stderr = (nll.std(unbiased=True).item() / math.sqrt(count)) if count > 1 else float("nan")
    return PerplexityReport(
        perplexity=math.exp(mean), nll=mean, stderr=stderr,
        perplexity_interval=(math.exp(mean - 1.96 * stderr), math.exp(mean + 1.96 * stderr)),
        bits_per_byte=nll.sum().item() / (math.log(2) * n_bytes), tokens=n_tokens, scored_tokens=count,
        bytes=n_bytes, **method,
    )


def default_window_batch(device) -> int:
    """Windows a forward pass takes by default: 8 on an accelerator; 1 on a CPU, where a batch of long windows
    is no faster (its activations and logits outgrow the caches and the allocator's reuse) and costs memory."""
    return 1 if device.type == "cpu" else 8


def token_bytes(tokenizer, text: str) -> tuple[list[int], list[int]]:
    """The tokens of `text` (no special tokens added) and the UTF-8 bytes of the text each one stands for; they
    add up to the text's bytes. A byte-level BPE token (GPT-2, Llama 3, Qwen) is a byte string written one
    character a byte, so a piece of a character counts the bytes it holds. Other tokenizers go by offsets: a
    token stands for the text from the end of the one before to its own end (a space left out of its span
    counts with it), and pieces that end together (byte fallback: a byte each) share their bytes evenly. A
    tokenizer without offsets (a pure-Python one) counts each token's own decoded text."""
    encoding = tokenizer(text, add_special_tokens=False, verbose=False, return_offsets_mapping=tokenizer.is_fast)
    ids = encoding["input_ids"]
    n_bytes = len(text.encode("utf-8"))
    if _byte_level(tokenizer):
        added = getattr(tokenizer, "added_tokens_decoder", {})
        sizes = [len(piece.encode("utf-8")) if i in added else len(piece)
                 for i, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids))]
        if sum(sizes) == n_bytes:  # not so where the tokenizer adds a space before the text
            return ids, sizes
    if "offset_mapping" not in encoding:
        return ids, [len(tokenizer.decode([i]).encode("utf-8")) for i in ids]
    char_end = [0]  # bytes of text[:i], for every i
    for char in text:
        char_end.append(char_end[-1] + len(char.encode("utf-8")))
    ends = [char_end[end] for _, end in encoding["offset_mapping"]]
    ends[-1:] = [n_bytes]  # text after the last token's span (trailing spaces) counts with it
    sizes, done, k = [], 0, 0
    while k < len(ids):
        group = 1
        while k + group < len(ids) and ends[k + group] <= ends[k]:
            group += 1
        share, rest = divmod(max(ends[k + group - 1], done) - done, group)
        sizes += [share + (1 if j < rest else 0) for j in range(group)]
        done += share * group + rest
        k += group
    return ids, sizes


def _byte_level(tokenizer) -> bool:
    from tokenizers import decoders

    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and isinstance(backend.decoder, decoders.ByteLevel)


def perplexity(model, tokenizer, text: str, context: int | None = None, stride: int | None = None,
               batch_size: int | None = None, device=None) -> PerplexityReport:
    """Perplexity of a causal LM on `text` as it is (no special tokens added), by a sliding window over the
    whole tokenized text: token-weighted NLL (not a mean of window means), context tokens not scored, windows
    batched (the value does not depend on `batch_size`; default: default_window_batch). `context` defaults to
    the model's positions, `stride` to the context (no overlap). Bits per byte are over the bytes of the scored
    tokens (token_bytes), so a token never predicted adds neither loss nor bytes."""
    import torch

    context, stride = window_settings(context, stride, position_limit(model.config))
    ids, sizes = token_bytes(tokenizer, text)
    if len(ids) < 2:
        raise LlmtoolError("the text is shorter than two tokens: nothing to predict")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    spans = windows(len(ids), context, stride)
    nll = _token_nll(model, ids, spans, batch_size or default_window_batch(device), device)
    scored_bytes = sum(sum(sizes[first:end]) for _, end, first in spans)
    return _report(nll, len(ids), scored_bytes, context=context, stride=stride, windows=len(spans))


def lm_eval_perplexity(model, tokenizer, texts: list[str], context: int | None = None,
                       batch_size: int | None = None, device=None) -> PerplexityReport:
    """Perplexity of a causal LM on `texts` scored as lm-evaluation-harness 0.4.13 scores a rolling-loglikelihood
    task (HFLM.loglikelihood_rolling): each text on its own, tokenized as HFLM.tok_encode does (with the
    tokenizer's special tokens, unless the text begins with the prefix token), every token predicted, the first
    from a prefix token (BOS, else EOS), in lm_eval_windows of `context` tokens (default: the model's positions,
    as the harness's max_length). With the harness's task metrics over all texts: word_perplexity (words as
    `len(re.split(r"\\s+", text))`), byte_perplexity and bits_per_byte (UTF-8 bytes)."""
    import torch

    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prefix is None:
        raise SettingError("the tokenizer has neither a BOS nor an EOS token, and lm-eval windows begin with "
                           "one; set {windows} to sliding", exit_code=LlmtoolError.exit_code)
    context, _ = window_settings(context, None, position_limit(model.config), LM_EVAL, tokenizer.model_max_length)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    batch_size = batch_size or default_window_batch(device)
    prefix_text = tokenizer.decode([prefix])
    token_nll, n_tokens, n_windows = [], 0, 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=not text.startswith(prefix_text), verbose=False)["input_ids"]
        if ids:  # the harness scores nothing of a text with no tokens
            spans = lm_eval_windows(len(ids), context)
            token_nll.append(_token_nll(model, [prefix] + ids, spans, batch_size, device))
            n_tokens, n_windows = n_tokens + len(ids), n_windows + len(spans)
    if not token_nll:
        raise LlmtoolError("the texts have no tokens: nothing to predict")
    nll = torch.cat(token_nll)
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    words = sum(len(re.split(r"\s+", text)) for text in texts)
    report = _report(nll, n_tokens, n_bytes, context=context, stride=None, windows=n_windows,
                     method="lm-eval rolling windows", texts=len(texts), words=words)
    total = nll.sum().item()
    report.word_perplexity, report.byte_perplexity = math.exp(total / words), math.exp(total / n_bytes)
    return report


def seq2seq_perplexity(model, tokenizer, sources: list[str], targets: list[str], batch_size: int = 8,
                       device=None) -> PerplexityReport:
    """Perplexity of an encoder-decoder's targets given their sources: every target token (end-of-sequence
    included) weighs the same, whatever its row; bits per byte over the targets' UTF-8 bytes. Rows run in
    length-sorted batches with dynamic padding."""
    import torch
    import torch.nn.functional as F

    device = device or next(model.parameters()).device
    source_ids = tokenizer(sources, verbose=False)["input_ids"]
    target_ids = tokenizer(text_target=targets, verbose=False)["input_ids"]
    positions = position_limit(model.config)
    for row, (source, target) in enumerate(zip(source_ids, target_ids), 1):
        if positions and max(len(source), len(target)) > positions:
            raise LlmtoolError(f"row {row} has {max(len(source), len(target))} tokens, past the model's {positions} "
                               "positions")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    token_nll: list[torch.Tensor] = []
    model.eval()
    with torch.inference_mode():
        for batch in data_lib.sorted_batches([len(s) + len(t) for s, t in zip(source_ids, target_ids)], batch_size):
            width, target_width = max(len(source_ids[i]) for i in batch), max(len(target_ids[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), target_width), -100, dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :len(source_ids[i])] = torch.tensor(source_ids[i])
                attention[row, :len(source_ids[i])] = 1
                labels[row, :len(target_ids[i])] = torch.tensor(target_ids[i])
            labels = labels.to(device)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels,
                           use_cache=False).logits.float()
            losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100,
                                     reduction="none")
            token_nll.append(losses[labels.reshape(-1) != -100].double().cpu())
    n_targets = sum(len(ids) for ids in target_ids)
    return _report(torch.cat(token_nll), n_targets, sum(len(t.encode("utf-8")) for t in targets), context=None,
                   stride=None, windows=None, method="targets given sources")


# ---------------------------------------------------------------- chat models on conversations


def as_conversations(rows: dict[str, list]) -> list[list]:
    """The conversations of a chat evaluation's rows: their "messages", else each prompt and completion as one
    exchange (chat.as_messages); the first one of the wrong shape (chat.conversation_problem) is named by row."""
    count = len(next(iter(rows.values())))
    found = [chat.as_messages({role: values[n] for role, values in rows.items()}, "messages", *CHAT_EXCHANGE_INPUTS)
             for n in range(count)]
    for n, messages in enumerate(found, start=1):
        problem = chat.conversation_problem(messages)
        if problem:
            raise UsageError(f"row {n}: {problem}")
    return found


def chat_end_id(tokenizer, template: str | None) -> int:
    """Give `tokenizer` the template a chat evaluation renders with (`template`, else its own), and return the
    token that ends an assistant's turn. A template that needs tokens the tokenizer lacks is refused: the model
    never saw them."""
    chat.use_template(tokenizer, template, add_tokens=False)
    return chat.end_of_turn_id(tokenizer)


@dataclass
class FittedConversations:
    conversations: list[list]  # each cut after its last assistant turn that fits the positions; dropped: left out
    encoded: list[chat.Encoded]  # their tokens and labels, as `llmtool finetune` trains them (every assistant turn)
    rendered: list[str]  # each whole conversation rendered, before any cut
    cut: int = 0
    dropped: int = 0  # not even their first assistant turn fits


def fit_conversations(tokenizer, conversations: list[list], positions: int | None) -> FittedConversations:
    """Conversations encoded as `llmtool finetune` encodes them with data.max_length at the model's positions:
    one too long is cut after the last assistant turn that fits, one whose first assistant turn does not fit is
    dropped (and counted)."""
    fitted = FittedConversations([], [], [])
    for whole in conversations:
        encoded = chat.encode(tokenizer, whole, "assistant", positions)
        if encoded is None:
            fitted.dropped += 1
            continue
        messages = whole
        if encoded.cut:
            fitted.cut += 1
            last = [i for i, turn in enumerate(whole) if turn["role"] == chat.ASSISTANT][len(encoded.turns) - 1]
            messages = whole[:last + 1]
        fitted.conversations.append(messages)
        fitted.encoded.append(encoded)
        fitted.rendered.append(chat.render(tokenizer, whole))
    if not fitted.encoded:
        raise LlmtoolError(f"no conversation fits the model's {positions} positions: not even the first assistant "
                           "turn of any")
    return fitted


def chat_perplexity(model, tokenizer, fitted: FittedConversations, batch_size: int = 8,
                    device=None) -> PerplexityReport:
    """Perplexity of a causal LM on the assistant's turns of conversations (fit_conversations): the loss over
    exactly the tokens (and labels) that `llmtool finetune` trains (chat.encode: each assistant turn, its end
    token included), every such token weighing the same, so that it equals the perplexity finetune reports on the
    same validation data. Bits per byte over those tokens' UTF-8 bytes (token_bytes). Conversations run in
    length-sorted batches, padded on the right."""
    import torch
    import torch.nn.functional as F

    device = device or next(model.parameters()).device
    encoded = fitted.encoded
    scored_bytes = 0
    for text, one in zip(fitted.rendered, encoded):
        _, sizes = token_bytes(tokenizer, text)  # the tokens of chat.encode, before any cut
        scored_bytes += sum(size for size, label in zip(sizes[1:], one.labels[1:]) if label != chat.IGNORE)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    token_nll: list[torch.Tensor] = []
    model.eval()
    with torch.inference_mode():
        for batch in data_lib.sorted_batches([len(one.input_ids) for one in encoded], batch_size):
            width = max(len(encoded[i].input_ids) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), chat.IGNORE, dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(encoded[i].input_ids)
                input_ids[row, :n] = torch.tensor(encoded[i].input_ids)
                attention[row, :n] = 1
                labels[row, :n] = torch.tensor(encoded[i].labels)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                           use_cache=False).logits[:, :-1].float()
            targets = labels[:, 1:].reshape(-1).to(device)
            losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets, ignore_index=chat.IGNORE,
                                     reduction="none")
            token_nll.append(losses[targets != chat.IGNORE].double().cpu())
    return _report(torch.cat(token_nll), sum(len(one.input_ids) for one in encoded), scored_bytes, context=None,
                   stride=None, windows=None, method="assistant turns")


@dataclass
class ChatReplies:
    replies: list[str]  # the model's reply to what comes before each assistant turn, in order, stripped
    references: list[str]  # each of those turns' content, stripped
    unfinished: int  # replies that used their whole token budget without the end-of-turn token


def chat_replies(lm, conversations: list[list], end_id: int, max_new_tokens: int,
                 batch_size: int = 8) -> ChatReplies:
    """The greedy reply of a chat model (its tokenizer given its template: chat_end_id) to every assistant turn of
    `conversations`, from the conversation before that turn rendered with the generation prompt, stopping at the
    template's end-of-turn token `end_id`; at most `max_new_tokens` each, fewer where the model's positions leave
    fewer after the conversation so far (`conversations` fit them: fit_conversations)."""
    tokenizer, positions = lm.tokenizer, position_limit(lm.model.config)
    prompts, references = [], []
    for messages in conversations:
        for i, turn in enumerate(messages):
            if turn["role"] == chat.ASSISTANT:
                text = chat.render(tokenizer, messages[:i], add_generation_prompt=True)
                prompts.append(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
                references.append(turn["content"].strip())
    # The whole conversation fits the positions, so what comes before one of its turns leaves room for a token.
    budgets = [min(max_new_tokens, positions - len(ids)) if positions else max_new_tokens for ids in prompts]
    replies: list[list[int]] = [[] for _ in prompts]
    for budget in sorted(set(budgets)):  # generate_ids takes one budget for all its prompts
        mine = [i for i, b in enumerate(budgets) if b == budget]
        settings = GenerationSettings(max_new_tokens=budget, batch_size=batch_size, do_sample=False,
                                      stop_token_ids=[end_id])  # a reply ends with its turn
        for i, ids in zip(mine, generate_ids(lm, [prompts[i] for i in mine], settings)):
            replies[i] = ids[0]
    unfinished = sum(end_id not in ids and len(ids) >= budget for ids, budget in zip(replies, budgets))
    texts = [tokenizer.decode(ids[:ids.index(end_id)] if end_id in ids else ids, skip_special_tokens=True).strip()
             for ids in replies]
    return ChatReplies(replies=texts, references=references, unfinished=unfinished)


# ---------------------------------------------------------------- one model on one data set


def reference_ids(labels: list, ids: dict[str, int], source: str = "the data") -> list[int]:
    """The label id of each of the data's labels, through `ids` (how data may write each label:
    classification.label_ids); labels the model does not know are one error that names `source` (where the labels
    come from) and lists the model's labels."""
    unknown = sorted({str(label) for label in labels} - set(ids))
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:5]) + (f" and {len(unknown) - 5} more"
                                                                   if len(unknown) > 5 else "")
        names = sorted(ids, key=lambda name: (ids[name], name.isdigit()))
        raise SettingError(f"{literal(source)} has labels the model does not know in its {{label_column}}: "
                           f"{literal(shown)}; the "
                           f"model's labels are: {', '.join(dict.fromkeys(names))}", exit_code=LlmtoolError.exit_code)
    return [ids[str(label)] for label in labels]


@dataclass
class ModelEvaluation:
    scores: dict  # metric outputs by name (rouge gives rouge1, rouge2, rougeL, rougeLsum; bleu its details too)
    perplexity: PerplexityReport | None
    rows: int
    truncated: int = 0  # inputs cut to the model's length: classifier texts; conversations, after an assistant turn
    dropped: int | None = None  # chat: conversations whose first assistant turn is past the model's positions
    turns: int | None = None  # chat: assistant turns replied to
    unfinished: int | None = None  # chat: replies that used their whole budget without the end-of-turn token


def evaluate_loaded(lm, names: list[str], rows: dict[str, list], context: int | None = None,
                    stride: int | None = None, batch_size: int | None = None, max_new_tokens: int = 64,
                    window_kind: str = SLIDING, task: str | None = None,
                    chat_template: str | None = None) -> ModelEvaluation:
    """The metrics `names` (each fitting the task: see EVAL_METRICS) of a loaded model on `rows`, the columns its
    task reads (TASK_INPUTS). The task is the model's own, or `task` CHAT for a causal LM on conversations (rows'
    "messages", as `as_conversations` gives them), rendered with `chat_template` (default: the tokenizer's own). A
    causal LM's perplexity: with sliding windows, over the texts joined by newlines (one text: itself); with
    lm-eval windows (`window_kind`), of each text on its own, as lm-evaluation-harness scores documents.
    `batch_size`: windows (default: default_window_batch) or rows (default: 8) per forward pass."""
    task = task or lm.task
    n_rows = len(rows[TASK_INPUTS[task][0]])
    scores: dict = {}
    report = None
    truncated = 0
    dropped = turns = unfinished = None
    if task == CHAT:
        end_id = chat_end_id(lm.tokenizer, chat_template)
        fitted = fit_conversations(lm.tokenizer, rows["messages"], position_limit(lm.model.config))
        truncated, dropped = fitted.cut, fitted.dropped
        if "perplexity" in names:
            report = chat_perplexity(lm.model, lm.tokenizer, fitted, batch_size or 8, lm.device)
        generated = [n for n in names if n in GENERATION_METRICS]
        if generated:
            replies = chat_replies(lm, fitted.conversations, end_id, max_new_tokens, batch_size or 8)
            scores.update(generation_scores(replies.replies, replies.references, generated))
            turns, unfinished = len(replies.replies), replies.unfinished
    elif task == CAUSAL_LM and window_kind == LM_EVAL:
        report = lm_eval_perplexity(lm.model, lm.tokenizer, rows["text"], context, batch_size, lm.device)
    elif task == CAUSAL_LM:
        report = perplexity(lm.model, lm.tokenizer, "\n".join(rows["text"]), context, stride, batch_size, lm.device)
    elif task == CLASSIFICATION:
        references = reference_ids(rows["label"], classification.label_ids(lm))
        result = classification.classify(lm, rows["text"], batch_size=batch_size or 8)
        predictions = [p.index(max(p)) for p in result.probabilities]
        scores.update(classification_scores(predictions, references, names))
        truncated = result.truncated
    else:
        if "perplexity" in names:
            report = seq2seq_perplexity(lm.model, lm.tokenizer, rows["source"], rows["target"], batch_size or 8,
                                        lm.device)
        generated = [n for n in names if n in GENERATION_METRICS]
        if generated:
            sources = lm.tokenizer(rows["source"], verbose=False)["input_ids"]
            answers = generate_answers(lm.model, lm.tokenizer, sources, max_new_tokens, batch_size or 8,
                                       lm.device)
            scores.update(generation_scores(answers, rows["target"], generated))
    if report is not None:
        harness = {key: getattr(report, key) for key in ("word_perplexity", "byte_perplexity")
                   if getattr(report, key) is not None}
        scores = {"perplexity": report.perplexity, "bits_per_byte": report.bits_per_byte, **harness, **scores}
    return ModelEvaluation(scores=scores, perplexity=report, rows=n_rows, truncated=truncated, dropped=dropped,
                           turns=turns, unfinished=unfinished)


# ---------------------------------------------------------------- retrieval (llmtool eval --index)

# recall@K: the share of a query's relevant documents among its K best, averaged over queries; mrr@K: the
# reciprocal rank of its first relevant document in its K best (0 when none is), averaged. "mrr" is mrr@10.
RETRIEVAL_METRIC = re.compile(r"(recall|mrr)(?:@([1-9][0-9]*))?")
DEFAULT_RETRIEVAL_METRICS = ("recall@1", "recall@5", "recall@10", "mrr")
MRR_DEPTH = 10


def retrieval_metric_names(given: list[str]) -> list[str]:
    """The retrieval metrics asked for (repeated or comma-separated), each recall@K or mrr[@K]."""
    names = [name.strip().lower() for item in given for name in item.split(",") if name.strip()]
    for name in names:
        match = RETRIEVAL_METRIC.fullmatch(name)
        if match is None or (match[1] == "recall" and match[2] is None):
            raise UsageError(f"unknown retrieval --metric '{name}'; use recall@K (K a whole number, e.g. recall@5) "
                             "or mrr (mrr@K: within the K best; mrr alone is mrr@10)")
    return list(dict.fromkeys(names or DEFAULT_RETRIEVAL_METRICS))


def _depth(name: str) -> int:
    match = RETRIEVAL_METRIC.fullmatch(name)
    return int(match[2]) if match[2] else MRR_DEPTH


def retrieval_depth(names: list[str]) -> int:
    """How many of the best documents the metrics `names` look at."""
    return max(_depth(name) for name in names)


def retrieval_scores(ranked: list[list[str]], relevant: list[list[str]], names: list[str]) -> dict:
    """Each metric of `names` (retrieval_metric_names) over queries: `ranked` ids, best first, against the ids
    `relevant` to each."""
    scores = {}
    for name in names:
        depth, total = _depth(name), 0.0
        for found, wanted in zip(ranked, relevant):
            wanted = set(wanted)
            if name.startswith("recall"):
                total += len(wanted.intersection(found[:depth])) / len(wanted)
            else:
                total += next((1 / rank for rank, i in enumerate(found[:depth], 1) if i in wanted), 0.0)
        scores[name] = total / len(ranked)
    return scores
