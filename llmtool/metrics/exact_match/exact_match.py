"""Exact match: the fraction of predictions equal to their reference (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate

_DESCRIPTION = """Fraction of rows whose prediction equals its reference once leading and trailing whitespace is
stripped; case, punctuation and inner whitespace count. No reference package: a plain string comparison.
Returns {"exact_match": float in [0, 1]}; nan when there are no rows."""

_KWARGS = """predictions, references: lists of str, one reference per prediction."""


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if not references:
            return {"exact_match": float("nan")}
        matches = sum(prediction.strip() == reference.strip() for prediction, reference in zip(predictions, references))
        return {"exact_match": matches / len(references)}
