"""Task names, in one place for every layer: models pick an Auto class by task, data is tokenized and evaluation
scored by task, recipes and commands name them."""

CAUSAL_LM = "causal-lm"
SEQ2SEQ_LM = "seq2seq-lm"
CLASSIFICATION = "classification"
TASKS = (CAUSAL_LM, SEQ2SEQ_LM, CLASSIFICATION)
