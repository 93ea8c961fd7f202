"""`llmtool generate`: every option, batching, seeds, streaming, T5, block words, JSON output and errors."""

import json
import logging

import pytest

from llmtool import generation, models
from llmtool.errors import LlmtoolError, UsageError

PROMPTS = ["The quick brown fox", "It was", "After lunch, Nina called Sam and asked about the square.", "Monday"]


def gen_json(run_cli, model, *args):
    result = run_cli("generate", "--model", model, "--json", *args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def texts(report):
    return [[g["text"] for g in r["generations"]] for r in report["results"]]


@pytest.fixture(scope="module")
def gpt2_lm(tiny_gpt2):
    return models.load_model(str(tiny_gpt2), device="cpu")


def test_plain_output_is_prompt_plus_continuation(run_cli, tiny_gpt2):
    result = run_cli("generate", "--model", tiny_gpt2, "The quick brown fox", "--max-new-tokens", "8")
    assert result.exit_code == 0, result.output
    out = result.stdout.rstrip("\n")
    assert out.startswith("The quick brown fox") and len(out) > len("The quick brown fox")


def test_json_schema(run_cli, tiny_gpt2):
    report = gen_json(run_cli, tiny_gpt2, "The quick brown fox", "It was", "--max-new-tokens", "6")
    assert set(report) == {"model", "task", "results", "timing"}
    assert report["task"] == "causal-lm"
    assert [r["prompt"] for r in report["results"]] == ["The quick brown fox", "It was"]
    for r in report["results"]:
        assert isinstance(r["prompt_tokens"], int) and r["prompt_tokens"] > 0
        (g,) = r["generations"]
        assert isinstance(g["text"], str) and g["new_tokens"] == 6
    timing = report["timing"]
    assert timing["new_tokens"] == 12 and timing["seconds"] > 0 and timing["tokens_per_second"] > 0


def test_max_length_counts_the_prompt(run_cli, tiny_gpt2):
    report = gen_json(run_cli, tiny_gpt2, *PROMPTS)  # default total length: 50
    for r in report["results"]:
        assert r["prompt_tokens"] + r["generations"][0]["new_tokens"] == 50
    report = gen_json(run_cli, tiny_gpt2, "The quick brown fox", "--max-length", "9")
    (r,) = report["results"]
    assert r["prompt_tokens"] + r["generations"][0]["new_tokens"] == 9


def test_batched_greedy_equals_one_by_one(run_cli, tiny_gpt2):
    batched = gen_json(run_cli, tiny_gpt2, *PROMPTS, "--batch-size", "4", "--max-new-tokens", "12")
    single = gen_json(run_cli, tiny_gpt2, *PROMPTS, "--batch-size", "1", "--max-new-tokens", "12")
    assert texts(batched) == texts(single)
    # and with --max-length, where each prompt has its own budget inside one batch
    assert texts(gen_json(run_cli, tiny_gpt2, *PROMPTS, "--batch-size", "4")) == texts(
        gen_json(run_cli, tiny_gpt2, *PROMPTS, "--batch-size", "1")
    )


def test_mixed_lengths_near_the_position_limit(gpt2_lm):
    """A long and a short prompt under --max-length at the model's limit (128): batching must neither overrun the
    positions nor change the text."""
    long_prompt = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)
    prompts = [long_prompt, "It was"]
    settings = dict(max_length=128)
    batched = generation.generate(gpt2_lm, prompts, generation.GenerationSettings(batch_size=2, **settings))
    single = generation.generate(gpt2_lm, prompts, generation.GenerationSettings(batch_size=1, **settings))
    assert [g.token_ids for g in batched.generations] == [g.token_ids for g in single.generations]
    assert all(g.prompt_tokens + g.new_tokens[0] == 128 for g in batched.generations)


def test_batch_plan_limits_wasted_tokens_and_positions():
    lengths = [40, 38, 30, 10, 9]
    budgets = [50 - n for n in lengths]
    plan = generation.plan_batches(lengths, budgets, batch_size=8, limit=None)
    assert plan == [[0, 1], [2], [3, 4]]
    assert generation.plan_batches(lengths, [5] * 5, batch_size=2, limit=None) == [[0, 1], [2, 3], [4]]
    assert generation.plan_batches(lengths, [5] * 5, batch_size=8, limit=44) == [[0], [1, 2, 3, 4]]


def test_results_keep_prompt_order_across_batches(gpt2_lm):
    report = generation.generate(gpt2_lm, PROMPTS, generation.GenerationSettings(max_new_tokens=3, batch_size=2))
    assert [g.prompt for g in report.generations] == PROMPTS


def test_same_seed_same_text_other_seed_other_text(run_cli, tiny_gpt2):
    args = ("The quick brown fox", "--do-sample", "--max-new-tokens", "20")
    a = gen_json(run_cli, tiny_gpt2, *args, "--seed", "3")
    b = gen_json(run_cli, tiny_gpt2, *args, "--seed", "3")
    c = gen_json(run_cli, tiny_gpt2, *args, "--seed", "4")
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def sampled_texts(lm, prompts, batch_size, seed=7):
    settings = generation.GenerationSettings(max_new_tokens=8, do_sample=True, seed=seed, batch_size=batch_size,
                                             num_return_sequences=2)
    return [g.texts for g in generation.generate(lm, prompts, settings).generations]


def test_a_sampled_prompt_gets_its_text_whatever_shares_its_batch_window_or_file(gpt2_lm):
    from conftest import CORPUS

    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = [" ".join(line.split()[:2 + i % 7]) for i, line in enumerate(lines[:300])]  # 2 to 8 words
    whole = sampled_texts(gpt2_lm, prompts, batch_size=32)  # one window
    assert sampled_texts(gpt2_lm, prompts, batch_size=8) == whole  # three windows, other batches
    assert sampled_texts(gpt2_lm, prompts[:40], batch_size=1) == whole[:40]  # a shorter file, one at a time
    assert sampled_texts(gpt2_lm, prompts[:1], batch_size=8) == whole[:1]  # alone
    assert sampled_texts(gpt2_lm, prompts[:40], batch_size=8, seed=8) != whole[:40]


def test_the_same_prompt_twice_in_a_file_draws_twice(gpt2_lm):
    repeated = sampled_texts(gpt2_lm, ["It was"] * 4, batch_size=4)
    assert len({text for texts in repeated for text in texts}) == 8  # a stream per position and sequence


def test_sampling_draws_from_the_warped_distribution(tiny_gpt2):
    """The first tokens of 2,000 sampled sequences follow the softmax of the logits / temperature over the top k."""
    import torch

    lm = models.load_model(str(tiny_gpt2), device="cpu")
    with torch.no_grad():
        lm.model.transformer.ln_f.weight.mul_(40)  # random weights give near-equal logits: spread them out
    prompt, draws, temperature, top_k = "The quick brown fox", 1000, 0.6, 6
    ids = lm.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = lm.model(ids).logits[0, -1] / temperature
    top = logits.topk(top_k)
    expected = dict(zip(top.indices.tolist(), torch.softmax(top.values, -1).tolist()))
    assert max(expected.values()) > 0.3  # a distribution that a missing temperature or top-k would change
    settings = generation.GenerationSettings(max_new_tokens=1, do_sample=True, seed=1, temperature=temperature,
                                             top_k=top_k, num_return_sequences=draws)
    first = [row[0] for sequences in generation.generate_ids(lm, ids.tolist() * 2, settings)
             for row in sequences]  # two positions: 2,000 draws
    assert set(first) <= set(expected)
    for token, p in expected.items():  # each frequency within 4 standard deviations of its probability
        assert abs(first.count(token) / len(first) - p) <= 4 * (p * (1 - p) / len(first)) ** 0.5, token


def test_temperature_implies_sampling_unless_greedy(run_cli, tiny_gpt2):
    greedy = texts(gen_json(run_cli, tiny_gpt2, "It was", "--max-new-tokens", "20"))
    hot = [texts(gen_json(run_cli, tiny_gpt2, "It was", "--max-new-tokens", "20", "--temperature", "1.5",
                          "--seed", str(s))) for s in range(3)]
    assert any(h != greedy for h in hot)
    forced = texts(gen_json(run_cli, tiny_gpt2, "It was", "--max-new-tokens", "20", "--temperature", "1.5",
                            "--greedy", "--seed", "0"))
    assert forced == greedy
    assert generation.GenerationSettings(temperature=0.7).sampling
    assert not generation.GenerationSettings(temperature=0.7, do_sample=False).sampling
    assert not generation.GenerationSettings().sampling


@pytest.mark.parametrize("knob", [("--top-k", "1"), ("--top-p", "0.000001")])
def test_top_k_1_and_tiny_top_p_sample_the_greedy_token(run_cli, tiny_gpt2, knob):
    greedy = texts(gen_json(run_cli, tiny_gpt2, *PROMPTS, "--max-new-tokens", "10"))
    sampled = texts(gen_json(run_cli, tiny_gpt2, *PROMPTS, "--max-new-tokens", "10", "--do-sample", *knob,
                             "--seed", "5"))
    assert sampled == greedy


def test_num_return_sequences(run_cli, tiny_gpt2):
    report = gen_json(run_cli, tiny_gpt2, "It was", "Monday", "-n", "3", "--do-sample", "--seed", "1",
                      "--max-new-tokens", "10")
    for r in report["results"]:
        assert len(r["generations"]) == 3
        assert len({g["text"] for g in r["generations"]}) > 1


def _repeats(ids):
    return len(ids) - len(set(ids))


def test_no_repeat_ngram_size_and_repetition_penalty(gpt2_lm):
    settings = dict(max_new_tokens=30, batch_size=4)
    plain = generation.generate(gpt2_lm, PROMPTS, generation.GenerationSettings(**settings))
    plain_repeats = sum(_repeats(ids) for g in plain.generations for ids in g.token_ids)
    assert plain_repeats > 0  # the untrained model loops, so both knobs have something to fix
    no_repeat = generation.generate(gpt2_lm, PROMPTS, generation.GenerationSettings(no_repeat_ngram_size=1, **settings))
    assert all(_repeats(ids) == 0 for g in no_repeat.generations for ids in g.token_ids)
    penalised = generation.generate(gpt2_lm, PROMPTS, generation.GenerationSettings(repetition_penalty=50.0, **settings))
    assert sum(_repeats(ids) for g in penalised.generations for ids in g.token_ids) < plain_repeats


def test_stream_prints_the_same_text(run_cli, tiny_gpt2):
    plain = run_cli("generate", "--model", tiny_gpt2, "The quick brown fox", "--max-new-tokens", "12")
    streamed = run_cli("generate", "--model", tiny_gpt2, "The quick brown fox", "--max-new-tokens", "12", "--stream")
    assert streamed.exit_code == 0, streamed.output
    assert streamed.stdout.strip() == plain.stdout.strip()


def test_stream_streams_token_by_token(gpt2_lm):
    chunks = []

    class Recorder:
        def put(self, value):
            chunks.append(value)

        def end(self):
            pass

    generation.generate(gpt2_lm, ["It was"], generation.GenerationSettings(max_new_tokens=5), streamer=Recorder())
    assert len(chunks) == 1 + 5  # the prompt, then one call per new token


def test_t5_text_to_text(run_cli, tiny_t5):
    report = gen_json(run_cli, tiny_t5, "summarize: the cat sat on the mat", "translate English to German: hi",
                      "--max-new-tokens", "6")
    assert report["task"] == "seq2seq-lm"
    for r in report["results"]:
        assert r["generations"][0]["new_tokens"] > 0
    plain = run_cli("generate", "--model", tiny_t5, "summarize: the cat sat on the mat", "--max-new-tokens", "6")
    assert plain.stdout.strip() == report["results"][0]["generations"][0]["text"].strip()  # the answer alone


def test_t5_batched_equals_one_by_one(run_cli, tiny_t5):
    prompts = ["summarize: the cat sat on the mat", "summarize: a dog", "translate English to German: I like tea"]
    assert texts(gen_json(run_cli, tiny_t5, *prompts, "--batch-size", "3", "--max-new-tokens", "8")) == texts(
        gen_json(run_cli, tiny_t5, *prompts, "--batch-size", "1", "--max-new-tokens", "8")
    )


def test_prompts_from_text_file_jsonl_and_stdin(run_cli, tiny_gpt2, tmp_path):
    expected = texts(gen_json(run_cli, tiny_gpt2, "It was", "Monday", "--max-new-tokens", "5"))
    lines = tmp_path / "prompts.txt"
    lines.write_text("It was\n\nMonday\n", encoding="utf-8")
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text('{"prompt": "It was", "id": 1}\n{"prompt": "Monday"}\n', encoding="utf-8")
    assert texts(gen_json(run_cli, tiny_gpt2, "--file", lines, "--max-new-tokens", "5")) == expected
    assert texts(gen_json(run_cli, tiny_gpt2, "--file", jsonl, "--max-new-tokens", "5")) == expected
    result = run_cli("generate", "--model", tiny_gpt2, "--json", "--max-new-tokens", "5", input="It was\nMonday\n")
    assert texts(json.loads(result.stdout)) == expected
    result = run_cli("generate", "--model", tiny_gpt2, "--json", "--max-new-tokens", "5", "--file", "-",
                     input="It was\nMonday\n")
    assert texts(json.loads(result.stdout)) == expected


def test_block_words_never_appear_where_they_otherwise_would(run_cli, tiny_gpt2, tmp_path):
    prompts = ["The quick brown fox", "It was", "Monday"]
    before = texts(gen_json(run_cli, tiny_gpt2, *prompts, "--max-new-tokens", "30"))
    words = sorted({w for seqs in before for text in seqs for w in text.split() if w.isalpha() and len(w) > 2})
    assert words, before
    blocked = words[:3]
    block_file = tmp_path / "block.txt"
    block_file.write_text("# words to keep out\n" + "\n".join(blocked) + "\n", encoding="utf-8")
    after = texts(gen_json(run_cli, tiny_gpt2, *prompts, "--max-new-tokens", "30", "--block-words", block_file))
    assert after != before
    for seqs in after:
        for text in seqs:
            for word in blocked:
                assert word not in text.split(), (word, text)


def test_default_block_list_is_shipped_and_merged(tmp_path):
    defaults = generation.read_block_words(None, include_default=True)
    assert len(defaults) > 10 and not any(w.startswith("#") for w in defaults)
    mine = tmp_path / "mine.txt"
    mine.write_text("rhubarb\n", encoding="utf-8")
    merged = generation.read_block_words(mine, include_default=True)
    assert merged == defaults + ["rhubarb"]


def test_block_default_flag_runs(run_cli, tiny_gpt2):
    report = gen_json(run_cli, tiny_gpt2, "It was", "--max-new-tokens", "5", "--block-default")
    assert report["results"][0]["generations"][0]["new_tokens"] == 5


def test_default_model_comes_from_env(run_cli, tiny_gpt2, monkeypatch):
    monkeypatch.setenv("LLMTOOL_MODEL", str(tiny_gpt2))
    result = run_cli("generate", "It was", "--max-new-tokens", "3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == str(tiny_gpt2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--do-sample", "--temperature", "0"], "--temperature must be at least 0.001 when sampling"),
        (["--temperature", "-1"], "--temperature must be at least 0.001 when sampling"),
        (["--top-p", "0"], "--top-p must be in (0, 1]"),
        (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["--top-k", "-2"], "--top-k must be 0 (off) or more"),
        (["-n", "2"], "--num-return-sequences above 1 needs sampling"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--repetition-penalty", "0"], "--repetition-penalty must be above 0"),
        (["--no-repeat-ngram-size", "0"], "--no-repeat-ngram-size must be at least 1"),
        (["--max-length", "2"], "fills --max-length 2"),
        (["--max-new-tokens", "500"], "past this model's limit of 128"),
        (["--stream", "--json"], "--stream and --json do not mix"),
        (["--dtype", "fp16", "--device", "cpu"], "fp16 is not supported on the CPU"),
    ],
)
def test_bad_values_are_usage_errors(run_cli, tiny_gpt2, args, message):
    result = run_cli("generate", "--model", tiny_gpt2, "The quick brown fox", *args)
    assert isinstance(result.exception, UsageError), result.output
    assert message in str(result.exception)


def test_all_bad_values_reported_at_once(run_cli, tiny_gpt2):
    result = run_cli("generate", "--model", tiny_gpt2, "hi", "--top-p", "2", "--batch-size", "0")
    assert "--top-p" in str(result.exception) and "--batch-size" in str(result.exception)


def test_stream_needs_one_prompt_and_writes_nothing_before_refusing(run_cli, tiny_gpt2):
    result = run_cli("generate", "--model", tiny_gpt2, "a", "b", "--stream")
    assert isinstance(result.exception, UsageError) and "give one prompt (got 2)" in str(result.exception)
    assert result.stdout == ""


def test_encoder_model_is_refused(run_cli, tiny_bert):
    result = run_cli("generate", "--model", tiny_bert, "hi")
    assert isinstance(result.exception, UsageError)
    assert "bert classification model" in str(result.exception)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "has no prompts"),
        (b"\n  \n", "has no prompts"),
        (b"caf\xe9 au lait\n", "is not UTF-8"),
        (b'{"prompt": "ok"}\n{"text": "no prompt key"}\n', 'line 2 has no string "prompt" field'),
        (b'{"prompt": "ok"}\n{broken\n', "line 2 is not valid JSON"),
    ],
)
def test_bad_prompt_files(run_cli, tiny_gpt2, tmp_path, content, message):
    path = tmp_path / "prompts.txt"
    path.write_bytes(content)
    result = run_cli("generate", "--model", tiny_gpt2, "--file", path)
    assert isinstance(result.exception, LlmtoolError), result.output
    assert message in str(result.exception)


def test_missing_prompt_file_and_block_file(run_cli, tiny_gpt2, tmp_path):
    result = run_cli("generate", "--model", tiny_gpt2, "--file", tmp_path / "nope.txt")
    assert "prompt file" in str(result.exception) and "does not exist" in str(result.exception)
    result = run_cli("generate", "--model", tiny_gpt2, "hi", "--block-words", tmp_path / "nope.txt")
    assert "block-words file" in str(result.exception) and "does not exist" in str(result.exception)


def test_empty_prompt_argument(run_cli, tiny_gpt2):
    result = run_cli("generate", "--model", tiny_gpt2, "  ")
    assert isinstance(result.exception, UsageError) and "prompt 1 is empty" in str(result.exception)


def test_non_utf8_stdin(run_cli, tiny_gpt2):
    result = run_cli("generate", "--model", tiny_gpt2, "--file", "-", input=b"\xff\xfe bad")
    assert isinstance(result.exception, LlmtoolError) and "stdin is not UTF-8" in str(result.exception)


def test_unknown_model_path(run_cli, tmp_path):
    result = run_cli("generate", "--model", tmp_path / "no-such-model", "hi")
    assert isinstance(result.exception, LlmtoolError) and "does not exist" in str(result.exception)


def test_transformers_false_alarm_about_a_dropped_attention_mask_is_filtered(gpt2_lm, caplog):
    generation.generate(gpt2_lm, ["It was"], generation.GenerationSettings(max_new_tokens=2))
    logger = logging.getLogger("transformers.modeling_utils")
    with caplog.at_level(logging.WARNING, logger="transformers.modeling_utils"):
        logger.warning("We strongly recommend passing in an `attention_mask` since your input_ids may be padded.")
        logger.warning("another warning")
    assert [r.getMessage() for r in caplog.records] == ["another warning"]
