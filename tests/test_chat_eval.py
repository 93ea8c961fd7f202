"""`llmtool eval` of a chat model on conversations: the perplexity of the assistant's turns equals a hand
computation over chat.encode's labels and the perplexity `llmtool finetune` reports for the same validation data;
greedy replies stop at the template's end-of-turn token and are scored against each assistant turn; a missing
template, a template that adds tokens and a bad conversation are one line before any model loads."""

import json
import math

import pytest

from llmtool import chat, config, finetuning, models

from test_chat_finetune import chat_recipe, conversations, write_jsonl
from test_eval import byte_strings, eval_json, one_line_error, only


# A conversation whose second exchange is past 128 tokens: finetune (data.max_length 128) and eval (the model's 128
# positions) cut it after its first.
LONG = {"messages": [{"role": "user", "content": "What is two plus six?"}, {"role": "assistant", "content": "eight"},
                     {"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ten"}]}


@pytest.fixture(scope="module")
def chat_run(tiny_gpt2, tmp_path_factory):
    """The tiny GPT-2 fine-tuned briefly with ChatML (its markers added and trained), with a validation file that
    holds a conversation the run cuts to fit: (run directory, validation file, the run's final evaluation)."""
    tmp_path = tmp_path_factory.mktemp("chat-run")
    validation = write_jsonl(tmp_path / "validation.jsonl", conversations(12, "validation") + [LONG])
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, conversations(48), f"data.validation={validation}",
                                  "data.max_length=128", "train.max_steps=16", "train.lr=5.0e-3", template="chatml")
    result = finetuning.finetune(config.load_recipe(path, overrides))
    return tmp_path / "run", validation, result.eval


def test_perplexity_is_the_loss_over_the_assistant_tokens(run_cli, tiny_gpt2, tmp_path):
    """By hand: each conversation alone through the model, the NLL of every token chat.encode labels (the
    assistant's words and each turn's end token), bits per byte over those tokens' bytes."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = conversations(7, "validation")
    assert any(len(row["messages"]) > 3 for row in rows)  # a conversation of several assistant turns
    data = write_jsonl(tmp_path / "chats.jsonl", rows)
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    tokenizer.chat_template = chat.template_text("zephyr")
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    nll, n_bytes = [], 0
    for row in rows:
        encoded = chat.encode(tokenizer, row["messages"])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(torch.tensor([encoded.input_ids])).logits[0, :-1].double(), dim=-1)
        pieces = byte_strings(tokenizer, encoded.input_ids)
        for position, label in enumerate(encoded.labels[1:]):
            if label != chat.IGNORE:
                nll.append(-log_probs[position, label].item())
                n_bytes += len(pieces[position + 1])
    mean = sum(nll) / len(nll)

    for batch_size in (1, 4):  # padding changes nothing
        result = only(eval_json(run_cli, "--model", tiny_gpt2, "--data", data, "--chat-template", "zephyr",
                                "--metric", "perplexity", "--batch-size", batch_size))
        assert result["task"] == "chat" and result["rows"] == 7
        assert result["scores"]["perplexity"] == pytest.approx(math.exp(mean), rel=1e-5)
        assert result["scores"]["bits_per_byte"] == pytest.approx(sum(nll) / (math.log(2) * n_bytes), rel=1e-5)
        method = result["perplexity_method"]
        assert method["method"] == "assistant turns" and method["scored_tokens"] == len(nll)
        assert method["bytes"] == n_bytes and result["truncated"] == result["dropped"] == 0


def test_perplexity_equals_finetunes_on_its_validation_data(run_cli, chat_run):
    run, validation, reported = chat_run
    done = run_cli("eval", "--json", "--model", run, "--data", validation, "--metric", "perplexity",
                   catch_exceptions=False)
    assert done.exit_code == 0, done.output
    result = only(json.loads(done.stdout))
    assert result["truncated"] == 1 and result["dropped"] == 0  # cut as the run cut it, at 128 tokens
    assert done.stderr.splitlines() == [f"Warning: model '{run}': 1 conversation cut after the last assistant turn "
                                        "that fits its 128 positions, 0 dropped (not even their first assistant "
                                        "turn fits)"]
    assert result["scores"]["perplexity"] == pytest.approx(reported["perplexity"], rel=1e-5)
    assert result["scores"]["nll"] == pytest.approx(reported["eval_loss"], rel=1e-5)
    print(f"eval {result['scores']['perplexity']!r}, finetune {reported['perplexity']!r}, relative difference "
          f"{result['scores']['perplexity'] / reported['perplexity'] - 1:.1e}")


def greedy_conversation(model, tokenizer, messages, end_id, max_new_tokens):
    """`messages` with each assistant turn replaced by the model's greedy reply to the conversation before it (the
    replies so far included), each prompt alone through plain transformers, stopping at `end_id`; and whether
    each reply stopped there."""
    import torch

    answered, stopped = [], []
    for turn in messages:
        if turn["role"] == chat.ASSISTANT:
            text = chat.render(tokenizer, answered, add_generation_prompt=True)
            ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                new = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end_id,
                                     pad_token_id=tokenizer.eos_token_id)[0, ids.shape[1]:].tolist()
            stopped.append(end_id in new)
            new = new[:new.index(end_id)] if end_id in new else new
            turn = {"role": chat.ASSISTANT, "content": tokenizer.decode(new, skip_special_tokens=True).strip()}
        answered.append(turn)
    return answered, stopped


def test_replies_stop_at_the_end_of_turn_and_are_scored_against_each_turn(run_cli, chat_run, tmp_path):
    """References that are the model's own replies score 1.0; others 0.0. The run's template ends a turn with
    <|im_end|>, not GPT-2's end token: a reply that ran on past it would not match."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, _, _ = chat_run
    tokenizer = AutoTokenizer.from_pretrained(run)
    model = AutoModelForCausalLM.from_pretrained(run).eval()
    end_id = chat.end_of_turn_id(tokenizer)
    assert end_id != tokenizer.eos_token_id
    own, stopped = [], []
    for row in conversations(6, "validation"):
        answered, ended = greedy_conversation(model, tokenizer, row["messages"], end_id, 6)
        own.append({"messages": answered})
        stopped += ended
    assert any(stopped) and len(stopped) > 6  # replies that ended at <|im_end|>; a conversation of several turns
    data = write_jsonl(tmp_path / "own.jsonl", own)
    result = only(eval_json(run_cli, "--model", run, "--data", data, "--max-new-tokens", 6, "--batch-size", 4))
    assert result["metrics"] == ["perplexity", "exact_match", "rouge"]
    assert result["scores"]["exact_match"] == 1.0
    assert result["assistant_turns"] == len(stopped) and result["unfinished_replies"] == stopped.count(False)

    for row in own:
        for turn in row["messages"]:
            if turn["role"] == chat.ASSISTANT:
                turn["content"] = f"not {turn['content']}"
    other = write_jsonl(tmp_path / "other.jsonl", own)
    result = only(eval_json(run_cli, "--model", run, "--data", other, "--metric", "exact_match",
                            "--max-new-tokens", 6))
    assert result["scores"] == {"exact_match": 0.0}


def test_prompt_and_completion_columns_are_one_exchange(run_cli, tiny_gpt2, tmp_path):
    pairs = [{"prompt": "What is two plus six?", "completion": "eight"},
             {"prompt": "Name a colour.", "completion": "red"}]
    as_pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"question": p["prompt"], "answer": p["completion"]}
                                                      for p in pairs])
    as_messages = write_jsonl(tmp_path / "messages.jsonl", [
        {"messages": [{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": p["completion"]}]}
        for p in pairs])
    scores = [only(eval_json(run_cli, "--model", tiny_gpt2, "--data", data, "--chat-template", "zephyr",
                             "--metric", "perplexity", *columns))["scores"]["perplexity"]
              for data, columns in ((as_pairs, ["--prompt-column", "question", "--completion-column", "answer"]),
                                    (as_messages, []))]
    assert scores[0] == scores[1]


def test_the_table_has_a_row_per_chat_model(run_cli, tiny_gpt2, chat_run):
    run, validation, _ = chat_run
    table = run_cli("eval", "--model", run, "--model", tiny_gpt2, "--data", validation, "--chat-template", "zephyr",
                    "--metric", "perplexity,exact_match", "--max-new-tokens", 2, catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "perplexity" in table.stdout and "exact match" in table.stdout
    rows = [line for line in table.stdout.splitlines() if " chat " in line]
    assert len(rows) == 2 and str(run) in rows[0] and str(tiny_gpt2) in rows[1]


# ---------------------------------------------------------------- refused before any model loads


@pytest.fixture
def nothing_loads(monkeypatch):
    monkeypatch.setattr(models, "load_model", lambda name, **options: pytest.fail("a model was loaded"))


def test_no_template_names_the_option(run_cli, tiny_gpt2, monkeypatch, tmp_path, nothing_loads):
    data = write_jsonl(tmp_path / "chats.jsonl", conversations(3, "validation"))
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--data", data)
    assert exit_code == 2
    assert line == (f"Error: model '{tiny_gpt2}': this model's tokenizer has no chat template: name one with "
                    "--chat-template (chatml or zephyr, or a Jinja file)")


def test_a_template_that_adds_tokens_is_refused(run_cli, tiny_gpt2, monkeypatch, tmp_path, nothing_loads):
    data = write_jsonl(tmp_path / "chats.jsonl", conversations(3, "validation"))
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--data", data,
                                     "--chat-template", "chatml")
    assert exit_code == 2
    assert "--chat-template chatml needs tokens this model's tokenizer lacks (<|im_start|>, <|im_end|>)" in line


@pytest.mark.parametrize("messages, row, problem", [
    ("hello", 1, "messages must be a non-empty list of {role, content} turns (got str)"),
    ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}], 3,
     "turn 1 has role 'robot'; roles are system, user, assistant"),
    ([{"role": "user", "content": "hi"}], 3, "it has no assistant turn: there is nothing to train on"),
])
def test_a_bad_conversation_is_named_by_row(run_cli, tiny_gpt2, monkeypatch, tmp_path, nothing_loads, messages,
                                            row, problem):
    rows = conversations(2, "validation") + [{"messages": messages}]
    if isinstance(messages, str):  # a column of one type: every row's messages is text
        rows = [{"messages": "hello"}] * 3
    data = write_jsonl(tmp_path / "chats.jsonl", rows)
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--data", data,
                                     "--chat-template", "zephyr")
    assert exit_code == 2 and line == f"Error: '{data}' row {row}: {problem}"


def test_chat_options_without_conversations(run_cli, tiny_gpt2, monkeypatch, tmp_path, nothing_loads):
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--chat-template", "zephyr")
    assert exit_code == 2 and "--chat-template" in line and "--messages-column" in line
    exit_code, line = one_line_error(run_cli, monkeypatch, "--model", tiny_gpt2, "--task", "chat")
    assert exit_code == 2 and "needs conversations" in line and "--messages-column" in line
