"""`llmtool attention`: the weights are the model's own (recomputed by hand from each layer's query and key
projections), the picture is a PNG of the size its layout says, --json has the maps' shapes, and each bad input
is one line that leaves nothing written."""

import json
import math
import shutil
import struct

import pytest
import torch

from llmtool import attention
from llmtool.attention_plot import DPI, figure_size

from conftest import one_error_line

TEXT = "the cat sat on the mat"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


HEADS = 2  # the tiny fixtures' heads a layer (tests/fixtures/configs)


def _by_hand(query, key, mask):
    """softmax(QK^T / sqrt(d) + mask) per head, from (tokens, hidden) projections split into HEADS heads."""
    d = query.shape[-1] // HEADS
    query, key = (x.view(x.shape[0], HEADS, d).transpose(0, 1) for x in (query, key))  # (heads, tokens, d)
    return torch.softmax(query @ key.transpose(1, 2) / math.sqrt(d) + mask, dim=-1)


def _hidden_states(lm, text):
    encoded = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return encoded, lm.model(**encoded, output_hidden_states=True).hidden_states  # [l]: layer l's input


def test_gpt2_weights_are_the_causal_softmax_of_its_query_and_key(tiny_gpt2):
    lm = attention.load(str(tiny_gpt2), device="cpu")
    ours = attention.compute(lm, TEXT)
    encoded, hidden = _hidden_states(lm, TEXT)
    tokens = encoded["input_ids"].shape[1]
    causal = torch.full((tokens, tokens), float("-inf")).triu(1)  # a token sees itself and what came before
    assert ours.part == attention.SELF and ours.weights.shape == (2, HEADS, tokens, tokens)
    assert ours.query_tokens == ours.key_tokens == lm.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    for layer, block in enumerate(lm.model.transformer.h):
        with torch.no_grad():
            query, key, _ = block.attn.c_attn(block.ln_1(hidden[layer][0])).split(lm.model.config.n_embd, dim=-1)
            expected = _by_hand(query, key, causal)
        torch.testing.assert_close(ours.weights[layer], expected, atol=1e-5, rtol=0)
        (one_head,) = attention.maps(ours, layer=layer, head=1)
        torch.testing.assert_close(one_head.weights, expected[1], atol=1e-5, rtol=0)
    assert ours.weights[:, :, 0, 1:].abs().max() == 0  # the first token attends to itself alone


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_encoder_weights_are_the_softmax_of_its_query_and_key_with_the_mask(tiny_models, family):
    lm = attention.load(str(tiny_models(family)), device="cpu")
    ours = attention.compute(lm, TEXT)
    encoded, hidden = _hidden_states(lm, TEXT)
    mask = (1.0 - encoded["attention_mask"][0].float()) * torch.finfo(torch.float32).min  # one text: all seen
    layers = lm.model.bert.encoder.layer if family == "bert" else lm.model.distilbert.transformer.layer
    for layer, block in enumerate(layers):
        projections = ((block.attention.self.query, block.attention.self.key) if family == "bert"
                       else (block.attention.q_lin, block.attention.k_lin))
        with torch.no_grad():
            expected = _by_hand(*(project(hidden[layer][0]) for project in projections), mask)
        torch.testing.assert_close(ours.weights[layer], expected, atol=1e-5, rtol=0)
    assert ours.query_tokens[0] == "[CLS]" and ours.query_tokens[-1] == "[SEP]"
    assert ours.weights[:, :, 0, 1:].sum() > 0  # no causal mask: the first token sees the whole text


def test_t5_encoder_decoder_and_cross_attention(tiny_t5):
    lm = attention.load(str(tiny_t5), device="cpu")
    encoder = attention.compute(lm, TEXT)
    decoder = attention.compute(lm, TEXT, target="a dog", part="decoder")
    cross = attention.compute(lm, TEXT, target="a dog", part="cross")
    sources = len(lm.tokenizer(TEXT)["input_ids"])
    targets = len(lm.tokenizer(text_target="a dog")["input_ids"])  # the decoder reads a start token + all but </s>
    assert encoder.part == "encoder" and encoder.weights.shape == (2, HEADS, sources, sources)
    assert decoder.weights.shape == (2, HEADS, targets, targets)
    assert cross.weights.shape == (2, HEADS, targets, sources)
    assert decoder.query_tokens[0] == lm.tokenizer.pad_token and decoder.query_tokens == cross.query_tokens
    assert cross.key_tokens == encoder.key_tokens and encoder.key_tokens[-1] == "</s>"
    for stack in (encoder, decoder, cross):
        torch.testing.assert_close(stack.weights.sum(dim=-1), torch.ones(stack.weights.shape[:-1]))
    assert decoder.weights.triu(1).abs().max() == 0  # causal
    assert encoder.weights.triu(1).sum() > 0 and cross.weights.triu(1).sum() > 0


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize(("options", "maps"), [([], 2), (["--head", "0"], 1), (["--average", "layers"], 1)])
def test_the_picture_is_a_png_of_its_layouts_size(run_cli, tiny_gpt2, tmp_path, options, maps):
    out = tmp_path / "attention.png"
    result = run_cli("attention", "--model", tiny_gpt2, TEXT, "-o", out, *options)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"Wrote {out}" in result.stderr
    tokens = 10  # "the cat sat on the mat" in the tiny GPT-2's BPE
    width, height = figure_size(maps, tokens, tokens)
    assert _png_size(out.read_bytes()) == (round(width * DPI), round(height * DPI))
    # 10 tokens at a quarter inch, 1.25 inches of labels a map, 1 for the colour bar, 0.5 for the title
    assert _png_size(out.read_bytes()) == ((850 if maps == 2 else 475), 425)
    assert [p.name for p in tmp_path.iterdir()] == ["attention.png"]  # no temporary file or lock left


def test_svg_by_its_suffix(run_cli, tiny_bert, tmp_path):
    result = run_cli("attention", "--model", tiny_bert, TEXT, "-o", tmp_path / "a.svg", "--average", "heads")
    assert result.exit_code == 0, result.output
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:1000]


@pytest.mark.parametrize(("options", "layer", "heads"), [
    ([], 1, [0, 1]),  # every head of the last layer
    (["--layer", "0", "--head", "-1"], 0, [1]),
    (["--average", "heads"], 1, [None]),
    (["--average", "layers"], None, [None])])
def test_json_gives_tokens_and_each_maps_weights(run_cli, tiny_gpt2, options, layer, heads):
    result = run_cli("attention", "--model", tiny_gpt2, TEXT, "--json", *options)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    tokens = record["query_tokens"]
    assert record["key_tokens"] == tokens and len(tokens) == 10
    assert (record["part"], record["layers"], record["heads"]) == ("self", 2, 2)
    assert record["average"] == (options[1] if options[:1] == ["--average"] else None)
    assert [(m["layer"], m["head"]) for m in record["maps"]] == [(layer, head) for head in heads]
    for m in record["maps"]:
        weights = torch.tensor(m["weights"])
        assert weights.shape == (10, 10)
        torch.testing.assert_close(weights.sum(dim=-1), torch.ones(10, dtype=weights.dtype), atol=1e-5, rtol=0)


def test_json_for_cross_attention_names_both_token_lists(run_cli, tiny_t5):
    result = run_cli("attention", "--model", tiny_t5, TEXT, "--json", "--part", "cross", "--target", "a dog")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["part"] == "cross" and record["query_tokens"][0] == "<pad>" and record["key_tokens"][-1] == "</s>"
    assert {(len(m["weights"]), len(m["weights"][0])) for m in record["maps"]} == {
        (len(record["query_tokens"]), len(record["key_tokens"]))}


@pytest.fixture(scope="module")
def tiny_mamba(tiny_gpt2, tmp_path_factory):
    """A model family without attention (a state-space model), with the tiny GPT-2's tokenizer."""
    from transformers import AutoTokenizer, MambaConfig, MambaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    torch.manual_seed(0)
    model = MambaForCausalLM(MambaConfig(vocab_size=len(tokenizer), hidden_size=16, state_size=4,
                                         num_hidden_layers=1, expand=2, conv_kernel=2))
    directory = tmp_path_factory.mktemp("mamba")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.parametrize(("model", "args", "code", "says"), [
    ("gpt2", ["--layer", "2"], 2, "--layer 2 is out of range: this gpt2 model has 2 layers, numbered 0 to 1"),
    ("gpt2", ["--layer", "-3"], 2, "--layer -3 is out of range"),
    ("bert", ["--head", "2"], 2, "--head 2 is out of range: each layer of this bert model has 2 heads, numbered 0 "
                                 "to 1"),
    ("t5", ["--part", "decoder", "--target", "a", "--layer", "7"], 2,
     "--layer 7 is out of range: this t5 model's decoder has 2 layers"),
    ("gpt2", ["--target", "a dog"], 2, "--target is for an encoder-decoder model (T5)"),
    ("distilbert", ["--part", "cross"], 2, "--part is for an encoder-decoder model (T5)"),
    ("t5", ["--part", "cross"], 2, "--part cross needs the text the decoder reads: add --target TEXT"),
    ("t5", ["--target", "a dog"], 2, "--target is read by the decoder"),
    ("t5", ["--part", "middle"], 2, "unknown --part 'middle'; choose one of encoder, decoder, cross"),
    ("gpt2", ["--average", "heads", "--head", "0"], 2, "--average heads averages the heads of --layer: drop --head"),
    ("gpt2", ["--average", "layers", "--layer", "0"], 2, "--average layers averages every layer and head: drop "
                                                         "--layer"),
    ("mamba", [], 1, "a mamba model computes no attention weights"),
])
def test_each_bad_input_is_one_line_and_writes_nothing(user_cli, tiny_models, tiny_mamba, tmp_path, model, args,
                                                       code, says):
    directory = tiny_mamba if model == "mamba" else tiny_models(model)
    out = tmp_path / "attention.png"
    line = one_error_line(user_cli("attention", "--model", directory, TEXT, "-o", out, *args), code)
    assert says in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "says"), [
    (["  ", "--json"], "TEXT is empty"),
    ([TEXT, "--json", "--part", "cross", "--target", ""], "--target is empty"),
    ([TEXT], "nothing to write: give --output FILE.png for the picture, --json for the weights, or both"),
    ([TEXT, "-o", "attention.jpg"], "--output 'attention.jpg' should end in .png, .svg or .pdf"),
    ([TEXT, "--json", "--average", "tokens"], "unknown --average 'tokens'; choose one of heads, layers"),
])
def test_bad_requests_are_refused_before_the_model_loads(user_cli, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(user_cli("attention", "--model", tmp_path / "no-model-here", *args), 2)
    assert says in line  # not "model directory ... does not exist": nothing was loaded
    assert list(tmp_path.iterdir()) == []


def test_an_existing_picture_is_kept_without_overwrite(user_cli, tiny_gpt2, tmp_path):
    out = tmp_path / "attention.png"
    out.write_bytes(b"an older picture")
    line = one_error_line(user_cli("attention", "--model", tiny_gpt2, TEXT, "-o", out), 2)
    assert f"--output '{out}' is not empty; add --overwrite to replace it" in line
    assert out.read_bytes() == b"an older picture"
    result = user_cli("attention", "--model", tiny_gpt2, TEXT, "-o", out, "--overwrite")
    assert result.exit_code == 0 and out.read_bytes()[:8] == PNG_SIGNATURE


def test_a_file_of_the_model_is_never_the_output(user_cli, tiny_gpt2, tmp_path):
    model = shutil.copytree(tiny_gpt2, tmp_path / "model")
    (model / "card.png").write_bytes(b"the model's own picture")
    line = one_error_line(user_cli("attention", "--model", model, TEXT, "-o", model / "card.png", "--overwrite"), 2)
    assert "is the model file" in line and "write the results to another file" in line
    assert (model / "card.png").read_bytes() == b"the model's own picture"


def test_a_text_past_the_models_positions_is_one_line(user_cli, tiny_bert):
    line = one_error_line(user_cli("attention", "--model", tiny_bert, "word " * 200, "--json"), 2)
    assert line.startswith("Error: TEXT is ") and "tokens, more than the model's 128 positions" in line
