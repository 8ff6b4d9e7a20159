"""Security: a project's settings cannot send code or keys anywhere, no redirect carries the
API key, the index never reads through a link out of the workspace, and secrets stay out of
prompts. Real LSP sessions over stdio, real HTTP listeners on the loopback, real folders
and links, real tree-sitter."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import SERVER_COMMAND, inline_params, items_of, open_document, profile
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from test_context import RegexTokenizer
from test_remote import Fake

from copilot_server.completion import CompletionRequest
from copilot_server.config import ContextSettings, Settings, project_overrides
from copilot_server.context.engine import ContextEngine
from copilot_server.context.index import WorkspaceIndex
from copilot_server.context.index_worker import parse_files
from copilot_server.context.secrets import (
    is_secret_file,
    kept_from_model_server,
    looks_like_secret,
    without_secrets,
)
from copilot_server.documents import DocumentStore
from copilot_server.engines.remote import RemoteEngineError, create_remote_engine

KEY_ENV = "COPILOT_TEST_SECURITY_KEY"
KEY = "sk-test-never-leaves-0123456789abcdef"
SERVER_ENV = {**os.environ, KEY_ENV: KEY}


class Listener:
    """A TCP listener on the loopback that counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def _engine_at(url: str) -> dict[str, Any]:
    return {"kind": "openai", "url": url, "apiKeyEnv": KEY_ENV}


async def _status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status", arguments=[])
    )


async def _until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND, server_env=SERVER_ENV))
async def client(lsp_client: LanguageClient):
    # Each test initializes itself: its settings (a listener's port) are known only then.
    yield
    await lsp_client.shutdown_session()


# -- A1: where code and keys go comes only from the user ---------------------------------


def test_a_project_layer_keeps_its_settings_but_not_the_user_only_keys():
    user = Settings().merged({"model": {"path": "/models/mine.gguf"}})
    project = {
        "engine": {"kind": "openai", "url": "http://evil.example/v1", "timeoutS": 5},
        "model": {"path": "/models/mine.gguf", "nCtx": 65536},
        "completion": {"maxTokens": 32, "allowSecretFilesRemote": True},
    }
    kept, refused = project_overrides(project, user)
    assert kept == {"engine": {"timeout_s": 5}, "completion": {"max_tokens": 32}}
    # model.path repeats the user's own value (clients echo user settings): no warning.
    assert refused == [
        "engine.kind",
        "engine.url",
        "model.n_ctx",
        "completion.allow_secret_files_remote",
    ]


async def test_project_settings_cannot_send_code_or_the_key_to_their_server(
    client: LanguageClient, serve
):
    users = Fake(api="llama")  # the user's own model server, set in initializationOptions
    users_url = serve(users)
    listener = Listener()  # the project's server
    try:
        theirs = {
            "kind": "openai",
            "url": f"http://127.0.0.1:{listener.port}/v1",
            "apiKeyEnv": "COPILOT_TEST_ANOTHER_SECRET",
        }
        # Pulled by workspace/configuration, and pushed by didChangeConfiguration.
        client.set_configuration({"engine": theirs}, section="copilotServer")
        await client.initialize_session(
            types.InitializeParams(
                capabilities=profile("vscode"),
                initialization_options={
                    "copilotServer": {"engine": {**_engine_at(users_url), "kind": "llama-server"}}
                },
            )
        )
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"copilotServer": {"engine": theirs}})
        )
        open_document(client, "def add(a, b):\n    ")
        await _until(lambda: any("ignored" in m.message for m in client.messages), 30)
        await asyncio.sleep(0.5)  # the push is handled too
        await client.text_document_inline_completion_async(
            inline_params("file:///tmp/copilot-test/config_loader.py", 1, 4)
        )
    finally:
        listener.close()
    assert listener.connections == 0, "the project's server was contacted"
    assert users.requests_to("/infill"), "the code went nowhere: not even to the user's server"
    warnings = [m.message for m in client.messages if "ignored" in m.message]
    assert len(warnings) == 1, warnings  # one warning, for the pull and the push together
    for key in ("engine.kind", "engine.url", "engine.api_key_env"):
        assert key in warnings[0]


async def test_initialization_options_can_point_the_engine_at_a_model_server(
    client: LanguageClient, serve
):
    fake = Fake()
    url = serve(fake)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=profile("vscode"),
            initialization_options={"copilotServer": {"engine": _engine_at(url)}},
        )
    )
    open_document(client, "def add(a, b):\n    ")
    await client.text_document_inline_completion_async(
        inline_params("file:///tmp/copilot-test/config_loader.py", 1, 4)
    )
    assert fake.requests_to("/v1/completions"), [s.path for s in fake.seen]
    assert all(s.headers.get("Authorization") == f"Bearer {KEY}" for s in fake.seen)
    assert not [m for m in client.messages if "ignored" in m.message]


class _Redirect:
    """Answers every request with a redirect to `target` and records what it was sent."""

    def __init__(self, target: str, status: int) -> None:
        self.target = target
        self.status = status
        self.seen: list[dict[str, str]] = []

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        h.rfile.read(length)
        self.seen.append(dict(h.headers))
        h.send_response(self.status)
        h.send_header("Location", self.target + h.path)
        h.send_header("Content-Length", "0")
        h.end_headers()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_never_carries_the_api_key_to_another_server(serve, monkeypatch, status):
    monkeypatch.setenv(KEY_ENV, KEY)
    second = Fake()
    second_url = serve(second)  # another port: another origin
    first = _Redirect(second_url, status)
    first_url = serve(first)
    engine = create_remote_engine(Settings().merged({"engine": _snake(_engine_at(first_url))}))
    try:
        with pytest.raises(RemoteEngineError) as caught:
            engine.ensure_ready()
    finally:
        engine.close()
    assert first.seen and first.seen[0].get("Authorization") == f"Bearer {KEY}"
    assert second.seen == [], "the redirect was followed"
    assert "redirect" in str(caught.value) and second_url in str(caught.value)
    assert KEY not in str(caught.value)


def _snake(engine: dict[str, Any]) -> dict[str, Any]:
    return {"api_key_env" if k == "apiKeyEnv" else k: v for k, v in engine.items()}


# -- A2: never read or watch through a link out of the workspace -------------------------


@pytest.fixture
def linked_workspace(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def app_main(value):\n    return value\n")
    outside = tmp_path / "outside"
    (outside / "deep" / "deeper").mkdir(parents=True)
    (outside / "private.py").write_text("def private_outside():\n    return 'outside'\n")
    os.symlink(outside, root / "linked")
    return root, outside


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_watcher_never_walks_a_directory_link_out_of_the_workspace(linked_workspace):
    root, outside = linked_workspace
    index = WorkspaceIndex([root], ContextSettings(), use_process=False)
    seen: list[str] = []
    update = index.update_paths
    index.update_paths = lambda paths: (seen.extend(paths), update(paths))[1]  # type: ignore[method-assign]
    index.start()
    try:
        assert index.watching.wait(30), "the watcher did not start"
        # Changes outside first, then one inside: once the inside one has arrived, an
        # outside one would have arrived too, had the watcher walked the link.
        (outside / "deep" / "deeper" / "planted.py").write_text("def planted():\n    pass\n")
        (outside / "new_outside.py").write_text("def new_outside():\n    pass\n")
        time.sleep(0.3)
        (root / "src" / "fresh.py").write_text("def fresh_inside():\n    pass\n")
        assert _wait(lambda: index.lookup("fresh_inside")), "the inside change was missed"
    finally:
        index.stop()
    assert not [p for p in seen if "linked" in p or str(outside) in p], seen
    assert not index.lookup("planted") and not index.lookup("new_outside")


def test_the_watcher_indexes_a_folder_created_after_it_started(linked_workspace):
    root, _outside = linked_workspace
    index = WorkspaceIndex([root], ContextSettings(), use_process=False)
    index.start()
    try:
        assert index.watching.wait(30), "the watcher did not start"
        (root / "src" / "newpkg" / "sub").mkdir(parents=True)
        time.sleep(0.6)  # the new folder is watched (a round of the watcher)
        (root / "src" / "newpkg" / "sub" / "mod.py").write_text("def in_new_folder():\n    pass\n")
        assert _wait(lambda: index.lookup("in_new_folder")), "a file in a new folder was missed"
    finally:
        index.stop()


def test_a_file_that_is_a_link_out_of_the_workspace_is_never_parsed(linked_workspace):
    root, outside = linked_workspace
    link = root / "src" / "swapped.py"
    os.symlink(outside / "private.py", link)
    # As if the walk had listed it a moment before it became a link.
    [parsed] = parse_files([str(link)], {}, 100_000, (str(root.resolve()),))
    assert parsed.reason == "symlink" and parsed.definitions == ()
    [through_dir] = parse_files([str(root / "linked" / "private.py")], {}, 100_000, (str(root),))
    assert through_dir.reason == "symlink"


def test_a_recent_file_replaced_by_a_link_is_not_read_as_a_similar_snippet(linked_workspace):
    root, outside = linked_workspace
    recent = root / "src" / "orders.py"
    code = (
        "def load_orders(session, customer_id):\n"
        "    orders = session.query(Order).filter(Order.customer_id == customer_id)\n"
        "    totals = [order.amount for order in orders]\n"
        "    return sum(totals)\n"
    )
    recent.write_text(code)
    index = WorkspaceIndex([root], ContextSettings(), use_process=False)
    index.build()
    index.update_paths([str(recent)])  # the watcher saw it edited
    assert index.recent_files() == [str(recent)]
    text = (
        "def load_invoices(session, customer_id):\n"
        "    invoices = session.query(Invoice).filter(Invoice.customer_id == customer_id)\n"
        "    totals = [invoice.amount for invoice in invoices]\n"
    )
    uri = (root / "src" / "app.py").as_uri()

    def similar() -> list[str]:
        store = DocumentStore()
        store.open(uri, "python", 1, text)
        engine = ContextEngine(store, index)
        request = CompletionRequest(uri, str(root / "src/app.py"), "python", text, len(text))
        ctx = engine(request, RegexTokenizer(), Settings())
        return [s.text for s in ctx.snippets if s.kind == "similar"]

    assert any("session.query(Order)" in s for s in similar())  # read while it is a file
    # Replaced by a link to similar code outside, before the watcher says so.
    (outside / "orders_outside.py").write_text(code.replace("Order", "OutsideOrder"))
    recent.unlink()
    os.symlink(outside / "orders_outside.py", recent)
    assert not any("OutsideOrder" in s for s in similar())
    index.update_paths([str(recent)])  # the watcher's turn: off the recent list
    assert index.recent_files() == []


# -- A3: secrets in ordinarily named files -----------------------------------------------

SECRET_LINES = [
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    'API_KEY = "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"',
    "GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    'password = "hunter2"',
    '    "password": "s3cr3t!",',
    "db_passwd: Tr0ub4dor&3",
    "SECRET_KEY = 'django-insecure-9x!k@2#zq'",
    'const stripeKey = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";',
    'client_secret := "8f14e45fceea167a5a36dedd4bea2543"',
    'headers = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiIs.eyJzdWIiOiIxMjM0NTY3ODkw.Sfl"}',
    'DATABASE_URL = "postgres://admin:Sup3rS3cret@db.example.com:5432/app"',
    "export OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwx1234",
    'self.auth_token = "a8f5f167f44f4964e6c998dee827110c"',
    'slack = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"',
    'config["api_key"] = "3f9c2b7e8a1d4c6f9b0e2a7d5c8f1b3e"',
    "-----BEGIN RSA PRIVATE KEY-----",
    'let apiKey: &str = "Zx81kLq09Pmn3Rt7Vb2Wc5Yd";',
    'ACCESS_TOKEN = "ya29.a0AfH6SMBx3kL9qP2rT7vW1yZ4"',
    "dbPassword = 'Pa55w0rd!'",
]
ORDINARY_LINES = [
    "MAX_TOKENS = 64",
    "max_tokens: int = Field(default=64, ge=1, le=4096)",
    'api_key_env: str = "COPILOT_SERVER_API_KEY"',
    'password = os.environ["DB_PASSWORD"]',
    "token = get_token(user)",
    "def login(user, password=None):",
    "if password == confirm:",
    "    password: str",
    'sort_key = "name"',
    'cache_key = f"{user}:{page}"',
    "PASSWORD_MIN_LENGTH = 8",
    "secret = None",
    'api_key = ""',
    'API_KEY = "<your api key>"',
    'password_help = "Use at least 8 characters"',
    'TOKEN_TYPES = ["bearer", "basic"]',
    "tokens = tokenizer.encode(text)",
    "key = cache.get(key)",
    "primary_key=True",
    "const keyCode = 13;",
    'SECRET_KEY = os.getenv("SECRET_KEY")',
    'AWS_REGION = "us-east-1"',
    'checksum = "d41d8cd98f00b204e9800998ecf8427e"',
    "for key, value in items.items():",
    'password = "${DB_PASSWORD}"',
    'keys = {"up": 38, "down": 40}',
    "def tokenize(text: str, special: bool) -> list[int]:",
    'is_secret = path.endswith(".pem")',
    'secretary = "Jane"',
    'url = "https://example.com/a:b@c"',
]


@pytest.mark.parametrize("line", SECRET_LINES)
def test_a_line_holding_a_secret_is_recognised(line: str):
    assert looks_like_secret(line)


@pytest.mark.parametrize("line", ORDINARY_LINES)
def test_an_ordinary_line_is_not_taken_for_a_secret(line: str):
    assert not looks_like_secret(line)


def test_a_private_key_block_is_dropped_with_its_body():
    text = (
        "a = 1\nKEY = '''\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "AAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n'''\nb = 2"
    )
    assert without_secrets(text) == "a = 1\nKEY = '''\n'''\nb = 2"
    plain = "def f():\n    return 1\n"
    assert without_secrets(plain) is plain


def test_definitions_and_similar_snippets_from_other_files_leave_out_secret_lines():
    store = DocumentStore()
    settings_text = (
        "def connect_database(host):\n"
        '    password = "Tr0ub4dor&3"\n'
        "    return open_database(host, 'app', password)\n"
    )
    store.open("file:///w/settings.py", "python", 1, settings_text)
    similar_text = (
        "def load_orders(session, customer_id):\n"
        '    aws_key = "AKIAIOSFODNN7EXAMPLE"\n'
        "    orders = session.query(Order).filter(Order.customer_id == customer_id)\n"
        "    totals = [order.amount for order in orders]\n"
        "    return sum(totals)\n"
    )
    store.open("file:///w/orders.py", "python", 1, similar_text)
    text = (
        "def load_invoices(session, customer_id):\n"
        "    invoices = session.query(Invoice).filter(Invoice.customer_id == customer_id)\n"
        "    totals = [invoice.amount for invoice in invoices]\n"
        "    db = connect_database(HOST)\n"
    )
    store.open("file:///w/app.py", "python", 1, text)
    ctx = ContextEngine(store)(
        CompletionRequest("file:///w/app.py", "/w/app.py", "python", text, len(text)),
        RegexTokenizer(),
        Settings(),
    )
    definitions = [s.text for s in ctx.snippets if s.kind == "definition"]
    similar = [s.text for s in ctx.snippets if s.kind == "similar"]
    assert any("def connect_database(host):" in d for d in definitions)
    assert any("session.query(Order)" in s for s in similar)
    prompt_text = "\n".join(s.text for s in ctx.snippets)
    assert "Tr0ub4dor" not in prompt_text and "AKIA" not in prompt_text


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("/p/.env", True),
        ("/p/.env.production", True),
        ("/p/deploy/server.pem", True),
        ("/p/tls/site.key", True),
        ("/home/u/.npmrc", True),
        ("/home/u/.netrc", True),
        ("/home/u/.aws/credentials", True),
        ("/home/u/.ssh/config", True),
        ("/p/src/main.py", False),
        ("/work/client-secrets-rotation/src/main.py", False),  # a folder name is not enough
        ("/p/src/keys.py", False),
    ],
)
def test_secret_files_are_known_by_name_and_key_folders(path: str, secret: bool):
    assert is_secret_file(path) is secret


def test_secret_files_are_completed_only_with_a_local_model_or_when_allowed():
    remote = Settings().merged({"engine": {"kind": "openai", "url": "http://127.0.0.1:1"}})
    allowed = remote.merged({"completion": {"allow_secret_files_remote": True}})
    assert kept_from_model_server("/p/.env", remote)
    assert not kept_from_model_server("/p/app.py", remote)
    assert not kept_from_model_server("/p/.env", allowed)
    assert not kept_from_model_server("/p/.env", Settings().merged({"engine": {"kind": "local"}}))


async def test_an_env_file_is_not_sent_to_a_model_server_until_the_user_allows_it(
    client: LanguageClient, serve
):
    fake = Fake()
    url = serve(fake)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=profile("vscode"),
            initialization_options={"copilotServer": {"engine": _engine_at(url)}},
        )
    )
    marker = "STRIPE_WEBHOOK_SIGNING_MARKER_7f3a"
    uri = "file:///tmp/copilot-test/.env"
    open_document(client, f"{marker}=whsec_0a1b2c3d\nDEBUG=", uri=uri, language="dotenv")

    def sent_marker() -> bool:
        return any(marker in str(s.body) for s in fake.seen)

    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 6))
    assert items_of(result) == [] and not sent_marker()
    # The user allows it (a user-level setting, here through copilot.reloadModel).
    reply = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="copilot.reloadModel",
            arguments=[{"completion": {"allowSecretFilesRemote": True}}],
        )
    )
    assert reply["reloading"] is True
    for _ in range(100):
        if (await _status(client))["state"] != "loading":
            break
        await asyncio.sleep(0.05)
    await client.text_document_inline_completion_async(inline_params(uri, 1, 6))
    assert sent_marker()
