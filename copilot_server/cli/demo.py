"""`copilot-server demo`: complete the shipped sample through the real LSP path.

Starts `copilot-server --stdio` as a child process and drives it as an editor would
(initialize, didOpen, textDocument/inlineCompletion), then prints the ghost text.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from importlib import resources
from pathlib import Path

from ..config import Settings
from ..lsp.client import ServerClient


def sample_path() -> Path:
    return Path(str(resources.files("copilot_server") / "samples" / "demo.py"))


async def run_demo(path: Path, line: int | None, character: int | None) -> int:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if line is None:
        # The last line that holds only indentation: where the user is about to type.
        line = (
            max(i for i, ln in enumerate(lines) if ln.strip() == "" and ln)
            if any(ln and not ln.strip() for ln in lines)
            else len(lines) - 1
        )
    if character is None:
        character = len(lines[line])
    client = ServerClient("copilot-server-demo")
    await client.start("--stdio")
    uri = path.resolve().as_uri()
    client.open(uri, "python", text)
    print(f"{path}:{line + 1}:{character + 1}")
    print("\n".join(lines[max(0, line - 4) : line + 1]) + "▌")
    started = time.perf_counter()
    items = await client.inline(uri, line, character, invoked=True)
    first_ms = (time.perf_counter() - started) * 1000
    if not items:
        print("no suggestion; last status:", client.statuses[-1] if client.statuses else None)
        await client.stop()
        return 1
    print("suggestion ↓ (ghost text after the cursor)")
    print(lines[line][:character] + items[0])
    # The same request again: answered from the KV cache / suggestion cache.
    started = time.perf_counter()
    await client.inline(uri, line, character, invoked=False)
    again_ms = (time.perf_counter() - started) * 1000
    print(f"-- first request {first_ms:.0f} ms (includes model load), repeated {again_ms:.0f} ms")
    await client.stop()
    return 0


def register_cli(sub: argparse._SubParsersAction, common) -> None:  # noqa: ANN001
    demo = sub.add_parser("demo", help="complete the shipped sample through the LSP server")
    demo.add_argument("path", nargs="?", help="file to complete (default: the shipped sample)")
    demo.add_argument("--line", type=int)
    demo.add_argument("--character", type=int)
    common(demo)
    demo.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.path) if args.path else sample_path()
    return asyncio.run(run_demo(path, args.line, args.character))
