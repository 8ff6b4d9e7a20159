"""Engines whose model runs on a server: HTTP+SSE, tokenizers, one module per backend."""

from .engine import RemoteEngine, create_remote_engine
from .http import RemoteEngineError

__all__ = ["RemoteEngine", "RemoteEngineError", "create_remote_engine"]
