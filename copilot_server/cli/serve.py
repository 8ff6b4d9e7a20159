"""`copilot-server --stdio | --tcp`: run the language server."""

from __future__ import annotations

import argparse

from ..config import Settings
from ..logs import set_log_level


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from ..lsp.server import create_server

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
