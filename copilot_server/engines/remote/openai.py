"""The OpenAI-compatible backend: /v1/completions with the prompt as text, streamed.

vLLM, llama-cpp-python's server and Ollama all accept it."""

from __future__ import annotations

import json
from typing import Any

from .http import Chunk, _int, error_detail
from .served import Request, sampling

_OPENAI_FINISH = {"stop": "eos", "length": "max_tokens", "eos": "eos"}


def bodies(request: Request) -> list[tuple[str, dict[str, Any]]]:
    """The (path, body) to send: one, the prompt spelled out with its special tokens."""
    served, options = request.served, request.options
    bos = served.tokenizer.bos
    prompt = request.prompt
    text_tokens = prompt[1:] if (bos is not None and prompt[:1] == [bos]) else prompt
    body: dict[str, Any] = {
        # The server adds its own BOS to a text prompt.
        "prompt": request.spell(text_tokens),
        "max_tokens": options.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **sampling(served, options.temperature),
    }
    if served.model_id:
        body["model"] = served.model_id
    if request.stop_texts:
        body["stop"] = request.stop_texts
    if options.stop_tokens and served.vllm:
        # vLLM drops special tokens from the text it matches "stop" against.
        body["stop_token_ids"] = sorted(options.stop_tokens)
    return [("/v1/completions", body)]


def chunk(event: dict[str, Any]) -> Chunk:
    """One streamed event, read."""
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
