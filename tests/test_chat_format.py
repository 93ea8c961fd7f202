"""Conversations rendered with a chat template and their trained tokens (llmtool/chat.py): token-exact masks for a
template with generation markers (chatml) and one without (zephyr), the end token trained, no double BOS, and
the checks that refuse a conversation that would teach nothing or never to stop."""

import pytest

from llmtool import chat, models
from llmtool.errors import LlmtoolError, SettingError

TWO_TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is two plus six?"},
    {"role": "assistant", "content": "eight"},
    {"role": "user", "content": "And three minus one?"},
    {"role": "assistant", "content": "two"},
]


@pytest.fixture
def tokenizer(tiny_gpt2):
    return models.load_tokenizer(str(tiny_gpt2))


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def trained_text(tokenizer, encoded):
    """The trained tokens, decoded run by run."""
    runs, run = [], []
    for label in [*encoded.labels, chat.IGNORE]:
        if label != chat.IGNORE:
            run.append(label)
        elif run:
            runs.append(tokenizer.decode(run))
            run = []
    return runs


@pytest.mark.parametrize("template, end", [("chatml", "<|im_end|>"), ("zephyr", "<|endoftext|>\n")])
def test_only_the_assistant_turns_and_their_end_tokens_train(tokenizer, template, end):
    chat.use_template(tokenizer, template)
    encoded = chat.encode(tokenizer, TWO_TURNS)
    assert encoded.input_ids == ids(tokenizer, chat.render(tokenizer, TWO_TURNS))  # rendered once, tokenized once
    assert trained_text(tokenizer, encoded) == [f"eight{end}", f"two{end}"]
    for start, stop in encoded.turns:  # token-exact: each span's labels are its ids, and nothing else trains
        assert encoded.labels[start:stop] == encoded.input_ids[start:stop]
    inside = {i for start, stop in encoded.turns for i in range(start, stop)}
    assert all(label == chat.IGNORE for i, label in enumerate(encoded.labels) if i not in inside)
    assert chat.mask_problem(encoded, chat.end_of_turn_id(tokenizer), "assistant") is None


@pytest.mark.parametrize("template", ["chatml", "zephyr"])
def test_train_on_last_assistant_and_all(tokenizer, template):
    chat.use_template(tokenizer, template)
    last = chat.encode(tokenizer, TWO_TURNS, train_on="last_assistant")
    assert len(trained_text(tokenizer, last)) == 1 and trained_text(tokenizer, last)[0].startswith("two")
    everything = chat.encode(tokenizer, TWO_TURNS, train_on="all")
    assert everything.labels == everything.input_ids


def test_chatml_adds_its_markers_once_and_as_single_tokens(tokenizer):
    size = len(tokenizer)
    assert chat.use_template(tokenizer, "chatml") == ["<|im_start|>", "<|im_end|>"]
    assert len(tokenizer) == size + 2
    assert chat.use_template(tokenizer, "chatml") == []  # already there
    assert len(ids(tokenizer, "<|im_start|>user")) == 1 + len(ids(tokenizer, "user"))
    assert tokenizer.convert_ids_to_tokens(chat.end_of_turn_id(tokenizer)) == "<|im_end|>"


def test_no_double_bos(tiny_bert):
    """A tokenizer that adds its own start token ([CLS] here) and a template that writes it: one, not two."""
    tokenizer = models.load_tokenizer(str(tiny_bert))
    tokenizer.chat_template = ("{{ cls_token }}{% for m in messages %}{{ m['role'] }}: {% if m['role'] == 'assistant' "
                               "%}{% generation %}{{ m['content'] }}{{ sep_token }}{% endgeneration %}{% else %}"
                               "{{ m['content'] }}{{ sep_token }}{% endif %}{% endfor %}")
    text = chat.render(tokenizer, TWO_TURNS)
    assert tokenizer(text)["input_ids"].count(tokenizer.cls_token_id) == 2  # what a plain tokenizer call would do
    encoded = chat.encode(tokenizer, TWO_TURNS)
    assert encoded.input_ids.count(tokenizer.cls_token_id) == 1 and encoded.input_ids[0] == tokenizer.cls_token_id


def test_a_template_without_an_end_token_is_refused(tokenizer):
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(LlmtoolError, match="ends an assistant turn with no special token"):
        chat.end_of_turn_id(tokenizer)


def test_an_untrained_end_token_and_an_empty_mask_are_named(tokenizer):
    chat.use_template(tokenizer, "chatml")
    end = chat.end_of_turn_id(tokenizer)
    encoded = chat.encode(tokenizer, TWO_TURNS)
    start, stop = encoded.turns[1]
    encoded.labels[stop - 1] = chat.IGNORE  # the second turn's <|im_end|> masked, as pad = EOS collators do
    assert chat.mask_problem(encoded, end, "assistant") == ("assistant turn 2's end token is not trained (the model "
                                                            "would not learn to stop)")
    encoded.labels = [chat.IGNORE] * len(encoded.labels)
    assert chat.mask_problem(encoded, end, "assistant").startswith("no token is trained")


@pytest.mark.parametrize("messages, problem", [
    ("hello", "messages must be a non-empty list of {role, content} turns (got str)"),
    ([], "messages must be a non-empty list of {role, content} turns (got list)"),
    ([{"role": "user"}], "turn 1 must have a role and a content (got dict)"),
    ([{"role": "robot", "content": "x"}], "turn 1 has role 'robot'; roles are system, user, assistant"),
    ([{"role": "user", "content": 3}], "turn 1's content must be text (got int)"),
    ([{"role": "user", "content": "hi"}], "it has no assistant turn: there is nothing to train on"),
])
def test_conversation_shape_problems(messages, problem):
    assert chat.conversation_problem(messages) == problem


def test_no_template_and_none_given_names_the_setting(tokenizer):
    tokenizer.chat_template = None
    with pytest.raises(SettingError, match="no chat template: name one with chat_template"):
        chat.use_template(tokenizer, None)
    with pytest.raises(SettingError, match="neither a shipped template"):
        chat.use_template(tokenizer, "no-such-template")


def test_a_template_that_fails_to_render_is_one_line(tokenizer):
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(LlmtoolError, match="the chat template failed to render: .*roles must alternate"):
        chat.encode(tokenizer, TWO_TURNS)
