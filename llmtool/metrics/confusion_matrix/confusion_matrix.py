"""Confusion matrix, computed by scikit-learn's `confusion_matrix` (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate
from sklearn.metrics import confusion_matrix

_DESCRIPTION = """Row i, column j counts the rows whose reference is label i and prediction is label j:
sklearn.metrics.confusion_matrix. Returns {"confusion_matrix": list of lists of int}; [] when there are no rows
(a matrix of zeros if labels are given)."""

_KWARGS = """predictions, references: lists of int labels, one per row.
labels (list of int, optional): the labels, in row/column order; default: the sorted labels seen in either list."""


class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, 2011.",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.confusion_matrix.html"],
        )

    def _compute(self, predictions, references, labels=None):
        if not references:  # scikit-learn refuses empty input
            return {"confusion_matrix": [[0] * len(labels or []) for _ in labels or []]}
        return {"confusion_matrix": confusion_matrix(references, predictions, labels=labels).tolist()}
