"""ROUGE, computed by Google's `rouge_score` package (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate
from rouge_score import rouge_scorer

_DESCRIPTION = """ROUGE F-measure of each prediction against its reference (rouge_score.rouge_scorer.RougeScorer),
averaged over the rows with equal weight: the hub module's use_aggregator=False, then the mean (no bootstrap).
rougeLsum splits sentences at newlines only; text without "\\n" scores as rougeL.
The default tokenizer lowercases and keeps only a-z and 0-9: text in other scripts scores 0; pass a tokenizer.
Returns {"rouge1": float, ...}, one key per rouge type, each in [0, 1]; nan when there are no rows."""

_KWARGS = """predictions, references: lists of str, one reference per prediction.
rouge_types (list of str, default ["rouge1", "rouge2", "rougeL", "rougeLsum"]): rougeN for any N, rougeL, rougeLsum.
use_stemmer (bool, default False): Porter-stem words before matching.
tokenizer (optional): an object with .tokenize(text) -> list of str, replacing rouge_score's default."""


class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, ROUGE: A Package for Automatic Evaluation of Summaries, ACL workshop, 2004.",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, rouge_types=None, use_stemmer=False, tokenizer=None):
        rouge_types = list(rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"])
        if not references:
            return {kind: float("nan") for kind in rouge_types}
        scorer = rouge_scorer.RougeScorer(rouge_types, use_stemmer=use_stemmer, tokenizer=tokenizer)
        rows = [scorer.score(reference, prediction) for reference, prediction in zip(references, predictions)]
        return {kind: sum(row[kind].fmeasure for row in rows) / len(rows) for kind in rouge_types}
