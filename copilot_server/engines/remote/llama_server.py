"""The llama-server backend: FIM prompts to the native /infill (other files as
`input_extra`), other prompts to /completion as token ids, both streamed."""

from __future__ import annotations

import json
from typing import Any

from ..base import layout_of
from .http import Chunk, _int, error_detail
from .served import Request, sampling

_LLAMA_STOP = {"eos": "eos", "word": "eos", "limit": "max_tokens"}


def bodies(request: Request) -> list[tuple[str, dict[str, Any]]]:
    """The (path, body) to send, the preferred first: /infill for a FIM prompt laid out
    with the served model's markers (the server writes its own, and caches the prompt),
    then /completion with the token ids: exactly the prompt the project built."""
    served, options = request.served, request.options
    common: dict[str, Any] = {
        "n_predict": options.max_tokens,
        "stream": True,
        "cache_prompt": True,
        "timings_per_token": True,
        **sampling(served, options.temperature),
    }
    if request.stop_texts:
        common["stop"] = request.stop_texts
    out: list[tuple[str, dict[str, Any]]] = []
    layout = layout_of(request.prompt)
    if layout is not None and layout.marked_like(served.fim):
        infill = {
            "input_prefix": layout.prefix,
            "input_suffix": layout.suffix,
            "input_extra": [{"filename": path, "text": text} for path, text in layout.files],
            "prompt": layout.middle,
            **common,
        }
        out.append(("/infill", infill))
    out.append(("/completion", {"prompt": list(request.prompt), **common}))
    return out


def chunk(event: dict[str, Any]) -> Chunk:
    """One streamed event, read."""
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
