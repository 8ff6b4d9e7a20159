"""`copilot-server model`: assemble/verify the model, print its path."""

from __future__ import annotations

import argparse
import sys

from ..config import Settings


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from ..engines.models import ModelNotFoundError, resolve_model, terminal_progress

    try:
        resolved = resolve_model(settings.model, progress=terminal_progress("assembling model"))
    except ModelNotFoundError as exc:
        print(f"copilot-server: {exc}", file=sys.stderr)
        return 1
    print(resolved.path)
    return 0
