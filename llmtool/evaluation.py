"""Evaluation that every verb shares: per-task loss and metrics over tokenized rows (finetune's validation, eval,
distill), classification scores from predictions, generated answers scored against targets, and the perplexity
of a text by a sliding window. Plain arguments in, plain numbers out; no recipe, no CLI."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from llmtool import data as data_lib
from llmtool.tasks import CAUSAL_LM, CLASSIFICATION, SEQ2SEQ_LM

# What finetune reports after each evaluation, per task (besides the loss).
TASK_METRICS = {CLASSIFICATION: ("accuracy", "f1"), CAUSAL_LM: ("perplexity",), SEQ2SEQ_LM: ("exact_match",)}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1")
GENERATION_METRICS = ("exact_match", "rouge", "bleu")


def loss_and_logits(task: str, model, batch: dict):
    """Sum of the per-target cross-entropy losses of a batch (padding excluded), and the logits."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    labels = batch["labels"]
    logits = model(**inputs).logits
    if task == CLASSIFICATION:
        return F.cross_entropy(logits.float(), labels, reduction="sum"), logits
    scored = logits[:, :-1] if task == CAUSAL_LM else logits
    targets = labels[:, 1:] if task == CAUSAL_LM else labels
    loss = F.cross_entropy(scored.float().reshape(-1, scored.size(-1)), targets.reshape(-1), ignore_index=-100,
                           reduction="sum")
    return loss, logits


def classification_scores(predictions: list[int], references: list[int], names=CLASSIFICATION_METRICS,
                          label_ids: list[int] | None = None, per_class: bool = False) -> dict:
    """Scores of predicted label ids against the true ones through the shipped metric modules (scikit-learn):
    accuracy, and precision/recall/F1 averaged over labels (macro). With `per_class`, each of those for every
    label in `label_ids` too, and the confusion matrix (rows: true label, columns: predicted)."""
    from llmtool import metrics

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


def generation_scores(answers: list[str], targets: list[str], names=("exact_match",)) -> dict:
    """Generated answers scored against target texts: exact_match, rouge (rouge-score), bleu (sacrebleu)."""
    from llmtool import metrics

    scores: dict = {}
    for name in names:
        scores.update(metrics.load(name).compute(predictions=answers, references=targets))
    return scores


def generate_answers(model, tokenizer, sources: list[list[int]], max_new_tokens: int, batch_size: int,
                     device) -> list[str]:
    """Greedy answers of an encoder-decoder to tokenized sources, through the shared generation path."""
    from llmtool.generation import GenerationSettings, generate_ids
    from llmtool.models import LoadedModel

    lm = LoadedModel(model=model, tokenizer=tokenizer, task=SEQ2SEQ_LM, device=device, source="")
    settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=False)
    return tokenizer.batch_decode([ids[0] for ids in generate_ids(lm, sources, settings)], skip_special_tokens=True)


def evaluate_model(task: str, model, tokenizer, dataset, collator, batch_size: int, accelerator,
                   max_new_tokens: int = 64) -> dict:
    """Loss per target over tokenized rows (as `data.tokenize` makes them), plus the task's metrics
    (TASK_METRICS): each process takes a share of the rows, the numbers are those of all rows. Seq2seq answers
    are generated greedily, at most `max_new_tokens` each."""
    import torch
    from accelerate.utils import gather_object

    model.eval()
    lengths, n_targets = list(dataset["length"]), list(dataset["n_targets"])
    inputs = data_lib.model_inputs(dataset)
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    targets = torch.zeros((), dtype=torch.float64, device=accelerator.device)
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
    totals = accelerator.reduce(torch.stack([loss_sum, targets]), "sum")
    loss_value = (totals[0] / totals[1]).item()
    results = {"eval_loss": loss_value}
    if task == CLASSIFICATION:
        results.update(classification_scores(gather_object(predictions), gather_object(references),
                                              TASK_METRICS[task]))
    elif task == CAUSAL_LM:
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


@dataclass
class PerplexityReport:
    perplexity: float
    nll: float  # mean negative log-likelihood per scored token (nats)
    stderr: float  # standard error of that mean
    perplexity_interval: tuple[float, float]  # exp(nll -/+ 1.96 stderr): a 95% interval
    bits_per_byte: float  # total NLL in bits over the text's UTF-8 bytes: comparable across tokenizers
    tokens: int  # tokens in the text
    scored_tokens: int  # tokens predicted: all but the first, and (windows that do not overlap) each window's first
    bytes: int
    context: int
    stride: int
    windows: int

    def to_dict(self) -> dict:
        return asdict(self)


def windows(n_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window: every window sees up to `context` tokens and scores
    only those that no earlier window scored, so each token after the first is scored once, with up to
    context - stride tokens of history (the strided method of the transformers documentation)."""
    spans, previous_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + context, n_tokens)
        spans.append((begin, end, max(previous_end, begin + 1)))
        previous_end = end
        if end == n_tokens:
            break
    return spans


def perplexity(model, tokenizer, text: str, context: int | None = None, stride: int | None = None,
               batch_size: int = 8, device=None) -> PerplexityReport:
    """Perplexity of a causal LM on `text`, by a sliding window over the whole tokenized text: token-weighted
    NLL (not a mean of window means), context tokens masked, windows batched (the value does not depend on
    `batch_size`). `context` defaults to the model's positions, `stride` to the context (no overlap)."""
    import torch
    import torch.nn.functional as F

    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    context = context or limit or 1024
    stride = stride or context
    if limit and context > limit:
        raise ValueError(f"context {context} is past the model's {limit} positions")
    if not 0 < stride <= context:
        raise ValueError(f"stride must be between 1 and the context ({context}), got {stride}")
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if len(ids) < 2:
        raise ValueError("the text is shorter than two tokens: nothing to predict")
    device = device or next(model.parameters()).device
    spans = windows(len(ids), context, stride)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    token_nll: list[torch.Tensor] = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(spans), batch_size):
            group = spans[start:start + batch_size]
            width = max(end - begin for begin, end, _ in group)
            input_ids = torch.full((len(group), width), pad, dtype=torch.long)
            attention = torch.zeros((len(group), width), dtype=torch.long)
            labels = torch.full((len(group), width), -100, dtype=torch.long)
            for row, (begin, end, scored_from) in enumerate(group):
                window = torch.tensor(ids[begin:end])
                input_ids[row, :end - begin] = window
                attention[row, :end - begin] = 1
                labels[row, scored_from - begin:end - begin] = window[scored_from - begin:]
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
            targets = labels[:, 1:].to(device)
            losses = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1),
                                     ignore_index=-100, reduction="none")
            token_nll.append(losses[targets.reshape(-1) != -100].double().cpu())
    nll = torch.cat(token_nll)
    count = nll.numel()
    mean = nll.mean().item()
    stderr = (nll.std(unbiased=True).item() / math.sqrt(count)) if count > 1 else float("nan")
    n_bytes = len(text.encode("utf-8"))
    return PerplexityReport(
        perplexity=math.exp(mean), nll=mean, stderr=stderr,
        perplexity_interval=(math.exp(mean - 1.96 * stderr), math.exp(mean + 1.96 * stderr)),
        bits_per_byte=nll.sum().item() / (math.log(2) * n_bytes), tokens=len(ids), scored_tokens=count,
        bytes=n_bytes, context=context, stride=stride, windows=len(spans),
    )
