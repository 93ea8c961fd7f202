"""Conversations: their shape checked, rendered with a chat template, and which of their tokens a chat fine-tune
trains (the assistant's, each turn's end token included), for the finetune task `chat`, `llmtool chat` and eval.

A template is the tokenizer's own `chat_template`, or one of SHIPPED_TEMPLATES (or a Jinja file) named by
`model.chat_template`; the one used is saved with the tokenizer, so everything after training renders as
training did. The trained spans come from the template's `{% generation %}` markers where it has them, otherwise
from rendering each conversation's prefixes; either way the whole conversation is rendered once and tokenized
once, without the tokenizer's own special tokens (the template has put in what it wants: no double BOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from llmtool.errors import LlmtoolError, SettingError, literal

ROLES = ("system", "user", "assistant")
ASSISTANT = "assistant"
TRAIN_ON = ("assistant", "all", "last_assistant")  # data.train_on: what the loss counts
# Shipped templates, by name: ChatML (its turn markers added to a tokenizer that lacks them) and Zephyr's (plain
# text role headers; each turn ends with the tokenizer's own end token, so no token is added).
SHIPPED_TEMPLATES = ("chatml", "zephyr")
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
IGNORE = -100  # a label the loss skips


def template_text(name: str) -> str:
    """The Jinja source of a shipped template (by name) or of a template file."""
    if name in SHIPPED_TEMPLATES:
        return resources.files("llmtool.assets").joinpath("chat_templates", f"{name}.jinja").read_text("utf-8")
    path = Path(name).expanduser()
    if not path.is_file():
        raise SettingError(f"{{chat_template}} '{literal(name)}' is neither a shipped template "
                           f"({', '.join(SHIPPED_TEMPLATES)})"
                           " nor a Jinja file; name one of those, or the path of a template file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SettingError(f"{{chat_template}} '{literal(name)}' is not UTF-8 text (byte {err.start}); re-save it as "
                           "UTF-8")


def use_template(tokenizer, name: str | None, add_tokens: bool = True) -> list[str]:
    """Give `tokenizer` the template to render with: `name` (shipped or a file) when given, else its own. Returns
    the special tokens added for it (ChatML's markers, where the tokenizer lacks them): the model's embeddings must
    grow to match. Without `add_tokens` (a model run as it was trained, which never saw such tokens) a template
    that needs them is refused."""
    if name is None:
        if not getattr(tokenizer, "chat_template", None):
            raise SettingError("this model's tokenizer has no chat template: name one with {chat_template} "
                               f"({' or '.join(SHIPPED_TEMPLATES)}, or a Jinja file)")
        return []
    source = template_text(name)
    added = []
    if "<|im_start|>" in source:
        vocabulary = tokenizer.get_vocab()
        added = [token for token in CHATML_TOKENS if token not in vocabulary]
        if added and not add_tokens:
            raise SettingError(f"{{chat_template}} {literal(name)} needs tokens this model's tokenizer lacks "
                               f"({', '.join(added)}): the model never saw them; name a template it was trained "
                               "with, or one that adds none (zephyr)")
        if added:
            tokenizer.add_special_tokens({"additional_special_tokens": added})
    tokenizer.chat_template = source
    return added


def conversation_problem(messages) -> str | None:
    """What is wrong with one conversation's shape (a list of {role, content}, roles known, an assistant turn),
    or None."""
    if not isinstance(messages, list) or not messages:
        return f"messages must be a non-empty list of {{role, content}} turns (got {_kind(messages)})"
    for n, turn in enumerate(messages, start=1):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            return f"turn {n} must have a role and a content (got {_kind(turn)})"
        if turn["role"] not in ROLES:
            return f"turn {n} has role '{turn['role']}'; roles are {', '.join(ROLES)}"
        if not isinstance(turn["content"], str):
            return f"turn {n}'s content must be text (got {_kind(turn['content'])})"
    if not any(turn["role"] == ASSISTANT for turn in messages):
        return "it has no assistant turn: there is nothing to train on"
    return None


def prompt_problem(messages) -> str | None:
    """What is wrong with a conversation that a model is to answer (`llmtool chat`): its turns' shape, as
    `conversation_problem` checks it, and a user turn last; or None."""
    if not isinstance(messages, list) or not messages:
        return conversation_problem(messages)
    problem = conversation_problem([*messages, {"role": ASSISTANT, "content": ""}])  # the reply to come
    if problem is None and messages[-1]["role"] != "user":
        return f"its last turn is the {messages[-1]['role']}'s; end with the user turn to be answered"
    return problem


def _kind(value) -> str:
    return type(value).__name__ if value is not None else "null"


def as_messages(row: dict, messages: str, prompt: str, completion: str) -> list:
    """A data row's conversation: its `messages` column, else its prompt and completion as one exchange."""
    if messages in row:
        return row[messages]
    return [{"role": "user", "content": row[prompt]}, {"role": ASSISTANT, "content": row[completion]}]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE where the loss does not count
    turns: list[tuple[int, int]]  # the (start, end) tokens of each assistant turn, its end token included
    cut: bool = False  # later turns were cut off to fit a length


def render(tokenizer, messages: list, add_generation_prompt: bool = False) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as err:  # jinja2's errors, and the template's own raise_exception
        raise LlmtoolError(f"the chat template failed to render: {type(err).__name__}: {err}") from None


def _assistant_spans(tokenizer, messages: list) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation, and the character span of each assistant turn in it (its content and what the
    template ends the turn with), found by rendering the prefixes."""
    text = render(tokenizer, messages)
    spans = []
    for i, turn in enumerate(messages):
        if turn["role"] != ASSISTANT:
            continue
        start = len(render(tokenizer, messages[:i], add_generation_prompt=True)) if i else 0
        end = len(render(tokenizer, messages[:i + 1]))
        if not text.startswith(render(tokenizer, messages[:i + 1])) or start > end:
            raise LlmtoolError("the chat template renders a conversation's beginning differently from the whole "
                               "conversation, so the assistant's tokens cannot be found; give it {% generation %} "
                               "markers around the assistant's turns")
        spans.append((start, end))
    return text, spans


def has_generation_markers(tokenizer) -> bool:
    return "{% generation %}" in (tokenizer.chat_template or "").replace("{%-", "{%").replace("-%}", "%}")


def encode(tokenizer, messages: list, train_on: str = "assistant", max_length: int | None = None) -> Encoded | None:
    """A conversation's token ids and labels: the tokens of the turns `train_on` names keep their ids as labels,
    every other token is IGNORE. Past `max_length` tokens it is cut after the last assistant turn that fits
    (None when not even the first one fits); the tokenizer does not warn of its length."""
    if has_generation_markers(tokenizer):
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, tokenizer_kwargs={"verbose": False})
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        turns = _runs(mask)
    else:
        text, spans = _assistant_spans(tokenizer, messages)
        out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids = list(out["input_ids"])
        turns = [[i for i, (a, b) in enumerate(out["offset_mapping"]) if b > start and a < end]
                 for start, end in spans]
        turns = [(t[0], t[-1] + 1) for t in turns if t]
    cut = max_length is not None and len(ids) > max_length
    if cut:
        turns = [(start, end) for start, end in turns if end <= max_length]
        if not turns:
            return None
        ids = ids[:turns[-1][1]]
    if train_on == "all":
        trained = [(0, len(ids))]
    elif train_on == "last_assistant":
        trained = turns[-1:]
    else:
        trained = turns
    labels = [IGNORE] * len(ids)
    for start, end in trained:
        labels[start:end] = ids[start:end]
    return Encoded(input_ids=ids, labels=labels, turns=turns, cut=cut)


def _runs(mask: list[int]) -> list[tuple[int, int]]:
    """The (start, end) of each run of ones in a 0/1 mask."""
    runs, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            runs.append((start, i))
            start = None
    return runs


def end_of_turn_id(tokenizer) -> int:
    """The token the template ends an assistant turn with: the first special token it renders after the
    assistant's words. Generation stops there; training must teach it."""
    probe = [{"role": "user", "content": "hello"}, {"role": ASSISTANT, "content": "hi"}]
    before = render(tokenizer, probe[:1], add_generation_prompt=True)
    after = render(tokenizer, probe)[len(before) + len("hi"):]
    special = set(tokenizer.all_special_ids)
    for token in tokenizer(after, add_special_tokens=False)["input_ids"]:
        if token in special:
            return token
    raise LlmtoolError("the chat template ends an assistant turn with no special token, so a model could never "
                       "learn where its reply stops; use a template that closes each turn with one (chatml, zephyr)")


def mask_problem(encoded: Encoded, end_id: int, train_on: str) -> str | None:
    """Why a conversation's labels would teach the wrong thing: no trained token, or an assistant turn whose end
    token is not trained (the model would never stop). None when they are sound."""
    if all(label == IGNORE for label in encoded.labels):
        return "no token is trained (its assistant turns render to nothing)"
    turns = encoded.turns[-1:] if train_on == "last_assistant" else encoded.turns
    for n, (start, end) in enumerate(turns, start=1):
        if end_id not in encoded.labels[start:end]:
            return f"assistant turn {n}'s end token is not trained (the model would not learn to stop)"
    return None


def marked(tokenizer, encoded: Encoded, start: str = "[[", end: str = "]]") -> str:
    """The conversation as text, each run of trained tokens between `start` and `end`."""
    pieces, run, trained = [], [], None
    for token, label in zip([*encoded.input_ids, None], [*encoded.labels, None]):
        now = label is not None and label != IGNORE
        if run and (token is None or now != trained):
            text = tokenizer.decode(run)
            pieces.append(f"{start}{text}{end}" if trained else text)
            run = []
        run.append(token)
        trained = now
    return "".join(pieces)


# How far a conversation's logits may move when packed beside another before packing counts as leaking between
# them: float32 round-off is ~1e-6 here; one conversation seeing another moves them by ~1e-1.
PACKING_TOLERANCE = 1e-4


def packing_leak(model) -> float | None:
    """How much a conversation's logits change when another is packed before it (positions restarting, no
    attention mask, as data packs them), on this model: None when they stay within PACKING_TOLERANCE."""
    import torch

    vocabulary = model.get_input_embeddings().weight.shape[0]
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(vocabulary, (1, n), generator=generator) for n in (5, 7))
    positions = torch.cat([torch.arange(5), torch.arange(7)])[None]
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            packed = model(input_ids=torch.cat([first, second], 1).to(device), position_ids=positions.to(device),
                           use_cache=False).logits[0, 5:]
            alone = model(input_ids=second.to(device), use_cache=False).logits[0]
    finally:
        model.train(training)
    leak = (packed.float() - alone.float()).abs().max().item()
    return leak if leak > PACKING_TOLERANCE else None
