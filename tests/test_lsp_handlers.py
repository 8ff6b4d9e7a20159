"""The LSP handlers called alone: a real app (documents, settings, the status) and a port
that records what would go to the client; no server, no transport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lsprotocol import types
from port_fake import RecordingPort

from copilot_server.app import build_app
from copilot_server.config import Settings
from copilot_server.lsp import handlers
from copilot_server.ports import ClientFeatures, MessageLevel

URI = "file:///tmp/copilot-test/handlers.py"


@pytest.fixture
def session() -> Iterator[handlers.Session]:
    settings = Settings.model_validate({"model": {"path": "/nonexistent/handlers.gguf"}})
    app = build_app(settings)
    yield handlers.open_session(app, RecordingPort())
    app.close()


def test_document_handlers_keep_the_text_in_step(session):
    opened = types.TextDocumentItem(uri=URI, language_id="python", version=1, text="x = 1\n")
    handlers.did_open(session, types.DidOpenTextDocumentParams(text_document=opened))
    start, end = types.Position(line=0, character=4), types.Position(line=0, character=5)
    change = types.TextDocumentContentChangePartial(
        range=types.Range(start=start, end=end), text="2"
    )
    handlers.did_change(
        session,
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[change],
        ),
    )
    doc = session.app.documents.get(URI)
    assert doc is not None and (doc.text, doc.version) == ("x = 2\n", 2)
    closed = types.TextDocumentIdentifier(uri=URI)
    handlers.did_close(session, types.DidCloseTextDocumentParams(text_document=closed))
    assert session.app.documents.get(URI) is None


def test_toggle_flips_completions_and_a_bad_setting_is_shown_not_applied(session):
    assert handlers.toggle(session) == {"enabled": False}
    assert not session.app.settings.completion.enabled
    assert not handlers.apply_settings(session, {"completion": {"enabled": "sometimes"}}, "runtime")
    assert not session.app.settings.completion.enabled
    [(kind, (level, _))] = session.port.sent
    assert (kind, level) == ("message", MessageLevel.ERROR)


async def test_initialized_reports_the_status_and_pulls_the_client_settings(session):
    session.port.settings = {"completion": {"enabled": False}}  # the section asked for
    session.port.features = ClientFeatures(configuration=True)
    await handlers.initialized(session, types.InitializedParams())
    assert not session.app.settings.completion.enabled
    statuses = [params for method, params in session.port.sent if method == "copilot/status"]
    assert statuses[0]["enabled"] and not statuses[-1]["enabled"]
    assert (await handlers.status(session))["enabled"] is False
