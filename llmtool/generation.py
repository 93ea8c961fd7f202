"""Text generation for causal and encoder-decoder LMs: batched, length-sorted within windows, streamed in prompt
order, left-padded where it matters; optionally with a static KV cache and a compiled decoder."""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator

from llmtool.data import sorted_batches
from llmtool.errors import LlmtoolError, SettingError, UsageError, json_problem
from llmtool.model_facts import new_token_limit, position_limit
from llmtool.models import LoadedModel, quiet_false_mask_alarm
from llmtool.tasks import SEQ2SEQ_LM

DEFAULT_MAX_LENGTH = 50  # total length (prompt + new tokens), as transformers' own default
MAX_SEED = 2**32 - 1  # numpy's seed range, which transformers.set_seed also seeds
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
    stop_token_ids: list[int] = field(default_factory=list)  # tokens that end a generation as its end token does

    @property
    def sampling(self) -> bool:
        if self.do_sample is not None:
            return self.do_sample
        return self.temperature != 1.0 or self.top_k is not None or self.top_p is not None

    def validate(self, prompts: int | None = None, streaming: bool = False) -> None:
        """Raise one SettingError that lists every bad value (and, given the prompt count, a bad `stream`)."""
        problems = []
        for key, value in (("temperature", self.temperature), ("top_p", self.top_p),
                           ("repetition_penalty", self.repetition_penalty)):
            if value is not None and not math.isfinite(value):
                problems.append(f"{{{key}}} must be a finite number (got {value})")
        if problems:  # the range checks below would pass NaN through
            raise SettingError("; ".join(problems))
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            problems.append(f"{{max_new_tokens}} must be at least 1 (got {self.max_new_tokens})")
        if self.max_length < 1:
            problems.append(f"{{max_length}} must be at least 1 (got {self.max_length})")
        if not 1 <= self.num_return_sequences <= MAX_RETURN_SEQUENCES:
            problems.append(f"{{num_return_sequences}} must be between 1 and {MAX_RETURN_SEQUENCES} (got "
                            f"{self.num_return_sequences}); for more, run again with another {{seed}}")
        elif self.num_return_sequences > 1 and not self.sampling:
            problems.append("{num_return_sequences} above 1 needs sampling: add {do_sample} or a {temperature}")
        if self.sampling and self.temperature < MIN_TEMPERATURE:
            problems.append(f"{{temperature}} must be at least {MIN_TEMPERATURE} when sampling (got "
                            f"{self.temperature}); use {{greedy}} for deterministic output")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"{{top_p}} must be in (0, 1] (got {self.top_p})")
        if self.top_k is not None and self.top_k < 0:
            problems.append(f"{{top_k}} must be 0 (off) or more (got {self.top_k})")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            problems.append(f"{{repetition_penalty}} must be above 0 (got {self.repetition_penalty})")
        if self.no_repeat_ngram_size is not None and self.no_repeat_ngram_size < 1:
            problems.append(f"{{no_repeat_ngram_size}} must be at least 1 (got {self.no_repeat_ngram_size})")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            problems.append(f"{{seed}} must be between 0 and {MAX_SEED} (got {self.seed})")
        if self.batch_size < 1:
            problems.append(f"{{batch_size}} must be at least 1 (got {self.batch_size})")
        if streaming and ((prompts is not None and prompts != 1) or self.num_return_sequences != 1):
            problems.append(f"{{stream}} prints one generation as it comes: give one prompt (got {prompts}) and one "
                            "returned sequence")
        if problems:
            raise SettingError("; ".join(problems))

    def text_settings(self) -> dict:
        """The settings that decide the text each prompt gets, by key: what a resumed run must share with the
        results it continues (not the batch size: a prompt's text does not depend on its batch)."""
        length = ({"max_new_tokens": self.max_new_tokens} if self.max_new_tokens is not None
                  else {"max_length": self.max_length})
        sampling = ({"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p, "seed": self.seed}
                    if self.sampling else {})
        return {**length, "num_return_sequences": self.num_return_sequences, "do_sample": self.sampling, **sampling,
                "repetition_penalty": self.repetition_penalty, "no_repeat_ngram_size": self.no_repeat_ngram_size,
                "block_words": self.block_words}


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


def _prompts_in(lines: Iterable[tuple[int, str]], source: str) -> Iterator[str]:
    """Prompts from numbered lines: one per non-blank line, or, when the first such line opens a JSON object,
    the "prompt" field of one JSON object a line."""
    jsonl = None
    for n, line in lines:
        if not line.strip():
            continue
        if jsonl is None:
            jsonl = line.lstrip().startswith("{")
        if not jsonl:
            yield line
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise LlmtoolError(f"{source} line {n} is not valid JSON ({json_problem(err, with_line=False)}); write one "
                               "JSON object a line") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise LlmtoolError(f'{source} line {n} has no string "prompt" field; write {{"prompt": "..."}} a line')
        yield record["prompt"]


def parse_prompts(text: str, source: str) -> list[str]:
    """Prompts from text: one per non-blank line, or JSON lines with a "prompt" field."""
    prompts = list(_prompts_in(enumerate(text.splitlines(), 1), source))
    if not prompts:
        raise LlmtoolError(f"{source} has no prompts (it is empty); write one prompt per line")
    return prompts


class PromptFile:
    """The prompts of a file (one a line, or JSONL with a "prompt" field), read as they are used: the prompts of
    a 100,000-line file are never all in memory. Opening it reads it once to check every line (UTF-8, JSON) and
    to count the prompts, so a bad line is reported before any work starts."""

    def __init__(self, path: Path):
        self.path = path
        self.source = f"prompt file '{path}'"
        self.count = sum(1 for _ in self)
        if self.count == 0:
            raise LlmtoolError(f"{self.source} has no prompts (it is empty); write one prompt per line")

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        return _prompts_in(self._lines(), self.source)

    def _lines(self) -> Iterator[tuple[int, str]]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            raise LlmtoolError(f"{self.source} does not exist") from None
        except IsADirectoryError:
            raise LlmtoolError(f"{self.source} is a directory, not a file") from None
        offset = 0
        with handle:
            for n, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise LlmtoolError(f"{self.source} is not UTF-8 text (line {n}, byte {offset + err.start}); "
                                       "re-save it as UTF-8") from None
                if n == 1:
                    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the first prompt
                offset += len(raw)
                for part in text.splitlines():  # the line breaks that str.splitlines knows, as for stdin
                    yield n, part


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


def _generation_kwargs(settings: GenerationSettings, tokenizer, model_end: int | list[int] | None = None) -> dict:
    """model.generate's settings. It always decodes greedily here: a sampled run draws its tokens in
    `_SeededSampler`, the last of its logits processors, and the returned sequences come as rows of their own.
    `model_end` is the end token (or tokens) of the model's generation config, which stop tokens add to."""
    kwargs = {"do_sample": False, "num_return_sequences": 1, "pad_token_id": tokenizer.pad_token_id}
    if settings.stop_token_ids:  # a chat template's end of turn: the row is done there, as at the end token
        ends = model_end if isinstance(model_end, list) else [model_end]
        kwargs["eos_token_id"] = list(dict.fromkeys(t for t in (*ends, tokenizer.eos_token_id, *settings.stop_token_ids)
                                                    if t is not None))
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


def shared_positions(lm: LoadedModel) -> int | None:
    """The positions a decoder-only model's prompt and new tokens share; None for an encoder-decoder, whose
    outputs have positions of their own."""
    return None if lm.task == SEQ2SEQ_LM else position_limit(lm.model.config)


def output_limit(lm: LoadedModel) -> int | None:
    """The most new tokens this model is asked for: None for a decoder-only model (see `shared_positions`)."""
    if lm.task != SEQ2SEQ_LM:
        return None
    return new_token_limit(getattr(lm.tokenizer, "model_max_length", None))


# The total length also bounds the new tokens, where the caller has that setting (generate; not eval or a recipe).
OR_MAX_LENGTH = {"max_length": "/{max_length}"}


def token_budgets(lm: LoadedModel, settings: GenerationSettings, lengths: list[int], first: int = 0) -> list[int]:
    """New tokens allowed per prompt: max_new_tokens, else what max_length leaves after the prompt. The prompts
    are numbered from `first` in errors."""
    encoder_decoder = lm.task == SEQ2SEQ_LM
    if settings.max_new_tokens is not None:
        budgets = [settings.max_new_tokens] * len(lengths)
    elif encoder_decoder:
        budgets = [settings.max_length] * len(lengths)
    else:
        budgets = [settings.max_length - n for n in lengths]
    for i, (n, budget) in enumerate(zip(lengths, budgets)):
        if n == 0 and not encoder_decoder:
            raise UsageError(f"prompt {first + i + 1} is empty; a decoder-only model needs at least one token to continue")
        if budget < 1:
            raise SettingError(f"prompt {first + i + 1} is {n} tokens, which fills {{max_length}} "
                               f"{settings.max_length}; raise {{max_length}} or set {{max_new_tokens}}")
    longest = output_limit(lm)
    if longest and max(budgets) > longest:
        raise SettingError(f"{max(budgets)} new tokens asked for, past the {longest} this encoder-decoder model's "
                           "outputs are made for; lower {max_new_tokens}", OR_MAX_LENGTH)
    limit = shared_positions(lm)
    if limit:
        totals = [n + b for n, b in zip(lengths, budgets)]
        worst = max(range(len(totals)), key=totals.__getitem__)
        if totals[worst] > limit:
            raise SettingError(f"prompt {first + worst + 1} plus its new tokens reach {totals[worst]} tokens, past "
                               f"this model's limit of {limit}; shorten the prompt or lower {{max_new_tokens}}",
                               OR_MAX_LENGTH)
    return budgets


BUDGET_SLACK = 8  # tokens a prompt may be carried past its own budget so that it can share a batch


def plan_batches(lengths: list[int], budgets: list[int], batch_size: int, limit: int | None) -> list[list[int]]:
    """The length-sorted batches of `data.sorted_batches`, where a batch generates as many tokens as its largest
    budget: it only holds prompts whose budgets are within BUDGET_SLACK of each other (little wasted work), and
    its longest prompt plus that many tokens must fit the model's positions."""
    def fits(candidate: list[int]) -> bool:
        top = max(budgets[j] for j in candidate)
        spread = top - min(budgets[j] for j in candidate)
        too_long = limit is not None and max(lengths[j] for j in candidate) + top > limit
        return spread <= BUDGET_SLACK and not too_long

    return sorted_batches(lengths, batch_size, fits)


def end_ids(lm: LoadedModel, settings: GenerationSettings) -> set[int]:
    """The tokens a generation ends at, none of them part of it: the tokenizer's end and pad tokens, the end
    tokens of the model's generation config (where model.generate stops), and the settings' stop tokens."""
    configured = lm.model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    return {t for t in (lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id, *configured, *settings.stop_token_ids)
            if t is not None}


def _trim(ids: list[int], budget: int, stop_ids: set[int]) -> list[int]:
    ids = ids[:budget]
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i]
    return ids


# --compile's automatic rule, for CUDA. The compiled, static-cache decoder of GPT-2-124M in bf16 saves about 3.5 ms
# a decoding step at batch 1 and 6 ms at batch 32 on an H200 (eager 169 vs compiled 413 tokens/s at batch 1, 4,178
# vs 17,838 at batch 32). Compiling costs once a run; torch.compile takes tens of seconds for a model of this size
# (an estimate, not measured on that GPU), so at ~4 ms a step, 10,000 steps (say 80 batches of 128 new tokens)
# repay ~40 s. Below that, eager decoding finishes first.
AUTO_COMPILE_MIN_STEPS = 10_000
# A static cache is sized in steps of this many positions, so that a run's batches share a few compiled shapes.
CACHE_LENGTH_STEP = 256


def decoding_steps(prompts: int, settings: GenerationSettings) -> int:
    """At most how many decoder calls a run makes: its batches times the new tokens a batch may take."""
    per_batch = settings.max_new_tokens if settings.max_new_tokens is not None else settings.max_length
    return math.ceil(prompts / settings.batch_size) * per_batch


def use_compiled_decoder(lm: LoadedModel, settings: GenerationSettings, prompts: int,
                         requested: bool | None) -> bool:
    """Whether to decode with a static KV cache and a compiled forward: as `requested`, else (None) on CUDA when
    the run makes enough decoding steps to repay the compile (AUTO_COMPILE_MIN_STEPS). Other devices keep eager
    decoding unless asked."""
    if requested is False:
        return False
    supported = bool(getattr(lm.model, "_can_compile_fullgraph", False))  # transformers' own flag for the static cache
    if requested:
        if not supported:
            raise SettingError(f"this model's architecture ({type(lm.model).__name__}) cannot decode with the "
                               "static KV cache that compiling needs; run without {compile_decoder}")
        return True
    return supported and lm.device.type == "cuda" and decoding_steps(prompts, settings) >= AUTO_COMPILE_MIN_STEPS


def _compile_config(device):
    from transformers import CompileConfig

    config = CompileConfig()  # transformers' defaults: inductor, "reduce-overhead" (CUDA graphs)
    if device.type != "cuda":
        config.mode = "default"  # CUDA graphs exist only on CUDA
        config._compile_all_devices = True  # generate compiles on its own only on GPUs; here the user asked for it
    return config


def _supports_max_cache_len() -> bool:
    from transformers import GenerationConfig

    return hasattr(GenerationConfig(), "max_cache_len")  # newer transformers; older ones size the cache per call


def sampling_warpers(settings: GenerationSettings) -> list:
    """transformers' own temperature, top-k and top-p warpers, as model.generate adds them when it samples."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers = []
    if settings.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(settings.temperature))
    if settings.top_k:
        warpers.append(TopKLogitsWarper(settings.top_k))
    if settings.top_p is not None and settings.top_p < 1.0:
        warpers.append(TopPLogitsWarper(settings.top_p))
    return warpers


def draw_seed() -> int:
    """A run seed for a run given none, from torch's global generator (so `torch.manual_seed` still decides it)."""
    import torch

    return int(torch.randint(0, MAX_SEED + 1, (1,), dtype=torch.int64))


def row_uniforms(streams: list[tuple[int, int]], sequences: int, steps: int):
    """Uniform draws in (0, 1], a row per (prompt, returned sequence) and a column per new token. `streams` holds
    each prompt's (seed, position in the whole input): its rows are the streams numpy's SeedSequence derives from
    (seed, position, the sequence's number), so a prompt's draws never depend on which prompts share its batch,
    window or file (or, served, which requests share its batch)."""
    import numpy as np
    import torch

    rows = [np.random.default_rng([seed, prompt, sequence]).random(steps)
            for seed, prompt in streams for sequence in range(sequences)]
    return torch.from_numpy(1.0 - np.stack(rows)).float()


def sample_tokens(scores, uniforms):
    """The token each row of `scores` draws from their softmax at its uniform in (0, 1] (a column: one a row), by
    inverting the cumulative distribution: the seeded sampling step of generation and of served requests."""
    import torch

    cumulative = torch.softmax(scores.float(), dim=-1).cumsum(dim=-1)
    # In (0, total]: the first cumulative value at or past it always belongs to a token of non-zero mass.
    targets = uniforms * cumulative[:, -1:]
    return torch.searchsorted(cumulative, targets).clamp_(max=scores.shape[-1] - 1)


class _SeededSampler:
    """The sampling step of model.generate, done as a logits processor with a random stream per row: it draws the
    next token of each row from the softmax of its (warped) scores by inverting the cumulative distribution at
    the row's next uniform, then leaves only that token finite, so that greedy decoding takes it."""

    def __init__(self, uniforms):
        self.uniforms, self.step = uniforms, 0

    def __call__(self, input_ids, scores):
        import torch

        chosen = sample_tokens(scores, self.uniforms[:, self.step:self.step + 1])
        self.step += 1
        return torch.full_like(scores, -math.inf).scatter_(1, chosen, 0.0)


class _Decoder:
    """One run's model.generate settings, and the length-sorted batches it decodes."""

    def __init__(self, lm: LoadedModel, settings: GenerationSettings, compiled: bool = False, streamer=None):
        prepare_tokenizer(lm)
        quiet_false_mask_alarm()
        self.lm, self.settings, self.streamer = lm, settings, streamer
        self.seed = (settings.seed if settings.seed is not None else draw_seed()) if settings.sampling else None
        self.warpers = sampling_warpers(settings) if settings.sampling else []
        tokenizer = lm.tokenizer
        self.kwargs = _generation_kwargs(settings, tokenizer, lm.model.generation_config.eos_token_id)
        self.stop_ids = end_ids(lm, settings)
        self.limit = shared_positions(lm)
        self.size_cache = compiled and _supports_max_cache_len()
        if compiled:
            self.kwargs.update(cache_implementation="static", compile_config=_compile_config(lm.device))

    def _cache_length(self, prompt_length: int, new_tokens: int) -> int:
        needed = new_tokens + (0 if self.lm.task == SEQ2SEQ_LM else prompt_length)
        rounded = -(-needed // CACHE_LENGTH_STEP) * CACHE_LENGTH_STEP
        return min(rounded, self.limit) if self.limit else rounded

    def _sampler(self, streams: list[tuple[int, int]], new_tokens: int) -> dict:
        if self.seed is None:
            return {}
        from transformers import LogitsProcessorList

        uniforms = row_uniforms(streams, self.settings.num_return_sequences, new_tokens)
        return {"logits_processor": LogitsProcessorList([*self.warpers, _SeededSampler(uniforms.to(self.lm.device))])}

    def batches(self, encoded: list[list[int]], budgets: list[int], first: int = 0,
                streams: list[tuple[int, int]] | None = None) -> Iterator[tuple[list[int], list[list[list[int]]]]]:
        """(batch, the new ids of each of its prompts: a list per returned sequence) for each batch, longest first.
        `first` is the position of `encoded[0]` in the whole input, which a sampled prompt's draws derive from
        with the run's seed; `streams` may give each prompt its own (seed, position) instead (served requests,
        each a whole input of its own)."""
        import torch

        lm, n = self.lm, self.settings.num_return_sequences
        lengths = [len(ids) for ids in encoded]
        for batch in plan_batches(lengths, budgets, self.settings.batch_size, self.limit):
            repeated = [encoded[i] for i in batch for _ in range(n)]  # a prompt's sequences in adjacent rows
            inputs = lm.tokenizer.pad({"input_ids": repeated}, return_tensors="pt").to(lm.device)
            new_tokens = max(budgets[i] for i in batch)
            prompt_length = inputs["input_ids"].shape[1]
            extra = {"max_cache_len": self._cache_length(prompt_length, new_tokens)} if self.size_cache else {}
            extra.update(self._sampler([streams[i] if streams else (self.seed, first + i) for i in batch],
                                       new_tokens))
            with torch.inference_mode():  # per batch: a caller's code between batches runs outside it
                sequences = lm.model.generate(**inputs, max_new_tokens=new_tokens, streamer=self.streamer,
                                              **self.kwargs, **extra)
            rows = sequences[:, 1 if lm.task == SEQ2SEQ_LM else prompt_length:].tolist()
            yield batch, [[_trim(r, budgets[i], self.stop_ids) for r in rows[j * n:(j + 1) * n]]
                          for j, i in enumerate(batch)]


def decode_batches(lm: LoadedModel, encoded: list[list[int]], settings: GenerationSettings, *,
                   budgets: list[int] | None = None, streams: list[tuple[int, int]] | None = None,
                   compiled: bool = False, streamer=None) -> Iterator[tuple[list[int], list[list[list[int]]]]]:
    """(batch, the new ids of each of its prompts: a list per returned sequence) for the tokenized prompts, batch by
    batch (see `_Decoder.batches`). `budgets` gives each prompt its own new tokens (already checked against the
    model); `streams` each prompt's (seed, position) for its draws: served requests, each an input of its own."""
    decoder = _Decoder(lm, settings, compiled, streamer)
    if budgets is None:
        budgets = token_budgets(lm, settings, [len(ids) for ids in encoded])
    return decoder.batches(encoded, budgets, streams=streams)


def generate_ids(lm: LoadedModel, encoded: list[list[int]], settings: GenerationSettings,
                 streamer=None) -> list[list[list[int]]]:
    """New token ids for every tokenized prompt (a list per returned sequence), in prompt order, all batches
    planned at once (the evaluation of seq2seq models uses it; chat, on a prompt its template has rendered, with
    a `streamer` that prints the reply as it comes).

    Each prompt gets exactly the tokens it would get alone (greedy decoding is per-prefix, sampling draws from a
    stream of the prompt's own, and batch outputs are cut to each prompt's own budget), so batching changes speed,
    not text.
    """
    settings.validate(len(encoded), streaming=streamer is not None)
    outputs: list[list[list[int]]] = [[] for _ in encoded]
    for batch, new in decode_batches(lm, encoded, settings, streamer=streamer):
        for i, ids in zip(batch, new):
            outputs[i] = ids
    return outputs


# Prompts are sorted by length within windows of this many batches: nearly all the padding a global sort saves,
# while a finished result waits at most one window to be passed on in prompt order, and a resumed run redoes at
# most one window.
WINDOW_BATCHES = 16


def _windows(prompts: Iterable[str], size: int) -> Iterator[list[str]]:
    window: list[str] = []
    for prompt in prompts:
        window.append(prompt)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def generate_stream(lm: LoadedModel, prompts: Iterable[str], settings: GenerationSettings, *, skip: int = 0,
                    compiled: bool = False, streamer=None, on_start: Callable[[], None] | None = None,
                    on_batch: Callable[[int, int], None] | None = None) -> Iterator[Generation]:
    """Generations for `prompts` in prompt order, each passed on as soon as it and every one before it are done;
    prompts are read a window at a time (WINDOW_BATCHES batches), so memory does not grow with their number.

    A sampled prompt draws from a stream derived from the seed and its position in the whole input (see
    `row_uniforms`), so a run that skips the first `skip` prompts (a resumed run) gives the rest exactly what the
    uninterrupted run gave them. `on_start` runs once the first window's checks have passed, just before the first
    token (a streaming caller prints the prompt there, never before an error); `on_batch(prompts, new tokens)`
    after each batch. Errors name prompts by their number in the whole input.
    """
    settings.validate(streaming=streamer is not None)
    decoder = _Decoder(lm, settings, compiled, streamer)
    size = settings.batch_size * WINDOW_BATCHES
    first = skip
    for window in _windows(itertools.islice(prompts, skip, None), size):
        encoded = lm.tokenizer(window, verbose=False)["input_ids"]  # too-long prompts are reported, not warned
        budgets = token_budgets(lm, settings, [len(ids) for ids in encoded], first=first)
        if on_start is not None:
            on_start()
            on_start = None
        done: list[Generation | None] = [None] * len(window)
        passed = 0
        for batch, new in decoder.batches(encoded, budgets, first=first):
            for i, ids in zip(batch, new):
                done[i] = Generation(prompt=window[i], texts=lm.tokenizer.batch_decode(ids, skip_special_tokens=True),
                                     prompt_tokens=len(encoded[i]), token_ids=ids)
            if on_batch is not None:
                on_batch(len(batch), sum(sum(done[i].new_tokens) for i in batch))
            while passed < len(window) and done[passed] is not None:
                yield done[passed]
                done[passed] = None  # its caller has it now
                passed += 1
        first += len(window)


def generate(lm: LoadedModel, prompts: list[str], settings: GenerationSettings, streamer=None,
             on_start: Callable[[], None] | None = None, compiled: bool = False) -> GenerationReport:
    """Every prompt's generation, in prompt order (see `generate_stream`, which checks the settings)."""
    start = time.perf_counter()
    generations = list(generate_stream(lm, prompts, settings, compiled=compiled, streamer=streamer,
                                       on_start=on_start))
    return GenerationReport(generations=generations, seconds=time.perf_counter() - start)
