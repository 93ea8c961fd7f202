"""Accuracy, computed by scikit-learn's `accuracy_score` (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """Fraction of predictions equal to their reference label: sklearn.metrics.accuracy_score.
Returns {"accuracy": float}; nan when there are no rows."""

_KWARGS = """predictions, references: lists of int labels, one per row.
normalize (bool, default True): False gives the count of correct rows instead of the fraction.
sample_weight (list of float, optional): a weight per row."""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, 2011.",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        if not references:  # scikit-learn refuses empty input
            return {"accuracy": float("nan")}
        return {"accuracy": float(accuracy_score(references, predictions, normalize=normalize,
                                                 sample_weight=sample_weight))}
