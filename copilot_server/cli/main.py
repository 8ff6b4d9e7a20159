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
import sys
from typing import Any

from ..config import SettingsError
from ..logs import configure_logging
from .common import _load_settings, common, position_arguments, profile_option
from .complete import cmd_complete
from .doctor import cmd_doctor
from .model import cmd_model
from .serve import serve


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
    common(parser)
    profile_option(parser)
    sub = parser.add_subparsers(dest="command")

    complete = sub.add_parser(
        "complete", help="complete a file at a position and print the suggestion"
    )
    position_arguments(complete)
    complete.add_argument("--json", action="store_true")
    common(complete)
    profile_option(complete)

    doctor = sub.add_parser("doctor", help="report the model, GPU offload and measured speed")
    doctor.add_argument("--json", action="store_true")
    doctor.add_argument("--skip-speed", action="store_true", help="do not measure tokens/s")
    doctor.add_argument(
        "--remeasure", action="store_true", help="measure this machine again for profile auto"
    )
    common(doctor)
    profile_option(doctor)

    model = sub.add_parser("model", help="assemble and verify the model; print its path")
    common(model)
    profile_option(model)

    for register in _extra_commands():
        register(sub, common)
    return parser


def _extra_commands() -> list[Any]:
    """Subcommands contributed by feature modules (context, explain, fix, bench)."""
    registrars = []
    for module_name in (
        "copilot_server.cli.demo",
        "copilot_server.cli.context",
        "copilot_server.cli.actions",
        "copilot_server.cli.bench",
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
        from .. import __version__

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
