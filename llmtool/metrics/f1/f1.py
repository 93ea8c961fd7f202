"""Macro-averaged F1 over the labels seen in references or predictions (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="F1 per label, averaged with equal weight per label (macro).",
            citation="",
            inputs_description="predictions: list of int labels; references: list of int labels",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        labels = sorted(set(references) | set(predictions))
        scores = []
        for label in labels:
            tp = sum(1 for p, r in zip(predictions, references) if p == label and r == label)
            fp = sum(1 for p, r in zip(predictions, references) if p == label and r != label)
            fn = sum(1 for p, r in zip(predictions, references) if p != label and r == label)
            scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        return {"f1": sum(scores) / len(scores) if scores else float("nan")}
