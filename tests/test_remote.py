"""Remote engines: llama-server and OpenAI-compatible model servers over HTTP.

Faults a real server cannot be made to show (500s, hangs, broken streams, TLS) use a
small local fake speaking the same protocols. The end-to-end tests start a real
OpenAI-compatible server, `python -m llama_cpp.server` with the default model, on the
loopback interface, and run completions, early stop, cancellation, a wrong key and a
server coming back through it (three short generations in all).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lsp_helpers import free_port

from copilot_server.completion import CompletionRequest
from copilot_server.completion.service import CompletionService
from copilot_server.config import Settings
from copilot_server.context import Context, Snippet
from copilot_server.context.index import WorkspaceIndex
from copilot_server.engines.loader import EngineLoader
from copilot_server.engines.remote import RemoteEngine, RemoteEngineError, create_remote_engine
from copilot_server.engines.remote import http as remote_http
from copilot_server.lsp.status import StatusReporter
from copilot_server.prompts import build_fim_prompt

KEY_ENV = "COPILOT_TEST_REMOTE_KEY"

# -- a fake model server -----------------------------------------------------------------

SPECIALS = {
    "<|fim_prefix|>": 1,
    "<|fim_suffix|>": 2,
    "<|fim_middle|>": 3,
    "<|repo_name|>": 4,
    "<|file_sep|>": 5,
    "<|endoftext|>": 6,
}
ANSWER = [" return", " a", " +", " b", "\n", "\n", "def", " sub", "(a", ",", " b", "):", "\n"]


def toy_tokenize(text: str) -> list[int]:
    """Servers parse special tokens in text; every other character is one token."""
    tokens, i = [], 0
    while i < len(text):
        for marker, token in SPECIALS.items():
            if text.startswith(marker, i):
                tokens.append(token)
                i += len(marker)
                break
        else:
            tokens.append(1000 + ord(text[i]))
            i += 1
    return tokens


def toy_detokenize(tokens: list[int], specials: bool = True) -> str:
    names = {v: k for k, v in SPECIALS.items()}
    return "".join((names[t] if specials else "") if t in names else chr(t - 1000) for t in tokens)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Fake:
    """A model server: OpenAI or llama-server API, toy tokenizer, scripted faults."""

    def __init__(self, api: str = "openai", tokenizer: str | None = "llama-server") -> None:
        self.api = api
        self.tokenizer = tokenizer  # "llama-server" (/tokenize), "vllm", "extras", or None
        self.models = ["/models/fake-coder-1.5b.gguf"]
        self.key: str | None = None
        self.pieces = list(ANSWER)
        self.piece_delay = 0.0
        self.usage = True
        self.break_after: int | None = None
        # path -> scripted answers, used up in order: ("status", code, payload) | ("sleep", s)
        self.faults: dict[str, list[tuple]] = {}
        self.seen: list[Seen] = []
        self.sent = 0
        self.disconnected = threading.Event()

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    # -- HTTP ----------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        self.seen.append(Seen(method, h.path, dict(h.headers), body))
        if self.key and h.headers.get("Authorization") != f"Bearer {self.key}":
            return self.json(h, 401, {"error": {"message": "Invalid API key"}})
        script = self.faults.get(h.path)
        if script:
            fault = script.pop(0)
            if fault[0] == "sleep":
                time.sleep(fault[1])
            else:
                return self.json(h, fault[1], fault[2])
        route = (method, h.path)
        if route == ("GET", "/v1/models"):
            return self.json(h, 200, {"object": "list", "data": [{"id": m} for m in self.models]})
        if route == ("GET", "/props") and self.api == "llama":
            return self.json(h, 200, {"default_generation_settings": {"n_ctx": 4096}})
        if route == ("POST", "/tokenize") and self.tokenizer == "llama-server":
            return self.json(h, 200, {"tokens": toy_tokenize(body.get("content", ""))})
        if route == ("POST", "/detokenize") and self.tokenizer == "llama-server":
            return self.json(h, 200, {"content": toy_detokenize(body["tokens"])})
        if route == ("POST", "/tokenize") and self.tokenizer == "vllm":
            if "prompt" not in body:
                return self.json(h, 400, {"error": {"message": "prompt: field required"}})
            return self.json(h, 200, {"tokens": toy_tokenize(body["prompt"])})
        if route == ("POST", "/detokenize") and self.tokenizer == "vllm":
            return self.json(h, 200, {"prompt": toy_detokenize(body["tokens"])})
        if route == ("POST", "/extras/tokenize") and self.tokenizer == "extras":
            return self.json(h, 200, {"tokens": toy_tokenize(body["input"])})
        if route == ("POST", "/extras/detokenize") and self.tokenizer == "extras":
            # Like llama-cpp-python: special tokens come back as nothing.
            return self.json(h, 200, {"text": toy_detokenize(body["tokens"], specials=False)})
        if route == ("POST", "/v1/completions"):
            return self.stream(h, self.openai_events())
        if route in (("POST", "/infill"), ("POST", "/completion")) and self.api == "llama":
            return self.stream(h, self.llama_events())
        return self.json(h, 404, {"error": {"message": f"no route {method} {h.path}"}})

    def json(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def openai_events(self) -> list[dict]:
        events = [{"choices": [{"text": p, "finish_reason": None}]} for p in self.pieces]
        events.append({"choices": [{"text": "", "finish_reason": "stop"}]})
        if self.usage:
            n = len(self.pieces)
            events.append({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": n}})
        return events

    def llama_events(self) -> list[dict]:
        events = [
            {"content": p, "stop": False, "timings": {"prompt_n": 40, "predicted_n": i + 1}}
            for i, p in enumerate(self.pieces)
        ]
        n = len(self.pieces)
        events.append(
            {
                "content": "",
                "stop": True,
                "stop_type": "eos",
                "tokens_predicted": n,
                "tokens_evaluated": 42,
            }
        )
        return events

    def stream(self, h: BaseHTTPRequestHandler, events: list[dict]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.close_connection = True

        def write(data: bytes) -> None:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        try:
            write(b": ping\n\n")  # comments are ignored
            for index, event in enumerate(events):
                if self.break_after is not None and index == self.break_after:
                    return  # the connection drops mid-answer, without the last chunk
                write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.sent += 1
                time.sleep(self.piece_delay)
            write(b"data: [DONE]\n\n")
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.disconnected.set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake.handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake.handle(self, "POST")  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass


def settings_for(url: str, kind: str = "openai", **engine: Any) -> Settings:
    return Settings().merged(
        {"engine": {"kind": kind, "url": url, "api_key_env": KEY_ENV, "retries": 2, **engine}}
    )


def fim_prompt(engine: RemoteEngine, snippets: tuple[Snippet, ...] = ()):
    ctx = Context(
        path="calc.py",
        language="python",
        prefix="def add(a, b):\n",
        line_prefix="    ",
        line_suffix="",
        suffix="\n\nprint(add(1, 2))\n",
        snippets=snippets,
    )
    return build_fim_prompt(engine, ctx)


def never(_text: str) -> bool:
    return False


TEXT = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"
# Explicit (invoked): the answer is the whole block, with its token counts, not an early
# first line whose figures come when the block is done.
REQUEST = CompletionRequest(
    "file:///w/calc.py", "/w/calc.py", "python", TEXT, TEXT.index("    ") + 4, invoked=True
)


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


# -- protocol ----------------------------------------------------------------------------


def test_openai_prompt_goes_out_as_text_with_fim_markers_and_streams(serve):
    fake = Fake("openai", tokenizer="extras")
    engine = create_remote_engine(settings_for(serve(fake)))
    prompt = fim_prompt(engine)
    gen = engine.generate(
        prompt.tokens,
        max_tokens=32,
        should_stop=never,
        cancel=threading.Event(),
        stop_tokens=prompt.stop_tokens,
    )
    body = fake.requests_to("/v1/completions")[0].body
    # Spelled from remembered tokenize() results: /extras/detokenize would drop the markers.
    assert body["prompt"] == (
        "<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>    "
    )
    assert body["stream"] is True and body["max_tokens"] == 32
    assert body["model"] == "/models/fake-coder-1.5b.gguf"
    assert "<|file_sep|>" in body["stop"]
    # llama.cpp's sampling as in-process, not the server's default repeat penalty.
    assert body["top_k"] == 1 and body["repeat_penalty"] == 1.0 and body["temperature"] == 0
    assert gen.text == "".join(ANSWER) and gen.stop_reason == "eos"
    # Counted by the server (usage), not by us.
    assert gen.tokens_generated == len(ANSWER) and gen.prompt_tokens == 42
    assert engine.info.name == "fake-coder-1.5b" and engine.info.fim.available
    engine.close()


def test_vllm_gets_standard_sampling_and_stop_token_ids(serve):
    fake = Fake("openai", tokenizer="vllm")
    engine = create_remote_engine(settings_for(serve(fake)))
    assert engine.info.metadata["tokenizer"] == "server (vLLM /tokenize)"
    prompt = fim_prompt(engine)
    engine.generate(
        prompt.tokens,
        max_tokens=8,
        should_stop=never,
        cancel=threading.Event(),
        stop_tokens=prompt.stop_tokens,
    )
    body = fake.requests_to("/v1/completions")[0].body
    # vLLM leaves special tokens out of the text it matches "stop" against.
    assert SPECIALS["<|file_sep|>"] in body["stop_token_ids"]
    assert "repeat_penalty" not in body and "top_k" not in body
    engine.close()


def test_code_that_contains_a_marker_is_tokenized_as_text(serve):
    engine = create_remote_engine(settings_for(serve(Fake())))
    code = 'MARK = "<|fim_prefix|>"'
    assert SPECIALS["<|fim_prefix|>"] not in engine.tokenize(code)
    assert engine.detokenize(engine.tokenize(code)) == code
    assert SPECIALS["<|fim_prefix|>"] in engine.tokenize(code, special=True)
    engine.close()


def test_llama_server_sends_fim_prompts_to_infill_with_input_extra(serve):
    fake = Fake("llama", tokenizer="llama-server")
    engine = create_remote_engine(settings_for(serve(fake), kind="llama-server"))
    snippet = Snippet("definition", "ops.py", "def sub(a, b):\n    return a - b")
    prompt = fim_prompt(engine, (snippet,))
    gen = engine.generate(prompt.tokens, max_tokens=16, should_stop=never, cancel=threading.Event())
    (infill,) = fake.requests_to("/infill")
    body = infill.body
    assert body["input_extra"] == [
        {"filename": "ops.py", "text": "def sub(a, b):\n    return a - b\n"}
    ]
    assert body["input_prefix"] == "def add(a, b):\n"
    assert body["input_suffix"] == "\n\nprint(add(1, 2))\n"
    assert body["prompt"] == "    "
    assert body["cache_prompt"] is True and body["stream"] is True and body["n_predict"] == 16
    assert gen.text == "".join(ANSWER)
    assert gen.tokens_generated == len(ANSWER) and gen.prompt_tokens_evaluated == 40
    engine.close()


def test_llama_server_sends_other_prompts_to_completion_as_token_ids(serve):
    fake = Fake("llama", tokenizer="llama-server")
    engine = create_remote_engine(settings_for(serve(fake), kind="llama-server"))
    tokens = engine.tokenize("<|repo_name|>explain this", special=True)
    engine.generate(tokens, max_tokens=8, should_stop=never, cancel=threading.Event())
    (completion,) = fake.requests_to("/completion")
    assert completion.body["prompt"] == tokens and tokens[0] == SPECIALS["<|repo_name|>"]
    engine.close()


def test_server_without_tokenizer_uses_the_template_family(serve):
    fake = Fake("openai", tokenizer=None)  # Ollama: no tokenize endpoint
    settings = settings_for(serve(fake)).merged({"model": {"template": "qwen2.5-coder"}})
    engine = create_remote_engine(settings)
    assert "approximate" in engine.info.metadata["tokenizer"]
    prompt = fim_prompt(engine)
    engine.generate(prompt.tokens, max_tokens=8, should_stop=never, cancel=threading.Event())
    sent = fake.requests_to("/v1/completions")[0].body["prompt"]
    assert sent.startswith("<|fim_prefix|>def add(a, b):\n<|fim_suffix|>")
    assert sent.endswith("<|fim_middle|>    ")
    engine.close()


def test_early_stop_closes_the_stream_so_the_server_stops(serve):
    fake = Fake()
    fake.pieces = [f" x{i}" for i in range(200)]
    fake.piece_delay = 0.01
    engine = create_remote_engine(settings_for(serve(fake)))
    started = time.perf_counter()
    gen = engine.generate(
        [1000 + ord("x")],
        max_tokens=200,
        should_stop=lambda t: t.count("x") >= 3,
        cancel=threading.Event(),
    )
    assert gen.stop_reason == "stopped" and gen.text == " x0 x1 x2"
    assert gen.tokens_generated == 3
    assert time.perf_counter() - started < 1.5
    assert fake.disconnected.wait(3), "the server never saw the client go"
    assert fake.sent < 200
    engine.close()


def test_cancel_while_waiting_for_the_first_byte_returns_at_once(serve):
    fake = Fake()
    fake.faults["/v1/completions"] = [("sleep", 5.0)]
    engine = create_remote_engine(settings_for(serve(fake)))
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.perf_counter()
    gen = engine.generate([1000 + ord("x")], max_tokens=8, should_stop=never, cancel=cancel)
    assert gen.stop_reason == "cancelled" and gen.text == ""
    assert time.perf_counter() - started < 1.5
    engine.close()


# -- failures ----------------------------------------------------------------------------


async def test_server_error_gives_no_suggestion_an_error_status_then_recovers(serve):
    fake = Fake()
    fake.faults["/v1/completions"] = [("status", 500, {"error": {"message": "CUDA out of memory"}})]
    settings = settings_for(serve(fake))
    loader = EngineLoader(settings)
    loader.start()
    service = CompletionService(settings, loader)
    server = SimpleNamespace(
        loader=loader, settings=settings, completions=service, index=WorkspaceIndex([])
    )
    status = StatusReporter(server)  # type: ignore[arg-type]

    failed = await service.complete(REQUEST)
    assert failed.text == "" and failed.source == "none"
    assert "HTTP 500" in failed.message and "CUDA out of memory" in failed.message
    assert status.state() == "error"
    assert "CUDA out of memory" in status.snapshot()["message"]

    recovered = await service.complete(REQUEST)
    assert recovered.source == "model" and recovered.text.startswith("return a + b")
    assert status.state() == "ready" and loader.engine.error is None
    service.close()
    loader.close()


def test_unavailable_server_is_retried_with_backoff_before_the_first_byte(serve):
    fake = Fake()
    fake.faults["/v1/completions"] = [("status", 503, {"error": "loading model"})] * 2
    engine = create_remote_engine(settings_for(serve(fake), retries=2))
    gen = engine.generate(
        [1000 + ord("x")], max_tokens=8, should_stop=never, cancel=threading.Event()
    )
    assert gen.text == "".join(ANSWER)
    assert len(fake.requests_to("/v1/completions")) == 3
    engine.close()


def test_a_stream_that_breaks_is_an_error_and_is_not_retried(serve):
    fake = Fake()
    fake.break_after = 2
    engine = create_remote_engine(settings_for(serve(fake), retries=2))
    with pytest.raises(RemoteEngineError, match="closed the connection.*while streaming"):
        engine.generate(
            [1000 + ord("x")], max_tokens=8, should_stop=never, cancel=threading.Event()
        )
    assert len(fake.requests_to("/v1/completions")) == 1
    assert engine.error and "while streaming" in engine.error
    engine.close()


def test_slow_server_times_out_with_a_clear_message(serve):
    fake = Fake()
    fake.faults["/v1/completions"] = [("sleep", 3.0)]
    engine = create_remote_engine(settings_for(serve(fake), timeout_s=0.5))
    started = time.perf_counter()
    with pytest.raises(RemoteEngineError, match=r"did not answer within 0.5s.*engine.timeoutS"):
        engine.generate(
            [1000 + ord("x")], max_tokens=8, should_stop=never, cancel=threading.Event()
        )
    assert time.perf_counter() - started < 2.0
    engine.close()


def test_wrong_model_names_what_the_server_serves(serve):
    engine = create_remote_engine(settings_for(serve(Fake()), model_name="gpt-4o"))
    assert engine.error is not None
    assert "does not serve 'gpt-4o'" in engine.error and "fake-coder-1.5b" in engine.error
    with pytest.raises(RemoteEngineError, match="engine.modelName"):
        engine.tokenize("x = 1")
    engine.close()


def test_tls_failure_is_reported_as_such(serve):
    url = serve(Fake()).replace("http://", "https://")  # the fake speaks plain HTTP
    engine = create_remote_engine(settings_for(url, retries=0))
    assert engine.error is not None and engine.error.startswith("TLS")
    engine.close()


def test_server_down_fails_fast_then_recovers_when_it_comes_up(serve, monkeypatch):
    monkeypatch.setattr(remote_http, "FAIL_FAST_S", 0.0)
    port = free_port()
    engine = create_remote_engine(settings_for(f"http://127.0.0.1:{port}", retries=1))
    assert engine.error is not None and "refused the connection" in engine.error
    with pytest.raises(RemoteEngineError, match="is it running"):
        engine.tokenize("x = 1")
    # The server comes up on that port: the next call just works.
    fake = Fake()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    httpd.fake = fake  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        assert engine.tokenize("x = 1") == toy_tokenize("x = 1")
        assert engine.error is None and engine.info.fim.available
    finally:
        httpd.shutdown()
        httpd.server_close()
        engine.close()


def test_a_model_swapped_on_the_server_is_noticed_after_a_failure(serve):
    fake = Fake()
    engine = create_remote_engine(settings_for(serve(fake)))
    assert engine.info.name == "fake-coder-1.5b"
    fake.models = ["/models/other-coder-7b.gguf"]
    fake.faults["/v1/completions"] = [("status", 503, {"error": "restarting"})] * 3
    with pytest.raises(RemoteEngineError, match="HTTP 503"):
        engine.generate(
            [1000 + ord("x")], max_tokens=4, should_stop=never, cancel=threading.Event()
        )
    engine.ensure_ready()
    assert engine.info.name == "other-coder-7b" and engine.error is None
    engine.close()


def test_api_key_is_sent_as_bearer_and_never_logged(serve, monkeypatch, caplog):
    key = "sk-" + secrets.token_hex(12)
    monkeypatch.setenv(KEY_ENV, key)
    fake = Fake()
    fake.key = key
    url = serve(fake)
    caplog.set_level(logging.DEBUG)
    engine = create_remote_engine(settings_for(url))
    engine.generate([1000 + ord("x")], max_tokens=4, should_stop=never, cancel=threading.Event())
    assert all(s.headers.get("Authorization") == f"Bearer {key}" for s in fake.seen)
    report = engine.doctor(measure_speed=False)
    assert report["ok"] and report["api_key"] == f"set (${KEY_ENV})"
    # A rejected key: the message names the variable, never the key.
    fake.key = "another"
    with pytest.raises(RemoteEngineError) as rejected:
        engine.generate(
            [1000 + ord("y")], max_tokens=4, should_stop=never, cancel=threading.Event()
        )
    assert "HTTP 401" in str(rejected.value) and KEY_ENV in str(rejected.value)
    engine.close()
    assert (
        key not in caplog.text and key not in str(rejected.value) and key not in json.dumps(report)
    )
    assert "fake-coder" in caplog.text  # the log did record the exchange


def test_doctor_reports_endpoint_model_and_round_trip(serve):
    from copilot_server.cli.doctor import run_doctor

    report = run_doctor(settings_for(serve(Fake())), measure_speed=True)
    assert report["ok"], report
    assert report["remote"]["model"] == "/models/fake-coder-1.5b.gguf"
    assert report["remote"]["round_trip_ms"] > 0 and report["remote"]["generated_tokens"] > 0
    assert report["template"].startswith("Qwen2.5-Coder FIM")


def test_doctor_reports_a_down_server(serve):
    from copilot_server.cli.doctor import run_doctor

    report = run_doctor(settings_for(f"http://127.0.0.1:{free_port()}", retries=0))
    assert not report["ok"] and "refused the connection" in report["error"]


# -- a real OpenAI-compatible server (llama-cpp-python's) ---------------------------------


class RealServer:
    """`python -m llama_cpp.server` on loopback, started when a test asks."""

    def __init__(self, model: Path, log_path: Path) -> None:
        self.model = model
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = secrets.token_hex(12)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
            "--api_key", self.api_key,
            # Queue a second request instead of cutting the first one short, so that a
            # quick answer to it shows the first generation really stopped.
            "--interrupt_requests", "False",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {self.log()[-2000:]}")
            try:
                if self.call("GET", "/v1/models")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"llama_cpp.server did not start: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def call(
        self, method: str, path: str, payload: Any = None, timeout: float = 5
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            body = json.dumps(payload) if payload is not None else None
            headers = {
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
            }
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def disconnects(self) -> int:
        return self.log().count("Disconnected from client")


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    for module in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
        pytest.importorskip(module, reason="needs llama-cpp-python[server]'s dependencies")
    from copilot_server.engines.models import ModelNotFoundError, resolve_model_path

    try:
        model = resolve_model_path(None)
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    server = RealServer(model, tmp_path_factory.mktemp("llama-cpp-server") / "server.log")
    yield server
    server.stop()


def real_settings(server: RealServer) -> Settings:
    return settings_for(server.url + "/v1", timeout_s=60)


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.model
async def test_real_server_down_then_up_serves_completions(real_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, real_server.api_key)
    monkeypatch.setattr(remote_http, "FAIL_FAST_S", 0.0)  # however fast the server starts
    if real_server.running:
        real_server.stop()
    settings = real_settings(real_server)
    loader = EngineLoader(settings)
    loader.start()
    service = CompletionService(settings, loader)

    down = await service.complete(REQUEST)
    assert down.text == "" and "refused the connection" in down.message
    assert loader.state.state == "ready" and loader.engine.error  # ready to retry, not dead

    real_server.start()
    up = await service.complete(REQUEST)
    assert up.source == "model", up.message
    assert up.text.startswith("return a + b")
    assert 0 < up.tokens_generated < settings.completion.max_tokens
    assert loader.engine.error is None
    assert loader.engine.info.name == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    service.close()
    loader.close()


@pytest.fixture
def real_engine(real_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, real_server.api_key)
    if not real_server.running:
        real_server.start()
    engine = create_remote_engine(real_settings(real_server))
    assert engine.error is None, engine.error
    yield engine
    engine.close()


def open_ended_prompt(engine: RemoteEngine) -> list[int]:
    """A prompt the model continues for many lines (more functions after this one)."""
    ctx = Context("calc.py", "python", "def add(a, b):\n", "    ", "", "")
    return build_fim_prompt(engine, ctx).tokens


@pytest.mark.model
def test_real_server_early_stop_closes_the_stream_and_frees_the_server(real_server, real_engine):
    before = real_server.disconnects()
    gen = real_engine.generate(
        open_ended_prompt(real_engine),
        max_tokens=200,
        should_stop=lambda t: "\n" in t.strip(" "),
        cancel=threading.Event(),
    )
    assert gen.stop_reason == "stopped", gen
    assert gen.tokens_generated < 20
    # The server saw the client go and stopped: with --interrupt_requests False another
    # request would otherwise wait for the remaining ~190 tokens (~10 s and more here).
    assert _wait_for(lambda: real_server.disconnects() > before, 5), real_server.log()[-1500:]
    started = time.perf_counter()
    assert real_server.call("POST", "/extras/tokenize", {"input": "x"}, timeout=30)[0] == 200
    assert time.perf_counter() - started < 3


@pytest.mark.model
def test_real_server_cancel_mid_stream_closes_the_stream(real_server, real_engine):
    before = real_server.disconnects()
    streaming = threading.Event()
    cancel = threading.Event()
    result: list = []

    def first_text(_text: str) -> bool:
        streaming.set()
        return False

    prompt = open_ended_prompt(real_engine)
    worker = threading.Thread(
        target=lambda: result.append(
            real_engine.generate(prompt, max_tokens=200, should_stop=first_text, cancel=cancel)
        )
    )
    worker.start()
    assert streaming.wait(60)
    cancelled_at = time.perf_counter()
    cancel.set()
    worker.join(10)
    assert result and result[0].stop_reason == "cancelled"
    assert time.perf_counter() - cancelled_at < 2
    assert result[0].tokens_generated < 50
    assert _wait_for(lambda: real_server.disconnects() > before, 5), real_server.log()[-1500:]


@pytest.mark.model
def test_real_server_rejects_a_wrong_key_with_a_clear_error(real_server, monkeypatch):
    if not real_server.running:
        real_server.start()
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    engine = create_remote_engine(real_settings(real_server))
    assert engine.error is not None
    assert "HTTP 401" in engine.error and KEY_ENV in engine.error
    engine.close()


# Holes whose answer is a block or a line: the trimmer stops each before the token cap.
HOLES = (
    ("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"),
    ("def is_even(n):\n    ", "\n\n\ndef is_odd(n):\n    return not is_even(n)\n"),
    ("import os\n\nhome = ", "\nprint(home)\n"),
)


@pytest.mark.model
async def test_real_server_early_stop_generates_no_more_than_in_process(real_server, monkeypatch):
    """The same holes through the HTTP engine and in process: closing the stream when the
    trimmer is done costs no more tokens than stopping the in-process loop."""
    from copilot_server.engines.models import resolve_model_path

    monkeypatch.setenv(KEY_ENV, real_server.api_key)
    if not real_server.running:
        real_server.start()
    counts: dict[str, list[int]] = {}
    for kind, settings in (
        ("remote", real_settings(real_server)),
        ("local", Settings().merged({"model": {"path": str(resolve_model_path(None))}})),
    ):
        loader = EngineLoader(settings)
        loader.start()
        service = CompletionService(settings, loader)
        counts[kind] = []
        for before, after in HOLES:
            text = before + after
            request = CompletionRequest(
                "file:///w/holes.py", "/w/holes.py", "python", text, len(before), invoked=True
            )
            result = await service.complete(request)
            assert result.source == "model" and result.text, (kind, result)
            assert result.tokens_generated < settings.completion.max_tokens, (kind, result)
            counts[kind].append(result.tokens_generated)
        service.close()
        loader.close()
    assert sum(counts["remote"]) <= sum(counts["local"]), counts


@pytest.mark.model
async def test_explain_and_fix_through_the_real_server(real_server, real_engine):
    from copilot_server.actions import apply_edits, compute_explanation, compute_fix, explain_region
    from copilot_server.syntax.problems import syntax_problems

    code = (
        "def is_palindrome(word):\n"
        "    cleaned = word.lower()\n"
        "    return cleaned == cleaned[::-1]\n"
    )
    settings = real_settings(real_server)
    region, name = explain_region("python", code, 1)
    explanation = compute_explanation(
        real_engine,
        settings,
        language="python",
        text=code,
        region=region,
        name=name,
        cancel=threading.Event(),
    )
    assert explanation.tokens > 0 and len(explanation.markdown.split()) >= 5, explanation
    broken = "def total(items)\n    return sum(items)\n"
    outcome = compute_fix(
        real_engine,
        settings,
        language="python",
        text=broken,
        first_line=0,
        last_line=0,
        message="expected ':'",
        cancel=threading.Event(),
    )
    assert outcome.edits, outcome
    fixed = apply_edits(broken, outcome.edits)
    assert syntax_problems("python", fixed) == [] and "return sum(items)" in fixed


# -- a real llama-server (optional: built from llama-cpp-python's own sources) ------------
#
# pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36
# tar xzf llama_cpp_python-0.3.36.tar.gz
# cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B build -DLLAMA_BUILD_TESTS=OFF \
#   -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF
# cmake --build build --target llama-server -j
# COPILOT_TEST_LLAMA_SERVER=build/bin/llama-server pytest tests/test_remote.py -m model

LLAMA_SERVER_ENV = "COPILOT_TEST_LLAMA_SERVER"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    binary = os.environ.get(LLAMA_SERVER_ENV)
    if not binary or not Path(binary).is_file():
        pytest.skip(f"set ${LLAMA_SERVER_ENV} to a llama-server binary")
    from copilot_server.engines.models import ModelNotFoundError, resolve_model_path

    try:
        model = resolve_model_path(None)
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    port, key = free_port(), secrets.token_hex(12)
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "2048",
        "-np", "1", "--api-key", key,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama-server did not start: {log_path.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", key=key, log=log_path)
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.model
async def test_llama_server_infill_and_completion(llama_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, llama_server.key)
    settings = settings_for(llama_server.url, kind="llama-server", timeout_s=60)
    engine = create_remote_engine(settings)
    assert engine.error is None, engine.error
    assert engine.info.n_ctx == 2048 and engine.info.fim.available
    assert engine.info.metadata["tokenizer"] == "server (llama-server /tokenize)"
    paths: list[str] = []
    open_stream = engine._http.stream

    def spy(path: str, payload: Any, cancel: threading.Event):
        paths.append(path)
        return open_stream(path, payload, cancel)

    monkeypatch.setattr(engine._http, "stream", spy)
    loader = EngineLoader(settings, factory=lambda _s: engine)
    loader.start()
    service = CompletionService(settings, loader)
    result = await service.complete(REQUEST)  # a FIM prompt: /infill
    assert result.source == "model", result.message
    assert result.text.startswith("return a + b")
    assert 0 < result.tokens_generated < settings.completion.max_tokens
    service.close()
    # Any other prompt goes as token ids to /completion; early stop closes the stream.
    tokens = engine.tokenize("def fibonacci(n):\n", special=True)
    gen = engine.generate(
        tokens, max_tokens=200, should_stop=lambda t: t.count("\n") >= 2, cancel=threading.Event()
    )
    assert gen.stop_reason == "stopped" and gen.tokens_generated < 60
    assert paths == ["/infill", "/completion"]
    engine.close()
