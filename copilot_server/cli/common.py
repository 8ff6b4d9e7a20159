"""What the subcommands share: settings from flags, the engine, reading a user's file, position
arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings


def language_for(path: Path) -> str:
    from ..syntax.languages import language_id_for_path

    return language_id_for_path(str(path)) or "plaintext"


def _load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "model", None):
        overrides.setdefault("model", {})["path"] = args.model
    if getattr(args, "gpu_layers", None) is not None:
        value = args.gpu_layers
        overrides.setdefault("model", {})["n_gpu_layers"] = (
            int(value) if value.lstrip("-").isdigit() else value
        )
    if getattr(args, "threads", None):
        overrides.setdefault("model", {})["threads"] = args.threads
    if getattr(args, "profile", None):
        overrides.setdefault("model", {})["profile"] = args.profile
    config = Path(args.config) if getattr(args, "config", None) else None
    return load_settings(config, overrides)


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="GGUF file (default: $COPILOT_SERVER_MODEL, else the embedded model)"
    )
    parser.add_argument("--gpu-layers", help="layers to offload: auto, all, or a number")
    parser.add_argument("--threads", type=int, help="CPU threads for llama.cpp")
    parser.add_argument(
        "--config", help="config file (JSON); default ~/.config/copilot-server/config.json"
    )
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])


def profile_option(parser: argparse.ArgumentParser) -> None:
    # Not in common: `bench --profile` also takes "both".
    parser.add_argument(
        "--profile",
        choices=["auto", "fast", "quality"],
        help="model profile: fast (0.5B), quality (1.5B) or auto (by measured speed)",
    )


def load_engine(settings: Settings):
    from ..engines.loader import create_engine
    from ..engines.models import ModelNotFoundError, terminal_progress

    try:
        return create_engine(settings, progress=terminal_progress("assembling model"))
    except ModelNotFoundError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return None


def context_builder():
    """The richest context builder available (tree-sitter engine), else plain windows."""
    try:
        from ..context.engine import make_context_builder
    except ImportError:
        from ..context.windows import default_context_builder

        return default_context_builder
    return make_context_builder()


def _now() -> float:
    return time.perf_counter()


def read_source(path: Path, purpose: str = "nothing to do") -> str | None:
    """The file's text, or None after printing why it cannot be used (unreadable, binary)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"copilot-server: cannot read {path}: {exc}", file=sys.stderr)
        return None
    if b"\x00" in raw[:8192]:
        print(f"copilot-server: {path} looks binary; {purpose}", file=sys.stderr)
        return None
    return raw.decode("utf-8", errors="replace")


def position_arguments(parser: argparse.ArgumentParser) -> None:
    """The file and position that `complete` and `context` read (see `read_position`)."""
    parser.add_argument("path")
    parser.add_argument("--line", type=int, required=True, help="0-based line")
    parser.add_argument(
        "--character", type=int, required=True, help="0-based column (UTF-16 units)"
    )


def read_position(path: Path, line: int, character: int, purpose: str) -> tuple[str, int] | None:
    """The file's text and the offset of `--line/--character` (UTF-16, as an editor
    counts), or None after printing why not."""
    from ..documents.positions import PositionError, offset_at

    text = read_source(path, purpose)
    if text is None:
        return None
    try:
        return text, offset_at(text, line, character, "utf-16", strict=True)
    except PositionError as exc:
        print(f"copilot-server: {path}: {exc}", file=sys.stderr)
        return None
