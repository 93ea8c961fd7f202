"""Accuracy: the fraction of predictions equal to their references (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Fraction of predictions that equal their reference label.",
            citation="",
            inputs_description="predictions: list of int labels; references: list of int labels",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        if not references:
            return {"accuracy": float("nan")}
        correct = sum(int(p == r) for p, r in zip(predictions, references))
        return {"accuracy": correct / len(references)}
