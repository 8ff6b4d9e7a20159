"""Cycling alternatives: an explicit request (a key) gets up to `completion.alternatives`
distinct suggestions, a request while typing gets one. The real server over stdio and the
real model; the branching engine and the sampling fallback on the real engine."""

from __future__ import annotations

import threading

import pytest
import pytest_lsp
from lsp_helpers import (
    SAMPLE,
    SAMPLE_URI,
    SERVER_COMMAND,
    inline_params,
    items_of,
    open_document,
    profile,
    text_of,
)
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from copilot_server.completion import alternatives
from copilot_server.trimming import Trimmer, TrimRequest

pytestmark = pytest.mark.model


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    # The in-process engine: it heals tokens (the mid-word case below depends on it) and
    # does not share its decode loop with other tests' servers.
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=profile("neovim", ["utf-8", "utf-16"]),
            initialization_options={"copilotServer": {"engine": {"kind": "local"}}},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def _metrics(client: LanguageClient) -> dict:
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status", arguments=[])
    )
    return status["metrics"]


async def test_explicit_request_cycles_through_distinct_suggestions_typing_gets_one(
    client: LanguageClient,
):
    open_document(client, SAMPLE)
    typing = items_of(
        await client.text_document_inline_completion_async(
            inline_params(SAMPLE_URI, 5, 8, invoked=False)
        )
    )
    assert len(typing) == 1
    assert (await _metrics(client))["alternatives_tokens_generated"] == 0

    asked = items_of(
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    )
    texts = [text_of(item) for item in asked]
    # The first is the suggestion on screen (typing got its first line early, the explicit
    # request waits for the whole block), then `completion.alternatives` - 1 = 2 more, each
    # different after trimming.
    assert texts[0].startswith(text_of(typing[0]))
    assert len(texts) == 3, texts
    assert len({t.rstrip() for t in texts}) == 3, texts
    assert all(t.strip() for t in texts)
    for item, text in zip(asked, texts, strict=True):
        assert item.range.start == item.range.end == types.Position(line=5, character=8)
        assert item.command.arguments[0]["length"] == len(text)  # each accept counts its own
    metrics = await _metrics(client)
    assert metrics["alternatives_shown"] == 2
    assert metrics["alternatives_tokens_generated"] > 0

    # Asking again at the same place shows the same list, from the cache: no model time.
    spent = metrics["alternatives_tokens_generated"]
    again = items_of(
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    )
    assert [text_of(item) for item in again] == texts
    assert (await _metrics(client))["alternatives_tokens_generated"] == spent

    # Mid-word (token healing takes "lo" back from the prompt): every alternative still
    # continues the word typed, `json.lo` -> `json.load…`.
    uri = "file:///tmp/copilot-test/mid_word.py"
    open_document(client, "import json\n\nwith open(path) as f:\n    data = json.lo", uri)
    mid_word = items_of(
        await client.text_document_inline_completion_async(inline_params(uri, 3, 18))
    )
    assert len(mid_word) >= 2, [text_of(item) for item in mid_word]
    assert all(text_of(item).startswith("ad") for item in mid_word), [
        text_of(item) for item in mid_word
    ]

    # `completion.alternatives` = 1: explicit requests stay single too.
    spent = (await _metrics(client))["alternatives_tokens_generated"]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"copilotServer": {"completion": {"alternatives": 1}}}
        )
    )
    single = items_of(
        await client.text_document_inline_completion_async(inline_params(SAMPLE_URI, 5, 8))
    )
    assert [text_of(item) for item in single] == texts[:1]
    assert (await _metrics(client))["alternatives_tokens_generated"] == spent


# A blank line where the model skipped ahead: greedy, it writes the line after the
# cursor (`this._emitter.fire(undefined);`), which the suffix-repeat rule cuts to nothing.
SKIPPED_LINE_BEFORE = """class MutableToken {
    _isCancelled = false;
    _emitter;
    cancel() {
        if (!this._isCancelled) {
            this._isCancelled = true;
            """
SKIPPED_LINE_AFTER = """
                this._emitter.fire(undefined);
                this.dispose();
            }
        }
    }
    dispose() {
        if (this._emitter) {
            this._emitter.dispose();
            this._emitter = undefined;
        }
    }
}
"""


async def test_an_answer_emptied_as_a_repeat_of_the_next_line_gives_the_next_branch(
    client: LanguageClient,
):
    uri = "file:///tmp/copilot-test/skipped_line.js"
    open_document(client, SKIPPED_LINE_BEFORE + SKIPPED_LINE_AFTER, uri, "javascript")
    items = items_of(
        await client.text_document_inline_completion_async(inline_params(uri, 6, 12, invoked=False))
    )
    texts = [text_of(item) for item in items]
    assert texts and texts[0].strip(), texts
    assert not texts[0].strip().startswith("this._emitter.fire"), texts
    assert (await _metrics(client))["suffix_repeat_branches"] == 1


@pytest.fixture(scope="module")
def engine():
    from copilot_server.config import Settings
    from copilot_server.engines.llama import LlamaEngine
    from copilot_server.engines.models import resolve_model_path

    loaded = LlamaEngine(resolve_model_path(None), Settings().model)
    yield loaded
    loaded.close()


class _WithoutLogits:
    """The real engine seen as one that cannot show first-token logits (a remote one)."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self._engine = engine
        self.info = engine.info
        self.tokenize = engine.tokenize
        self.detokenize = engine.detokenize
        self.generate = engine.generate


def _fim_prompt(engine, before: str, after: str):  # noqa: ANN001
    from copilot_server.prompts import Prompt

    fim = engine.info.fim
    tokens = [fim.prefix, *engine.tokenize(before), fim.suffix, *engine.tokenize(after)]
    return Prompt(tokens=[*tokens, fim.middle], template="test")


def _trimmer(before: str, after: str) -> Trimmer:
    line_prefix = before.rsplit("\n", 1)[-1]
    return Trimmer(
        TrimRequest(
            line_prefix=line_prefix,
            line_suffix="",
            suffix=after,
            prefix=before[: len(before) - len(line_prefix)],
            language="python",
            max_lines=1,
            max_tokens=16,
        )
    )


def test_first_token_branches_are_distinct_and_the_greedy_one_is_left_out(engine):
    before, after = "FRUITS = [\n    ", "\n]\n"
    prompt = _fim_prompt(engine, before, after)
    greedy = engine.generate(
        prompt.tokens, max_tokens=16, should_stop=lambda t: "\n" in t, cancel=threading.Event()
    )
    first = greedy.text.split("\n", 1)[0]
    found = alternatives.generate(
        engine,
        prompt,
        lambda: _trimmer(before, after),
        lambda raw: raw,
        threading.Event(),
        count=2,
        exclude=[first],
        max_tokens=16,
    )
    assert len(found.texts) == 2, found
    assert first.rstrip() not in [t.rstrip() for t in found.texts]
    assert found.texts[0].rstrip() != found.texts[1].rstrip()
    assert found.tokens_generated > 0 and found.ms > 0


def test_an_engine_without_first_token_logits_samples_alternatives(engine):
    before, after = "FRUITS = [\n    ", "\n]\n"
    prompt = _fim_prompt(engine, before, after)
    engine._llm.set_seed(7)  # sampling: the same draw on every run
    found = alternatives.generate(
        _WithoutLogits(engine),
        prompt,
        lambda: _trimmer(before, after),
        lambda raw: raw,
        threading.Event(),
        count=1,
        exclude=["'apple',"],
        max_tokens=8,
    )
    assert found.texts, found
    assert all(t.rstrip() != "'apple'," for t in found.texts)
    assert found.model_calls >= len(found.texts)


def test_a_cancelled_request_makes_no_alternatives(engine):
    cancel = threading.Event()
    cancel.set()
    prompt = _fim_prompt(engine, "x = ", "\n")
    found = alternatives.generate(
        engine,
        prompt,
        lambda: _trimmer("x = ", "\n"),
        lambda raw: raw,
        cancel,
        count=2,
        exclude=[],
        max_tokens=8,
    )
    assert found.texts == [] and found.model_calls == 0
