"""Masked-LM pretraining (`task: masked-lm`) and fill-mask (`llmtool generate` on a masked LM): BERT's masking
rule, masks that depend only on (seed, epoch, example), packed blocks, a run that learns and resumes exactly,
fill-mask equal to transformers' pipeline, and bad input refused in one line."""

import json

import datasets
import numpy as np
import pytest

from llmtool import config, data, finetuning, recipe_data
from llmtool.errors import Interrupted, LlmtoolError, UsageError
from llmtool.masking import NOT_A_WORD, Masking, masking_for
from llmtool.models import load_tokenizer

from conftest import CORPUS, ROOT, one_error_line
from test_finetune import StopAt, eval_losses, train_losses

TINY_BERT = ("model.config={model_type: bert, num_hidden_layers: 1, num_attention_heads: 2, hidden_size: 32, "
             "intermediate_size: 64, max_position_embeddings: 64}")
TINY = [TINY_BERT, "model.vocab_size=300", "data.max_length=32", "train.save_every=null"]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def pretrain_recipe(out, *overrides):
    return config.load_recipe(ROOT / "recipes/pretrain-bert.yaml", [*TINY, f"output_dir={out}", *overrides])


@pytest.fixture(scope="module")
def bert_tokenizer(tiny_bert):
    return load_tokenizer(str(tiny_bert))  # WordPiece, 600 tokens, trained on the corpus


def corpus_rows(tokenizer, lines=400):
    """Corpus lines tokenized for masked-lm, unpacked: input_ids and word_ids."""
    texts = CORPUS.read_text(encoding="utf-8").splitlines()[:lines]
    return data.tokenize("masked-lm", tokenizer, datasets.Dataset.from_dict({"text": texts})).train


# ---------------------------------------------------------------- the masking rule


def test_about_15_percent_are_chosen_and_of_those_80_10_10():
    vocab, special = 1000, (0, 1, 2, 3)
    rng = np.random.default_rng(0)
    ids = rng.integers(4, vocab, size=100_000).tolist()
    words = list(range(len(ids)))
    for position in range(0, len(ids), 20):  # special tokens here and there: never chosen
        ids[position], words[position] = position % 4, NOT_A_WORD
    masking = Masking(mask_id=3, vocab_size=vocab, special_ids=special, seed=7)
    masked, labels = map(np.array, masking.apply(ids, words, index=5, epoch=2))
    ids = np.array(ids)
    chosen = labels != -100
    ordinary = ~np.isin(ids, special)
    assert not chosen[~ordinary].any() and (masked[~ordinary] == ids[~ordinary]).all()
    assert chosen[ordinary].mean() == pytest.approx(0.15, abs=0.005)
    assert (labels[chosen] == ids[chosen]).all()
    as_mask = (masked[chosen] == 3).mean()
    kept = (masked[chosen] == ids[chosen]).mean()
    assert as_mask == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01)  # (a random token is the same one now and then: 1 in 1000)
    assert 1 - as_mask - kept == pytest.approx(0.1, abs=0.01)
    assert (masked[~chosen] == ids[~chosen]).all()


def test_token_masks_are_transformers_numpy_rule_on_each_example(bert_tokenizer):
    """For one example and its own generator, the draws of DataCollatorForLanguageModeling.numpy_mask_tokens."""
    from transformers import DataCollatorForLanguageModeling

    rows = corpus_rows(bert_tokenizer, 20)
    masking = masking_for(bert_tokenizer, 0.15, whole_words=False, seed=3)
    reference = DataCollatorForLanguageModeling(bert_tokenizer, mlm_probability=0.15, return_tensors="np")
    for index, (ids, words) in enumerate(zip(rows["input_ids"], rows["word_ids"])):
        reference.generator = masking.generator(index, epoch=4)
        special = np.array([[token in bert_tokenizer.all_special_ids for token in ids]])
        expected_ids, expected_labels = reference.numpy_mask_tokens(np.array([ids]), special_tokens_mask=special)
        assert masking.apply(ids, words, index, epoch=4) == (expected_ids[0].tolist(), expected_labels[0].tolist())


def test_whole_word_masks_cover_whole_words(bert_tokenizer):
    rows = corpus_rows(bert_tokenizer)
    masking = masking_for(bert_tokenizer, 0.15, whole_words=True, seed=0)
    words_seen = words_chosen = split_words_chosen = 0
    for index, (ids, words) in enumerate(zip(rows["input_ids"], rows["word_ids"])):
        _, labels = masking.apply(ids, words, index, epoch=0)
        tokens = bert_tokenizer.convert_ids_to_tokens(ids)
        for word in set(words) - {NOT_A_WORD}:
            span = [p for p, w in enumerate(words) if w == word]
            assert not tokens[span[0]].startswith("##") and all(tokens[p].startswith("##") for p in span[1:])
            picked = {labels[p] != -100 for p in span}
            assert len(picked) == 1, (tokens, span)  # all of the word, or none of it
            words_seen += 1
            words_chosen += picked == {True}
            split_words_chosen += picked == {True} and len(span) > 1
        assert all(label == -100 for label, word in zip(labels, words) if word == NOT_A_WORD)
    assert words_chosen / words_seen == pytest.approx(0.15, abs=0.02)
    assert split_words_chosen > 20  # words of several pieces were chosen, whole


def test_a_mask_depends_on_seed_epoch_and_example_only(bert_tokenizer):
    rows = data.model_inputs(corpus_rows(bert_tokenizer, 40))
    masking = masking_for(bert_tokenizer, 0.15, whole_words=False, seed=1)
    collator = data.Collator("masked-lm", bert_tokenizer, masking=masking)

    def masked(indices, epoch, chosen=collator):
        batch = chosen(rows, indices, epoch)
        return {i: (batch["input_ids"][row][batch["attention_mask"][row] == 1].tolist(),
                    batch["labels"][row][batch["attention_mask"][row] == 1].tolist()) for row, i in enumerate(indices)}

    together = masked([3, 17, 5, 30], epoch=2)
    assert masked([5], epoch=2)[5] == together[5]  # alone, padded differently, at another place in its batch
    assert masked([30, 3, 11], epoch=2)[3] == together[3]
    other_run = data.Collator("masked-lm", bert_tokenizer, masking=masking_for(bert_tokenizer, 0.15, False, seed=1))
    assert masked([3, 17, 5, 30], 2, other_run) == together  # a resumed run, or another process, draws the same
    assert masked([3, 17, 5, 30], epoch=3) != together  # a new epoch, new masks
    assert collator.targets(rows, [3, 17, 5, 30], 2) == sum(
        sum(label != -100 for label in labels) for _, labels in together.values())


def test_packed_blocks_are_cls_text_sep_and_validation_masks_are_fixed(bert_tokenizer):
    recipe = config.load_recipe(ROOT / "recipes/pretrain-bert.yaml", ["data.packing=true", "data.block_size=32"])
    rows = datasets.Dataset.from_dict({"text": CORPUS.read_text(encoding="utf-8").splitlines()[:200]})
    masking = recipe_data.masking(recipe, bert_tokenizer)
    tokenized = recipe_data.tokenize(recipe, bert_tokenizer, rows, rows, None, masking=masking)
    cls, sep = bert_tokenizer.cls_token_id, bert_tokenizer.sep_token_id
    for ids, words in zip(tokenized.train["input_ids"], tokenized.train["word_ids"]):
        assert len(ids) == 32 and ids[0] == cls and ids[-1] == sep
        assert [w == NOT_A_WORD for w in words] == [token in (cls, sep) for token in ids]
    stream = [t for ids in bert_tokenizer(list(rows["text"]), add_special_tokens=False)["input_ids"] for t in ids + [sep]]
    assert len(tokenized.train) == len(stream) // 30
    validation = tokenized.validation
    assert "labels" in validation.column_names and "word_ids" not in validation.column_names
    again = recipe_data.tokenize(recipe, bert_tokenizer, rows, rows, None, masking=masking).validation
    assert again["input_ids"] == validation["input_ids"] and again["labels"] == validation["labels"]
    assert validation["n_targets"] == [sum(label != -100 for label in labels) for labels in validation["labels"]]
    collator = data.Collator("masked-lm", bert_tokenizer, masking=masking)
    batch = collator(data.model_inputs(validation), [0, 1])  # validation rows come masked: only padded
    assert batch["labels"][0].tolist() == validation["labels"][0]


# ---------------------------------------------------------------- training


def test_pretraining_learns_and_saves_a_fill_mask_model(tmp_path):
    result = finetuning.finetune(pretrain_recipe(tmp_path / "run", "train.max_steps=40", "train.log_every=5",
                                                 "train.eval_every=20", "train.lr=3e-3", "data.whole_word_mask=true"))
    losses = train_losses(tmp_path / "run")
    assert losses[-1] < losses[0] - 0.3
    evals = eval_losses(tmp_path / "run")
    assert len(evals) == 2 and evals[-1] < evals[0]
    assert result.eval["perplexity"] == pytest.approx(np.exp(result.eval["eval_loss"]))
    assert 0.0 < result.eval["masked_accuracy"] < 1.0
    from transformers import pipeline

    fills = pipeline("fill-mask", model=str(tmp_path / "run"), device="cpu")("The cat sat on the [MASK].")
    assert len(fills) == 5


def test_a_resumed_run_masks_and_trains_exactly_as_one_run(tmp_path):
    """Interrupted at step 7 (its checkpoint at 4) and resumed to 9, across epochs of 3 steps: the losses, the
    validation losses and the weights of one uninterrupted run."""
    common = ["train.max_steps=9", "train.save_every=4", "train.log_every=1", "train.eval_every=3",
              "data.max_train_samples=400", "train.batch_size=8", "train.scheduler=constant"]
    finetuning.finetune(pretrain_recipe(tmp_path / "whole", *common))
    broken = pretrain_recipe(tmp_path / "broken", *common)
    with pytest.raises(Interrupted, match="step-0000004"):
        finetuning.finetune(broken, progress=StopAt(7))
    finetuning.finetune(broken, resume=True)
    assert len(train_losses(tmp_path / "whole")) == 9
    assert train_losses(tmp_path / "broken") == train_losses(tmp_path / "whole")
    assert eval_losses(tmp_path / "broken") == eval_losses(tmp_path / "whole")
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / run / "model.safetensors") for run in ("whole", "broken"))
    assert all((a[k] == b[k]).all() for k in a)


# ---------------------------------------------------------------- fill-mask


@pytest.fixture(scope="module")
def tiny_bert_mlm(tiny_bert, tmp_path_factory):
    """The tiny BERT's config with a masked-LM head (random weights, seeded), saved with its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("bert-mlm")
    AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(tiny_bert)).save_pretrained(out)
    load_tokenizer(str(tiny_bert)).save_pretrained(out)
    return out


PROMPTS = ["The cat sat on the [MASK].", "After lunch, [MASK] called Sam and asked about the [MASK] today.",
           "[MASK] plus three is eight."]


def test_fill_mask_equals_the_pipeline(run_cli, tiny_bert_mlm):
    from transformers import pipeline

    result = run_cli("generate", "--model", tiny_bert_mlm, *PROMPTS, "--top-k", 4, "--json", "--batch-size", 2)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "masked-lm"
    reference = pipeline("fill-mask", model=str(tiny_bert_mlm), device="cpu", top_k=4)
    for prompt, got in zip(PROMPTS, report["results"]):
        expected = reference(prompt)
        expected = [expected] if isinstance(expected[0], dict) else expected  # one mask: not a list of lists
        assert got["prompt"] == prompt and len(got["masks"]) == len(expected)
        for fills, wanted in zip(got["masks"], expected):
            assert [(f["token"], f["token_str"], f["sequence"]) for f in fills] == \
                [(w["token"], w["token_str"], w["sequence"]) for w in wanted]
            assert [f["score"] for f in fills] == pytest.approx([w["score"] for w in wanted], abs=1e-6)


def test_fill_mask_prints_token_score_and_sequence(run_cli, tiny_bert_mlm):
    result = run_cli("generate", "--model", tiny_bert_mlm, PROMPTS[0], "--top-k", 2)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == PROMPTS[0] and len(lines) == 3
    token, score, sequence = lines[1].split("\t")
    assert 0 < float(score) < 1 and sequence.startswith("the cat sat on the")


def test_a_prompt_without_the_mask_token_names_it(run_cli, tiny_bert_mlm, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    line = one_error_line(run_cli("generate", "--model", tiny_bert_mlm, PROMPTS[0], "The cat sat on the mat."), 1)
    assert "prompt 2 has no [MASK] token" in line


def test_generation_options_are_refused_for_fill_mask(run_cli, tiny_bert_mlm, monkeypatch):
    monkeypatch.delenv("LLMTOOL_DEBUG")
    line = one_error_line(run_cli("generate", "--model", tiny_bert_mlm, PROMPTS[0], "--temperature", 0.7,
                                  "--max-new-tokens", 5), 2)
    assert "--max-new-tokens, --temperature are for generating text" in line and "masked LM" in line
    assert "--top-k must be at least 1" in one_error_line(
        run_cli("generate", "--model", tiny_bert_mlm, PROMPTS[0], "--top-k", 0), 2)


# ---------------------------------------------------------------- bad input


def test_a_decoder_only_model_is_refused_for_masked_lm(tiny_gpt2):
    with pytest.raises(UsageError, match=r"task: a gpt2 model \(model.config.model_type\) has no masked-lm form in "
                                         r"transformers; for masked-lm, use a bert or distilbert model"):
        config.load_recipe(ROOT / "recipes/pretrain-bert.yaml", [
            "model.config={model_type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, n_positions: 64}"])
    with pytest.raises(UsageError, match=rf"a gpt2 model \(model '{tiny_gpt2}'\) has no masked-lm form"):
        config.load_recipe(ROOT / "recipes/pretrain-bert.yaml", ["model.config=null", f"model.name={tiny_gpt2}"])


def test_masked_lm_settings_and_lora_are_checked():
    message = str(pytest.raises(UsageError, config.load_recipe, ROOT / "recipes/pretrain-gpt2.yaml",
                                ["data.whole_word_mask=true", "data.mlm_probability=0.3"]).value)
    assert "data.mlm_probability: only for task masked-lm" in message
    assert "data.whole_word_mask: only for task masked-lm" in message
    assert "data.mlm_probability: must be above 0.0" in str(pytest.raises(
        UsageError, config.load_recipe, ROOT / "recipes/pretrain-bert.yaml", ["data.mlm_probability=0"]).value)
    assert "model.lora: not for task masked-lm" in str(pytest.raises(
        UsageError, config.load_recipe, ROOT / "recipes/pretrain-bert.yaml",
        ["model.config=null", "model.name=bert-base-uncased", "model.lora=true"]).value)


def test_a_tokenizer_without_a_mask_token_is_refused(tiny_gpt2):
    recipe = config.load_recipe(ROOT / "recipes/pretrain-bert.yaml")
    with pytest.raises(LlmtoolError, match="the tokenizer has no mask token"):
        recipe_data.masking(recipe, load_tokenizer(str(tiny_gpt2)))
