"""The OpenAI-compatible HTTP front end of `llmtool serve`, on FastAPI: the endpoints, their request checks and
response shapes (OpenAI's, streamed as server-sent events), and the bounds a server under load keeps.

Every request is checked before it reaches a model: the body's size and JSON, each field's type and range, the
model's name, the prompt's length against the model's positions. A problem is OpenAI's error object
({"error": {"message", "type", "param", "code"}}) naming the field. Then it is admitted or refused: each model
decodes `max_concurrency` requests at once and keeps `max_queue` more waiting; past that, 429 with Retry-After.
A client that goes away cancels its request, which leaves its engine's batch at the next step. Once the server
is closing, new requests get 503; requests in flight finish, or end with an error when the grace time runs out.
One line a request goes to the log: its id, model, status, tokens in and out, and time taken.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmtool import chat, conversation, generation, serving
from llmtool.errors import LlmtoolError, json_problem, naming
from llmtool.generation import MAX_SEED, MIN_TEMPERATURE, GenerationSettings
from llmtool.serving import ENCODER, GENERATOR, EngineError, Job, ServedModel

MAX_BODY_BYTES = 2 * 1024 * 1024  # a request body past this is refused (413) before it is read whole
MAX_CHOICES = 64  # prompts x n in one request: each is a row of the batch that other requests share
MAX_STOPS = 4  # OpenAI's limit
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit
MAX_TEMPERATURE = 2.0  # OpenAI's range
DEFAULT_COMPLETION_TOKENS = 16  # OpenAI's default max_tokens for /v1/completions
RETRY_AFTER_SECONDS = 1
# How the domain's setting keys read in this API (errors.SettingError): its field names, or none.
API_NAMES = {"max_new_tokens": "max_tokens", "max_length": None, "num_return_sequences": "n", "do_sample": None,
             "greedy": None, "stream": "stream"}
# Fields OpenAI defines that llmtool does not implement: accepted at their neutral values, refused otherwise.
NEUTRAL = {"logprobs": (None, False), "echo": (None, False), "best_of": (None, 1), "suffix": (None,),
           "presence_penalty": (None, 0), "frequency_penalty": (None, 0), "logit_bias": (None, {}),
           "top_logprobs": (None, 0), "parallel_tool_calls": (None, True), "store": (None, False),
           "metadata": (None,), "service_level": (None, "auto")}
COMMON_FIELDS = {"model", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "stream", "stream_options", "user"}
COMPLETION_FIELDS = COMMON_FIELDS | {"prompt"}
CHAT_FIELDS = COMMON_FIELDS | {"messages", "max_completion_tokens"}
EMBEDDING_FIELDS = {"model", "input", "encoding_format", "dimensions", "user"}


class ApiError(Exception):
    """A request refused, as OpenAI says it: an HTTP status and {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers

    @property
    def kind(self) -> str:
        if self.status == 429:
            return "rate_limit_error"
        return "server_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


@dataclass
class Limits:
    max_concurrency: int = 16
    max_queue: int = 64
    max_body: int = MAX_BODY_BYTES


# ---------------------------------------------------------------- field checks


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(body: dict, key: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key} must be an integer (got {_shown(value)})", key, "invalid_type")
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low} and {high} (got {value})", key, "invalid_value")
    return value


def _number(body: dict, key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{key} must be a number (got {_shown(value)})", key, "invalid_type")
    if not math.isfinite(value) or not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low:g} and {high:g} (got {value})", key, "invalid_value")
    return float(value)


def _boolean(body: dict, key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"{key} must be true or false (got {_shown(value)})", key, "invalid_type")
    return value


def _known_fields(body: dict, fields: set[str]) -> None:
    for key, value in body.items():
        if key in fields:
            continue
        if key in NEUTRAL:
            if value in NEUTRAL[key]:
                continue
            raise ApiError(400, f"{key} is not supported by this server (only {_shown(NEUTRAL[key][-1])})", key,
                           "unsupported_parameter")
        raise ApiError(400, f"unrecognized request argument: {key}", key, "unknown_parameter")


def _stops(body: dict) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise ApiError(400, f"stop must be a non-empty string or a list of up to {MAX_STOPS} of them (got "
                            f"{_shown(value)})", "stop", "invalid_value")
    return stops


def _settings(body: dict, served: ServedModel, prompts: int, chat_request: bool) -> GenerationSettings:
    """The generation settings of a request: OpenAI's defaults (temperature 1, top_p 1: sampling); temperature 0
    decodes greedily. A sampled request without a seed gets one drawn."""
    temperature = _number(body, "temperature", 1.0, 0.0, MAX_TEMPERATURE)
    if 0 < temperature < MIN_TEMPERATURE:
        raise ApiError(400, f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE} (got {temperature})",
                       "temperature", "invalid_value")
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0:
        raise ApiError(400, "top_p must be above 0 (got 0)", "top_p", "invalid_value")
    n = _integer(body, "n", 1, 1, MAX_CHOICES)
    if n * prompts > MAX_CHOICES:
        raise ApiError(400, f"{prompts} prompts x n {n} ask for {n * prompts} choices; at most {MAX_CHOICES} a request",
                       "n", "invalid_value")
    sampling = temperature > 0
    if n > 1 and not sampling:
        raise ApiError(400, "n above 1 needs sampling: set temperature above 0", "n", "invalid_value")
    seed = _integer(body, "seed", None, 0, MAX_SEED)
    if sampling and seed is None:
        seed = generation.draw_seed()
    settings = GenerationSettings(
        do_sample=sampling, temperature=temperature if sampling else 1.0, top_p=top_p if top_p < 1 else None,
        num_return_sequences=n, seed=seed if sampling else None,
        stop_token_ids=[served.end_of_turn] if chat_request else [])
    try:
        with naming(API_NAMES):
            settings.validate()
    except LlmtoolError as err:  # the checks above come first; this is the domain's own backstop
        raise ApiError(400, str(err), None, "invalid_value") from None
    return settings


def _prompts(body: dict, served: ServedModel) -> list[list[int]]:
    """A completion request's prompts, tokenized: a string, a list of strings, or token ids (a list of them)."""
    prompt = body.get("prompt")
    if prompt is None:
        raise ApiError(400, "prompt is required", "prompt", "missing_field")
    vocabulary = len(served.tokenizer)
    if isinstance(prompt, str):
        prompt = [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise ApiError(400, f"prompt must be a string, a list of strings or token ids (got {_shown(prompt)})",
                       "prompt", "invalid_type")
    if len(prompt) > MAX_CHOICES:
        raise ApiError(400, f"at most {MAX_CHOICES} prompts a request (got {len(prompt)})", "prompt", "invalid_value")
    encoded = []
    for item in prompt:
        if isinstance(item, str):
            encoded.append(served.tokenizer(item, verbose=False)["input_ids"])
        elif isinstance(item, list) and all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocabulary
                                            for t in item):
            encoded.append(item)
        else:
            raise ApiError(400, f"prompt must be a string, a list of strings or token ids below {vocabulary} (got "
                                f"{_shown(item)})", "prompt", "invalid_value")
    return encoded


def _message(turn: Any) -> dict:
    """An OpenAI message as llmtool's conversations hold it: {role, content}, content given as text or as text
    parts; OpenAI's "developer" role is the system turn."""
    if not isinstance(turn, dict):
        return turn  # chat.prompt_problem says what is wrong
    content = turn.get("content")
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        content = "".join(str(p.get("text", "")) for p in content)
    role = "system" if turn.get("role") == "developer" else turn.get("role")
    return {"role": role, "content": content} if "role" in turn and "content" in turn else turn


def _chat_prompt(body: dict, served: ServedModel) -> list[int]:
    if served.chat_problem:
        raise ApiError(400, served.chat_problem, "model", "model_not_supported")
    messages = body.get("messages")
    if messages is None:
        raise ApiError(400, "messages is required", "messages", "missing_field")
    messages = [_message(turn) for turn in messages] if isinstance(messages, list) else messages
    problem = chat.prompt_problem(messages)
    if problem:
        raise ApiError(400, f"messages: {problem}", "messages", "invalid_value")
    try:
        return conversation.prompt_ids(served.tokenizer, messages)
    except LlmtoolError as err:
        raise ApiError(400, f"messages: {err}", "messages", "invalid_value") from None


def _budgets(body: dict, served: ServedModel, prompts: list[list[int]], settings: GenerationSettings,
             chat_request: bool) -> list[int]:
    """Each prompt's new tokens: max_tokens, else OpenAI's default (16 for a completion; for a chat reply, the
    model's positions left, at most conversation.DEFAULT_MAX_NEW_TOKENS). Past the model's positions is refused."""
    what = "messages" if chat_request else "prompt"
    given = body.get("max_tokens") if body.get("max_tokens") is not None else body.get("max_completion_tokens")
    key = "max_tokens" if body.get("max_tokens") is not None or not chat_request else "max_completion_tokens"
    limit = served.positions
    longest = max(len(p) for p in prompts)
    if given is not None:
        budget = _integer({key: given}, key, None, 1, limit or 2**31 - 1)
    elif not chat_request:
        budget = DEFAULT_COMPLETION_TOKENS
    else:
        room = (limit - longest) if limit else conversation.DEFAULT_MAX_NEW_TOKENS
        if room < 1:
            raise ApiError(400, f"the messages are {longest} tokens as the chat template renders them, which fill this "
                                f"model's {limit} positions; shorten them", what, "context_length_exceeded")
        budget = min(conversation.DEFAULT_MAX_NEW_TOKENS, room)
    if limit and longest + budget > limit:
        whose = "the messages are" if chat_request else f"prompt {_longest(prompts) + 1} is"
        fix = "shorten them" if chat_request else "shorten it"
        raise ApiError(400, f"{whose} {longest} tokens; with {key} {budget} that passes this model's {limit} "
                            f"positions: {fix}, or lower {key}",
                       what if longest >= limit or given is None else key, "context_length_exceeded")
    settings.max_new_tokens = budget
    try:  # the domain's own checks (an encoder-decoder's output limit, an empty prompt)
        with naming({**API_NAMES, "max_new_tokens": key}):
            return generation.token_budgets(served.lm, settings, [len(p) for p in prompts])
    except LlmtoolError as err:
        raise ApiError(400, str(err), what, "invalid_value") from None


def _longest(prompts: list[list[int]]) -> int:
    return max(range(len(prompts)), key=lambda i: len(prompts[i]))


def generation_request(body: dict, served: ServedModel, chat_request: bool) -> serving.GenerationRequest:
    """A completion or chat request's body, checked field by field against the model."""
    _known_fields(body, CHAT_FIELDS if chat_request else COMPLETION_FIELDS)
    if served.kind != GENERATOR:
        raise ApiError(400, f"model '{served.name}' is served for embeddings (/v1/embeddings); it does not generate",
                       "model", "model_not_supported")
    prompts = [_chat_prompt(body, served)] if chat_request else _prompts(body, served)
    stops = _stops(body)
    _user(body)
    settings = _settings(body, served, len(prompts), chat_request)
    budgets = _budgets(body, served, prompts, settings, chat_request)
    return serving.GenerationRequest(prompts=prompts, budgets=budgets, settings=settings, stops=stops)


def embedding_request(body: dict, served: ServedModel) -> tuple[serving.EmbeddingRequest, str]:
    """An embeddings request's body, checked; and the encoding its vectors are sent in (float or base64)."""
    _known_fields(body, EMBEDDING_FIELDS)
    if served.kind != ENCODER:
        raise ApiError(400, f"model '{served.name}' is a {served.task} model; /v1/embeddings serves encoder models",
                       "model", "model_not_supported")
    texts = body.get("input")
    if texts is None:
        raise ApiError(400, "input is required", "input", "missing_field")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ApiError(400, f"input must be a string or a non-empty list of strings (token ids are not taken here; got "
                            f"{_shown(body.get('input'))})", "input", "invalid_type")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise ApiError(400, f"at most {MAX_EMBEDDING_INPUTS} inputs a request (got {len(texts)})", "input",
                       "invalid_value")
    empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
    if empty is not None:
        raise ApiError(400, f"input {empty} is empty; give some text", "input", "invalid_value")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(400, f"encoding_format must be float or base64 (got {_shown(encoding)})", "encoding_format",
                       "invalid_value")
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != served.encoder.dimension:
        raise ApiError(400, f"model '{served.name}' gives vectors of {served.encoder.dimension} dimensions, no other "
                            f"(got dimensions {_shown(dimensions)})", "dimensions", "invalid_value")
    _user(body)
    return serving.EmbeddingRequest(texts=texts), encoding


def _user(body: dict) -> None:
    """OpenAI's end-user id: taken, and not used."""
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise ApiError(400, f"user must be a string (got {_shown(user)})", "user", "invalid_type")


# ---------------------------------------------------------------- the service


class Exchange:
    """One request's record, for its log line: id, model, tokens in and out, status, and the time taken."""

    def __init__(self, prefix: str, log: Callable[[str], None]):
        self.id = f"{prefix}-{uuid.uuid4().hex[:24]}"
        self.start, self.log = time.monotonic(), log
        self.model, self.status, self.tokens_in, self.tokens_out, self.note = "-", 200, 0, 0, ""

    def close(self) -> None:
        seconds = time.monotonic() - self.start
        self.log(f"{self.id} model={self.model} status={self.status} tokens_in={self.tokens_in} "
                 f"tokens_out={self.tokens_out} latency={seconds:.3f}s{self.note}")


class Service:
    """The served models, their engines and admission counts, the API key, and whether the server is closing."""

    def __init__(self, served: list[ServedModel], limits: Limits, api_key: str | None = None,
                 log: Callable[[str], None] = lambda line: None):
        self.models = {m.name: m for m in served}
        self.sources = {m.source: m for m in served}
        self.limits, self.api_key, self.log = limits, api_key, log
        self.engines = {m.name: serving.engine_for(m, limits.max_concurrency, log) for m in served}
        self.admitted = {m.name: 0 for m in served}
        self.closing = False
        self.created = int(time.time())

    def start(self) -> None:
        for engine in self.engines.values():
            engine.start()

    def close(self, grace: float) -> None:
        """Stop admitting requests; those in flight finish, or end with an error after `grace` seconds."""
        self.closing = True
        for engine in self.engines.values():
            engine.close(grace)

    def stop(self, timeout: float = 10.0) -> None:
        for engine in self.engines.values():
            engine.stop()
        for engine in self.engines.values():
            engine.join(timeout)

    # -- checks every request goes through

    def authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send the header Authorization: Bearer KEY", None,
                           "invalid_api_key")

    async def read_json(self, request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_body:
            raise ApiError(413, f"the request body is {int(declared):,} bytes, past this server's limit of "
                                f"{self.limits.max_body:,}", None, "body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.limits.max_body:
                raise ApiError(413, f"the request body passes this server's limit of {self.limits.max_body:,} bytes",
                               None, "body_too_large")
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except UnicodeDecodeError:
            raise ApiError(400, "the request body is not UTF-8 text", None, "invalid_json") from None
        except json.JSONDecodeError as err:
            raise ApiError(400, f"the request body is not valid JSON ({json_problem(err)})", None,
                           "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, f"the request body must be a JSON object (got {type(body).__name__})", None,
                           "invalid_json")
        return body

    def model(self, body: dict) -> ServedModel:
        name = body.get("model")
        if name is None and len(self.models) == 1:
            return next(iter(self.models.values()))
        if not isinstance(name, str):
            raise ApiError(400, f"model must be a string naming a served model (got {_shown(name)})", "model",
                           "invalid_type")
        served = self.models.get(name) or self.sources.get(name)
        if served is None:
            raise ApiError(404, f"model '{name}' is not served here; GET /v1/models lists the served ones "
                                f"({', '.join(self.models)})", "model", "model_not_found")
        return served

    def admit(self, served: ServedModel) -> None:
        if self.closing:
            raise ApiError(503, "the server is shutting down", None, "server_shutdown")
        room = self.limits.max_concurrency + self.limits.max_queue
        if self.admitted[served.name] >= room:
            raise ApiError(429, f"model '{served.name}' has {self.admitted[served.name]} requests in hand, its limit "
                                f"({self.limits.max_concurrency} at once, {self.limits.max_queue} waiting); retry "
                                "later", None, "rate_limit_exceeded",
                           headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.admitted[served.name] += 1

    def release(self, served: ServedModel) -> None:
        self.admitted[served.name] -= 1

    # -- endpoints

    async def generate(self, request: Request, chat_request: bool):
        exchange = Exchange("chatcmpl" if chat_request else "cmpl", self.log)
        streaming = False
        try:
            self.authorize(request)
            body = await self.read_json(request)
            served = self.model(body)
            exchange.model = served.name
            parsed = generation_request(body, served, chat_request)
            stream = _boolean(body, "stream")
            usage_chunk = _stream_usage(body, stream)
            exchange.tokens_in = sum(len(p) for p in parsed.prompts)
            shape = _Shape(exchange.id, served.name, int(time.time()), chat_request, parsed)
            job = Job(parsed, asyncio.get_running_loop())
            self.admit(served)
            self.engines[served.name].submit(job)
            if stream:
                streaming = True

                def done() -> None:  # however the stream ends
                    job.cancel()
                    self.release(served)
                    exchange.close()

                return _EventStream(self._stream(job, shape, exchange, usage_chunk), done, exchange.id)
            try:
                result = await self._collect(job, request, exchange)
            finally:
                self.release(served)
            exchange.tokens_out = sum(result.tokens)
            return JSONResponse(shape.whole(result), headers={"x-request-id": exchange.id})
        except ApiError as err:
            exchange.status = err.status
            return err.response()
        finally:
            if not streaming:
                exchange.close()

    async def _collect(self, job: Job, request: Request, exchange: Exchange) -> "_Result":
        """A whole answer, as the events come; the client going away cancels the job."""
        watcher = asyncio.create_task(_watch_disconnect(request, job))
        result = _Result(job.request.choices)
        try:
            while not result.ended:
                for event in await job.events.get():
                    if event[0] == "gone":
                        exchange.status, exchange.note = 499, " (client gone)"
                        raise ApiError(499, "the client closed the connection", None, "client_gone")
                    if event[0] == "error":
                        raise ApiError(event[1].status, str(event[1]), None, event[1].code)
                    result.take(event)
            return result
        finally:
            watcher.cancel()
            job.cancel()  # a no-op once it is done

    async def _stream(self, job: Job, shape: "_Shape", exchange: Exchange, usage_chunk: bool) -> AsyncIterator[str]:
        """Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`; an error after the stream began
        is an error event, and no [DONE]."""
        result = _Result(job.request.choices)
        try:
            for chunk in shape.opening():
                yield _event(chunk)
            while not result.ended:
                for event in await job.events.get():
                    if event[0] == "error":
                        exchange.status, exchange.note = event[1].status, f" ({event[1].code})"
                        yield _event(ApiError(event[1].status, str(event[1]), None, event[1].code).body())
                        return
                    result.take(event)
                    yield _event(shape.chunk(event))
            exchange.tokens_out = sum(result.tokens)
            if usage_chunk:
                yield _event(shape.usage_chunk(result))
            yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            exchange.status, exchange.note = 499, " (client gone)"
            raise

    async def embed(self, request: Request):
        exchange = Exchange("embd", self.log)
        try:
            self.authorize(request)
            body = await self.read_json(request)
            served = self.model(body)
            exchange.model = served.name
            parsed, encoding = embedding_request(body, served)
            self.admit(served)
            job = Job(parsed, asyncio.get_running_loop())
            self.engines[served.name].submit(job)
            watcher = asyncio.create_task(_watch_disconnect(request, job))
            try:
                [event] = await job.events.get()
            finally:
                watcher.cancel()
                job.cancel()
                self.release(served)
            if event[0] == "gone":
                exchange.status, exchange.note = 499, " (client gone)"
                return ApiError(499, "the client closed the connection", None, "client_gone").response()
            if event[0] == "error":
                raise ApiError(event[1].status, str(event[1]), None, event[1].code)
            _, vectors, tokens = event
            exchange.tokens_in = sum(tokens)
            data = [{"object": "embedding", "index": i, "embedding": _vector(v, encoding)} for i, v in enumerate(vectors)]
            return JSONResponse({"object": "list", "data": data, "model": served.name,
                                 "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}},
                                headers={"x-request-id": exchange.id})
        except ApiError as err:
            exchange.status = err.status
            return err.response()
        finally:
            exchange.close()

    def listing(self) -> list[dict]:
        return [{"id": name, "object": "model", "created": self.created, "owned_by": "llmtool"}
                for name in self.models]


class _EventStream(StreamingResponse):
    """Server-sent events, and `done` run however the response ends: sent whole, cut by the client, or never begun
    (the client gone before the first byte, when the events' own code never runs)."""

    def __init__(self, events: AsyncIterator[str], done: Callable[[], None], request_id: str):
        super().__init__(events, media_type="text/event-stream", headers={"x-request-id": request_id})
        self.done = done

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.done()


async def _watch_disconnect(request: Request, job: Job) -> None:
    """Cancel `job` when its client goes away (the ASGI server says http.disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancel()
            job.events.put_nowait([("gone",)])
            return


def _stream_usage(body: dict, stream: bool) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise ApiError(400, "stream_options is only for stream: true", "stream_options", "invalid_value")
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise ApiError(400, f"stream_options takes include_usage only (got {_shown(options)})", "stream_options",
                       "invalid_value")
    return _boolean(options, "include_usage")


def _event(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _vector(vector, encoding: str):
    import numpy as np

    if encoding == "base64":  # float32, little-endian, as OpenAI sends them (and its client asks by default)
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()


class _Result:
    """The choices of an answer as their events come: text, finish reasons and new tokens."""

    def __init__(self, choices: int):
        self.texts = [""] * choices
        self.finish: list[str | None] = [None] * choices
        self.tokens = [0] * choices
        self.open = choices

    @property
    def ended(self) -> bool:
        return self.open == 0

    def take(self, event: tuple) -> None:
        if event[0] == "text":
            self.texts[event[1]] += event[2]
        elif event[0] == "end":
            _, index, self.finish[index], self.tokens[index] = event
            self.open -= 1


@dataclass
class _Shape:
    """The OpenAI response shapes of one request: a whole completion or chat completion, or its stream's chunks."""

    id: str
    model: str
    created: int
    chat: bool
    request: serving.GenerationRequest

    def _head(self, chunk: bool) -> dict:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        head = {"id": self.id, "object": kind, "created": self.created, "model": self.model}
        if self.request.settings.seed is not None:
            head["seed"] = self.request.settings.seed  # the seed that reproduces a sampled answer
        return head

    def _usage(self, result: _Result) -> dict:
        prompt = sum(len(p) for p in self.request.prompts)
        return {"prompt_tokens": prompt, "completion_tokens": sum(result.tokens),
                "total_tokens": prompt + sum(result.tokens)}

    def whole(self, result: _Result) -> dict:
        if self.chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                        "finish_reason": finish} for i, (text, finish) in enumerate(zip(result.texts, result.finish))]
        else:
            choices = [{"index": i, "text": text, "logprobs": None, "finish_reason": finish}
                       for i, (text, finish) in enumerate(zip(result.texts, result.finish))]
        return {**self._head(False), "choices": choices, "usage": self._usage(result)}

    def opening(self) -> list[dict]:
        if not self.chat:
            return []
        return [{**self._head(True), "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                  "logprobs": None, "finish_reason": None}]}
                for i in range(self.request.choices)]

    def chunk(self, event: tuple) -> dict:
        index = event[1]
        text, finish = (event[2], None) if event[0] == "text" else ("", event[2])
        if self.chat:
            choice = {"index": index, "delta": {"content": text} if text else {}, "logprobs": None,
                      "finish_reason": finish}
        else:
            choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish}
        return {**self._head(True), "choices": [choice]}

    def usage_chunk(self, result: _Result) -> dict:
        return {**self._head(True), "choices": [], "usage": self._usage(result)}


# ---------------------------------------------------------------- the app


def create_app(service: Service) -> FastAPI:
    """The FastAPI app: /v1/models, /v1/completions, /v1/chat/completions, /v1/embeddings and /health."""
    app = FastAPI(title="llmtool serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code)
        return ApiError(err.status_code, f"{request.method} {request.url.path}: {err.detail}", None, code).response()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return err.response()

    @app.get("/health")
    async def health():
        if service.closing:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return {"status": "ok", "models": list(service.models)}

    @app.get("/v1/models")
    async def list_models(request: Request):
        service.authorize(request)
        return {"object": "list", "data": service.listing()}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str, request: Request):
        service.authorize(request)
        found = [m for m in service.listing() if m["id"] == name]
        if not found:
            raise ApiError(404, f"model '{name}' is not served here", "model", "model_not_found")
        return found[0]

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await service.generate(request, chat_request=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await service.generate(request, chat_request=True)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        return await service.embed(request)

    return app
