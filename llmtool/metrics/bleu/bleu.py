"""Corpus BLEU, computed by `sacrebleu` (an `evaluate` module shipped with llmtool)."""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus-level BLEU of the predictions against one reference each: sacrebleu.corpus_bleu.
Scale: sacrebleu's, 0 to 100, for "bleu" and for the four n-gram "precisions" (the hub `bleu` module uses 0 to 1).
Returns {"bleu": float, "precisions": [4 floats], "brevity_penalty": float, "length_ratio": float,
"translation_length": int, "reference_length": int} (lengths in tokens); nan scores when there are no rows."""

_KWARGS = """predictions, references: lists of str, one reference per prediction (detokenized text).
tokenize (str, default "13a"): sacrebleu's tokenizer, e.g. "13a", "intl", "zh", "ja-mecab", "char", "none".
lowercase (bool, default False): compare lowercased text.
smooth_method (str, default "exp"): "none", "floor", "add-k" or "exp"."""


class Bleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Post, A Call for Clarity in Reporting BLEU Scores, WMT 2018.",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False, smooth_method="exp"):
        if not references:  # sacrebleu fails on an empty corpus
            nan = float("nan")
            return {"bleu": nan, "precisions": [nan] * 4, "brevity_penalty": nan, "length_ratio": nan,
                    "translation_length": 0, "reference_length": 0}
        result = sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenize, lowercase=lowercase,
                                       smooth_method=smooth_method)
        return {"bleu": float(result.score), "precisions": [float(p) for p in result.precisions],
                "brevity_penalty": float(result.bp), "length_ratio": float(result.ratio),
                "translation_length": int(result.sys_len), "reference_length": int(result.ref_len)}
