"""Precision, computed by scikit-learn's `precision_score` (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate
from sklearn.metrics import precision_score

_DESCRIPTION = """Precision per label, tp / (tp + fp), then averaged: sklearn.metrics.precision_score.
Unlike the Hugging Face hub module, the default average is "macro" (each label weighs the same), not "binary".
Returns {"precision": float}, or {"precision": [float per label]} with average=None; nan when there are no rows."""

_KWARGS = """predictions, references: lists of int labels, one per row.
average (str or None, default "macro"): "macro", "micro", "weighted", "binary" (scores pos_label only),
    or None for the per-label list (in the order of `labels`, else of the sorted labels seen).
labels (list of int, optional): the labels to score and average over; default: every label in either list.
pos_label (int, default 1): the label scored when average="binary".
sample_weight (list of float, optional): a weight per row.
zero_division (0, 1 or nan; default 0): the score of a label whose denominator is 0 (e.g. never predicted)."""


class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, 2011.",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_score.html"],
        )

    def _compute(self, predictions, references, average="macro", labels=None, pos_label=1, sample_weight=None,
                 zero_division=0):
        if not references:  # scikit-learn refuses empty input
            return {"precision": float("nan") if average is not None else [float("nan")] * len(labels or [])}
        score = precision_score(references, predictions, average=average, labels=labels, pos_label=pos_label,
                                sample_weight=sample_weight, zero_division=zero_division)
        return {"precision": score.tolist() if hasattr(score, "tolist") else float(score)}  # plain floats, not numpy
