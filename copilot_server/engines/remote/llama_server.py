"""The llama-server backend: /infill and /completion bodies and stream events."""

from __future__ import annotations

import json
from typing import Any

from .http import Chunk, _int, error_detail

_LLAMA_STOP = {"eos": "eos", "word": "eos", "limit": "max_tokens"}


def llama_event(event: dict[str, Any]) -> Chunk:
    if "error" in event:
        return Chunk(error=error_detail(json.dumps(event).encode()))
    chunk = Chunk(text=event.get("content") or "")
    timings = event.get("timings")  # every chunk with timings_per_token
    if isinstance(timings, dict):
        chunk.generated = _int(timings.get("predicted_n"))
        chunk.evaluated = _int(timings.get("prompt_n"))  # the rest came from the KV cache
    predicted = _int(event.get("tokens_predicted"))
    if predicted is not None:
        chunk.generated = predicted
    prompt_tokens = _int(event.get("tokens_evaluated"))
    if prompt_tokens:
        chunk.prompt_tokens = prompt_tokens
    if event.get("stop"):
        chunk.finish = _LLAMA_STOP.get(str(event.get("stop_type", "eos")), "eos")
        chunk.final = True
    return chunk
