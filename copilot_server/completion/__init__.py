"""The path of one inline completion: service, caches, early answers, metrics, the model worker."""

from .types import CompletionRequest, CompletionResult, Superseded

__all__ = ["CompletionRequest", "CompletionResult", "Superseded"]
