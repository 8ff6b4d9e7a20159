"""Indentation healing: the prompt never ends in spaces; the model's whitespace is matched to
what was typed.
"""

from __future__ import annotations

from dataclasses import replace

from ..context import Context
from ..sequences import common_prefix_len


def trailing_whitespace(line_prefix: str) -> str:
    return line_prefix[len(line_prefix.rstrip(" \t")) :]


def without_trailing_whitespace(context: Context) -> Context:
    """Healing of typed indentation for engines without token healing (remote ones): BPE
    vocabularies merge spaces into the next word (" return"), so a prompt ending in spaces
    is one the model never saw in training and it answers with an extra space or an odd
    word. The model writes the whitespace itself, unconstrained, and `healed` removes the
    part the user already typed. (Local engines heal any cut token: prompts/healing.py.)"""
    stripped = context.line_prefix.rstrip(" \t")
    if stripped == context.line_prefix:
        return context
    return replace(context, line_prefix=stripped)


def healed(raw: str, heal: str) -> str:
    """The model's text as a continuation after the whitespace the user already typed."""
    if not heal:
        return raw
    if raw.startswith(heal):
        return raw[len(heal) :]
    if heal.startswith(raw):
        return ""  # still writing the typed whitespace
    # The model chose other whitespace (e.g. less indentation): drop what overlaps.
    common = common_prefix_len(raw, heal)
    rest = raw[common:]
    return rest.lstrip(" \t") if not raw[:common].strip() else rest
