"""Serving models to many clients at once (`llmtool serve`): the models served, the requests they answer, and one
engine thread per model that owns it.

The HTTP front end (api.py) checks and tokenizes a request, then hands it to its model's engine as a `Job`. The
engine takes waiting jobs when it has room (`capacity`: requests decoded at once) and answers each with events on
the job's own asyncio queue, put there from the engine thread with `loop.call_soon_threadsafe`: text as it comes,
each choice's end, vectors, or an error. Three engines:
- `StepEngine`, decoder-only models: continuous batching (batching.RunningBatch). A request joins the batch at the
  next step; each of its sequences leaves as soon as it ends; a cancelled request (its client gone) leaves at the
  next step.
- `GroupEngine`, encoder-decoder models (T5), and any model served with the compiled decoder: the requests waiting
  when the engine is free are decoded together in generation's batches (model.generate, static cache when
  compiled); their text is sent whole as each batch ends. No continuous batching here: a step loop over an
  encoder-decoder's two caches, or over a static cache of varying batch size, is not written.
- `EmbedEngine`, encoders: the requests waiting are embedded together (embedding.embed, as `llmtool embed` does).
Each choice's text is assembled by `ChoiceText`: decoded as `generate` decodes it, cut before the first stop string,
and streamed only as far as later tokens can no longer change it, so a stream's chunks join to the whole text.
"""

from __future__ import annotations

import asyncio
import copy
import queue
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from llmtool import chat, embedding, generation, lora, models
from llmtool.batching import RunningBatch, Sequence, supports_step_decoding
from llmtool.errors import LlmtoolError
from llmtool.generation import GenerationSettings
from llmtool.tasks import CAUSAL_LM, SEQ2SEQ_LM

GENERATOR, ENCODER = "generator", "encoder"
POLL_SECONDS = 0.05  # how often an idle engine looks at its shutdown deadline


# ---------------------------------------------------------------- the models served


@dataclass
class ServedModel:
    """A model as requests name it, loaded, with the facts the front end checks requests against."""

    name: str
    source: str  # as given on the command line
    kind: str  # GENERATOR (completions, chat) or ENCODER (embeddings)
    lm: models.LoadedModel
    tokenizer: Any  # the front end's own copy: a fast tokenizer is not for two threads at once
    encoder: embedding.Encoder | None = None
    compiled: bool = False
    positions: int | None = None  # what a decoder-only model's prompt and new tokens share
    end_of_turn: int | None = None  # where a chat reply ends
    chat_problem: str | None = None  # why /v1/chat/completions refuses this model, if it does

    @property
    def task(self) -> str:
        return self.lm.task if self.kind == GENERATOR else "embeddings"

    def describe(self) -> str:
        """What it serves and how it batches, for the server's first line."""
        if self.kind == ENCODER:
            return "embeddings, arrivals batched together"
        if self.compiled:
            return f"{self.task}, compiled decoder, arrivals batched together"
        how = "continuous batching" if self.lm.task == CAUSAL_LM else "arrivals batched together"
        return f"{self.task}, {how}" + ("" if self.chat_problem else ", chat")


def generates(source: str) -> bool:
    """Whether the model at `source` generates text (a causal LM or an encoder-decoder; a LoRA adapter on one)
    rather than being served for its embeddings."""
    if lora.is_adapter(source):
        return True
    resolved = models.resolve_source(source)
    if embedding.sentence_transformers_pooling(source, resolved) is not None:
        return False
    return models.infer_task(models.load_config(resolved)) in (CAUSAL_LM, SEQ2SEQ_LM)


def load_served(name: str, source: str, *, device: str | None = None, dtype: str = "auto",
                compile_decoder: bool = False) -> ServedModel:
    """Load a model to serve: a generator through models.load_model (adapters included), an encoder as `embed`
    loads it. Remote code is never trusted."""
    if not generates(source):  # an encoder: the compiled decoder is for generators
        encoder = embedding.load_encoder(source, device=device, dtype=dtype)
        return ServedModel(name, source, ENCODER, encoder.lm, None, encoder=encoder)
    lm = models.load_model(source, allowed_tasks=(CAUSAL_LM, SEQ2SEQ_LM), verb="serve", device=device, dtype=dtype)
    generation.prepare_tokenizer(lm)
    models.quiet_false_mask_alarm()
    compiled = compile_decoder and generation.use_compiled_decoder(lm, GenerationSettings(), 1, True)
    served = ServedModel(name, source, GENERATOR, lm, copy.deepcopy(lm.tokenizer), compiled=compiled,
                         positions=generation.shared_positions(lm))
    if lm.task != CAUSAL_LM:
        served.chat_problem = f"model '{name}' is an encoder-decoder model; chat serves causal LMs"
    elif not getattr(lm.tokenizer, "chat_template", None):
        served.chat_problem = (f"model '{name}' has no chat template; fine-tune it to chat (finetune task chat saves "
                               "one with it), or use /v1/completions")
    else:
        try:
            served.end_of_turn = chat.end_of_turn_id(lm.tokenizer)
        except LlmtoolError as err:
            served.chat_problem = f"model '{name}': {err}"
    return served


# ---------------------------------------------------------------- requests and their text


@dataclass
class GenerationRequest:
    """A completion or chat request, checked: its tokenized prompts, each one's new tokens, and the settings
    (a sampled request always has its seed: the client's, or one drawn for it)."""

    prompts: list[list[int]]
    budgets: list[int]
    settings: GenerationSettings
    stops: list[str] = field(default_factory=list)

    @property
    def choices(self) -> int:
        return len(self.prompts) * self.settings.num_return_sequences


@dataclass
class EmbeddingRequest:
    texts: list[str]


# Text before the last whitespace is settled even for a tokenizer that tidies spaces when it decodes
# (clean_up_tokenization_spaces: " ." -> ".", "do n't" -> "don't"): tidying changes a space and what follows it.
_LAST_SPACE = re.compile(r"\s\S*\Z")


class ChoiceText:
    """One choice's text as its tokens come: decoded as `generate` decodes it (skipping special tokens), cut
    before the first of `stops`, and released (`add`, `rest`) only as far as later tokens cannot change it: short
    of what could still become a stop string, before an unfinished character, and, where the tokenizer tidies
    spaces, up to the last whitespace."""

    def __init__(self, tokenizer, stops: list[str]):
        self.tokenizer, self.stops = tokenizer, stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.tidies = bool(getattr(tokenizer, "clean_up_tokenization_spaces", False))
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0  # characters released so far
        self.stopped = False  # a stop string was reached

    def add(self, token: int) -> str:
        """Take a new token; the text released by it."""
        self.ids.append(token)
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        found = [at for at in (self.text.find(stop, self.sent) for stop in self.stops) if at >= 0]
        if found:
            self.text, self.stopped = self.text[:min(found)], True
            return self.rest()
        ready = len(self.text) - self.hold
        if self.tidies:
            space = _LAST_SPACE.search(self.text, self.sent)
            ready = min(ready, space.start() if space else self.sent)
        ready = min(ready, len(self.text.rstrip("\ufffd")))  # the bytes of a character may still be coming
        if ready <= self.sent:
            return ""
        released, self.sent = self.text[self.sent:ready], ready
        return released

    def rest(self) -> str:
        """What is left to release, once the choice has ended."""
        released, self.sent = self.text[self.sent:], len(self.text)
        return released


class EngineError(Exception):
    """How a request ended that the engine could not answer: said to its client with an HTTP status."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.code = status, code


class Job:
    """A request in an engine's hands, and where its events go: lists of ("text", choice, text), ("end", choice,
    finish reason, new tokens), ("vectors", array, tokens per text) or ("error", EngineError)."""

    def __init__(self, request: GenerationRequest | EmbeddingRequest, loop: asyncio.AbstractEventLoop):
        self.request, self.loop = request, loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False  # set by the front end when the client is gone; the engine drops the job
        self.texts: list[ChoiceText] = []
        self.open = 0  # choices not ended yet
        self.sequences: list[Sequence] = []

    def cancel(self) -> None:
        self.cancelled = True

    def emit(self, events: list[tuple]) -> None:
        """Hand events to the front end (from the engine thread)."""
        if not events:
            return
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, events)
        except RuntimeError:  # the event loop is closed: no one is listening any more
            pass

    def fail(self, error: EngineError) -> None:
        self.emit([("error", error)])

    def take(self, events: list[tuple]) -> None:
        """Events handed over (on the event loop's thread)."""
        self.events.put_nowait(events)


def emit_all(deliveries: list[tuple[Job, list[tuple]]]) -> None:
    """Hand several jobs their events with one wake-up of their event loop (a step's worth, from the engine)."""
    deliveries = [(job, events) for job, events in deliveries if events]
    if not deliveries:
        return
    try:
        deliveries[0][0].loop.call_soon_threadsafe(_take_all, deliveries)
    except RuntimeError:  # the event loop is closed: no one is listening any more
        pass


def _take_all(deliveries: list[tuple[Job, list[tuple]]]) -> None:
    for job, events in deliveries:
        job.take(events)


# ---------------------------------------------------------------- engines


class Engine(threading.Thread):
    """The thread that owns one served model and answers its jobs, `capacity` at a time; the rest wait in its
    inbox. `close(grace)` lets the jobs in flight finish for `grace` seconds and then ends them with an error;
    `stop()` ends the thread once nothing is in flight."""

    def __init__(self, served: ServedModel, capacity: int, log: Callable[[str], None] = lambda line: None):
        super().__init__(name=f"llmtool-serve-{served.name}", daemon=True)
        self.served, self.capacity, self.log = served, capacity, log
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.active: list[Job] = []
        self.deadline: float | None = None
        self.stopping = False

    def submit(self, job: Job) -> None:
        self.inbox.put(job)

    def close(self, grace: float) -> None:
        self.deadline = time.monotonic() + grace

    def stop(self) -> None:
        self.inbox.put(None)

    def run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self._cut(taken)
                continue
            self.active.extend(taken)
            if not self.active:
                continue
            try:
                self.work(taken)
            except Exception as err:  # noqa: BLE001 - every request in flight is told, and the engine goes on
                self.log(f"error: model '{self.served.name}' failed: {type(err).__name__}: {err}")
                failure = EngineError(500, f"the model failed on this request's batch ({type(err).__name__}: {err})",
                                      "model_error")
                for job in self.active:
                    job.fail(failure)
                self.active = []
                self.reset()

    def _take(self) -> list[Job] | None:
        """Jobs waiting, as many as there is room for; waits a little for one while nothing is in flight. None
        once stopped with nothing left."""
        taken: list[Job] = []
        while len(self.active) + len(taken) < self.capacity:
            idle = not self.active and not taken
            try:
                job = self.inbox.get(timeout=POLL_SECONDS) if idle else self.inbox.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self.stopping = True
            elif not job.cancelled:
                taken.append(job)
        if self.stopping and not self.active and not taken:
            return None
        return taken

    def _cut(self, taken: list[Job]) -> None:
        """The grace time is over: every job in flight or waiting ends with an error, never a short answer."""
        cut = EngineError(503, "the server shut down before this request was finished (its --grace time ran out)",
                          "server_shutdown")
        waiting = []
        while True:
            try:
                job = self.inbox.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self.stopping = True
            else:
                waiting.append(job)
        for job in [*self.active, *taken, *waiting]:
            job.fail(cut)
        self.active = []
        self.reset()

    def finish(self, done: list[Job]) -> None:
        ids = {id(job) for job in done}
        self.active = [job for job in self.active if id(job) not in ids]

    def work(self, taken: list[Job]) -> None:
        """Advance the jobs in flight (`self.active`, `taken` the ones that just joined)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the work in flight (after a failure or a cut)."""


def _choice_events(job: Job, index: int, text: str, finish: str | None, tokens: int, events: list) -> None:
    if text:
        events.append(("text", index, text))
    if finish:
        events.append(("end", index, finish, tokens))
        job.open -= 1


class StepEngine(Engine):
    """Continuous batching for a decoder-only model: one step at a time, requests joining at step boundaries."""

    def __init__(self, served: ServedModel, capacity: int, log: Callable[[str], None] = lambda line: None):
        super().__init__(served, capacity, log)
        self.batch = RunningBatch(served.lm)
        self.peak = 0  # the most sequences decoded in one step
        self.warpers: dict[tuple, list] = {}

    def reset(self) -> None:
        self.batch = RunningBatch(self.served.lm)

    def _sequences(self, job: Job) -> list[Sequence]:
        """A sequence per (prompt, returned sequence), each drawing from the stream of (seed, prompt position,
        sequence number) that `generate --seed` gives the same prompt."""
        request, lm = job.request, self.served.lm
        settings, n = request.settings, request.settings.num_return_sequences
        ends = frozenset(generation.end_ids(lm, settings))
        # Requests that sample alike share one list of (stateless) warpers: the batch warps and draws them together.
        key = (settings.temperature, settings.top_p)
        if settings.sampling and key not in self.warpers:
            self.warpers[key] = generation.sampling_warpers(settings)
        warpers = self.warpers[key] if settings.sampling else []
        sequences = []
        for p, (prompt, budget) in enumerate(zip(request.prompts, request.budgets)):
            draws = (generation.row_uniforms([(settings.seed, p)], n, budget).to(lm.device) if settings.sampling
                     else [None] * n)
            sequences += [Sequence(prompt, budget, ends, warpers, draws[j], owner=(job, p * n + j)) for j in range(n)]
        job.texts = [ChoiceText(self.served.lm.tokenizer, request.stops) for _ in sequences]
        job.open = len(sequences)
        return sequences

    def work(self, taken: list[Job]) -> None:
        gone = [job for job in self.active if job.cancelled]
        for job in gone:
            self.batch.remove(job.sequences)
        self.finish(gone)
        joining = []
        for job in taken:
            if not job.cancelled:
                job.sequences = self._sequences(job)
                joining += job.sequences
        if not joining and not len(self.batch):
            return
        events: dict[int, list] = {}
        stopped = []
        stepped = self.batch.step(joining)
        self.peak = max(self.peak, len(stepped))
        for sequence in stepped:
            job, index = sequence.owner
            text = job.texts[index]
            released = ""
            if len(sequence.ids) > len(text.ids):  # it took a token (not an end token)
                released = text.add(sequence.ids[-1])
                if text.stopped and not sequence.finish:
                    sequence.finish = "stop"
                    stopped.append(sequence)
            if sequence.finish:
                released += text.rest()
            _choice_events(job, index, released, sequence.finish, len(text.ids), events.setdefault(id(job), []))
        self.batch.remove(stopped)
        emit_all([(job, events.get(id(job), [])) for job in self.active])
        self.finish([job for job in self.active if job.open == 0])


class GroupEngine(Engine):
    """The requests waiting when the engine is free, decoded together through generation's batches."""

    def work(self, taken: list[Job]) -> None:
        groups: dict[tuple, list[Job]] = {}
        for job in taken:
            settings = job.request.settings
            key = (settings.sampling, settings.temperature, settings.top_p, settings.num_return_sequences,
                   tuple(settings.stop_token_ids))
            groups.setdefault(key, []).append(job)
        for jobs in groups.values():
            self._decode(jobs)
        self.finish(taken)

    def _decode(self, jobs: list[Job]) -> None:
        owners = [(job, p) for job in jobs for p in range(len(job.request.prompts))]
        encoded = [job.request.prompts[p] for job, p in owners]
        budgets = [job.request.budgets[p] for job, p in owners]
        streams = [(job.request.settings.seed, p) for job, p in owners]
        settings = replace(jobs[0].request.settings, batch_size=len(encoded))  # the group's settings but the seed
        n = settings.num_return_sequences
        for job in jobs:
            job.texts = [ChoiceText(self.served.lm.tokenizer, job.request.stops) for _ in range(job.request.choices)]
            job.open = job.request.choices
        for batch, new in generation.decode_batches(self.served.lm, encoded, settings, budgets=budgets,
                                                    streams=streams, compiled=self.served.compiled):
            events: dict[int, list] = {}
            for i, sequences in zip(batch, new):
                job, p = owners[i]
                for j, ids in enumerate(sequences):
                    text, released = job.texts[p * n + j], ""
                    for token in ids:
                        if text.stopped:
                            break
                        released += text.add(token)
                    finish = "stop" if text.stopped or len(ids) < budgets[i] else "length"
                    _choice_events(job, p * n + j, released + text.rest(), finish, len(text.ids),
                                   events.setdefault(id(job), []))
            for job in jobs:
                if not job.cancelled:
                    job.emit(events.get(id(job), []))


class EmbedEngine(Engine):
    """The requests waiting when the engine is free, embedded together as `llmtool embed` embeds a file."""

    def work(self, taken: list[Job]) -> None:
        texts = [text for job in taken for text in job.request.texts]
        try:
            embedded = embedding.embed(self.served.encoder, texts)
        except LlmtoolError as err:
            for job in taken:
                job.fail(EngineError(500, str(err), "model_error"))
            self.finish(taken)
            return
        start = 0
        for job in taken:
            end = start + len(job.request.texts)
            job.emit([("vectors", embedded.vectors[start:end], embedded.tokens[start:end])])
            start = end
        self.finish(taken)


def engine_for(served: ServedModel, capacity: int, log: Callable[[str], None] = lambda line: None) -> Engine:
    if served.kind == ENCODER:
        return EmbedEngine(served, capacity, log)
    if not served.compiled and supports_step_decoding(served.lm):
        return StepEngine(served, capacity, log)
    return GroupEngine(served, capacity, log)
