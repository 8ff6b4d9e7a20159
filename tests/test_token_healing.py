"""Token healing: the prompt ends at a token boundary the model could have made itself, and
the first tokens are constrained to write the cut text again.

Layouts are checked with the vocabulary-only GGUFs of tests/gguf_factory.py (one per
family, tokenized by llama.cpp itself); the golden cases with the real default model's
tokenizer (vocabulary only, no weights) and one short generation with the real model.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from gguf_factory import load_vocab_engine, write_family

from copilot_server.context import Context
from copilot_server.prompts import build_fim_prompt
from copilot_server.prompts.healing import NO_HEALING, Constraint, Vocabulary, plan, vocabulary_for

PREFIX = "import json\n\n\ndef save(names, path):\n    names = sorted(set(names))\n"
SUFFIX = "\n"


def ctx(line: str, prefix: str = PREFIX, suffix: str = SUFFIX) -> Context:
    return Context("app/main.py", "python", prefix, line, "", suffix)


def rendered(engine, tokens: list[int]) -> str:
    model = engine._llm._model
    return b"".join(model.detokenize([t], special=True) for t in tokens).decode()


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gguf")
    loaded = {
        key: load_vocab_engine(write_family(key, directory))
        for key in ("qwen2.5-coder", "codestral", "mistral-7b-instruct")
    }
    yield loaded
    for engine in loaded.values():
        engine.close()


@pytest.fixture(scope="module")
def qwen():
    """The real default model's tokenizer (vocabulary only: no weights are read)."""
    from copilot_server.engines.models import resolve_model_path

    engine = load_vocab_engine(resolve_model_path(None))
    yield engine
    engine.close()


def allowed_pieces(vocab: Vocabulary, scores: np.ndarray) -> set[bytes]:
    return {vocab.piece(int(t)) for t in np.flatnonzero(np.isfinite(scores))}


# -- every template ----------------------------------------------------------------------

# The documented formats with the typed line "    ret"; healing takes back the cut word.
LINE = "    ret"
FORMATS = {
    "qwen2.5-coder": f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>{LINE}",
    "codestral": f"<s>[SUFFIX]{SUFFIX}[PREFIX] {PREFIX}{LINE}",
}


@pytest.mark.parametrize("key", list(FORMATS))
def test_fim_prompt_ends_before_the_cut_word_and_heals_it(families, key):
    engine = families[key]
    prompt = build_fim_prompt(engine, ctx(LINE))
    assert prompt.heal and prompt.heal.strip() == "ret"
    # Prompt + healed text is the documented format: nothing lost, nothing added.
    assert rendered(engine, prompt.tokens) + prompt.heal == FORMATS[key]
    assert not rendered(engine, prompt.tokens).endswith("ret")


def test_chat_prompt_heals_the_cut_word_too(families):
    engine = families["mistral-7b-instruct"]
    healed = build_fim_prompt(engine, ctx(LINE))
    engine.heals_tokens = False  # the same prompt without healing
    try:
        plain = build_fim_prompt(engine, ctx(LINE))
    finally:
        del engine.heals_tokens
    assert healed.chat and healed.heal.strip() == "ret" and not plain.heal
    assert rendered(engine, healed.tokens) + healed.heal == rendered(engine, plain.tokens)
    assert healed.tokens == plain.tokens[: len(healed.tokens)]


def test_engine_without_a_constraint_gets_the_cut_word_in_the_prefix(families):
    """Remote engines cannot constrain sampling: the plain FIM layout instead, the typed
    line ending the prefix section, where FIM training cut words anywhere."""
    engine = families["qwen2.5-coder"]
    engine.heals_tokens = False
    try:
        prompt = build_fim_prompt(engine, ctx(LINE))
    finally:
        del engine.heals_tokens
    assert not prompt.heal
    expected = f"<|fim_prefix|>{PREFIX}{LINE}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    assert rendered(engine, prompt.tokens) == expected


# -- planning ----------------------------------------------------------------------------


def test_no_healing_when_the_last_token_ends_inside_a_character():
    # "é" is the bytes C3 A9; a vocabulary where the A9 byte token has longer tokens after it
    vocab = Vocabulary([b"x", b" ", b"\xc3", b"\xa9", b"\xa9t", b"ret", b"return"])
    assert plan(vocab, [1, 2, 3], " é") == NO_HEALING
    # …while a whole word is healed.
    assert plan(vocab, [1, 5], " ret").text == "ret"


def test_no_healing_when_nothing_longer_can_follow_the_last_token():
    vocab = Vocabulary([b" ", b"(", b"x"])
    assert plan(vocab, [2, 1], "x(") == NO_HEALING


def test_two_tokens_are_taken_back_when_they_could_be_one():
    vocab = Vocabulary([b"   ", b" ret", b"u", b" return", b"urn"])
    healing = plan(vocab, [0, 1, 2], "    retu")
    assert (healing.text, healing.tokens) == (" retu", 2)


# -- the real model's tokenizer: golden cases ------------------------------------------


@pytest.mark.model
def test_prompt_for_ret_ends_before_rets_token(qwen):
    prompt = build_fim_prompt(qwen, ctx(LINE))
    vocab = vocabulary_for(qwen)
    line_tokens = qwen.tokenize(LINE)
    assert [vocab.piece(t) for t in line_tokens] == [b"   ", b" ret"]
    assert prompt.heal == " ret" and prompt.healing.tokens == 1
    # The prompt ends with the indentation's token, right after the middle token.
    middle = qwen.tokenize("<|fim_middle|>", special=True)
    assert prompt.tokens[-2:] == [*middle, line_tokens[0]]


@pytest.mark.model
def test_first_tokens_are_constrained_to_extend_the_cut_text(qwen):
    vocab = vocabulary_for(qwen)
    prompt = build_fim_prompt(qwen, ctx(LINE))
    constraint = Constraint(vocab, prompt.heal, len(prompt.tokens))
    scores = np.zeros(qwen._llm._model.n_vocab(), dtype=np.float32)
    ids = np.asarray(prompt.tokens)
    first = allowed_pieces(vocab, constraint(ids, scores))
    assert b" return" in first and b" ret" in first and b" re" in first
    assert all(p.startswith(b" ret") or b" ret".startswith(p) for p in first)
    assert b" x" not in first and b"\n" not in first
    # After " re" the rest ("t") is still constrained; after " return" nothing is.
    after_re = np.append(ids, qwen.tokenize(" re"))
    assert all(p.startswith(b"t") for p in allowed_pieces(vocab, constraint(after_re, scores)))
    done = np.append(ids, qwen.tokenize(" return"))
    assert constraint(done, scores) is scores


@pytest.mark.model
def test_typing_a_word_keeps_the_prompt_append_only(qwen):
    """Healing takes back the word being typed, so the prompt stays the same while it is
    typed and grows when it ends: the KV cache keeps everything before."""
    previous: list[int] = []
    for end in range(len("    return names")):
        line = "    return names"[: end + 1]
        tokens = build_fim_prompt(qwen, ctx(line)).tokens
        if previous:
            assert tokens[: len(previous)] == previous, line
        previous = tokens


@pytest.mark.model
@pytest.mark.parametrize("line", ['    print("😀', '    label = "é', "    x = 1  # ☃"])
def test_cursor_after_a_multi_byte_character_never_blocks(qwen, line):
    """Healed or not, the text taken back is whole characters and the constraint always
    allows the tokens it came from, so generation can never be left without a token."""
    prompt = build_fim_prompt(qwen, ctx(line))
    assert line.endswith(prompt.heal)
    if prompt.heal:
        vocab = vocabulary_for(qwen)
        constraint = Constraint(vocab, prompt.heal, len(prompt.tokens))
        scores = np.zeros(qwen._llm._model.n_vocab(), dtype=np.float32)
        assert np.isfinite(constraint(np.asarray(prompt.tokens), scores)).any()


# -- the real model ----------------------------------------------------------------------


def _complete(text: str) -> str:
    from copilot_server.completion import CompletionRequest
    from copilot_server.completion.service import CompletionService
    from copilot_server.config import Settings
    from copilot_server.engines.loader import EngineLoader

    # The in-process engine, whose decode loop applies the constraint.
    settings = Settings().merged({"engine": {"kind": "local"}})
    loader = EngineLoader(settings)
    loader.start()
    service = CompletionService(settings, loader)
    try:
        request = CompletionRequest("file:///t/a.py", "/t/a.py", "python", text, len(text))
        return asyncio.run(service.complete(request)).text
    finally:
        service.close()
        loader.close()


@pytest.mark.model
def test_cut_word_is_finished_by_the_real_model():
    """The issue's case: unhealed, the model took "ret" for a finished name and answered
    " = json.dumps(names, ind…"; healed, the suggestion finishes the word."""
    text = PREFIX + "    with open(path, 'w') as f:\n        json.dump(names, f)\n    ret"
    assert _complete(text).startswith("urn")


@pytest.mark.model
def test_engine_writes_the_healed_text_first():
    from copilot_server.config import Settings
    from copilot_server.engines.loader import create_engine

    engine = create_engine(Settings().merged({"engine": {"kind": "local"}}))
    try:
        prompt = build_fim_prompt(engine, ctx("        settings = json.lo", "def f(p):\n"))
        assert prompt.heal == ".lo"
        generation = engine.generate(
            prompt.tokens,
            max_tokens=4,
            should_stop=lambda text: "(" in text,
            cancel=threading.Event(),
            stop_tokens=prompt.stop_tokens,
            heal=prompt.heal,
        )
    finally:
        engine.close()
    assert generation.text.startswith(".lo") and generation.text[3:].startswith(("ad", "g"))


def test_prompts_healed_alike_are_cached_apart():
    """ "    re" and "    ret" heal to the same prompt tokens: the cache key must differ, or
    the suggestion for one would be shown for the other."""
    from copilot_server.completion.service import _prompt_key
    from copilot_server.prompts import Healing, Prompt

    re_prompt = Prompt(tokens=[1, 2, 3], template="t", healing=Healing(" re", 1))
    ret_prompt = Prompt(tokens=[1, 2, 3], template="t", healing=Healing(" ret", 1))
    assert _prompt_key(re_prompt) != _prompt_key(ret_prompt)
