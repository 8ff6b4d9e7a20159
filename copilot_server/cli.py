"""copilot-server: the language server (--stdio, --tcp) and headless commands.

copilot-server [--stdio]                 language server on stdin/stdout (default)
copilot-server --tcp --host H --port P   language server on TCP
copilot-server complete PATH --line N --character N [--json]
copilot-server doctor [--json]
copilot-server model [--path-only]       assemble / locate the model
copilot-server engine-host [--idle S]    the shared model host (started on demand)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from .config import Settings, SettingsError, load_settings
from .logs import configure_logging, set_log_level


def _language_for(path: Path) -> str:
    from .languages import language_id_for_path

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


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="GGUF file (default: $COPILOT_SERVER_MODEL, else the embedded model)"
    )
    parser.add_argument("--gpu-layers", help="layers to offload: auto, all, or a number")
    parser.add_argument("--threads", type=int, help="CPU threads for llama.cpp")
    parser.add_argument(
        "--config", help="config file (JSON); default ~/.config/copilot-server/config.json"
    )
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])


def _profile_option(parser: argparse.ArgumentParser) -> None:
    # Not in _common: `bench --profile` also takes "both".
    parser.add_argument(
        "--profile",
        choices=["auto", "fast", "quality"],
        help="model profile: fast (0.5B), quality (1.5B) or auto (by measured speed)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="copilot-server", description="A local, private code copilot (LSP)."
    )
    parser.add_argument(
        "--stdio", action="store_true", help="serve LSP on stdin/stdout (the default)"
    )
    parser.add_argument("--tcp", action="store_true", help="serve LSP on TCP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2087)
    parser.add_argument("--version", action="store_true")
    _common(parser)
    _profile_option(parser)
    sub = parser.add_subparsers(dest="command")

    complete = sub.add_parser(
        "complete", help="complete a file at a position and print the suggestion"
    )
    complete.add_argument("path")
    complete.add_argument("--line", type=int, required=True, help="0-based line")
    complete.add_argument(
        "--character", type=int, required=True, help="0-based column (UTF-16 units)"
    )
    complete.add_argument("--json", action="store_true")
    _common(complete)
    _profile_option(complete)

    doctor = sub.add_parser("doctor", help="report the model, GPU offload and measured speed")
    doctor.add_argument("--json", action="store_true")
    doctor.add_argument("--skip-speed", action="store_true", help="do not measure tokens/s")
    doctor.add_argument(
        "--remeasure", action="store_true", help="measure this machine again for profile auto"
    )
    _common(doctor)
    _profile_option(doctor)

    model = sub.add_parser("model", help="assemble and verify the model; print its path")
    _common(model)
    _profile_option(model)

    for register in _extra_commands():
        register(sub, _common)
    return parser


def _extra_commands() -> list[Any]:
    """Subcommands contributed by feature modules (context, explain, fix, bench)."""
    registrars = []
    for module_name in (
        "copilot_server.demo",
        "copilot_server.context_cli",
        "copilot_server.actions_cli",
        "copilot_server.bench",
        "copilot_server.engines.host",
    ):
        try:
            module = __import__(module_name, fromlist=["register_cli"])
        except ImportError:
            continue
        if hasattr(module, "register_cli"):
            registrars.append(module.register_cli)
    return registrars


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    configure_logging(args.log_level or "info")
    try:
        settings = _load_settings(args)
    except SettingsError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return 2
    if args.command is None:
        return serve(args, settings)
    if args.command == "complete":
        return cmd_complete(args, settings)
    if args.command == "doctor":
        return cmd_doctor(args, settings)
    if args.command == "model":
        return cmd_model(args, settings)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args, settings) or 0)
    parser.print_help()
    return 2


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from .server import create_server

    if args.log_level:
        settings = settings.merged({"log_level": args.log_level})
    set_log_level(settings.log_level)
    server = create_server(settings)
    if args.tcp:
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
        return server.exit_code  # LSP: 0 after shutdown + exit, 1 without shutdown
    return 0


def _load_engine(settings: Settings):
    from .engines.loader import create_engine
    from .engines.models import ModelNotFoundError, terminal_progress

    try:
        return create_engine(settings, progress=terminal_progress("assembling model"))
    except ModelNotFoundError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return None


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from .engines.models import ModelNotFoundError, resolve_model, terminal_progress

    try:
        resolved = resolve_model(settings.model, progress=terminal_progress("assembling model"))
    except ModelNotFoundError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return 1
    print(resolved.path)
    return 0


def cmd_complete(args: argparse.Namespace, settings: Settings) -> int:
    from .completions import CompletionRequest, CompletionService
    from .engines.loader import EngineLoader
    from .positions import PositionError, offset_at
    from .source_files import read_source

    path = Path(args.path)
    text = read_source(path, "nothing to complete")
    if text is None:
        return 1
    try:
        offset = offset_at(text, args.line, args.character, "utf-16", strict=True)
    except PositionError as exc:
        print(f"copilot-server: {path}: {exc}", file=sys.stderr)
        return 1
    engine = _load_engine(settings)
    if engine is None:
        return 1
    loader = EngineLoader(settings, factory=lambda _s: engine)
    loader.start()
    loader.wait_blocking()
    service = CompletionService(settings, loader, _context_builder())
    request = CompletionRequest(
        uri=path.resolve().as_uri(),
        path=str(path),
        language=_language_for(path),
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


def _context_builder():
    """The richest context builder available (tree-sitter engine), else plain windows."""
    try:
        from .context_engine import make_context_builder
    except ImportError:
        from .completions import default_context_builder

        return default_context_builder
    return make_context_builder()


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from .doctor import run_doctor

    report = run_doctor(settings, measure_speed=not args.skip_speed, remeasure=args.remeasure)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in _flatten(report):
            print(f"{key:32} {value}")
    return 0 if report.get("ok") else 1


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flatten(value, name + ".")
        else:
            out.append((name, value))
    return out


def _now() -> float:
    return time.perf_counter()
