"""`llmtool finetune` with task chat: it learns the assistant's turns, saves the template with the tokenizer,
shows its masks, and refuses bad conversations, templates and masks in one line before writing anything."""

import json

import pytest

from llmtool import chat, config, finetuning, models
from llmtool.errors import UsageError

from conftest import ROOT

CHAT_DATA = ROOT / "data" / "chat"


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


def conversations(count, split="train"):
    lines = (CHAT_DATA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:count]]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def chat_recipe(tmp_path, model, rows=None, *extra, template="zephyr"):
    data = write_jsonl(tmp_path / "chat.jsonl", rows if rows is not None else conversations(48))
    path = tmp_path / "chat.yaml"
    lines = ["task: chat", f"output_dir: {tmp_path / 'run'}", "model:", f"  name: {model}"]
    if template:
        lines.append(f"  chat_template: {template}")
    lines += ["data:", f"  train: {data}", "  max_length: 96", "train:", "  max_steps: 12", "  batch_size: 8",
              "  lr: 3.0e-3", "  log_every: 2"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, list(extra)


def test_chat_learns_the_assistant_turns_and_saves_its_template(run_cli, tiny_gpt2, tmp_path):
    path, overrides = chat_recipe(tmp_path, tiny_gpt2)
    result = finetuning.finetune(config.load_recipe(path, overrides))
    losses = [float(row.split(",")[2]) for row in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
              if row.split(",")[2]]
    assert losses[-1] < losses[0] - 0.5  # answers of a word or a number: learnt fast
    assert result.steps == 12
    saved = models.load_tokenizer(str(tmp_path / "run"))
    assert saved.chat_template == chat.template_text("zephyr")  # what chat, generate and eval will render with
    assert len(saved) == len(models.load_tokenizer(str(tiny_gpt2)))  # zephyr adds no token
    talk = run_cli("chat", "--model", tmp_path / "run", "--message", "What is two plus six?", "--max-new-tokens", "3",
                   "--json")  # no --chat-template: the saved one
    assert talk.exit_code == 0, talk.output
    assert json.loads(talk.stdout)["messages"][0] == {"role": "user", "content": "What is two plus six?"}


def test_chatml_adds_its_markers_and_grows_the_embeddings(tiny_gpt2, tmp_path):
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, None, "train.max_steps=2", template="chatml")
    finetuning.finetune(config.load_recipe(path, overrides))
    lm = models.load_model(str(tmp_path / "run"), device="cpu")
    assert lm.model.get_input_embeddings().weight.shape[0] == len(lm.tokenizer)
    assert lm.tokenizer.convert_ids_to_tokens(chat.end_of_turn_id(lm.tokenizer)) == "<|im_end|>"


def test_lora_with_a_template_that_adds_tokens_is_refused(user_cli, tiny_gpt2, tmp_path):
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, None, "model.lora={r: 4}", template="chatml")
    result = user_cli("finetune", path, *overrides)
    assert result.exit_code == 2
    assert "adds tokens this tokenizer lacks (<|im_start|>, <|im_end|>)" in result.output
    assert not (tmp_path / "run").exists()


def test_prompt_and_completion_columns_are_one_exchange(tiny_gpt2, tmp_path):
    rows = [{"prompt": "What is two plus six?", "completion": "eight"}] * 16
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, rows, "train.max_steps=2")
    shown = finetuning.show_masks(config.load_recipe(path, overrides), 1)
    assert shown[0].endswith("<|user|>\nWhat is two plus six?<|endoftext|>\n<|assistant|>\n[[eight<|endoftext|>\n]]")


def test_show_masks_prints_the_trained_spans_and_trains_nothing(user_cli, tiny_gpt2, tmp_path):
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, conversations(3))
    result = user_cli("finetune", path, "--show-masks", "2")
    assert result.exit_code == 0, result.output
    blocks = result.stdout.split("\n\n")
    assert len(blocks) == 2 and blocks[0].startswith("row 1: ") and "[[" in blocks[0]
    assert not (tmp_path / "run").exists()


def test_long_conversations_are_cut_at_a_turn_or_dropped_and_counted(tiny_gpt2, tmp_path):
    long_one = {"messages": [{"role": "user", "content": "What is two plus six?"}, {"role": "assistant", "content": "eight"},
                             {"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ten"}]}
    too_long = {"messages": [{"role": "user", "content": "word " * 120}, {"role": "assistant", "content": "ten"}]}
    notes = []
    recipe = config.load_recipe(*chat_recipe(tmp_path, tiny_gpt2, [long_one, too_long] + conversations(6)))
    from llmtool import recipe_data

    rows, _ = recipe_data.load_data(recipe)
    tokenizer = models.load_tokenizer(str(tiny_gpt2))
    chat.use_template(tokenizer, "zephyr")
    tokenized = recipe_data.tokenize(recipe, tokenizer, rows, None, None, notify=notes.append)
    assert notes == ["training data: 1 conversation cut after the last assistant turn that fits data.max_length 96, "
                     "1 dropped (not even their first assistant turn fits)"]
    assert len(tokenized.train) == 7 and max(tokenized.train["length"]) <= 96


@pytest.mark.parametrize("messages, problem", [
    ("hello", "messages must be a non-empty list of {role, content} turns (got str)"),
    ([{"role": "user", "content": "hi"}], "it has no assistant turn: there is nothing to train on"),
    ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}],
     "turn 1 has role 'robot'; roles are system, user, assistant"),
])
def test_a_bad_conversation_is_named_by_row_before_the_model_loads(user_cli, tiny_gpt2, tmp_path, messages, problem):
    rows = conversations(3) + [{"messages": messages}]
    if isinstance(messages, str):  # a column of one type: every row's messages is text
        rows = [{"messages": "hello"}] * 4
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, rows)
    result = user_cli("finetune", path)
    assert result.exit_code == 2, result.output
    row = 1 if isinstance(messages, str) else 4
    assert result.output.strip().endswith(f"row {row}: {problem}")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_no_template_and_none_given_names_the_recipe_key(user_cli, tiny_gpt2, tmp_path):
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, template=None)
    result = user_cli("finetune", path)
    assert result.exit_code != 0
    assert "no chat template: name one with model.chat_template" in result.output
    assert not (tmp_path / "run").exists()


def test_a_row_with_nothing_trained_or_a_template_that_fails_is_refused(user_cli, tiny_gpt2, tmp_path):
    silent = tmp_path / "silent.jinja"  # an assistant turn of row 2 renders to nothing: no token to train
    silent.write_text("{% for m in messages %}{% if m['content'] != 'skip' %}<|{{ m['role'] }}|>{{ m['content'] }}"
                      "{{ eos_token }}{% endif %}{% endfor %}", encoding="utf-8")
    rows = conversations(3)
    rows[1] = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "skip"}]}
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, rows, template=str(silent))
    result = user_cli("finetune", path)
    assert result.exit_code != 0
    assert result.output == ("Error: training data row 2: no token is trained (its assistant turns render to "
                             "nothing); see how rows render with --show-masks\n")  # one line, no blank one first
    assert not (tmp_path / "run").exists()

    endless = tmp_path / "endless.jinja"  # no special token closes a turn: a model could never learn to stop
    endless.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}", encoding="utf-8")
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, template=str(endless))
    assert "ends an assistant turn with no special token" in user_cli("finetune", path).output

    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}{{ m['content'] | nosuchfilter }}{% endfor %}", encoding="utf-8")
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, template=str(broken))
    result = user_cli("finetune", path)
    assert result.exit_code != 0 and "the chat template failed to render" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_chat_recipe_keys_are_for_chat(tiny_gpt2, tmp_path):
    with pytest.raises(UsageError, match="model.chat_template: only for task chat"):
        config.load_recipe(ROOT / "recipes" / "sentiment.yaml", ["model.chat_template=chatml"])


def test_packed_conversations_score_as_they_do_alone(tiny_gpt2, tmp_path):
    """Packing changes speed, not numbers: every conversation's logits in a packed row equal its logits alone
    (1e-5), and the summed loss over the data is the same packed and padded."""
    import torch

    from llmtool import data, evaluation, recipe_data

    lm = models.load_model(str(tiny_gpt2), device="cpu")
    tokenizer, model = lm.tokenizer, lm.model.eval()
    data.pad_on_the_right(tokenizer, model)  # as a run sets it
    chat.use_template(tokenizer, "zephyr")
    tokenized = {}
    for packing in (False, True):
        path, overrides = chat_recipe(tmp_path, tiny_gpt2, conversations(40), "data.max_length=128",
                                      f"data.packing={str(packing).lower()}")
        recipe = config.load_recipe(path, overrides)
        rows, _ = recipe_data.load_data(recipe)
        tokenized[packing] = recipe_data.tokenize(recipe, tokenizer, rows, None, None).train
    packed, alone = tokenized[True], tokenized[False]
    assert len(packed) < len(alone) and sum(packed["n_targets"]) == sum(alone["n_targets"])

    collator = data.Collator("chat", tokenizer)
    totals = {}
    for packing, rows in tokenized.items():
        inputs = data.model_inputs(rows)
        with torch.no_grad():
            totals[packing] = sum(evaluation.loss_and_logits("chat", model, collator(inputs, [i]))[0].item()
                                  for i in range(len(rows)))
    assert totals[True] == pytest.approx(totals[False], rel=1e-5)

    row = next(i for i, positions in enumerate(packed["position_ids"]) if positions.count(0) > 1)
    batch = collator(data.model_inputs(packed), [row])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        starts = [i for i, p in enumerate(packed["position_ids"][row]) if p == 0] + [len(packed["input_ids"][row])]
        for start, end in zip(starts, starts[1:]):
            by_itself = model(input_ids=batch["input_ids"][:, start:end]).logits[0]
            assert torch.allclose(logits[start:end], by_itself, atol=1e-5)


def test_packing_is_refused_for_a_model_that_lets_conversations_see_each_other(user_cli, tiny_gpt2, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(chat, "PACKING_TOLERANCE", -1.0)  # as if every model leaked
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, None, "data.packing=true")
    result = user_cli("finetune", path, *overrides)
    assert result.exit_code == 2
    assert "data.packing: this model's attention (GPT2LMHeadModel" in result.output
    assert not (tmp_path / "run").exists()


def test_a_resumed_chat_run_continues_exactly(tiny_gpt2, tmp_path):
    """Stopped after step 4 (its checkpoint at 3), then resumed to step 6: the losses of one run of 6 steps."""
    settings = ["train.scheduler=constant", "train.save_every=3", "train.log_every=1", "data.packing=true"]
    path, overrides = chat_recipe(tmp_path, tiny_gpt2, conversations(64), *settings, "train.max_steps=6",
                                  template="chatml")
    finetuning.finetune(config.load_recipe(path, overrides))
    whole = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    finetuning.finetune(config.load_recipe(path, [*settings, "train.max_steps=4", f"output_dir={tmp_path / 'part'}"]))
    finetuning.finetune(config.load_recipe(path, [*settings, "train.max_steps=6", f"output_dir={tmp_path / 'part'}"]),
                        resume=True)
    part = (tmp_path / "part" / "metrics.csv").read_text().splitlines()
    losses = [[row.split(",")[2] for row in rows[1:] if row.split(",")[2]] for rows in (whole, part)]
    assert len(losses[0]) == 6 and losses[1] == losses[0]
