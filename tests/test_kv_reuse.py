"""Keeping cached tokens that moved (engines/kv_reuse.py), planned and on the real model."""

from __future__ import annotations

import threading

import pytest

from copilot_server.engines.kv_reuse import Move, plan_reuse


def test_dropped_top_lines_keep_the_rest_by_moving_it():
    head, dropped, body, tail = [1, 2, 3], list(range(100, 140)), list(range(200, 260)), [7, 8]
    plan = plan_reuse(head + dropped + body, head + body + tail, min_run=16)
    assert plan.common_prefix == 3
    assert plan.moves == (Move(cache_at=43, prompt_at=3, length=60),)
    assert plan.kept == 63  # only the two new tokens are read


def test_two_runs_either_side_of_a_dropped_block():
    a, b, c = list(range(100, 120)), list(range(200, 230)), list(range(300, 320))
    plan = plan_reuse([0, *a, *b, *c], [0, *a, *c, 9], min_run=16)
    assert plan.common_prefix == 21
    assert plan.moves == (Move(cache_at=51, prompt_at=21, length=20),)
    assert plan.kept == 41


def test_short_runs_and_new_tokens_are_read_again():
    cached = [0, 1, *range(100, 110), *range(200, 240)]
    # A 10-token run is below the minimum; a prompt token the cache lacks ends the reuse.
    assert plan_reuse(cached, [0, 1, *range(100, 110), 5], min_run=16).moves == ()
    plan = plan_reuse(cached, [0, 1, 999, *range(200, 240)], min_run=16)
    assert plan.moves == () and plan.kept == 2


def test_identical_and_extended_prompts_are_a_plain_prefix():
    cached = list(range(50))
    assert plan_reuse(cached, cached).kept == 50
    plan = plan_reuse(cached, [*cached, 1, 2])
    assert plan.moves == () and plan.kept == 50


@pytest.fixture(scope="module")
def engine():
    from copilot_server.config import Settings
    from copilot_server.engines.llama import LlamaEngine
    from copilot_server.engines.models import resolve_model_path

    loaded = LlamaEngine(resolve_model_path(None), Settings().model)
    yield loaded
    loaded.close()


def _generate(engine, tokens: list[int]):
    return engine.generate(
        tokens,
        max_tokens=12,
        should_stop=lambda text: "\n" in text,
        cancel=threading.Event(),
    )


@pytest.mark.model
def test_a_window_that_drops_its_top_lines_is_not_read_again(engine):
    """The prefix window moves down: the kept lines are shifted, not re-read, and the
    model still answers from them. (The kept tokens' cache was computed with the dropped
    lines before them, so logits differ slightly from a cold read: llama-server's
    --cache-reuse makes the same trade.)"""
    top = "".join(f"OLD_{i} = {i} * 3  # retired setting\n" for i in range(12))
    body = "".join(f"LIMIT_{i} = {i} * 7\n" for i in range(12))
    cursor = "\n\ndef add(a, b):\n    return "
    fim = engine.info.fim
    tok = engine.tokenize

    def prompt(prefix: str) -> list[int]:
        suffix = "\n\n\nprint(add(LIMIT_1, LIMIT_2))\n"
        return [fim.prefix, *tok(prefix), fim.suffix, *tok(suffix), fim.middle]

    first = _generate(engine, prompt(top + body + cursor))
    assert first.text.startswith("a + b"), first
    warm = _generate(engine, prompt(body + cursor))
    assert warm.prompt_tokens_evaluated < 5, warm  # the model re-reads its last token only
    assert warm.text.startswith("a + b"), warm

    engine._llm.reset()  # cold: every token read
    cold = _generate(engine, prompt(body + cursor))
    assert cold.prompt_tokens_evaluated == cold.prompt_tokens
    assert cold.text.startswith("a + b"), cold
