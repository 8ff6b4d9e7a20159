"""Explain and fix: code actions that cost tokens only when the user picks one.

Listing actions (`textDocument/codeAction`) parses with tree-sitter and never calls the
model. The work happens on demand: a fix in `codeAction/resolve`, an explanation in
`workspace/executeCommand copilot.explain`. Both run on the one model thread, report
`$/progress` and stop between tokens when cancelled.

A fix asks the model to rewrite a bounded region (the enclosing statement, a header with
its body, capped in lines); the edit is the difference between the old and new region,
cut down to the characters that changed, and the whole file is re-parsed before the
edit is offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import re
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from .chat import chat_prompt_tokens
from .config import Settings
from .documents import parse_view
from .engines.base import Engine
from .engines.remote import RemoteEngineError
from .lsp_edges import encoding_of, int_arg
from .positions import Encoding, position_of
from .source_files import common_prefix_length

if TYPE_CHECKING:
    from .completions import ContextBuilder
    from .documents import Document
    from .server import CopilotServer

log = logging.getLogger(__name__)

EXPLAIN_COMMAND = "copilot.explain"
FIX_COMMAND = "copilot.fix"  # for clients without codeAction/resolve
EXPLANATION_NOTIFICATION = "copilot/explanation"
EXPLAIN_KIND = types.CodeActionKind.Empty
FIX_KIND = types.CodeActionKind.QuickFix
CODE_ACTION_KINDS = [FIX_KIND, EXPLAIN_KIND]

# A fix region longer than this is cut back to the error's own lines: every line is
# prompt and output tokens (~10 each), and the model rewrites small regions faithfully.
MAX_FIX_LINES = 12
# Explaining more than this many lines costs several seconds of prompt on a laptop CPU
# (~10 tokens a line, ~100 prompt tokens/s); longer regions are shown truncated.
MAX_EXPLAIN_LINES = 60
# Ask for this many sentences at most; the token budget (explain_max_tokens) caps the rest.
EXPLAIN_SENTENCES = 3

_DEFINITION_TYPE = re.compile(
    r"(function|method|class|struct|enum|interface|trait|impl|constructor|type)_"
    r"(definition|declaration|item|specifier)$"
)


# -- syntax (tree-sitter) ------------------------------------------------------------------


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 0-based row of the problem's first token
    end_line: int
    message: str


def parse(language: str, text: str) -> Any | None:  # -> tree_sitter.Tree | None
    from .languages import parser_for

    try:
        parser = parser_for(language)
    except ImportError:  # grammar package missing: behave as a language without grammar
        return None
    # The parse view: same offsets, no lone CR (tree-sitter rows would not be LSP lines)
    # and no lone surrogate (which cannot be encoded).
    return parser.parse(parse_view(text).encode("utf-8")) if parser is not None else None


def syntax_problems(language: str, text: str, tree: Any | None = None) -> list[SyntaxProblem]:
    """Innermost ERROR and MISSING nodes, one problem each, in document order."""
    tree = tree if tree is not None else parse(language, text)
    if tree is None or not tree.root_node.has_error:
        return []
    problems: list[SyntaxProblem] = []
    lines = parse_view(text).split("\n")

    def visit(node: Any) -> None:
        if node.is_missing:
            row = node.start_point[0]
            problems.append(SyntaxProblem(row, row, f"syntax error: missing '{node.type}'"))
            return
        if not node.has_error:
            return
        inner_before = len(problems)
        for child in node.children:
            visit(child)
        if node.is_error and len(problems) == inner_before:
            row = _first_leaf(node).start_point[0]
            line = lines[row].strip() if row < len(lines) else ""
            snippet = line if len(line) <= 60 else line[:57] + "..."
            problems.append(SyntaxProblem(row, node.end_point[0], f"syntax error in `{snippet}`"))

    visit(tree.root_node)
    problems.sort(key=lambda p: (p.line, p.end_line))
    return problems


def _first_leaf(node: Any) -> Any:
    while node.child_count:
        node = node.children[0]
    return node


def _node_text(node: Any) -> str:
    raw = node.text
    return raw.decode("utf-8", errors="replace") if raw is not None else ""


# -- regions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Whole lines [start, end] (0-based, inclusive) of a document."""

    start: int
    end: int

    @property
    def lines(self) -> int:
        return self.end - self.start + 1

    def overlaps(self, start: int, end: int) -> bool:
        return start <= self.end and end >= self.start


def _indent_of(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _line_complete(node: Any, lines: list[str]) -> bool:
    """The node starts its first line and ends its last (nothing else of code shares them).
    Tree-sitter columns are UTF-8 byte offsets."""
    (r0, c0), (r1, c1) = node.start_point, node.end_point
    if r0 >= len(lines) or lines[r0].encode("utf-8")[:c0].strip():
        return False
    return r1 >= len(lines) or not lines[r1].encode("utf-8")[c1:].strip()


def fix_region(
    language: str, text: str, first_line: int, last_line: int, max_lines: int = MAX_FIX_LINES
) -> Region:
    """The smallest whole statement around lines [first_line, last_line], plus the body of a
    header it opens, within `max_lines`; the lines themselves when nothing fits."""
    text = parse_view(text)  # lone CRs end lines, as in LSP
    lines = text.split("\n")
    last_row = max(0, len(lines) - 1)
    first_line = min(max(0, first_line), last_row)
    # A diagnostic may span a whole function; the rewrite stays within max_lines of its start.
    last_line = min(max(first_line, last_line), last_row, first_line + max_lines - 1)
    start, end = first_line, last_line
    tree = parse(language, text)
    if tree is not None:
        first_raw, last_raw = lines[first_line].encode("utf-8"), lines[last_line].encode("utf-8")
        col0 = len(first_raw) - len(first_raw.lstrip())
        node = tree.root_node.named_descendant_for_point_range(
            (first_line, col0), (last_line, max(col0, len(last_raw.rstrip())))
        )
        while node is not None and node.parent is not None:
            if _line_complete(node, lines):
                r0, r1 = node.start_point[0], min(node.end_point[0], last_row)
                if node.end_point[1] == 0 and r1 > r0:
                    r1 -= 1  # a node ending at column 0 ends on the line before
                if r1 - r0 + 1 <= max_lines:
                    start, end = min(start, r0), max(end, r1)
                break
            node = node.parent
    return Region(start, _extend_with_body(lines, start, end, max_lines))


def _extend_with_body(lines: list[str], start: int, end: int, max_lines: int) -> int:
    """A header (`def f(x)`, `if x`) goes with the deeper-indented lines after it, so the
    model sees the block it opens instead of inventing one."""
    header = _indent_of(lines[start])
    extended = end
    probe = end + 1
    while probe < len(lines) and probe - start < max_lines:
        line = lines[probe]
        if line.strip():
            if _indent_of(line) <= header:
                break
            extended = probe
        probe += 1
    return extended


def explain_region(
    language: str, text: str, line: int, tree: Any | None = None
) -> tuple[Region, str | None]:
    """The enclosing function or class at `line` (with its name), else its statement."""
    text = parse_view(text)  # lone CRs end lines, as in LSP
    lines = text.split("\n")
    line = min(max(0, line), max(0, len(lines) - 1))
    tree = tree if tree is not None else parse(language, text)
    if tree is None:
        return Region(line, line), None
    raw = lines[line].encode("utf-8")
    col0 = len(raw) - len(raw.lstrip())
    node = tree.root_node.named_descendant_for_point_range(
        (line, col0), (line, max(col0, len(raw.rstrip())))
    )
    statement: Any | None = None
    while node is not None and node.parent is not None:
        if _DEFINITION_TYPE.search(node.type):
            if node.parent.type == "decorated_definition":
                node = node.parent
            name_node = node.child_by_field_name("name")
            if name_node is None and node.type == "decorated_definition":
                inner = node.child_by_field_name("definition")
                name_node = inner.child_by_field_name("name") if inner is not None else None
            name = _node_text(name_node) if name_node is not None else None
            return _node_region(node, len(lines)), name
        if statement is None and _line_complete(node, lines):
            statement = node
        node = node.parent
    if statement is not None:
        return _node_region(statement, len(lines)), None
    return Region(line, line), None


def _node_region(node: Any, line_count: int) -> Region:
    r0, r1 = node.start_point[0], node.end_point[0]
    if node.end_point[1] == 0 and r1 > r0:
        r1 -= 1
    return Region(r0, min(r1, max(0, line_count - 1)))


# -- edits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] (Python str offsets) with new_text."""

    start: int
    end: int
    new_text: str


def _offset_of_line(text: str, row: int, start: int = 0) -> int:
    """Offset of the line `row` lines after the one starting at `start` (len(text) past the end)."""
    offset = start
    for _ in range(row):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    return offset


def region_span(text: str, region: Region) -> tuple[int, int]:
    """Offsets of the region's text, its last line's newline included when it has one."""
    text = parse_view(text)  # same offsets; a lone CR ends a line too
    begin = _offset_of_line(text, region.start)
    return begin, _offset_of_line(text, region.lines, begin)


def region_edits(text: str, region: Region, new_region_text: str) -> list[Edit]:
    """The smallest edits turning the region's text into `new_region_text`.

    Lines are matched with difflib; each changed run of lines is then cut down to the
    characters that differ, so a missing colon becomes an insertion of ":".
    """
    begin, end = region_span(text, region)
    old_lines = text[begin:end].splitlines(keepends=True)
    new_lines = new_region_text.splitlines(keepends=True)
    offsets = [begin]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    edits: list[Edit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old = "".join(old_lines[i1:i2])
        new = "".join(new_lines[j1:j2])
        start = offsets[i1]
        prefix = common_prefix_length(old, new)
        suffix = _common_suffix_len(old[prefix:], new[prefix:])
        edits.append(
            Edit(start + prefix, start + len(old) - suffix, new[prefix : len(new) - suffix])
        )
    return edits


def _common_suffix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        n += 1
    return n


def apply_edits(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.new_text + text[edit.end :]
    return text


def unified_diff(path: str, old: str, new: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=path if path.startswith("/") else f"a/{path}",
            tofile=path if path.startswith("/") else f"b/{path}",
        )
    )


# -- model output ------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The code of the first fenced block (or the whole reply when it has no fence)."""
    match = _FENCE_RE.search(reply)
    code = match.group(1) if match else reply
    return code.strip("\n")


def fit_to_region(code: str, old_region_text: str) -> str:
    """The model's rewrite with the region's indentation and line endings restored."""
    old_lines = old_region_text.splitlines(keepends=True)
    eol = "\r\n" if old_lines and old_lines[0].endswith("\r\n") else "\n"
    indent = _common_indent(old_region_text)
    body = textwrap.indent(textwrap.dedent(code.replace("\r\n", "\n").strip("\n")), indent)
    new_lines = body.split("\n")
    out = eol.join(line.rstrip() for line in new_lines)
    if old_region_text.endswith(("\n", "\r")):
        out += eol
    return out


def _common_indent(text: str) -> str:
    indents = [ln[: len(ln) - len(ln.lstrip())] for ln in text.splitlines() if ln.strip()]
    if not indents:
        return ""
    common = indents[0]
    for ind in indents[1:]:
        common = common[: common_prefix_length(common, ind)]
    return common


def _cut_off(reply: str, stop_reason: str) -> bool:
    """The reply ended before its code did: a fence left open, or no fence and no EOS."""
    opened = reply.find("```")
    if opened >= 0:
        return reply.find("\n```", opened + 3) < 0
    return stop_reason != "eos"


def fix_stream_done(text: str, max_lines: int) -> bool:
    """Stop once the fenced block closes, or when the reply outgrows any plausible rewrite."""
    opened = text.find("```")
    if opened >= 0 and text.find("\n```", opened + 3) >= 0:
        return True
    return text.count("\n") > 2 * max_lines + 4


# -- prose trimming (explanations) -------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?](?=\s)")
_NOT_AN_END = ("e.g.", "i.e.", "etc.", "vs.")


def _sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence's final punctuation (followed by whitespace);
    list markers ("1.") and common abbreviations do not end a sentence."""
    ends = []
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        word = text[:end].rsplit(None, 1)[-1] if text[:end].strip() else ""
        if word.lower() in _NOT_AN_END or word[:-1].isdigit():
            continue
        ends.append(end)
    return ends


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def stop_at_fence(text: str, trimmer: ProseTrimmer) -> int | None:
    """A code block in an explanation restates the code: keep the prose before it."""
    match = re.search(r"(^|\n)[ \t]*```", text)
    return match.start() if match else None


def stop_at_code_echo(text: str, trimmer: ProseTrimmer) -> int | None:
    """A whole line of the code copied into the prose is restating, not explaining."""
    offset = 0
    for line in text.split("\n")[:-1]:  # complete lines only
        if line.strip() in trimmer.code_lines:
            return offset
        offset += len(line) + 1
    return None


def stop_at_repeated_sentence(text: str, trimmer: ProseTrimmer) -> int | None:
    """Small models loop: a sentence said twice ends the explanation before the repeat."""
    seen: set[str] = set()
    start = 0
    for end in _sentence_ends(text):
        key = _norm(text[start:end])
        if len(key) >= 12 and key in seen:
            return start
        seen.add(key)
        start = end
    return None


def stop_at_second_paragraph(text: str, trimmer: ProseTrimmer) -> int | None:
    """An explanation is one paragraph; after a blank line comes a step-by-step walk
    through the code (lists, headings), which restates it."""
    for match in re.finditer(r"\n[ \t]*\n(?=[ \t]*\S)", text):
        if re.search(r"[.!?:]\s*$", text[: match.start()]):  # a heading is not a paragraph
            return match.end()
    return None


def stop_at_sentence_cap(text: str, trimmer: ProseTrimmer) -> int | None:
    """Short by default: the prompt asks for a few sentences; a 0.5B model writes five or
    six (measured: 88 tokens where three sentences took ~50), so stop at the cap."""
    ends = _sentence_ends(text)
    if len(ends) >= trimmer.max_sentences:
        return ends[trimmer.max_sentences - 1]
    return None


PROSE_RULES = (
    stop_at_fence,
    stop_at_code_echo,
    stop_at_repeated_sentence,
    stop_at_second_paragraph,
    stop_at_sentence_cap,
)


@dataclass
class ProseTrimmer:
    """Streaming stop decisions for an explanation, then a clean ending."""

    code: str
    max_sentences: int = 3
    cut: int | None = None
    fired: str | None = None
    code_lines: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Only distinctive lines count: "return x" or "}" may appear in prose by chance.
        self.code_lines = frozenset(
            ln.strip() for ln in self.code.splitlines() if len(ln.strip()) >= 12
        )

    def should_stop(self, text: str) -> bool:
        for rule in PROSE_RULES:
            cut = rule(text, self)
            if cut is not None:
                self.cut, self.fired = cut, rule.__name__
                return True
        return False

    def finish(self, text: str, truncated: bool) -> str:
        """The explanation to show: cut where a rule fired; a reply the token budget cut
        mid-sentence ends at its last whole sentence."""
        if self.cut is None:
            self.should_stop(text + "\n")
        if self.cut is not None:
            text = text[: self.cut]
            truncated = False
        if truncated:
            ends = _sentence_ends(text + " ")
            if ends:
                text = text[: ends[-1]]
        text = text.strip()
        if text.endswith(":"):
            # "Here is how it works:" introduces the walk-through that was cut: drop it.
            ends = _sentence_ends(text)
            text = text[: ends[-1]].strip() if ends else text.rstrip(":")
        return text


# -- the work (runs on the model thread) -------------------------------------------------

TokenCallback = Callable[[int], None]


@dataclass
class FixOutcome:
    region: Region
    edits: list[Edit] = field(default_factory=list)
    new_text: str = ""
    reason: str | None = None  # why no fix is offered (None = a fix)
    tokens: int = 0
    prompt_tokens: int = 0
    latency_ms: float = 0.0
    stop_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None and bool(self.edits)


@dataclass
class Explanation:
    region: Region
    markdown: str
    tokens: int
    prompt_tokens: int
    latency_ms: float
    stop_reason: str
    rule: str | None = None


def _counting(
    check: Callable[[str], bool], on_token: TokenCallback | None
) -> Callable[[str], bool]:
    count = 0

    def should_stop(text: str) -> bool:
        nonlocal count
        count += 1
        if on_token is not None:
            on_token(count)
        return check(text)

    return should_stop


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_fix(language: str, old_text: str, new_text: str, old: Region, new: Region) -> str | None:
    """Why the rewritten file is not acceptable, or None: no syntax error may remain in the
    rewritten region and none may appear outside it."""
    tree = parse(language, new_text)
    if tree is None:
        return None  # no grammar: nothing to check against
    after = syntax_problems(language, new_text, tree)
    for problem in after:
        if new.overlaps(problem.line, problem.line):
            return f"the suggested fix still has a syntax error at line {problem.line + 1}"
    before_outside = [
        p for p in syntax_problems(language, old_text) if not old.overlaps(p.line, p.line)
    ]
    after_outside = [p for p in after if not new.overlaps(p.line, p.line)]
    if len(after_outside) > len(before_outside):
        first = after_outside[0]
        return f"the suggested fix adds a syntax error at line {first.line + 1}"
    return None


def compute_fix(
    engine: Engine,
    settings: Settings,
    *,
    language: str,
    text: str,
    first_line: int,
    last_line: int,
    message: str,
    cancel: threading.Event,
    on_token: TokenCallback | None = None,
) -> FixOutcome:
    started = time.perf_counter()
    # Regions and diffs are read in the parse view (a lone CR is a line end there, as in
    # LSP); its offsets are the text's, so the edits apply to the text as it is.
    view = parse_view(text)
    region = fix_region(language, view, first_line, last_line)
    begin, end = region_span(view, region)
    old_region_text = view[begin:end]
    code = textwrap.dedent(old_region_text.replace("\r\n", "\n")).strip("\n")
    lang = language or "text"
    messages = [
        {
            "role": "system",
            "content": "You fix code. Reply with only the corrected code in one fenced block.",
        },
        {
            "role": "user",
            "content": f"Fix this problem: {_short(message, 300)}\nChange as little as "
            f"possible and rewrite exactly these lines:\n```{lang}\n{code}\n```",
        },
    ]
    prompt = chat_prompt_tokens(engine, messages)
    generation = engine.generate(
        prompt,
        max_tokens=settings.fix_max_tokens,
        should_stop=_counting(lambda t: fix_stream_done(t, region.lines), on_token),
        cancel=cancel,
        temperature=0.0,
    )
    outcome = FixOutcome(
        region=region,
        tokens=generation.tokens_generated,
        prompt_tokens=generation.prompt_tokens,
        stop_reason=generation.stop_reason,
    )
    if generation.stop_reason == "cancelled":
        outcome.reason = "cancelled"
    elif _cut_off(generation.text, generation.stop_reason):
        # Half a rewrite would delete the region's last lines: never offer it.
        outcome.reason = "the model's rewrite was cut off (fix_max_tokens or too long)"
    elif not extract_code(generation.text).strip():
        outcome.reason = "the model suggested no code"
    else:
        new_region_text = fit_to_region(extract_code(generation.text), old_region_text)
        edits = region_edits(view, region, new_region_text)
        new_text = apply_edits(text, edits)
        new_region = Region(
            region.start, region.start + max(0, len(new_region_text.splitlines()) - 1)
        )
        if not edits:
            outcome.reason = "the model suggested no change"
        else:
            outcome.reason = check_fix(language, text, new_text, region, new_region)
            outcome.edits, outcome.new_text = edits, new_text
    outcome.latency_ms = (time.perf_counter() - started) * 1000
    log.info(
        "fix lines %d-%d (0-based): %d prompt tokens, %d generated, %d edits, %s, %.0f ms",
        region.start,
        region.end,
        outcome.prompt_tokens,
        outcome.tokens,
        len(outcome.edits),
        outcome.reason or "ok",
        outcome.latency_ms,
    )
    return outcome


def context_snippets(
    builder: ContextBuilder | None,
    engine: Engine,
    settings: Settings,
    *,
    uri: str,
    path: str,
    language: str,
    text: str,
    region: Region,
) -> str:
    """Imports and definitions the context engine finds for the names the region uses.

    The engine leaves out definitions its prefix window already shows; an explanation
    shows only the region, so it asks with the smallest window (and no similar chunks)."""
    if builder is None:
        return ""
    from .completions import CompletionRequest

    begin, end = region_span(text, region)
    # The cursor at the end of the region's last line: inside the function explained, whose
    # own definition is then not offered as a helper.
    cursor = len(text[:end].rstrip("\r\n")) if end > begin else end
    request = CompletionRequest(uri=uri, path=path, language=language, text=text, offset=cursor)
    narrow = settings.model_copy(
        update={
            "context": settings.context.model_copy(
                update={"prefix_tokens": 16, "suffix_tokens": 0, "snippet_tokens": 0}
            )
        }
    )
    try:
        context = builder(request, engine, narrow)
    except Exception:  # context is a help, never a reason to fail the explanation
        log.exception("context builder failed")
        return ""
    budget = settings.context.import_tokens + settings.context.definition_tokens
    used = set(_WORD.findall(text[begin:end]))
    # Only definitions the region uses: the engine also looks at the lines below it
    # (callers), which explain nothing about the region.
    pieces = [
        piece.strip()
        for snippet in context.snippets
        if snippet.kind == "definition"
        for piece in snippet.text.split("\n\n")
        if _defined_name(piece) in used
    ]
    # Imports only when the region or those helpers use one of their names.
    used |= {w for piece in pieces for w in _WORD.findall(piece)}
    imports = [
        s.text.strip()
        for s in context.snippets
        if s.kind == "imports" and _import_names(s.text) & used
    ]
    parts: list[str] = []
    for piece in imports + pieces:
        cost = len(engine.tokenize(piece))
        if cost <= budget:
            budget -= cost
            parts.append(piece)
    return "\n\n".join(parts)


_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


_DECLARATION_WORDS = frozenset(
    "type pub async export default abstract final interface trait impl extern inline "
    "virtual override sealed data object module namespace unsafe const mut".split()
)


def _import_names(imports: str) -> set[str]:
    from .languages import KEYWORDS

    return {w for w in _WORD.findall(imports) if w not in KEYWORDS and w not in _IMPORT_WORDS}


_IMPORT_WORDS = frozenset("import from as use require include using package mod".split())


def _defined_name(definition: str) -> str | None:
    """The name a definition introduces: the last word before its parameters (`def f(`,
    `static int f(`), else the first word that is not a keyword (`struct S {`)."""
    from .languages import KEYWORDS

    lines = [ln.strip() for ln in definition.strip().split("\n")]
    first = next((ln for ln in lines if ln and not ln.startswith(("@", "#["))), "")
    if first.startswith("func ("):  # a Go method: skip the receiver
        first = "func " + first.split(")", 1)[-1]
    head = first.split("(", 1)[0]
    words = [w for w in _WORD.findall(head) if w not in KEYWORDS and w not in _DECLARATION_WORDS]
    if not words:
        return None
    return words[-1] if "(" in first else words[0]


def compute_explanation(
    engine: Engine,
    settings: Settings,
    *,
    language: str,
    text: str,
    region: Region,
    selection: str | None = None,
    name: str | None = None,
    helpers: str = "",
    cancel: threading.Event,
    on_token: TokenCallback | None = None,
) -> Explanation:
    started = time.perf_counter()
    if selection is None:
        begin, end = region_span(text, region)
        lines = parse_view(text)[begin:end].replace("\r\n", "\n").split("\n")
        if len(lines) > MAX_EXPLAIN_LINES:
            lines = lines[:MAX_EXPLAIN_LINES] + ["... (truncated)"]
        selection = "\n".join(lines)
    code = textwrap.dedent(selection).strip("\n")
    lang = language or "text"
    # The code first and the helpers after it, labelled: a 0.5B model given the helpers
    # first explained them as part of the code (measured on a two-function file).
    subject = f"`{name}`" if name else f"this {lang} code"
    reference = (
        f"\n\nFor reference only, the helpers it calls:\n```{lang}\n{helpers}\n```"
        if helpers
        else ""
    )
    messages = [
        {
            "role": "system",
            "content": "You explain code to a programmer in one short paragraph. Say what "
            "the code is for and what it returns; do not walk through it line by line "
            "and never repeat, quote or rewrite the code.",
        },
        {
            "role": "user",
            "content": f"In at most {EXPLAIN_SENTENCES} sentences, explain what {subject} "
            f"does: its purpose, inputs and result.\n```{lang}\n{code}\n```{reference}",
        },
    ]
    prompt = chat_prompt_tokens(engine, messages)
    trimmer = ProseTrimmer(code, EXPLAIN_SENTENCES)
    generation = engine.generate(
        prompt,
        max_tokens=settings.explain_max_tokens,
        should_stop=_counting(trimmer.should_stop, on_token),
        cancel=cancel,
        temperature=0.0,
    )
    markdown = trimmer.finish(generation.text, truncated=generation.stop_reason == "max_tokens")
    result = Explanation(
        region=region,
        markdown=markdown,
        tokens=generation.tokens_generated,
        prompt_tokens=generation.prompt_tokens,
        latency_ms=(time.perf_counter() - started) * 1000,
        stop_reason=generation.stop_reason,
        rule=trimmer.fired,
    )
    log.info(
        "explain lines %d-%d (0-based): %d prompt tokens, %d generated, stop=%s rule=%s, %.0f ms",
        region.start,
        region.end,
        result.prompt_tokens,
        result.tokens,
        result.stop_reason,
        result.rule,
        result.latency_ms,
    )
    return result


# -- LSP edge ----------------------------------------------------------------------------


def _wants(only: list[str] | None, kind: str) -> bool:
    if not only:
        return True
    return any(kind == o or kind.startswith(o + ".") for o in only)


def _lsp_range(text: str, region: Region, encoding: Encoding) -> types.Range:
    begin, end = region_span(text, region)
    end = len(text[:end].rstrip("\r\n")) if end > begin else end
    (l0, c0), (l1, c1) = position_of(text, begin, encoding), position_of(text, end, encoding)
    return types.Range(
        start=types.Position(line=l0, character=c0), end=types.Position(line=l1, character=c1)
    )


def _supports_resolve(ls: CopilotServer) -> bool:
    caps = ls.client_capabilities.text_document
    action = caps.code_action if caps else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def _fix_action(
    ls: CopilotServer,
    doc: Document,
    rng: types.Range,
    message: str,
    diagnostics: list[types.Diagnostic] | None,
) -> types.CodeAction:
    data = {
        "kind": FIX_COMMAND,
        "uri": doc.uri,
        "version": doc.version,
        "startLine": rng.start.line,
        "endLine": rng.end.line,
        "message": message,
    }
    short = message.strip().split("\n", 1)[0]
    short = short if len(short) <= 60 else short[:57] + "..."
    action = types.CodeAction(
        title=f"Fix: {short} (copilot)", kind=FIX_KIND, diagnostics=diagnostics, data=data
    )
    if not _supports_resolve(ls):
        action.command = types.Command(title=action.title, command=FIX_COMMAND, arguments=[data])
    return action


def code_actions(ls: CopilotServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The cheap listing: tree-sitter only, no model call."""
    doc = ls.documents.get(params.text_document.uri)
    if doc is None or doc.too_large or doc.looks_binary:
        return []
    only = params.context.only
    if only and not all(isinstance(kind, str) for kind in only):
        raise JsonRpcInvalidParams("context.only must list code action kinds (strings)")
    first, last = params.range.start.line, params.range.end.line
    tree = _tree_of(ls, doc)
    actions: list[types.CodeAction] = []
    if _wants(only, FIX_KIND):
        # Line spans, not sets of lines: a diagnostic may claim lines 0..2**31-1.
        covered: list[tuple[int, int]] = []
        for diag in params.context.diagnostics:
            actions.append(_fix_action(ls, doc, diag.range, diag.message, [diag]))
            covered.append((diag.range.start.line, diag.range.end.line))
        for problem in syntax_problems(doc.language_id, doc.text, tree):
            if not (first <= problem.line <= last) or any(
                a <= problem.line <= b for a, b in covered
            ):
                continue
            covered.append((problem.line, problem.line))
            rng = types.Range(
                start=types.Position(line=problem.line, character=0),
                end=types.Position(line=problem.line, character=0),
            )
            actions.append(_fix_action(ls, doc, rng, problem.message, None))
    if _wants(only, EXPLAIN_KIND):
        actions.append(_explain_action(ls, doc, params.range, tree))
    return actions


def _tree_of(ls: CopilotServer, doc: Document) -> Any | None:
    """The document's tree for this version: editors ask for code actions on every cursor
    move, and a version is parsed once (a few ms per thousand lines)."""
    cache: dict[str, tuple[int, int, Any]] = ls.extensions.setdefault("actions.trees", {})
    entry = cache.get(doc.uri)
    if entry is not None and entry[:2] == (doc.version, len(doc.text)):
        return entry[2]
    tree = parse(doc.language_id, doc.text)
    if len(cache) >= 16:  # open documents the user moves between; the rest are reparsed
        cache.pop(next(iter(cache)))
    cache[doc.uri] = (doc.version, len(doc.text), tree)
    return tree


def _explain_action(
    ls: CopilotServer, doc: Document, rng: types.Range, tree: Any | None
) -> types.CodeAction:
    if rng.start != rng.end:
        title, target = "Explain selection (copilot)", rng
    else:
        region, name = explain_region(doc.language_id, doc.text, rng.start.line, tree)
        title = f"Explain `{name}` (copilot)" if name else "Explain this code (copilot)"
        target = _lsp_range(doc.text, region, encoding_of(ls))
    args = [{"uri": doc.uri, "range": _range_dict(target)}]
    return types.CodeAction(
        title=title,
        kind=EXPLAIN_KIND,
        command=types.Command(title=title, command=EXPLAIN_COMMAND, arguments=args),
    )


def _range_dict(rng: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }


@contextlib.asynccontextmanager
async def _progress(
    ls: CopilotServer, title: str, cancel: threading.Event, budget: int
) -> AsyncIterator[TokenCallback]:
    """Cancellable work-done progress when the client supports it; yields a token callback
    that is safe to call from the model thread."""
    window = ls.client_capabilities.window
    loop = asyncio.get_running_loop()
    if not (window and window.work_done_progress):
        yield lambda n: None
        return
    token = f"copilot-server-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
    except Exception as exc:  # no progress is no reason to fail the work
        log.debug("progress create failed: %s", exc)
        yield lambda n: None
        return
    tracker = ls.work_done_progress.tokens.get(token)
    if tracker is not None:
        tracker.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)
    ls.work_done_progress.begin(
        token, types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0)
    )

    def report(count: int) -> None:
        if count % 8:
            return  # one notification per 8 tokens is plenty for a progress bar
        value = types.WorkDoneProgressReport(
            message=f"{count} tokens", percentage=min(99, count * 100 // max(1, budget))
        )
        loop.call_soon_threadsafe(ls.work_done_progress.report, token, value)

    try:
        yield report
    finally:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd())
        ls.work_done_progress.tokens.pop(token, None)


class ModelUnavailable(Exception):
    pass


async def _on_model(
    ls: CopilotServer,
    title: str,
    budget: int,
    work: Callable[[Engine, threading.Event, TokenCallback], Any],
) -> Any:
    engine = await ls.loader.wait(ls.settings.completion.model_wait_s)
    if engine is None:
        raise ModelUnavailable(ls.loader.state.message or "the model is not loaded")
    cancel = threading.Event()
    async with _progress(ls, title, cancel, budget) as on_token:
        with ls.status.busy():
            try:
                return await ls.completions.run_on_model(lambda: work(engine, cancel, on_token))
            except asyncio.CancelledError:
                cancel.set()  # $/cancelRequest: stop the decode loop at the next token
                raise
            except RemoteEngineError as exc:  # a model server that is down or failing
                raise ModelUnavailable(str(exc)) from None


async def resolve_code_action(ls: CopilotServer, action: types.CodeAction) -> types.CodeAction:
    data = action.data
    if not (isinstance(data, dict) and data.get("kind") == FIX_COMMAND):
        return action
    outcome, doc, reason = await _fix_for(ls, data)
    if doc is None:  # a client's mistake, not news for the user: an error, not a popup
        raise JsonRpcInvalidParams(f"copilot.fix: {reason}")
    if reason is not None:
        # The action comes back without an edit, saying why: as `disabled` where the client
        # shows that, else as a message.
        caps = ls.client_capabilities.text_document
        if caps and caps.code_action and caps.code_action.disabled_support:
            action.disabled = types.CodeActionDisabled(reason=reason)
        else:
            ls.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Info, message=f"copilot-server: {reason}"
                )
            )
        return action
    assert outcome is not None and doc is not None
    action.edit = workspace_edit(ls, doc, outcome.edits)
    return action


async def fix_command(ls: CopilotServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.fix` for clients without codeAction/resolve: compute and apply the edit."""
    data = args[0] if args else None
    if not isinstance(data, dict):
        raise JsonRpcInvalidParams(
            "copilot.fix expects [{uri, version, startLine, endLine, message}]"
        )
    outcome, doc, reason = await _fix_for(ls, data)
    if doc is None:
        raise JsonRpcInvalidParams(f"copilot.fix: {reason}")
    if reason is not None:
        ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Info, message=f"copilot-server: {reason}"
            )
        )
        return {"applied": False, "reason": reason}
    assert outcome is not None and doc is not None
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(
            edit=workspace_edit(ls, doc, outcome.edits), label="copilot fix"
        )
    )
    return {"applied": bool(result and result.applied), "reason": None}


async def _fix_for(
    ls: CopilotServer, data: dict[str, Any]
) -> tuple[FixOutcome | None, Document | None, str | None]:
    doc = ls.documents.get(str(data.get("uri")))
    if doc is None:
        return None, None, "the document is not open"
    if data.get("version") != doc.version:
        return None, doc, "the document changed since this fix was offered; ask again"
    text, settings = doc.text, ls.settings
    first, last = int_arg(data, "startLine"), int_arg(data, "endLine")

    def work(engine: Engine, cancel: threading.Event, on_token: TokenCallback) -> FixOutcome:
        return compute_fix(
            engine,
            settings,
            language=doc.language_id,
            text=text,
            first_line=first,
            last_line=last,
            message=str(data.get("message", "")),
            cancel=cancel,
            on_token=on_token,
        )

    try:
        outcome = await _on_model(ls, "Fixing", settings.fix_max_tokens, work)
    except ModelUnavailable as exc:
        return None, doc, str(exc)
    if outcome.reason == "cancelled":
        raise JsonRpcRequestCancelled("fix cancelled")
    if doc.version != data.get("version"):
        return None, doc, "the document changed while the fix was computed; ask again"
    return outcome, doc, outcome.reason


def workspace_edit(ls: CopilotServer, doc: Document, edits: list[Edit]) -> types.WorkspaceEdit:
    encoding = encoding_of(ls)
    text_edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = []
    for edit in edits:
        (l0, c0), (l1, c1) = (
            position_of(doc.text, edit.start, encoding),
            position_of(doc.text, edit.end, encoding),
        )
        text_edits.append(
            types.TextEdit(
                range=types.Range(
                    start=types.Position(line=l0, character=c0),
                    end=types.Position(line=l1, character=c1),
                ),
                new_text=edit.new_text,
            )
        )
    workspace = ls.client_capabilities.workspace
    if workspace and workspace.workspace_edit and workspace.workspace_edit.document_changes:
        ident = types.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
        return types.WorkspaceEdit(
            document_changes=[types.TextDocumentEdit(text_document=ident, edits=text_edits)]
        )
    return types.WorkspaceEdit(changes={doc.uri: text_edits})


async def explain_command(ls: CopilotServer, args: tuple[Any, ...]) -> dict[str, Any]:
    """`copilot.explain [{uri, range}]` → {markdown, tokens}; also sent as copilot/explanation."""
    info = args[0] if args else None
    if not (isinstance(info, dict) and isinstance(info.get("range"), dict)):
        raise JsonRpcInvalidParams("copilot.explain expects [{uri, range}]")
    doc = ls.documents.get(str(info.get("uri")))
    if doc is None:
        raise JsonRpcInvalidParams(f"document {info.get('uri')} is not open")
    start, end = info["range"].get("start"), info["range"].get("end")
    if not (isinstance(start, dict) and isinstance(end, dict)):
        raise JsonRpcInvalidParams("copilot.explain: range needs start and end positions")
    encoding = encoding_of(ls)
    # int_arg: -32602 for inf, NaN, floats, negatives, not just for missing keys.
    line0, char0 = int_arg(start, "line", None), int_arg(start, "character", None)
    line1, char1 = int_arg(end, "line", None), int_arg(end, "character", None)
    begin = doc.offset_at(line0, char0, encoding, strict=False)
    stop = doc.offset_at(line1, char1, encoding, strict=False)
    text, settings = doc.text, ls.settings
    region, selection, name = _explain_target(doc.language_id, text, begin, stop)
    builder = getattr(ls.completions, "context_builder", None)

    def work(engine: Engine, cancel: threading.Event, on_token: TokenCallback) -> Explanation:
        helpers = context_snippets(
            builder,
            engine,
            settings,
            uri=doc.uri,
            path=doc.path,
            language=doc.language_id,
            text=text,
            region=region,
        )
        return compute_explanation(
            engine,
            settings,
            language=doc.language_id,
            text=text,
            region=region,
            selection=selection,
            name=name,
            helpers=helpers,
            cancel=cancel,
            on_token=on_token,
        )

    try:
        result: Explanation = await _on_model(ls, "Explaining", settings.explain_max_tokens, work)
    except ModelUnavailable as exc:
        return {"markdown": f"_copilot-server: {exc}_", "tokens": 0}
    if result.stop_reason == "cancelled":
        raise JsonRpcRequestCancelled("explanation cancelled")
    payload = {
        "uri": doc.uri,
        "range": _range_dict(_lsp_range(text, region, encoding_of(ls))),
        "markdown": result.markdown,
        "tokens": result.tokens,
        "promptTokens": result.prompt_tokens,
        "latencyMs": round(result.latency_ms),
    }
    ls.protocol.notify(EXPLANATION_NOTIFICATION, payload)
    return {k: payload[k] for k in ("markdown", "tokens", "promptTokens", "latencyMs")}


def _explain_target(
    language: str, text: str, begin: int, stop: int
) -> tuple[Region, str | None, str | None]:
    """(region, selected text, name): a selection explains its lines (or exactly its text
    within one line); no selection explains the enclosing function or class."""
    if stop < begin:
        begin, stop = stop, begin
    text = parse_view(text)  # lone CRs end lines, as in LSP
    first = text.count("\n", 0, begin)
    if begin == stop:
        region, name = explain_region(language, text, first)
        return region, None, name
    last = text.count("\n", 0, stop)
    if last > first and text.rfind("\n", 0, stop) == stop - 1:
        last -= 1  # a selection ending at column 0 does not include that line
    if first == last:
        selected = text[begin:stop].strip()
        line_text = text.split("\n")[first].strip()
        return Region(first, first), (selected if selected != line_text else None), None
    return Region(first, last), None, None
