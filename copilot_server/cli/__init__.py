"""The `copilot-server` command: serve (LSP), complete, explain, fix, context, bench, doctor,
model, demo.
"""

from .main import main

__all__ = ["main"]
