"""Cut a suggestion back to its longest prefix that adds no syntax error to the window."""

from __future__ import annotations

import re

from ..syntax.languages import Grammar
from ..syntax.problems import error_count
from ..syntax.text import CLOSING_TO_OPENING, OPENING, code_part, strip_strings
from ..syntax.tree import grammar_of, parse
from .request import TrimRequest

# A grammar that fails to load is not retried on every suggestion: no check for it.
_broken: set[str] = set()


def _grammar(language: str) -> Grammar | None:
    if language in _broken:
        return None
    try:
        return grammar_of(language)
    except Exception:  # no grammar installed for it: no check
        _broken.add(language)
        return None


# A window that has this many syntax errors without the suggestion starts inside a
# construct it cannot see (the entries of a dict literal whose "{" is above it: one ERROR
# per line): its parse says nothing about the suggestion, which would add one more (holes
# bench: a correct "0x0042: 0x0042," line in such a window was dropped).
UNTRUSTED_ERRORS = 3
_CLOSING = {opener: closer for closer, opener in CLOSING_TO_OPENING.items()}
_BRACKET = re.compile(r"[()\[\]{}]")


def _brackets(text: str, comment: str) -> tuple[str, str]:
    """(closers `text` leaves unmatched, openers it leaves open), strings and line
    comments skipped: what the text does to the brackets around it."""
    unmatched: list[str] = []
    open_: list[str] = []
    for line in text.split("\n"):
        if comment in line or "'" in line or '"' in line or "`" in line:
            line = strip_strings(code_part(line, comment))
        for ch in _BRACKET.findall(line):
            if ch in OPENING:
                open_.append(ch)
            elif ch in CLOSING_TO_OPENING:
                if open_ and open_[-1] == CLOSING_TO_OPENING[ch]:
                    open_.pop()
                elif not open_:
                    unmatched.append(ch)
    return "".join(unmatched), "".join(open_)


def _then(first: tuple[str, str], second: tuple[str, str]) -> tuple[str, str]:
    """The bracket effect of `first` followed by `second`."""
    unmatched, open_ = first[0], list(first[1])
    rest = ""
    for ch in second[0]:
        if open_ and open_[-1] == CLOSING_TO_OPENING[ch]:
            open_.pop()
        elif not open_:
            rest += ch
    return unmatched + rest, "".join(open_) + second[1]


def _closers(*effects: tuple[str, str]) -> str:
    """Closers for the brackets the window leaves open, to end it with: the window stops
    where its token budget ran out, and the "}" of a block the suggestion opens is in the
    code below it (holes bench: "if (!file) {" after a complete line was dropped)."""
    total = ("", "")
    for effect in effects:
        total = _then(total, effect)
    if not total[1]:
        return ""
    return "\n" + "".join(_CLOSING[ch] for ch in reversed(total[1]))


def syntax_cut_back(req: TrimRequest, suggestion: str, max_parses: int = 16) -> str:
    """`suggestion`, or its longest prefix that adds no syntax errors to the window, or "".

    Parses only the window (prefix + suggestion + suffix, the brackets it leaves open
    closed at its end), once in the common clean case; otherwise the window without the
    suggestion once more and each shorter candidate (a window is a few KB: ~0.2 ms).
    """
    grammar = _grammar(req.language)
    if grammar is None or not suggestion:
        return suggestion
    head = req.prefix + req.line_prefix
    tail = req.line_suffix + req.suffix
    if not parse(grammar, (head + suggestion + tail).encode()).root_node.has_error:
        return suggestion  # the common case: no bracket bookkeeping needed
    comment = req.comment_marker
    around = (_brackets(head, comment), _brackets(tail, comment))

    def window(middle: str) -> bytes:
        closers = _closers(around[0], _brackets(middle, comment), around[1])
        return (head + middle + tail + closers).encode()

    after = parse(grammar, window(suggestion))
    if not after.root_node.has_error:
        return suggestion
    allowed = error_count(parse(grammar, window("")).root_node)
    if allowed >= UNTRUSTED_ERRORS or error_count(after.root_node) <= allowed:
        return suggestion
    for candidate in _candidates(suggestion)[: max_parses - 2]:
        if error_count(parse(grammar, window(candidate)).root_node) <= allowed:
            return candidate
    return ""


def _candidates(suggestion: str) -> list[str]:
    """Shorter prefixes worth trying, longest first: whole lines, then, within the first
    line, ends just before or after a closing bracket, ";" or "," (where an expression or
    an argument ends; a cut after any word would leave fragments like "x")."""
    lines = suggestion.split("\n")
    out = ["\n".join(lines[:count]).rstrip() for count in range(len(lines) - 1, 0, -1)]
    first = lines[0]
    cuts = {i + 1 for i, ch in enumerate(first) if ch in ")]};,"}
    cuts |= {i for i, ch in enumerate(first) if ch in ")]};,"}
    for cut in sorted(cuts, reverse=True):
        piece = first[:cut].rstrip()
        if piece.strip() and piece != first:
            out.append(piece)
    seen: set[str] = set()
    return [c for c in out if c.strip() and not (c in seen or seen.add(c))]
