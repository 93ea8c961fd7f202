"""`llmtool serve`: an OpenAI-compatible HTTP server for local models (FastAPI + uvicorn), batching concurrent
requests on generate's decoding core."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated, Optional

import typer

from llmtool.commands._output import note
from llmtool.commands.options import DeviceOption, DtypeOption
from llmtool.errors import LlmtoolError, UsageError

SETTING_NAMES = {"compile_decoder": "--compile"}
API_KEY_ENV = "LLMTOOL_API_KEY"
ENV_DEFAULTS = {"api_key": API_KEY_ENV}
DEFAULT_PORT = 8000


def serve(
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", metavar="[NAME=]DIR", help="A model to serve (repeat for several): a local directory or Hub id, a LoRA adapter directory, or an encoder for /v1/embeddings. Requests name it by NAME, else by the directory's name.", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; another than 127.0.0.1 lets other machines in (set --api-key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = DEFAULT_PORT,
    max_concurrency: Annotated[int, typer.Option(help="Requests a model decodes at once (its batch).")] = 16,
    max_queue: Annotated[int, typer.Option(help="Requests a model keeps waiting beyond those; past that, 429 with Retry-After.")] = 64,
    grace: Annotated[float, typer.Option(help="On SIGTERM or Ctrl-C: seconds the requests in flight have to finish; the ones still running then end with an error.")] = 30.0,
    api_key: Annotated[Optional[str], typer.Option(help=f"Answer only requests with the header Authorization: Bearer KEY (/health excepted). (default: ${API_KEY_ENV})", show_default=False)] = None,
    compile_decoder: Annotated[bool, typer.Option("--compile", help="Decode with generate's compiled decoder (static KV cache, CUDA graphs): requests that arrive together are batched, with no continuous batching. For a GPU.")] = False,
    device: DeviceOption = None,
    dtype: DtypeOption = "auto",
) -> None:
    """Serve models over HTTP with OpenAI's API: completions, chat completions, embeddings.

    Endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (through the model's chat template), POST /v1/embeddings (encoders), GET /health. Concurrent requests to a causal LM share its batch (continuous batching: a request joins at the next step and leaves when done), and each gets the text it would get alone: a greedy one (temperature 0) what llmtool generate gives, a seeded one the same text every time. Beyond --max-concurrency requests at once and --max-queue waiting, requests get 429. SIGTERM or Ctrl-C stops accepting requests and lets those in flight finish (up to --grace seconds). One line per request goes to stderr.

    Examples:

      llmtool serve --model runs/chat-gpt2

      llmtool serve --model chat=runs/chat-gpt2 --model ./all-MiniLM-L6-v2 --port 8080

      LLMTOOL_API_KEY=secret llmtool serve --model ./my-gpt2 --host 0.0.0.0 --max-concurrency 32

      curl localhost:8000/v1/completions -H 'Content-Type: application/json' -d '{"model": "my-gpt2", "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0}'
    """
    import os

    names = _model_names(model)
    _check_bounds(max_concurrency, max_queue, grace)
    _check_installed()
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    listener = _listen(host, port)  # before any model loads: a port in use is reported at once
    try:
        from llmtool import api, serving

        served = []
        for name, source in names.items():
            served.append(serving.load_served(name, source, device=device, dtype=dtype,
                                              compile_decoder=compile_decoder))
        service = api.Service(served, api.Limits(max_concurrency, max_queue), api_key, log=note)
        _run(service, listener, host, grace)
    finally:
        listener.close()


def _model_names(given: list[str] | None) -> dict[str, str]:
    """Each model's name in requests -> its directory (or Hub id): NAME=DIR, else the directory's own name."""
    from pathlib import Path

    if not given:
        raise UsageError("give at least one model to serve: --model DIR (repeat it for several)")
    names: dict[str, str] = {}
    for spec in given:
        name, equals, source = spec.partition("=")
        if not equals or not name or "/" in name:
            name, source = Path(spec.rstrip("/")).name or spec, spec
        if not source:
            raise UsageError(f"--model {spec} names no model; write --model NAME=DIR or --model DIR")
        if name in names:
            raise UsageError(f"two models would be served as '{name}' ({names[name]} and {source}); name them apart "
                             f"with --model NAME=DIR")
        names[name] = source
    return names


def _check_installed() -> None:
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise LlmtoolError(f"llmtool serve needs {' and '.join(missing)}: pip install 'llmtool[serve]'")


def _check_bounds(max_concurrency: int, max_queue: int, grace: float) -> None:
    if max_concurrency < 1:
        raise UsageError(f"--max-concurrency must be at least 1 (got {max_concurrency})")
    if max_queue < 0:
        raise UsageError(f"--max-queue must be 0 or more (got {max_queue})")
    if not grace >= 0:
        raise UsageError(f"--grace must be 0 seconds or more (got {grace})")


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now; one clear line where the address cannot be had."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535 (got {port})")
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host.strip("[]")).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name: resolved by bind
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise UsageError(f"port {port} on {host} is in use (another server?); choose another with --port") from None
        raise UsageError(f"cannot listen on {host}:{port} ({err.strerror or err}); check --host and --port") from None
    sock.set_inheritable(True)
    return sock


def _run(service, listener: socket.socket, host: str, grace: float) -> None:
    """Serve until SIGTERM or Ctrl-C, then close: no new requests, those in flight finish within `grace` seconds.
    A second Ctrl-C stops at once."""
    import uvicorn

    from llmtool import api

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:  # SIGINT and SIGTERM; not re-raised at the end: a clean exit
            if not self.should_exit:
                note(f"stopping: no new requests; those in flight have {grace:g} s to finish (Ctrl-C again: now)")
                service.close(grace)
                self.should_exit = True
            else:
                self.force_exit = True

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                address = listener.getsockname()
                shown = f"[{address[0]}]" if listener.family == socket.AF_INET6 else address[0]
                models = ", ".join(f"{name} ({m.describe()})" for name, m in service.models.items())
                note(f"serving {models} at http://{shown}:{address[1]}/v1 (Ctrl-C stops)")

    if host not in ("127.0.0.1", "localhost", "::1") and service.api_key is None:
        note(f"warning: listening on {host} with no --api-key: anyone who can reach it can use it")
    config = uvicorn.Config(api.create_app(service), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=int(grace) + 5)  # a backstop: the engines end late requests
    service.start()
    try:
        Server(config).run(sockets=[listener])
    finally:
        service.close(0)
        service.stop()
