"""Task names, in one place for every layer: models pick an Auto class by task, data is tokenized and evaluation
scored by task, recipes and commands name them."""

CAUSAL_LM = "causal-lm"
SEQ2SEQ_LM = "seq2seq-lm"
CLASSIFICATION = "classification"
CHAT = "chat"  # a causal LM trained on conversations: the loss on the assistant's turns
MASKED_LM = "masked-lm"  # an encoder (BERT style) that predicts the tokens masked in its input
TASKS = (CAUSAL_LM, SEQ2SEQ_LM, CLASSIFICATION, CHAT, MASKED_LM)
CAUSAL_TASKS = (CAUSAL_LM, CHAT)  # decoder-only models, scored on each next token


def model_task(task: str) -> str:
    """The task whose model (Auto class, head, adapter type) a recipe task trains."""
    return CAUSAL_LM if task == CHAT else task
