"""Decide, while the model streams, when a suggestion is whole; then clean it up.

Each stream rule is a small named function over what was generated so far. It answers
None (go on) or the number of lines to keep: the engine stops, and the suggestion is
cut back to those lines. Rules only look at complete lines (plus a partial last line
where its start already decides), so a decision never depends on how the model split
its tokens. When several rules fire, the shortest cut wins.

`finish` then tidies the text (trailing blanks, closers the suffix already has) and
re-parses the window — prefix + suggestion + suffix — with tree-sitter: a suggestion
that adds syntax errors is cut back to its longest clean prefix, or dropped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")
CLOSERS = set(")]}>\"'`;, \t")
_PAIRS = {")": "(", "]": "[", "}": "{"}
_OPENING = set(_PAIRS.values())
# Line comment markers by language; a cursor in a comment finishes the comment's line.
_LINE_COMMENT = {
    "python": "#",
    "ruby": "#",
    "shellscript": "#",
    "lua": "--",
}
_DEFAULT_COMMENT = "//"
_COMMENT_STARTS = ("#", "//", "/*", "*", "--")


@dataclass(frozen=True)
class TrimRequest:
    line_prefix: str
    line_suffix: str
    suffix: str  # lines after the cursor's line, starting with "\n"
    prefix: str = ""  # whole lines before the cursor's line (window), for the syntax check
    language: str = ""
    max_lines: int = 12
    # The trimmer's own token cap (0: none); a capped multi-line suggestion loses its
    # unfinished last line.
    max_tokens: int = 0
    # A chat model's answer: markdown fences and prose around the code are expected.
    chat: bool = False
    check_syntax: bool = True

    @classmethod
    def around(cls, before: str, after: str, **options) -> TrimRequest:
        """A request for a cursor between `before` and `after` (whole texts)."""
        start = before.rfind("\n") + 1
        end = after.find("\n")
        if end < 0:
            end = len(after)
        return cls(
            line_prefix=before[start:],
            line_suffix=after[:end],
            suffix=after[end:],
            prefix=before[:start],
            **options,
        )

    @property
    def comment_marker(self) -> str:
        return _LINE_COMMENT.get(self.language, _DEFAULT_COMMENT)

    @property
    def single_line(self) -> bool:
        """Mid-expression → finish this line; empty line or after a block opener → a block."""
        rest = self.line_suffix.strip()
        if rest and not set(rest) <= CLOSERS:
            return True
        stripped = self.line_prefix.strip()
        if not stripped:
            return False
        if stripped.startswith(_COMMENT_STARTS):
            return True  # a comment: finish its line
        return not _code_part(stripped, self.comment_marker).endswith(OPENERS)

    @property
    def base_indent(self) -> int:
        """Lines of the suggestion indented less than this have left the block."""
        line = self.line_prefix
        indent = _indent_width(line)
        if line.strip():
            # After an opener the block is deeper than the opener's line; a dedent to the
            # opener's own level ends it.
            return indent + 1
        return indent

    @property
    def after_cursor(self) -> str:
        return self.line_suffix + self.suffix

    def suffix_lines(self, count: int = 3) -> list[str]:
        """The first `count` non-blank lines after the cursor, stripped."""
        out = []
        for line in self.after_cursor.split("\n"):
            if line.strip():
                out.append(line.strip())
                if len(out) == count:
                    break
        return out

    @property
    def next_suffix_line(self) -> str:
        lines = self.suffix_lines(1)
        return lines[0] if lines else ""


@dataclass(frozen=True)
class Seen:
    """What the rules look at: the suggestion's lines so far."""

    lines: list[str]
    # Lines known to be complete: all but the last while streaming, all once it ended.
    closed: int
    pieces: int = 0  # tokens streamed so far
    final: bool = False


Rule = Callable[[TrimRequest, Seen], int | None]
# A rule returns the number of lines to keep (the engine stops), or None (go on).


def _indent_width(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def _code_part(line: str, comment: str) -> str:
    """`line` without a trailing line comment (outside strings), right-stripped."""
    quote = ""
    index = 0
    while index < len(line):
        ch = line[index]
        if quote:
            if ch == "\\":
                index += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif line.startswith(comment, index):
            return line[:index].rstrip()
        index += 1
    return line.rstrip()


def _bracket_delta(line: str, comment: str) -> tuple[int, int]:
    """(lowest running depth, final depth) of the brackets in `line`, strings skipped."""
    depth = low = 0
    for ch in _code_part(line, comment):
        if ch in _OPENING:
            depth += 1
        elif ch in _PAIRS:
            depth -= 1
            low = min(low, depth)
    return low, depth


def _strip_strings(line: str) -> str:
    return re.sub(r"\"(\\.|[^\"\\])*\"|'(\\.|[^'\\])*'|`[^`]*`", '""', line)


def _is_closer_line(line: str) -> bool:
    """A line made only of closing brackets (and ; ,): "}", "});", "),"."""
    text = line.strip()
    return bool(text) and text[0] in _PAIRS and set(text) <= set(")]};,")


def _suffix_starts_with(req: TrimRequest, line: str) -> bool:
    """The code after the cursor already begins with this closer line."""
    target = line.strip()
    nxt = req.next_suffix_line
    return bool(nxt) and (nxt == target or nxt.startswith(target.rstrip(";,")))


# -- stream rules --------------------------------------------------------------------------


def _next_line_index(req: TrimRequest, lines: list[str]) -> int | None:
    """At the end of a finished line (nothing after the cursor) a model that ends the line
    at once is writing the next one: the index of that line once it has begun, else None."""
    if req.line_suffix.strip() or not req.line_prefix.strip() or len(lines) < 2:
        return None
    if lines[0].strip():
        return None
    return next((i for i in range(1, len(lines)) if lines[i].strip()), None)


def stop_after_first_line(req: TrimRequest, seen: Seen) -> int | None:
    """Single-line mode (mid-expression, text after the cursor): the first newline ends it.
    At the end of a finished line the suggestion is the next line (a blank rest of the
    line is no suggestion), and its end ends it."""
    if not req.single_line or len(seen.lines) <= 1:
        return None
    following = _next_line_index(req, seen.lines)
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
    if following is not None and _indent_width(following) >= base:
        return base
    floor = _indent_width(following) + 1 if following is not None else 0
    # Walk up through the enclosing blocks (each less indented than the last) to the
    # nearest definition.
    level = base
    for line in reversed(req.prefix.split("\n")):
        if not line.strip() or _indent_width(line) >= level:
            continue
        level = _indent_width(line)
        if _DEFINITION.match(line.strip()):
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
    if req.single_line and _next_line_index(req, lines) is not None:
        return None  # the next line after a finished one may dedent: one line, any level
    base = req.base_indent
    if not req.line_prefix.strip():
        first = next((ln for ln in [req.line_prefix + lines[0], *lines[1:]] if ln.strip()), None)
        if first is not None:
            base = max(base, _indent_width(first))
        base = _scope_floor(req, base)
    for index in range(1, len(lines)):
        line = lines[index]
        if not line.strip() or _indent_width(line) >= base:
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
        low, delta = _bracket_delta(line, req.comment_marker)
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
    depth = _bracket_delta(seen.lines[start], comment)[1]
    if depth <= 0:
        return None
    for index in range(start + 1, seen.closed):
        line = seen.lines[index]
        depth += _bracket_delta(line, comment)[1]
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


_DEFINITION = re.compile(
    r"^(@|(export\s+)?(default\s+)?(async\s+)?(def|class|function|func|fn|impl|struct|enum|"
    r"trait|interface|type|mod)\b|pub(\(\w+\))?\s+(async\s+)?(fn|struct|enum|trait|mod|type)\b)"
)


def stop_at_next_definition(req: TrimRequest, seen: Seen) -> int | None:
    """One definition per suggestion: after the definition it began with, a second one at
    the same level (a sibling method or function) ends it, with the blank lines before."""
    lines = seen.lines
    start = next((i for i, ln in enumerate(lines[: seen.closed]) if ln.strip()), None)
    if start is None:
        return None
    first = (req.line_prefix + lines[0]) if start == 0 else lines[start]
    if not _DEFINITION.match(first.strip()):
        return None
    level = _indent_width(first)
    decorated = first.strip().startswith("@")
    for index in range(start + 1, len(lines)):
        line = lines[index]
        text = line.strip()
        if not text or _indent_width(line) != level:
            continue
        match = _DEFINITION.match(text)
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


def stop_at_fence(req: TrimRequest, seen: Seen) -> int | None:
    """A markdown fence closes the code block (chat models, instruct FIM builds)."""
    if req.language == "markdown":
        return None
    for index in range(0, len(seen.lines)):
        line = seen.lines[index]
        if line.lstrip().startswith("```") and (index > 0 or not req.line_prefix.strip()):
            return index
    return None


_PROSE_START = re.compile(r"^(\*\*|#{1,4} |[-*] [A-Z]|[A-Z][a-z]+('s)?[,:!.]? [a-zA-Z])")
_PROSE_LABEL = re.compile(r"^[A-Z][a-z]+( [a-z]+)?:$")  # "Explanation:", "Example usage:"


def looks_like_prose(line: str) -> bool:
    """A sentence, a markdown heading or bold label, not code."""
    text = line.strip()
    if _PROSE_LABEL.match(text):
        return True
    if not text or not _PROSE_START.match(text):
        return False
    if text.startswith(("**", "# ", "## ", "### ", "#### ")):
        return True
    words = text.split()
    if len(words) < 3:
        return False
    code_chars = sum(text.count(ch) for ch in "=(){}[];<>")
    wordy = sum(1 for w in words if w.strip(".,:;!?'\"`").isalpha())
    return code_chars <= 1 and wordy >= 0.7 * len(words) and text[-1] in ".:!?"


def stop_at_prose(req: TrimRequest, seen: Seen) -> int | None:
    """Chat models explain after the code: prose after a blank line ends the suggestion."""
    if not req.chat:
        return None
    for index in range(1, seen.closed):
        line = seen.lines[index]
        if not looks_like_prose(line) or _indent_width(line) > 0:
            continue
        previous = seen.lines[index - 1]
        if not previous.strip():
            return index - 1
        if line.rstrip().endswith(":"):
            return index
    return None


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


def skip_lead_in(req: TrimRequest, text: str) -> str:
    """Drop what comes before the code: an opening fence, a chat model's "Here is…" line,
    a chat model's copy of the code before the cursor.

    Returns the text after it; while the lead-in is still being written, "".
    """
    if req.line_prefix.strip():
        return text
    lines = text.split("\n")
    index = 0
    if req.chat:
        while index < len(lines) - 1 and (
            looks_like_prose(lines[index]) or not lines[index].strip()
        ):
            index += 1
        if index and not lines[index].lstrip().startswith("```"):
            # Prose not followed by a fence: nothing to show before the fence appears.
            return "" if index == len(lines) - 1 else text
    if lines[index].lstrip().startswith("```"):
        if index == len(lines) - 1:
            return ""  # the fence line is still being written
        index += 1
    if req.chat:
        restated = _restated_lines(req, lines[index:])
        if restated is None:
            return ""  # still copying the prefix
        if restated:
            index += restated
            # The copy reached the cursor's line: the typed indentation is already there.
            if lines[index].startswith(req.line_prefix):
                lines[index] = lines[index][len(req.line_prefix) :]
    return "\n".join(lines[index:]) if index else text


def _restated_lines(req: TrimRequest, lines: list[str]) -> int | None:
    """How many of `lines` copy the code before the cursor up to the cursor's line (blank
    lines aside: models often drop or add them).

    0: they do not; None: they have so far (the copy is still being written).
    """
    before = [line.rstrip() for line in req.prefix.split("\n") if line.strip()]
    complete = [line.rstrip() for line in lines[:-1]]
    first = next((line for line in complete if line.strip()), "")
    if len(first.strip()) < 4:
        return 0
    for start in reversed(range(len(before))):
        if before[start] != first:
            continue
        wanted = before[start:]
        matched = 0
        for consumed, line in enumerate(complete, 1):
            if not line.strip():
                continue
            if line != wanted[matched]:
                break
            matched += 1
            if matched == len(wanted):
                return consumed
        else:
            return None
    return 0


@dataclass
class Trimmer:
    """Streaming stop decisions for one request; `finish` gives the text to show."""

    request: TrimRequest
    rules: tuple[Rule, ...] = STREAM_RULES
    cut_lines: int | None = None
    fired: str | None = None
    # What the final clean-up changed ("cut-back", "dropped" by the syntax check…).
    cleaned: list[str] = field(default_factory=list)
    pieces: int = 0

    def _decide(self, text: str, final: bool) -> bool:
        body = skip_lead_in(self.request, text)
        lines = body.split("\n")
        seen = Seen(lines, len(lines) if final else len(lines) - 1, self.pieces, final)
        best: tuple[int, str] | None = None
        for rule in self.rules:
            keep = rule(self.request, seen)
            if keep is not None and (best is None or keep < best[0]):
                best = (keep, rule.__name__)
        if best is None:
            return False
        self.cut_lines, self.fired = best
        return True

    def should_stop(self, text: str) -> bool:
        self.pieces += 1
        return self._decide(text, final=False)

    def finish(self, text: str) -> str:
        """The suggestion to show: cut where a rule fired, tidied, syntax-checked."""
        body = skip_lead_in(self.request, text)
        if self.cut_lines is None:
            # The stream ended (EOS or cap) without a rule firing: decide on the whole text.
            self._decide(text, final=True)
        lines = body.split("\n")
        if self.cut_lines is not None:
            lines = lines[: self.cut_lines]
        out = tidy(self.request, "\n".join(lines), body)
        if out and self.request.check_syntax:
            checked = syntax_cut_back(self.request, out)
            if checked != out:
                self.cleaned.append("dropped" if not checked else "syntax-cut-back")
                out = checked
        return out


def tidy(req: TrimRequest, text: str, raw: str | None = None) -> str:
    """Final clean-up: trailing blanks, text the line suffix already has."""
    lines = text.split("\n")
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    if req.single_line:
        following = _next_line_index(req, lines)
        lines = lines[: following + 1] if following is not None else lines[:1]
    text = "\n".join(lines).rstrip(" \t") if len(lines) > 1 else lines[0].rstrip()
    if not text.strip():
        return ""
    if req.line_suffix.strip() and "\n" not in text:
        # The model often re-emits the closing brackets already after the cursor.
        text = _drop_suffix_overlap(text, req.line_prefix, req.line_suffix)
    elif req.line_suffix.strip():
        # Multi-line before closers on the cursor's line ("{|}"): end with a line break so
        # they land on their own line, indented as the model wrote them or as the cursor's.
        indent = req.line_prefix[: len(req.line_prefix) - len(req.line_prefix.lstrip())]
        rest = raw[len(text) :] if raw is not None and raw.startswith(text) else ""
        match = re.match(r"[ \t]*\n([ \t]*)", rest)
        if match and rest[match.end() :].startswith(req.line_suffix.strip()[:1]):
            indent = match.group(1)
        text += "\n" + indent
    return text


def _balance(text: str) -> int:
    """Unmatched closing brackets plus unpaired quotes: 0 for a balanced line."""
    text = _strip_strings(text)
    depth = bad = 0
    for ch in text:
        if ch in _OPENING:
            depth += 1
        elif ch in _PAIRS:
            if depth == 0:
                bad += 1
            else:
                depth -= 1
    return bad + sum(text.count(q) % 2 for q in "\"'`")


def _drop_suffix_overlap(text: str, line_prefix: str, line_suffix: str) -> str:
    """Remove the end of `text` that repeats the start of the line suffix ("x)" before ")").

    Brackets and quotes are removed only when keeping them would leave the line
    unbalanced; ";" and other text always.
    """
    target = line_suffix.rstrip()
    for size in range(min(len(text), len(target)), 0, -1):
        overlap = target[:size]
        if not text.endswith(overlap) or not overlap.strip():
            continue
        shorter = text[: len(text) - size]
        if set(overlap) & (set(_PAIRS) | set("\"'`")):
            before = _balance(line_prefix + text + line_suffix)
            after = _balance(line_prefix + shorter + line_suffix)
            if after >= before:
                continue
        return shorter
    return text


# -- the syntax check ----------------------------------------------------------------------

_parsers: dict[str, object] = {}
_parser_lock = threading.Lock()


def _parser(language: str):
    if language not in _parsers:
        try:
            from .languages import parser_for

            _parsers[language] = parser_for(language)
        except Exception:  # no grammar installed for it: no check
            _parsers[language] = None
    return _parsers[language]


def _errors(node) -> int:
    """ERROR and MISSING nodes under `node` (subtrees without errors are skipped)."""
    if not node.has_error:
        return 0
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        elif current.has_error:
            stack.extend(current.children)
    return count


# A window that has this many syntax errors without the suggestion starts inside a
# construct it cannot see (the entries of a dict literal whose "{" is above it: one ERROR
# per line): its parse says nothing about the suggestion, which would add one more (holes
# bench: a correct "0x0042: 0x0042," line in such a window was dropped).
UNTRUSTED_ERRORS = 3
_CLOSING = {opener: closer for closer, opener in _PAIRS.items()}
_BRACKET = re.compile(r"[()\[\]{}]")


def _brackets(text: str, comment: str) -> tuple[str, str]:
    """(closers `text` leaves unmatched, openers it leaves open), strings and line
    comments skipped: what the text does to the brackets around it."""
    unmatched: list[str] = []
    open_: list[str] = []
    for line in text.split("\n"):
        if comment in line or "'" in line or '"' in line or "`" in line:
            line = _strip_strings(_code_part(line, comment))
        for ch in _BRACKET.findall(line):
            if ch in _OPENING:
                open_.append(ch)
            elif ch in _PAIRS:
                if open_ and open_[-1] == _PAIRS[ch]:
                    open_.pop()
                elif not open_:
                    unmatched.append(ch)
    return "".join(unmatched), "".join(open_)


def _then(first: tuple[str, str], second: tuple[str, str]) -> tuple[str, str]:
    """The bracket effect of `first` followed by `second`."""
    unmatched, open_ = first[0], list(first[1])
    rest = ""
    for ch in second[0]:
        if open_ and open_[-1] == _PAIRS[ch]:
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
    parser = _parser(req.language)
    if parser is None or not suggestion:
        return suggestion
    head = req.prefix + req.line_prefix
    tail = req.line_suffix + req.suffix
    with _parser_lock:
        if not parser.parse((head + suggestion + tail).encode()).root_node.has_error:
            return suggestion  # the common case: no bracket bookkeeping needed
    comment = req.comment_marker
    around = (_brackets(head, comment), _brackets(tail, comment))

    def window(middle: str) -> bytes:
        closers = _closers(around[0], _brackets(middle, comment), around[1])
        return (head + middle + tail + closers).encode()

    with _parser_lock:
        after = parser.parse(window(suggestion))
        if not after.root_node.has_error:
            return suggestion
        before_tree = parser.parse(window(""))
        allowed = _errors(before_tree.root_node)
        if allowed >= UNTRUSTED_ERRORS or _errors(after.root_node) <= allowed:
            return suggestion
        for candidate in _candidates(suggestion)[: max_parses - 2]:
            if _errors(parser.parse(window(candidate)).root_node) <= allowed:
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
