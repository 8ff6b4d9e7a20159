"""`copilot-server complete FILE --line --character`: one completion, headless."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ..config import Settings
from .common import context_builder, language_for, load_engine


def cmd_complete(args: argparse.Namespace, settings: Settings) -> int:
    from ..completion import CompletionRequest
    from ..completion.service import CompletionService
    from ..engines.loader import EngineLoader
    from .common import read_position

    path = Path(args.path)
    found = read_position(path, args.line, args.character, "nothing to complete")
    if found is None:
        return 1
    text, offset = found
    engine = load_engine(settings)
    if engine is None:
        return 1
    loader = EngineLoader(settings, factory=lambda _s: engine)
    loader.start()
    loader.wait_blocking()
    service = CompletionService(settings, loader, context_builder())
    request = CompletionRequest(
        uri=path.resolve().as_uri(),
        path=str(path),
        language=language_for(path),
        text=text,
        offset=offset,
        invoked=True,
    )
    result = asyncio.run(service.complete(request))
    service.close()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.text)
        print(
            f"-- {result.latency_ms:.0f} ms, prompt {result.prompt_tokens} tokens, "
            f"generated {result.tokens_generated}, shown {result.tokens_shown} "
            f"({result.stop_reason})",
            file=sys.stderr,
        )
    engine.close()
    return 0
