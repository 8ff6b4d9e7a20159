"""The OpenAI-compatible backend: /v1/completions request body and stream events."""

from __future__ import annotations

import json
from typing import Any

from .http import Chunk, _int, error_detail

_OPENAI_FINISH = {"stop": "eos", "length": "max_tokens", "eos": "eos"}


def openai_event(event: dict[str, Any]) -> Chunk:
    if "error" in event:
        return Chunk(error=error_detail(json.dumps(event).encode()))
    chunk = Chunk()
    choices = event.get("choices") or []
    if choices and isinstance(choices[0], dict):
        chunk.text = choices[0].get("text") or ""
        reason = choices[0].get("finish_reason")
        if reason:
            chunk.finish = _OPENAI_FINISH.get(str(reason), "eos")
    usage = event.get("usage")
    if isinstance(usage, dict):
        chunk.generated = _int(usage.get("completion_tokens"))
        chunk.prompt_tokens = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
        if chunk.prompt_tokens is not None and cached is not None:
            chunk.evaluated = chunk.prompt_tokens - cached
        # Asked for with stream_options, usage comes last, in a chunk of its own.
        chunk.final = not choices
    return chunk
