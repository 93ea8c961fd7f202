"""Models from scratch: train a tokenizer on local text, then initialise a model of any family from a config.

Byte-level BPE for GPT-2-style decoders, WordPiece for BERT/DistilBERT encoders, Unigram for T5. Everything is
saved with save_pretrained, so the result loads exactly like a downloaded checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from llmtool.errors import UsageError
from llmtool.model_facts import auto_model_class, position_limit
from llmtool.models import infer_task

TOKENIZER_KIND = {"gpt2": "bpe", "bert": "wordpiece", "distilbert": "wordpiece", "t5": "unigram"}


def train_tokenizer(texts: Sequence[str], kind: str, vocab_size: int, model_max_length: int):
    """A fast tokenizer trained on `texts`, with the special tokens and post-processing its model family expects.
    The same texts and settings give the same tokenizer in every process."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bpe":
        specials = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=vocab_size, show_progress=False, special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    elif kind == "wordpiece":
        specials = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "mask_token": "[MASK]"}
        tokenizer = _train_wordpiece(texts, vocab_size, list(specials.values()))
    elif kind == "unigram":
        specials = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        tokenizer.train_from_iterator(texts, trainers.UnigramTrainer(
            vocab_size=vocab_size, show_progress=False, special_tokens=list(specials.values()), unk_token="<unk>"))
    else:
        raise UsageError(f"unknown tokenizer kind '{kind}'; choose bpe, wordpiece or unigram")

    _number_tokens_stably(tokenizer, kind, list(specials.values()))
    if kind == "wordpiece":
        cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
    elif kind == "unigram":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=model_max_length, **specials)


def _train_wordpiece(texts: Sequence[str], vocab_size: int, specials: list[str]):
    """BERT's uncased WordPiece trained on `texts`, with the same vocabulary in every process.

    The trainer is BPE with a "##" prefix (tokenizers, models/bpe/trainer.rs). It numbers the characters in sorted
    order, but each continuation "##c" when a word holding it first comes out of a hash map, whose order changes
    from process to process; and its merge queue breaks ties between equally frequent pairs by those numbers, so
    which of the equally rare merges made the vocabulary changed too. A first pass with no room for merges lists
    the characters and continuations; the real pass is given them up front as special tokens, which the trainer
    numbers first, in the order given: the characters in its own order, then the continuations sorted. They are
    special to the trainer only: the result is a fresh tokenizer in which they are plain vocabulary."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    def bert_uncased(model):
        tokenizer = Tokenizer(model)
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix="##")
        return tokenizer

    def trained_vocab(size: int, trainer_specials: list[str]) -> dict[str, int]:
        tokenizer = bert_uncased(models.WordPiece(unk_token="[UNK]"))
        tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=size, show_progress=False,
                                                                       special_tokens=trainer_specials))
        return tokenizer.get_vocab()

    initial = sorted((token for token in trained_vocab(0, specials) if token not in specials),
                     key=lambda token: (token.startswith("##"), token))
    tokenizer = bert_uncased(models.WordPiece(trained_vocab(vocab_size, specials + initial), unk_token="[UNK]"))
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _number_tokens_stably(tokenizer, kind: str, specials: list[str]) -> None:
    """Number the tokens in a fixed order: special tokens first, then WordPiece by string, Unigram by score and
    string. WordPiece matches by string and Unigram by score, so tokenization is kept.

    The WordPiece vocabulary is the same in every process (_train_wordpiece); its trainer numbers it by merge
    order, and numbering by string keeps the ids the models built so far were initialised with. The Unigram
    trainer sums over words in a hash order that changes from process to process, which moves scores in their
    last digits: they are rounded past that. It also scores each character that its model dropped but the
    vocabulary must keep (tokenizers, models/unigram/trainer.rs: finalize) at the lowest score plus 1e-4 times its
    place in a hash order; those characters all get the lowest score, so they are ordered by string."""
    import json

    from tokenizers import models

    if kind == "wordpiece":
        vocab = tokenizer.get_vocab()
        ordered = specials + sorted(token for token in vocab if token not in specials)
        tokenizer.model = models.WordPiece({token: i for i, token in enumerate(ordered)}, unk_token="[UNK]")
    elif kind == "unigram":
        pieces = [(piece, score) for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]
                  if piece not in specials]
        lowest = min(score for _, score in pieces)
        characters = sum(len(piece) == 1 for piece, _ in pieces)
        scores = {}
        for piece, score in pieces:
            steps = (score - lowest) / 1e-4
            if len(piece) == 1 and round(steps) < characters and abs(steps - round(steps)) < 1e-6:
                score = lowest  # one of the dropped characters, whichever place the hash order gave it
            scores[piece] = round(score, 2)
        ordered = [(piece, 0.0) for piece in specials] + sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        tokenizer.model = models.Unigram(ordered, unk_id=specials.index("<unk>"), byte_fallback=False)


def model_config(settings: dict, tokenizer):
    """A transformers config from a plain dict with a `model_type`, sized to the tokenizer's vocabulary."""
    from transformers import AutoConfig

    settings = dict(settings)
    model_type = settings.pop("model_type", None)
    if model_type not in TOKENIZER_KIND:
        raise UsageError(f"model_type must be one of {', '.join(TOKENIZER_KIND)} (got {model_type!r})")
    special_ids = {
        f"{name}_id": getattr(tokenizer, f"{name}_id")
        for name in ("bos_token", "eos_token", "pad_token")
        if getattr(tokenizer, name, None) is not None
    }
    if model_type == "t5":
        special_ids["decoder_start_token_id"] = tokenizer.pad_token_id
    return AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **special_ids, **settings)


def config_problem(settings: dict, vocab_size: int) -> str | None:
    """What transformers would reject in a from-scratch config, found before any data loads: the config is built
    and the model instantiated on the meta device (no memory, no weights). None if it builds."""
    import torch
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    settings = dict(settings)
    model_type = settings.pop("model_type")
    if "vocab_size" in settings:
        return "vocab_size: the vocabulary size of a trained tokenizer is set with model.vocab_size"
    for key, value in settings.items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 0 and not key.endswith("_id"):
            return f"{key}: must not be negative, got {value}"
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # special token ids are only set from the tokenizer later: no warnings here
    try:
        config = AutoConfig.for_model(model_type, vocab_size=vocab_size, **settings)
        with torch.device("meta"):
            auto_model_class(infer_task(config)).from_config(config)
    except Exception as err:  # noqa: BLE001 - whatever transformers says about the settings, in one line
        text = " ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__
        return text[:300]
    finally:
        hf_logging.set_verbosity(verbosity)
    return None


def max_positions(settings: dict) -> int:
    """The length a tokenizer for a from-scratch config states: the model's positions, else (T5's relative
    positions) 512, its usual training length."""
    return position_limit(settings) or 512


def build_from_scratch(settings: dict, texts: list[str], out_dir: Path, vocab_size: int, seed: int = 0,
                       **model_kwargs) -> Path:
    """Train a tokenizer on `texts`, initialise a model from `settings`, save both to `out_dir`."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    kind = TOKENIZER_KIND.get(settings.get("model_type"), "")
    tokenizer = train_tokenizer(texts, kind, vocab_size, max_positions(settings))
    config = model_config(settings, tokenizer)
    torch.manual_seed(seed)
    model = auto_model_class(infer_task(config)).from_config(config, **model_kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir
