"""The model thread (and the threads it starts) yields the CPU to the event loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from copilot_server.completion.service import CompletionService
from copilot_server.config import Settings
from copilot_server.engines.loader import EngineLoader
from copilot_server.priority import BACKGROUND_NICE

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice")


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _nice_of_a_thread_started_here() -> int:
    # llama.cpp's OpenMP team is started from the model thread: it inherits its priority.
    seen: list[int] = []
    child = threading.Thread(target=lambda: seen.append(_own_nice()))
    child.start()
    child.join()
    return seen[0]


def test_the_model_thread_and_its_children_run_at_a_lower_priority_than_the_loop():
    settings = Settings()
    service = CompletionService(settings, EngineLoader(settings))
    loop_nice = _own_nice()
    try:
        model_nice = asyncio.run(service.run_on_model(_own_nice))
        child_nice = asyncio.run(service.run_on_model(_nice_of_a_thread_started_here))
    finally:
        service.close()
    assert model_nice == child_nice == min(19, loop_nice + BACKGROUND_NICE)
    assert _own_nice() == loop_nice  # the caller's own priority is untouched
