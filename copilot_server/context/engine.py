"""The context engine: what the model sees around the cursor, from tree-sitter, the open
files and the workspace index, each part within its own token budget.

The prompt builder (prompts.py) puts `Context.snippets` first and the cursor's
neighbourhood last. On a CPU the model reads ~100 prompt tokens/s and llama.cpp keeps
the longest common token prefix of consecutive prompts, so the parts are chosen to stay
*byte-identical* while the user types in one place:

    snippets  imports · definitions · similar   once per region (REGION_LINES lines)
              scope chain                       per cursor line (usually unchanged)
    prefix    whole lines, start aligned to ALIGN_LINES (moves once per 16 lines)
    suffix    whole lines after the cursor's line
    line      the typed part of the cursor's line: the only part a keystroke changes

Per keystroke the engine does O(window) work: a few `rfind`s, cached token counts per
line and two cache look-ups. The O(file) work (definitions, imports, ranking) runs
when the cursor enters a new region, and never anything O(workspace): the index answers
name look-ups from a dict, and only open and recently changed files are ranked.

No request waits for a parse under the server's event loop: the tree is edited on every
didChange, read as edited (positions exact, structure as of the last parse: right for
the code above the cursor that the scope chain and definitions read), and re-parsed
incrementally once the user pauses (IDLE_REPARSE_S). Without an event loop (CLI,
benchmark) a stale tree is re-parsed when a region needs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import ContextSettings, Settings
from ..documents.store import MAX_PARSE_CHARS
from ..engines.base import capabilities_of
from ..engines.tokens import token_cache
from ..priority import lower_thread_priority
from ..syntax import Outline, SyntaxTree, find_imports, scope_chain
from ..syntax.languages import IDENTIFIER, KEYWORDS, LANGUAGE_FAMILY, grammar_for
from ..syntax.outline import OutlineEntry
from ..syntax.scopes import Scope
from ..syntax.tree import TreeCache
from .secrets import without_secrets
from .types import ALIGN_LINES, Context, Snippet, TokenCounter
from .windows import line_window_after, line_window_before, plain_context

if TYPE_CHECKING:
    from ..completion import CompletionRequest
    from ..completion.types import ContextBuilder
    from ..documents import DocumentStore
    from ..engines.base import Engine
    from .index import WorkspaceIndex

log = logging.getLogger(__name__)


# Snippets are chosen once per region of this many lines (aligned like the prefix
# window): choosing them per line would change the first prompt tokens on every Enter.
REGION_LINES = ALIGN_LINES
# Names looked up come from these lines around the cursor (closest first).
NEAR_ABOVE = 24
NEAR_BELOW = 6
MAX_NAMES = 48
MAX_DEFINITIONS = 8
# Similar snippets: chunks of CHUNK_LINES lines every CHUNK_STEP lines, compared with the
# CHUNK_LINES lines up to the cursor; below MIN_SIMILARITY a chunk is noise (and chunks
# too similar to the cursor's own code make the model repeat them, so those from the
# current file are never used).
CHUNK_LINES = 20
CHUNK_STEP = 10
MIN_SIMILARITY = 0.12
MAX_SIMILAR = 3
MAX_SIMILAR_SOURCES = 12
MAX_SOURCE_CHARS = 400_000
# A document edited since its last parse is re-parsed after this long without requests.
IDLE_REPARSE_S = 0.3
# A newly opened file up to this many lines has its lines' token counts taken ahead.
COUNT_AHEAD_LINES = 5_000
# Caches: regions and parsed texts kept across requests.
REGION_CACHE = 32
TREE_CACHE = 8
OUTLINE_CACHE = 64
CHUNK_CACHE = 64
# Identifier sets of lines seen in open documents (emptied when full: by count, or by the
# lines' total size); lines longer than LINE_WORDS_MAX_LINE are not kept.
LINE_WORDS_CACHE = 100_000
LINE_WORDS_CHARS = 8_000_000
LINE_WORDS_MAX_LINE = 2_000
_LOOKUP = re.compile(r"([A-Za-z_$][A-Za-z0-9_$]*)(\s*\()?")


def _lines_above(text: str, line_start: int, lines: int) -> int:
    """The start of the line `lines` above the one at `line_start` (0 at the top)."""
    start = line_start
    for _ in range(lines):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    return start


@dataclass
class EngineStats:
    requests: int = 0
    region_hits: int = 0
    region_misses: int = 0
    scope_hits: int = 0
    fallbacks: int = 0
    idle_reparses: int = 0
    prepared: int = 0  # documents whose definitions were read ahead, at open
    counted_ahead: int = 0  # line token counts taken ahead, at open
    last_ms: float = 0.0
    last_region_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Region:
    snippets: tuple[Snippet, ...]
    counts: dict[str, int] = field(default_factory=dict)


# name → [(first row, entry)]: an outline's definitions by name.
_ByName = dict[str, list[tuple[int, OutlineEntry]]]


@dataclass(frozen=True)
class _Chunk:
    start_line: int
    text: str
    words: frozenset[str]


@dataclass
class _Request:
    """What one request computes once and every step reads."""

    uri: str
    path: str  # as shown to the model
    language: str
    text: str
    offset: int
    line_start: int
    line_end: int
    cursor_line: int
    first_line: int  # first line of the prefix window
    last_line: int  # last line of the suffix window
    syntax: SyntaxTree | None
    count: TokenCounter
    settings: ContextSettings
    on_owner_thread: bool


class ContextEngine:
    """A `ContextBuilder`: call it with (request, engine, settings)."""

    def __init__(
        self, documents: DocumentStore | None = None, index: WorkspaceIndex | None = None
    ) -> None:
        self.documents = documents
        self.index = index
        self.stats = EngineStats()
        self._lock = threading.Lock()
        # Documents' trees are edited on the thread that owns the DocumentStore (the
        # event loop); a call from another thread (explain/fix workers) parses its own.
        self._owner_thread = threading.current_thread()
        self._trees = TreeCache(TREE_CACHE)
        self._regions: OrderedDict[tuple, _Region] = OrderedDict()
        self._scopes: OrderedDict[tuple, tuple[Scope, ...]] = OrderedDict()
        self._scope_snippets: OrderedDict[tuple, Snippet | None] = OrderedDict()
        self._outlines: OrderedDict[str, Outline] = OrderedDict()  # per document
        self._open_names: OrderedDict[tuple, _ByName] = OrderedDict()  # per other doc version
        self._chunks: OrderedDict[tuple, list[_Chunk]] = OrderedDict()
        self._idle: dict[int, asyncio.TimerHandle] = {}
        self._counting: concurrent.futures.ThreadPoolExecutor | None = None
        self._line_words: dict[str, frozenset[str]] = {}
        self._line_words_chars = 0

    # -- the builder -------------------------------------------------------------------

    def __call__(self, request: CompletionRequest, engine: Engine, settings: Settings) -> Context:
        started = time.perf_counter()
        with self._lock:
            count = token_cache(engine)
            try:
                context = self._build(request, engine, settings.context, count)
            except Exception:  # context is a help: plain windows rather than no completion
                log.exception("context engine failed; using plain windows")
                self.stats.fallbacks += 1
                context = plain_context(
                    request.path,
                    request.language,
                    request.text,
                    request.offset,
                    settings.context,
                    count,
                )
            self.stats.requests += 1
            self.stats.last_ms = (time.perf_counter() - started) * 1000
            return context

    def _build(
        self, request: CompletionRequest, engine: Engine, cs: ContextSettings, count: TokenCounter
    ) -> Context:
        text, offset = request.text, request.offset
        line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        if line_end < 0:
            line_end = len(text)
        cursor_line = text.count("\n", 0, line_start)
        first_line, prefix_start, prefix_tokens = line_window_before(
            text, line_start, cursor_line, cs.prefix_tokens, count, ALIGN_LINES
        )
        suffix_end, suffix_tokens = line_window_after(text, line_end, cs.suffix_tokens, count)
        on_owner = threading.current_thread() is self._owner_thread
        req = _Request(
            uri=request.uri,
            path=self.display_path(request.path),
            language=request.language,
            text=text,
            offset=offset,
            line_start=line_start,
            line_end=line_end,
            cursor_line=cursor_line,
            first_line=first_line,
            last_line=cursor_line + text.count("\n", line_end, suffix_end),
            syntax=self._syntax(request, on_owner),
            count=count,
            settings=cs,
            on_owner_thread=on_owner,
        )
        region = self._region(req, engine)
        snippets = list(region.snippets)
        counts = {"prefix": prefix_tokens, "suffix": suffix_tokens, **region.counts}
        scope = self._scope(req)
        if scope is not None:
            snippets.append(scope)
            counts["scope"] = scope.tokens
        counts["line"] = count(text[line_start:offset])
        return Context(
            path=req.path,
            language=request.language,
            prefix=text[prefix_start:line_start],
            line_prefix=text[line_start:offset],
            line_suffix=text[offset:line_end],
            suffix=text[line_end:suffix_end],
            snippets=tuple(snippets),
            token_counts=counts,
        )

    # -- trees -------------------------------------------------------------------------

    def _syntax(self, request: CompletionRequest, on_owner: bool) -> SyntaxTree | None:
        if on_owner and self.documents is not None:
            doc = self.documents.get(request.uri)
            if (
                doc is not None
                and isinstance(doc.syntax, SyntaxTree)
                and (doc.text is request.text or doc.text == request.text)
            ):
                return doc.syntax
        key = request.uri if on_owner else f"{request.uri}#worker"
        grammar = grammar_for(request.language, request.path)
        if grammar is None or len(request.text) > MAX_PARSE_CHARS:
            return None  # too large to parse on the loop: plain windows
        return self._trees.get(key, grammar, request.text)

    # -- region: imports, definitions, similar snippets --------------------------------

    def _region(self, req: _Request, engine: Engine) -> _Region:
        cs = req.settings
        key = (
            req.uri,
            req.cursor_line // REGION_LINES,
            id(engine),
            cs.import_tokens,
            cs.definition_tokens,
            cs.snippet_tokens,
            req.language,
            req.on_owner_thread,
        )
        cached = self._regions.get(key)
        if cached is not None:
            self._regions.move_to_end(key)
            self.stats.region_hits += 1
            return cached
        started = time.perf_counter()
        self.stats.region_misses += 1
        snippets: list[Snippet] = []
        counts: dict[str, int] = {}
        names = self._names_near(req)
        imports = self._imports(req, names)
        if imports is not None:
            snippets.append(imports)
            counts["imports"] = imports.tokens
        definitions = self._definitions(req, names)
        if definitions:
            snippets += definitions
            counts["definitions"] = sum(s.tokens for s in definitions)
        similar = self._similar(req)
        if similar:
            snippets += similar
            counts["similar"] = sum(s.tokens for s in similar)
        region = _Region(tuple(snippets), counts)
        self._regions[key] = region
        while len(self._regions) > REGION_CACHE:
            self._regions.popitem(last=False)
        self.stats.last_region_ms = (time.perf_counter() - started) * 1000
        return region

    def _names_near(self, req: _Request) -> list[str]:
        """Names worth a definition look-up (called, or capitalised), closest first."""
        text = req.text
        start = _lines_above(text, req.line_start, NEAR_ABOVE)
        end = req.line_end
        for _ in range(NEAR_BELOW):
            if end >= len(text):
                break
            nxt = text.find("\n", end + 1)
            end = len(text) if nxt < 0 else nxt
        first = text.count("\n", 0, start)
        distance: dict[str, tuple[int, int]] = {}
        for i, line in enumerate(text[start:end].split("\n")):
            gap = abs(first + i - req.cursor_line)
            for match in _LOOKUP.finditer(line):
                name = match.group(1)
                if len(name) < 2 or name in KEYWORDS or name.lower() in KEYWORDS:
                    continue
                if not (match.group(2) or name[0].isupper()):
                    continue
                rank = (gap, match.start() if gap else 0)
                if name not in distance or rank < distance[name]:
                    distance[name] = rank
        return sorted(distance, key=lambda n: distance[n])[:MAX_NAMES]

    def _imports(self, req: _Request, names: list[str]) -> Snippet | None:
        syntax = req.syntax
        budget = req.settings.import_tokens
        if syntax is None or budget <= 0:
            return None
        blocks = [
            b
            for b in find_imports(syntax.grammar, self._tree(syntax), syntax.source)
            if b.start_row < req.first_line
        ]
        if not blocks:
            return None
        count = req.count
        costs = [count(b.text + "\n") for b in blocks]
        chosen = set(range(len(blocks)))
        if sum(costs) > budget:
            # Over budget: the imports of names used near the cursor first, then in order.
            wanted = set(names)
            order = sorted(
                range(len(blocks)),
                key=lambda i: (not (wanted & set(IDENTIFIER.findall(blocks[i].text))), i),
            )
            chosen, used = set(), 0
            for i in order:
                if used + costs[i] <= budget:
                    chosen.add(i)
                    used += costs[i]
        if not chosen:
            return None
        text = "\n".join(blocks[i].text for i in sorted(chosen))
        return Snippet("imports", req.path, text, count(text))

    def _definitions(self, req: _Request, names: list[str]) -> list[Snippet]:
        budget = req.settings.definition_tokens
        if budget <= 0 or not names:
            return []
        grammar = (
            req.syntax.grammar if req.syntax is not None else grammar_for(req.language, req.path)
        )
        if grammar is None:
            return []
        family = LANGUAGE_FAMILY.get(grammar.name, grammar.name)
        local = self._outline_of_request(req)
        open_docs = self._open_outlines(req, family)
        open_paths = {path for path, _outline in open_docs}
        chosen: OrderedDict[str, list[str]] = OrderedDict()
        seen_text: set[str] = set()
        used = 0
        picked = 0
        for name in names:
            if picked >= MAX_DEFINITIONS:
                break
            for path, found in self._candidates(req, name, local, open_docs, open_paths, family):
                text = without_secrets(found)  # e.g. SECRET_KEY = "..." in a settings file
                if not text.strip():
                    continue
                if text in seen_text:
                    break
                cost = req.count(text + "\n\n")
                if used + cost > budget:
                    break
                seen_text.add(text)
                chosen.setdefault(path, []).append(text)
                used += cost
                picked += 1
                break
        return [
            Snippet("definition", path, joined, req.count(joined))
            for path, texts in chosen.items()
            for joined in ["\n\n".join(texts)]
        ]

    def _candidates(
        self,
        req: _Request,
        name: str,
        local: _ByName | None,
        open_docs: list[tuple[str, _ByName]],
        open_paths: set[str],
        family: str,
    ):
        """(shown path, text) of definitions of `name`: this file, open files, the index."""
        if local is not None:
            for row, entry in local.get(name, ()):
                end_row = row + entry.end_row - entry.row
                visible = req.first_line <= row <= req.last_line
                enclosing = row <= req.cursor_line <= end_row
                if visible or enclosing:
                    return  # the model sees it already (or is writing it): nothing to add
                yield req.path, entry.text
        for path, by_name in open_docs:
            for _row, entry in by_name.get(name, ()):
                yield self.display_path(path), entry.text
        if self.index is not None:
            own = os.path.abspath(req_path_abs(req))
            for definition in self.index.lookup(name):
                if definition.path in open_paths or definition.path == own:
                    continue
                if LANGUAGE_FAMILY.get(definition.language, definition.language) != family:
                    continue
                yield self.display_path(definition.path), definition.text

    def _outline_of_request(self, req: _Request) -> _ByName | None:
        syntax = req.syntax
        if syntax is None:
            return None
        key = req.uri if req.on_owner_thread else f"{req.uri}#worker"
        return self._outline(key, syntax)

    def _outline(self, key: str, syntax: SyntaxTree) -> _ByName:
        outline = self._outlines.get(key)
        if outline is None or outline.grammar is not syntax.grammar:
            outline = Outline(syntax.grammar)
        self._outlines[key] = outline
        self._outlines.move_to_end(key)
        while len(self._outlines) > OUTLINE_CACHE:
            self._outlines.popitem(last=False)
        return outline.refresh(self._tree(syntax), syntax.source)

    def _tree(self, syntax: SyntaxTree) -> Any:
        """The tree to read for a request. Under an event loop (the server) a tree with
        pending edits is read as edited, not re-parsed: re-parsing belongs to the idle
        time after the request (see `_reparse_when_idle`), not to the keystroke. Without
        a loop (CLI, benchmark) it is re-parsed now."""
        if syntax.stale and self._loop() is not None:
            self._reparse_when_idle(syntax)
            return syntax.edited_tree
        return syntax.tree

    def _loop(self) -> asyncio.AbstractEventLoop | None:
        if threading.current_thread() is not self._owner_thread:
            return None
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def prepare_soon(self, uri: str, engine: Engine | None = None) -> None:
        """Get a newly opened document ready for its first completion: its definitions
        are read as soon as the loop is free (~12 ms for a 2,000-line file) and, with a
        local model, its lines' token counts are taken on a background thread (~10-20 ms
        of tokenizer calls the first window would otherwise make)."""
        loop = self._loop()
        if loop is not None:
            loop.call_soon(self.prepare, uri, engine)

    def prepare(self, uri: str, engine: Engine | None = None) -> None:
        doc = self.documents.get(uri) if self.documents is not None else None
        if doc is None or doc.too_large or doc.looks_binary:
            return
        if isinstance(doc.syntax, SyntaxTree):
            with self._lock:
                self._outline(uri, doc.syntax)
            self.stats.prepared += 1
        if engine is not None and not capabilities_of(engine).tokenizes_remotely:
            text = doc.text
            if text.count("\n") <= COUNT_AHEAD_LINES:
                self._count_ahead().submit(self._count_lines, text, engine)

    def _count_ahead(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._counting is None:
            self._counting = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="count-ahead", initializer=lower_thread_priority
            )
        return self._counting

    def _count_lines(self, text: str, engine: Engine) -> None:
        """Count every line as the windows will ask for it ("line\n" above the cursor,
        "\nline" below), into the engine's token cache."""
        lines = text.split("\n")
        segments = {line + "\n" for line in lines[:-1]} | {"\n" + line for line in lines[1:]}
        cache = token_cache(engine)
        fresh = segments - cache.known(engine, segments)
        for segment in fresh:
            cache(segment)
        with self._lock:
            self.stats.counted_ahead += len(fresh)

    def _reparse_when_idle(self, syntax: SyntaxTree) -> None:
        """Re-parse `syntax` once the user pauses (IDLE_REPARSE_S without a request)."""
        loop = self._loop()
        if loop is None:
            return
        previous = self._idle.pop(id(syntax), None)
        if previous is not None:
            previous.cancel()

        def reparse() -> None:
            self._idle.pop(id(syntax), None)
            if syntax.stale:
                syntax.tree  # noqa: B018 - the incremental re-parse
                self.stats.idle_reparses += 1

        self._idle[id(syntax)] = loop.call_later(IDLE_REPARSE_S, reparse)

    def _open_outlines(self, req: _Request, family: str) -> list[tuple[str, _ByName]]:
        """Definitions of the other open documents of the same language family (cached per
        document version; a worker thread only reads what the owner thread cached)."""
        if self.documents is None:
            return []
        out: list[tuple[str, _ByName]] = []
        for doc in self.documents.all():
            syntax = doc.syntax
            if doc.uri == req.uri or not isinstance(syntax, SyntaxTree):
                continue
            if LANGUAGE_FAMILY.get(syntax.grammar.name) != family or _is_secret(doc.path):
                continue
            key = (doc.uri, doc.version, len(doc.text))
            by_name = self._open_names.get(key)
            if by_name is None:
                if not req.on_owner_thread or doc.too_large:
                    continue
                by_name = self._outline(doc.uri, syntax)
                self._open_names[key] = by_name
                while len(self._open_names) > OUTLINE_CACHE:
                    self._open_names.popitem(last=False)
            out.append((os.path.abspath(doc.path), by_name))
        return out

    def _similar(self, req: _Request) -> list[Snippet]:
        """Chunks of other open / recently changed files most like the code before the
        cursor (Jaccard similarity of their identifier sets, as Copilot's neighbouring
        tabs), best last."""
        budget = req.settings.snippet_tokens
        if budget <= 0:
            return []
        text = req.text
        start = _lines_above(text, req.line_start, CHUNK_LINES)
        reference = _words(text[start : req.line_end])
        if len(reference) < 3:
            return []
        scored: list[tuple[float, str, _Chunk]] = []
        for path, chunks in self._sources(req):
            best: list[tuple[float, _Chunk]] = []
            for chunk in chunks:
                if not chunk.words:
                    continue
                shared = len(reference & chunk.words)
                if not shared:
                    continue
                score = shared / (len(reference) + len(chunk.words) - shared)
                if score >= MIN_SIMILARITY:
                    best.append((score, chunk))
            best.sort(key=lambda sc: -sc[0])
            taken: list[_Chunk] = []
            for score, chunk in best:
                if any(abs(chunk.start_line - t.start_line) < CHUNK_LINES for t in taken):
                    continue  # overlapping windows of one file say the same thing
                taken.append(chunk)
                scored.append((score, path, chunk))
                if len(taken) >= MAX_SIMILAR:
                    break
        scored.sort(key=lambda item: (-item[0], item[1], item[2].start_line))
        chosen: list[tuple[float, Snippet]] = []
        used = 0
        for score, path, chunk in scored:
            if len(chosen) >= MAX_SIMILAR:
                break
            text = without_secrets(chunk.text)
            if not text.strip():
                continue
            cost = req.count(text)
            if used + cost > budget:
                continue
            used += cost
            chosen.append((score, Snippet("similar", self.display_path(path), text, cost)))
        chosen.sort(key=lambda item: item[0])  # the best one closest to the cursor's file
        return [snippet for _score, snippet in chosen]

    def _sources(self, req: _Request):
        """(path, chunks) of other open documents, then recently changed files on disk."""
        own = os.path.abspath(req_path_abs(req))
        seen = {own}
        budget = MAX_SIMILAR_SOURCES
        if self.documents is not None:
            docs = sorted(self.documents.all(), key=lambda d: -d.edit_count)
            for doc in docs:
                if budget <= 0:
                    return
                path = os.path.abspath(doc.path)
                if doc.uri == req.uri or path in seen or _is_secret(doc.path):
                    continue
                if doc.too_large or doc.looks_binary or len(doc.text) > MAX_SOURCE_CHARS:
                    continue
                seen.add(path)
                budget -= 1
                yield path, self._chunks_of(("doc", doc.uri, doc.version, len(doc.text)), doc.text)
        if self.index is not None:
            for path in self.index.recent_files():
                if budget <= 0:
                    return
                if path in seen or _is_secret(path):
                    continue
                # Checked now, not when the watcher saw it: the file may since have been
                # replaced by a link to something outside the workspace.
                stat = self.index.stat_inside(path)
                if stat is None or stat.st_size > MAX_SOURCE_CHARS:
                    continue
                key = ("file", path, stat.st_mtime_ns, stat.st_size)
                chunks = self._chunks.get(key)
                if chunks is None:
                    text = self.index.read_inside(path, MAX_SOURCE_CHARS)
                    if text is None:
                        continue
                    chunks = self._chunks_of(key, text)
                seen.add(path)
                budget -= 1
                yield path, chunks

    def _chunks_of(self, key: tuple, text: str) -> list[_Chunk]:
        chunks = self._chunks.get(key)
        if chunks is not None:
            self._chunks.move_to_end(key)
            return chunks
        lines = text.split("\n")
        line_words = [self._words_of_line(line) for line in lines]
        chunks = []
        for start in range(0, max(1, len(lines) - CHUNK_STEP), CHUNK_STEP):
            body = "\n".join(lines[start : start + CHUNK_LINES]).strip("\n")
            if not body.strip():
                continue
            words = frozenset().union(*line_words[start : start + CHUNK_LINES])
            chunks.append(_Chunk(start, body, words))
        self._chunks[key] = chunks
        while len(self._chunks) > CHUNK_CACHE:
            self._chunks.popitem(last=False)
        return chunks

    def _words_of_line(self, line: str) -> frozenset[str]:
        """A line's identifiers, cached by its text: the chunks of a document edited since
        they were cut are cut again when another file asks, and only the lines that
        changed are read again (a 2,000-line file: ~15 ms → ~3 ms)."""
        words = self._line_words.get(line)
        if words is None:
            words = _words(line)
            if len(line) > LINE_WORDS_MAX_LINE:
                return words  # minified or data: not worth its memory
            if (
                len(self._line_words) >= LINE_WORDS_CACHE
                or self._line_words_chars > LINE_WORDS_CHARS
            ):
                self._line_words.clear()
                self._line_words_chars = 0
            self._line_words[line] = words
            self._line_words_chars += len(line)
        return words

    # -- scope chain -------------------------------------------------------------------

    def _scope(self, req: _Request) -> Snippet | None:
        """Headers of the enclosing classes / functions that the prefix window starts
        below. The candidates come from the tree once per cursor line (taken at the line's
        start, so what is typed on the line does not matter); a keystroke only filters
        them by the line's indentation, without touching (re-parsing) the tree."""
        syntax = req.syntax
        budget = req.settings.scope_tokens
        if syntax is None or budget <= 0:
            return None
        line = req.text[req.line_start : req.line_end]
        indent = len(line) - len(line.lstrip(" \t"))
        key = (req.uri, req.cursor_line, req.first_line, budget, req.on_owner_thread)
        candidates = self._scopes.get(key)
        if candidates is None:
            # The edited tree, not re-parsed: only headers above the window are used.
            if syntax.stale:
                self._reparse_when_idle(syntax)
            chain = scope_chain(
                syntax.grammar,
                syntax.edited_tree,
                syntax.source,
                syntax.byte_offset(req.line_start),
                None,
            )
            candidates = tuple(scope for scope in chain if scope.start_row < req.first_line)
            self._scopes[key] = candidates
            while len(self._scopes) > REGION_CACHE:
                self._scopes.popitem(last=False)
        else:
            self._scopes.move_to_end(key)
            self.stats.scope_hits += 1
        if syntax.grammar.spec.indented:
            candidates = tuple(scope for scope in candidates if scope.indent < indent)
        if not candidates:
            return None
        snippet = self._scope_snippets.get((req.path, candidates))
        if snippet is None:
            headers: list[str] = []
            used = 0
            for scope in reversed(candidates):  # innermost first: it matters most
                cost = req.count(scope.header + "\n")
                if used + cost > budget:
                    break
                headers.append(scope.header)
                used += cost
            text = "\n".join(reversed(headers))
            snippet = Snippet("scope", req.path, text, req.count(text)) if headers else None
            self._scope_snippets[(req.path, candidates)] = snippet
            while len(self._scope_snippets) > REGION_CACHE:
                self._scope_snippets.popitem(last=False)
        return snippet

    # -- helpers -----------------------------------------------------------------------

    def display_path(self, path: str) -> str:
        if self.index is not None:
            return self.index.display_path(path)
        return path


def req_path_abs(req: _Request) -> str:
    """The request's file as an absolute path (for comparing with the index's paths)."""
    from ..documents import uri_to_path

    return uri_to_path(req.uri) if req.uri.startswith("file:") else req.path


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in IDENTIFIER.findall(text) if w not in KEYWORDS)


def _is_secret(path: str) -> bool:
    from .files import is_secret_path

    return is_secret_path(path)


def make_context_builder(
    documents: DocumentStore | None = None, index: WorkspaceIndex | None = None
) -> ContextBuilder:
    """The tree-sitter context builder for CompletionService (and explain / fix)."""
    return ContextEngine(documents, index)
