"""Text generation for causal and encoder-decoder LMs: batched, length-sorted, left-padded where it matters."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from llmtool.errors import LlmtoolError, UsageError
from llmtool.models import LoadedModel
from llmtool.tasks import SEQ2SEQ_LM

DEFAULT_MAX_LENGTH = 50  # total length (prompt + new tokens), as transformers' own default
MAX_SEED = 2**32 - 1  # numpy's seed range, which transformers.set_seed also seeds
# An encoder-decoder with relative positions (T5) has no hard limit; past its tokenizer's stated length (or this,
# where none is stated) a request for more new tokens is a typo, not a plan.
ENCODER_DECODER_FALLBACK_LIMIT = 2048
# Below this, logits divided by the temperature overflow to inf and sampling fails; greedy is the limit anyway.
MIN_TEMPERATURE = 1e-3
# Every returned sequence of a prompt is decoded in the same batch: past this, memory, not patience, runs out.
MAX_RETURN_SEQUENCES = 1024


@dataclass
class GenerationSettings:
    max_new_tokens: int | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    num_return_sequences: int = 1
    do_sample: bool | None = None  # None: sample when a sampling knob (temperature != 1, top-k, top-p) is set
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    seed: int | None = None
    batch_size: int = 8
    block_words: list[str] = field(default_factory=list)

    @property
    def sampling(self) -> bool:
        if self.do_sample is not None:
            return self.do_sample
        return self.temperature != 1.0 or self.top_k is not None or self.top_p is not None

    def validate(self, prompts: int | None = None, streaming: bool = False) -> None:
        """Raise one UsageError that lists every bad value (and, given the prompt count, a bad --stream)."""
        problems = []
        for flag, value in (("--temperature", self.temperature), ("--top-p", self.top_p),
                            ("--repetition-penalty", self.repetition_penalty)):
            if value is not None and not math.isfinite(value):
                problems.append(f"{flag} must be a finite number (got {value})")
        if problems:  # the range checks below would pass NaN through
            raise UsageError("; ".join(problems))
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            problems.append(f"--max-new-tokens must be at least 1 (got {self.max_new_tokens})")
        if self.max_length < 1:
            problems.append(f"--max-length must be at least 1 (got {self.max_length})")
        if not 1 <= self.num_return_sequences <= MAX_RETURN_SEQUENCES:
            problems.append(f"--num-return-sequences must be between 1 and {MAX_RETURN_SEQUENCES} (got "
                            f"{self.num_return_sequences}); for more, run again with another --seed")
        elif self.num_return_sequences > 1 and not self.sampling:
            problems.append("--num-return-sequences above 1 needs sampling: add --do-sample or a --temperature")
        if self.sampling and self.temperature < MIN_TEMPERATURE:
            problems.append(f"--temperature must be at least {MIN_TEMPERATURE} when sampling (got {self.temperature});"
                            " use --greedy for deterministic output")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"--top-p must be in (0, 1] (got {self.top_p})")
        if self.top_k is not None and self.top_k < 0:
            problems.append(f"--top-k must be 0 (off) or more (got {self.top_k})")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            problems.append(f"--repetition-penalty must be above 0 (got {self.repetition_penalty})")
        if self.no_repeat_ngram_size is not None and self.no_repeat_ngram_size < 1:
            problems.append(f"--no-repeat-ngram-size must be at least 1 (got {self.no_repeat_ngram_size})")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            problems.append(f"--seed must be between 0 and {MAX_SEED} (got {self.seed})")
        if self.batch_size < 1:
            problems.append(f"--batch-size must be at least 1 (got {self.batch_size})")
        if streaming and ((prompts is not None and prompts != 1) or self.num_return_sequences != 1):
            problems.append(f"--stream prints one generation as it comes: give one prompt (got {prompts}) and one "
                            "returned sequence")
        if problems:
            raise UsageError("; ".join(problems))


@dataclass
class Generation:
    prompt: str
    texts: list[str]  # continuations only, one per returned sequence
    prompt_tokens: int
    token_ids: list[list[int]]  # the new tokens of each sequence, without padding or end-of-sequence

    @property
    def new_tokens(self) -> list[int]:
        return [len(ids) for ids in self.token_ids]


@dataclass
class GenerationReport:
    generations: list[Generation]
    seconds: float

    @property
    def new_tokens(self) -> int:
        return sum(sum(g.new_tokens) for g in self.generations)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LlmtoolError(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise LlmtoolError(f"{what} '{path}' is a directory, not a file") from None
    except UnicodeDecodeError as err:
        raise LlmtoolError(f"{what} '{path}' is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None


def parse_prompts(text: str, source: str) -> list[str]:
    """Prompts from text: one per non-blank line, or JSON lines with a "prompt" field."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise LlmtoolError(f"{source} has no prompts (it is empty); write one prompt per line")
    if not lines[0][1].lstrip().startswith("{"):
        return [line for _, line in lines]
    prompts = []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise LlmtoolError(f"{source} line {n} is not valid JSON ({err.msg}); write one JSON object a line") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise LlmtoolError(f'{source} line {n} has no string "prompt" field; write {{"prompt": "..."}} a line')
        prompts.append(record["prompt"])
    return prompts


def read_prompts(path: Path) -> list[str]:
    return parse_prompts(_read_text(path, "prompt file"), f"prompt file '{path}'")


def read_block_words(path: Path | None, include_default: bool = False) -> list[str]:
    """Words/phrases to block, one a line ('#' starts a comment), from a file and/or the shipped default list."""
    texts = []
    if include_default:
        texts.append(resources.files("llmtool.assets").joinpath("blocklist.txt").read_text(encoding="utf-8"))
    if path is not None:
        texts.append(_read_text(path, "block-words file"))
    words = [line.strip() for text in texts for line in text.splitlines()]
    return list(dict.fromkeys(w for w in words if w and not w.startswith("#")))


def bad_words_ids(tokenizer, words: list[str]) -> list[list[int]]:
    """Token sequences for each word as it can appear: sentence-initial or mid-sentence, lower or capitalised."""
    sequences = set()
    for word in words:
        for variant in {word, word.lower(), word.capitalize()}:
            for spelled in (variant, " " + variant):
                ids = tokenizer(spelled, add_special_tokens=False)["input_ids"]
                if ids:
                    sequences.add(tuple(ids))
    return [list(s) for s in sorted(sequences)]


def _generation_kwargs(settings: GenerationSettings, tokenizer) -> dict:
    kwargs = {
        "do_sample": settings.sampling,
        "num_return_sequences": settings.num_return_sequences,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if settings.sampling:
        kwargs["temperature"] = settings.temperature
        kwargs["top_k"] = settings.top_k if settings.top_k is not None else 0
        kwargs["top_p"] = settings.top_p if settings.top_p is not None else 1.0
    if settings.repetition_penalty is not None:
        kwargs["repetition_penalty"] = settings.repetition_penalty
    if settings.no_repeat_ngram_size is not None:
        kwargs["no_repeat_ngram_size"] = settings.no_repeat_ngram_size
    if settings.block_words:
        kwargs["bad_words_ids"] = bad_words_ids(tokenizer, settings.block_words)
    return kwargs


def prepare_tokenizer(lm: LoadedModel) -> None:
    """Decoder-only models pad on the left so every prompt ends where generation starts; GPT-2 has no pad token."""
    tokenizer = lm.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if lm.task != SEQ2SEQ_LM:
        tokenizer.padding_side = "left"


def position_limit(lm: LoadedModel) -> int | None:
    """The most positions a decoder-only model can attend over; None where there is no such limit (T5)."""
    if lm.task == SEQ2SEQ_LM:
        return None
    return getattr(lm.model.config, "max_position_embeddings", None)


def output_limit(lm: LoadedModel) -> int | None:
    """The most new tokens an encoder-decoder is asked for: its tokenizer's stated length, else a fixed bound."""
    if lm.task != SEQ2SEQ_LM:
        return None
    stated = getattr(lm.tokenizer, "model_max_length", None)
    return stated if isinstance(stated, int) and 0 < stated < 1_000_000 else ENCODER_DECODER_FALLBACK_LIMIT


def _token_budgets(lm: LoadedModel, settings: GenerationSettings, lengths: list[int]) -> list[int]:
    """New tokens allowed per prompt: --max-new-tokens, else what --max-length leaves after the prompt."""
    encoder_decoder = lm.task == SEQ2SEQ_LM
    if settings.max_new_tokens is not None:
        budgets = [settings.max_new_tokens] * len(lengths)
    elif encoder_decoder:
        budgets = [settings.max_length] * len(lengths)
    else:
        budgets = [settings.max_length - n for n in lengths]
    for i, (n, budget) in enumerate(zip(lengths, budgets)):
        if n == 0 and not encoder_decoder:
            raise UsageError(f"prompt {i + 1} is empty; a decoder-only model needs at least one token to continue")
        if budget < 1:
            raise UsageError(f"prompt {i + 1} is {n} tokens, which fills --max-length {settings.max_length}; "
                             "raise --max-length or set --max-new-tokens")
    longest = output_limit(lm)
    if longest and max(budgets) > longest:
        raise UsageError(f"{max(budgets)} new tokens asked for, past the {longest} this encoder-decoder model's "
                         "outputs are made for; lower --max-new-tokens/--max-length")
    limit = position_limit(lm)
    if limit:
        worst = max(n + b for n, b in zip(lengths, budgets))
        if worst > limit:
            raise UsageError(f"prompt plus new tokens reach {worst} tokens, past this model's limit of {limit}; "
                             "shorten the prompt or lower --max-new-tokens/--max-length")
    return budgets


BUDGET_SLACK = 8  # tokens a prompt may be carried past its own budget so that it can share a batch


def plan_batches(lengths: list[int], budgets: list[int], batch_size: int, limit: int | None) -> list[list[int]]:
    """The length-sorted batches of `data.sorted_batches`, where a batch generates as many tokens as its largest
    budget: it only holds prompts whose budgets are within BUDGET_SLACK of each other (little wasted work), and
    its longest prompt plus that many tokens must fit the model's positions."""
    from llmtool.data import sorted_batches

    def fits(candidate: list[int]) -> bool:
        top = max(budgets[j] for j in candidate)
        spread = top - min(budgets[j] for j in candidate)
        too_long = limit is not None and max(lengths[j] for j in candidate) + top > limit
        return spread <= BUDGET_SLACK and not too_long

    return sorted_batches(lengths, batch_size, fits)


def _trim(ids: list[int], budget: int, stop_ids: set[int]) -> list[int]:
    ids = ids[:budget]
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i]
    return ids


def generate_ids(lm: LoadedModel, encoded: list[list[int]], settings: GenerationSettings, streamer=None,
                 on_start: Callable[[], None] | None = None) -> list[list[list[int]]]:
    """New token ids for every tokenized prompt (a list per returned sequence), in prompt order: the batched,
    length-sorted core that `generate` and the evaluation of seq2seq models share.

    Each prompt gets exactly the tokens it would get alone (greedy decoding is per-prefix, and batch outputs are
    cut to each prompt's own budget), so batching changes speed, not text. `on_start` runs once every check has
    passed, just before the first token (a streaming caller prints the prompt there, never before an error).
    """
    import torch
    from transformers import set_seed

    settings.validate(len(encoded), streaming=streamer is not None)
    prepare_tokenizer(lm)
    tokenizer = lm.tokenizer
    encoder_decoder = lm.task == SEQ2SEQ_LM
    lengths = [len(ids) for ids in encoded]
    budgets = _token_budgets(lm, settings, lengths)
    kwargs = _generation_kwargs(settings, tokenizer)
    stop_ids = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}
    if settings.seed is not None:
        set_seed(settings.seed)
    if on_start is not None:
        on_start()

    outputs: list[list[list[int]]] = [[] for _ in encoded]
    with torch.inference_mode():
        for batch in plan_batches(lengths, budgets, settings.batch_size, position_limit(lm)):
            inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt").to(lm.device)
            sequences = lm.model.generate(
                **inputs, max_new_tokens=max(budgets[i] for i in batch), streamer=streamer, **kwargs
            )
            new = sequences[:, 1:] if encoder_decoder else sequences[:, inputs["input_ids"].shape[1]:]
            rows = new.tolist()
            n = settings.num_return_sequences
            for j, i in enumerate(batch):
                outputs[i] = [_trim(r, budgets[i], stop_ids) for r in rows[j * n:(j + 1) * n]]
    return outputs


def generate(lm: LoadedModel, prompts: list[str], settings: GenerationSettings, streamer=None,
             on_start: Callable[[], None] | None = None) -> GenerationReport:
    """Generate for every prompt (see `generate_ids`, which checks the settings); results come back in prompt
    order, decoded."""
    encoded = lm.tokenizer(prompts, verbose=False)["input_ids"]  # too-long prompts are reported, not warned
    start = time.perf_counter()
    outputs = generate_ids(lm, encoded, settings, streamer=streamer, on_start=on_start)
    seconds = time.perf_counter() - start
    generations = [
        Generation(
            prompt=prompt,
            texts=lm.tokenizer.batch_decode(outputs[i], skip_special_tokens=True),
            prompt_tokens=len(encoded[i]),
            token_ids=outputs[i],
        )
        for i, prompt in enumerate(prompts)
    ]
    return GenerationReport(generations=generations, seconds=seconds)
