"""The named stream rules: each says go on, or how many lines to keep."""

from __future__ import annotations

from ..syntax.languages import DEFINITION_LINE
from ..syntax.text import CLOSING_TO_OPENING, bracket_delta, indent_width
from .chat import stop_at_fence, stop_at_prose
from .request import Rule, Seen, TrimRequest, next_line_index


def _is_closer_line(line: str) -> bool:
    """A line made only of closing brackets (and ; ,): "}", "});", "),"."""
    text = line.strip()
    return bool(text) and text[0] in CLOSING_TO_OPENING and set(text) <= set(")]};,")


def _suffix_starts_with(req: TrimRequest, line: str) -> bool:
    """The code after the cursor already begins with this closer line."""
    target = line.strip()
    nxt = req.next_suffix_line
    return bool(nxt) and (nxt == target or nxt.startswith(target.rstrip(";,")))


def stop_after_first_line(req: TrimRequest, seen: Seen) -> int | None:
    """Single-line mode (mid-expression, text after the cursor): the first newline ends it.
    At the end of a finished line the suggestion is the next line (a blank rest of the
    line is no suggestion), and its end ends it."""
    if not req.single_line or len(seen.lines) <= 1:
        return None
    following = next_line_index(req, seen.lines)
    if following is not None:
        return following + 1 if following < seen.closed else None
    if not seen.lines[0].strip() and not req.line_suffix.strip() and req.line_prefix.strip():
        return None  # blank lines so far: the next line has not begun
    return 1


def _scope_floor(req: TrimRequest, base: int) -> int:
    """How far a suggestion on an empty line may dedent before it has left the scope.

    When the code after the cursor goes on at the block's level (or deeper), the block is
    the scope. When nothing follows, or what follows is less indented (the block is the
    last thing in its parent), the suggestion may go on in the enclosing body down to
    the level just above what follows and just inside the nearest enclosing definition:
    at the end of `with open(p) as f:` in a function, "data = json.load(f)" then
    "return data" one level up is one suggestion; the next `def` is not.
    """
    following = next((ln for ln in req.suffix.split("\n") if ln.strip()), None)
    if following is not None and indent_width(following) >= base:
        return base
    floor = indent_width(following) + 1 if following is not None else 0
    # Walk up through the enclosing blocks (each less indented than the last) to the
    # nearest definition.
    level = base
    for line in reversed(req.prefix.split("\n")):
        if not line.strip() or indent_width(line) >= level:
            continue
        level = indent_width(line)
        if DEFINITION_LINE.match(line.strip()):
            floor = max(floor, level + 1)
            break
    return min(base, floor)


def stop_at_block_end(req: TrimRequest, seen: Seen) -> int | None:
    """A line indented less than the block being written has left the scope.

    On an empty line the block's level is the cursor's indentation or, when the model
    indents further (cursor at column 0 inside a body), its first line's indentation.
    A dedented line of closing brackets ends the block: kept when the code after the
    cursor lacks it, cut when the suffix already has it.
    """
    lines = seen.lines
    if req.single_line and next_line_index(req, lines) is not None:
        return None  # the next line after a finished one may dedent: one line, any level
    base = req.base_indent
    if not req.line_prefix.strip():
        first = next((ln for ln in [req.line_prefix + lines[0], *lines[1:]] if ln.strip()), None)
        if first is not None:
            base = max(base, indent_width(first))
        base = _scope_floor(req, base)
    for index in range(1, len(lines)):
        line = lines[index]
        if not line.strip() or indent_width(line) >= base:
            continue
        complete = index < seen.closed
        if _is_closer_line(line):
            if not complete:
                return None  # "}" may still become "} else {": wait for the line's end
            return index if _suffix_starts_with(req, line) else index + 1
        return index
    return None


def stop_at_unmatched_closer(req: TrimRequest, seen: Seen) -> int | None:
    """A complete line closes a bracket opened before the suggestion: the enclosing
    construct ends there (kept unless the suffix already has that closer)."""
    if req.single_line:
        return None
    depth = 0
    for index in range(seen.closed):
        line = seen.lines[index]
        low, delta = bracket_delta(line, req.comment_marker)
        if depth + low < 0:
            if _is_closer_line(line) and _suffix_starts_with(req, line):
                return index
            return index + 1
        depth += delta
    return None


def stop_at_closed_block(req: TrimRequest, seen: Seen) -> int | None:
    """One block per suggestion: when the suggestion's first line opens brackets ("if (x) {",
    "push(item) {"), the complete closer line that brings them back to zero ends it."""
    start = next((i for i, ln in enumerate(seen.lines[: seen.closed]) if ln.strip()), None)
    if start is None:
        return None
    comment = req.comment_marker
    depth = bracket_delta(seen.lines[start], comment)[1]
    if depth <= 0:
        return None
    for index in range(start + 1, seen.closed):
        line = seen.lines[index]
        depth += bracket_delta(line, comment)[1]
        if depth <= 0:
            return index + 1 if _is_closer_line(line) else None
    return None


def stop_at_suffix_repeat(req: TrimRequest, seen: Seen) -> int | None:
    """The model started writing what already follows the cursor."""
    targets = req.suffix_lines(2)
    if not targets:
        return None
    first = 0 if not req.line_prefix.strip() else 1
    for index in range(first, seen.closed):
        line = seen.lines[index].strip()
        if line != targets[0]:
            continue
        if len(line) >= 4 and any(ch.isalnum() for ch in line):
            return index
        # A short line ("}", "end") only counts when the next one matches too.
        if len(targets) > 1 and index + 1 < seen.closed:
            if seen.lines[index + 1].strip() == targets[1]:
                return index
    return None


def stop_at_repeated_lines(req: TrimRequest, seen: Seen) -> int | None:
    """Small models loop: a line, or a block of two or three lines, written twice in a row."""
    lines = [ln.strip() for ln in seen.lines[: seen.closed]]
    for index in range(1, len(lines)):
        for size in (1, 2, 3):
            start = index - size + 1  # the repeat is lines[start : index + 1]
            if start - size < 0:
                continue
            block = lines[start : index + 1]
            if block != lines[start - size : start]:
                continue
            text = "".join(block)
            if len(text) > 3 * size and any(ch.isalnum() for ch in text):
                return start
    return None


def stop_at_next_definition(req: TrimRequest, seen: Seen) -> int | None:
    """One definition per suggestion: after the definition it began with, a second one at
    the same level (a sibling method or function) ends it, with the blank lines before."""
    lines = seen.lines
    start = next((i for i, ln in enumerate(lines[: seen.closed]) if ln.strip()), None)
    if start is None:
        return None
    first = (req.line_prefix + lines[0]) if start == 0 else lines[start]
    if not DEFINITION_LINE.match(first.strip()):
        return None
    level = indent_width(first)
    decorated = first.strip().startswith("@")
    for index in range(start + 1, len(lines)):
        line = lines[index]
        text = line.strip()
        if not text or indent_width(line) != level:
            continue
        match = DEFINITION_LINE.match(text)
        # A partial "def" could still become "default = 1": decide once a word follows.
        if match and (index < seen.closed or len(text) > match.end()) and not decorated:
            keep = index
            while keep > start + 1 and not lines[keep - 1].strip():
                keep -= 1
            return keep
        decorated = text.startswith("@")
    return None


def stop_at_line_cap(req: TrimRequest, seen: Seen) -> int | None:
    if len(seen.lines) > req.max_lines:
        return req.max_lines
    return None


def stop_at_blank_run(req: TrimRequest, seen: Seen) -> int | None:
    """Two blank lines in a row: the model is between top-level definitions."""
    for index in range(2, seen.closed):
        if not seen.lines[index].strip() and not seen.lines[index - 1].strip():
            return index - 1
    return None


def stop_at_token_cap(req: TrimRequest, seen: Seen) -> int | None:
    """The token budget ran out: a multi-line suggestion keeps its complete lines only."""
    if req.max_tokens <= 0 or seen.pieces < req.max_tokens:
        return None
    complete = len(seen.lines) - 1 if not seen.final or seen.lines[-1].strip() else len(seen.lines)
    if complete >= 1 and not req.single_line:
        return complete
    return len(seen.lines)


STREAM_RULES: tuple[Rule, ...] = (
    stop_after_first_line,
    stop_at_fence,
    stop_at_prose,
    stop_at_block_end,
    stop_at_unmatched_closer,
    stop_at_closed_block,
    stop_at_suffix_repeat,
    stop_at_repeated_lines,
    stop_at_next_definition,
    stop_at_blank_run,
    stop_at_line_cap,
    stop_at_token_cap,
)
