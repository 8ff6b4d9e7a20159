"""The served model's tokens: server tokenizer, local vocabulary, or approximate pieces;
remembered both ways.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..families import FAMILIES, FimFamily, family_texts
from .http import Http, HttpStatusError, RemoteEngineError

TOKEN_MEMORY_SIZE = 16_384
# Every marker a template may ask about, and anything shaped like a special token: a server
# that always parses special tokens must not turn code that merely contains one into the
# real token (tokenize(special=False)).
_MARKERS = tuple(sorted({t for f in FAMILIES for t in family_texts(f)} | {"<s>", "</s>"}))
_SPECIAL_SHAPE = re.compile(
    r"<\|[^\s|<>]{1,48}\|>|<｜[^\s｜]{1,48}｜>|<[a-z_]{1,24}>|\[[A-Z_]{3,16}\]"
)


def _looks_special(text: str) -> bool:
    return text in _MARKERS or _SPECIAL_SHAPE.fullmatch(text) is not None


def split_special_text(text: str) -> list[str]:
    """Cut `text` inside every special-token-looking marker so no part parses as one."""
    cuts: set[int] = set()
    for marker in _MARKERS:
        start = text.find(marker)
        while start >= 0:
            cuts.add(start + 1)
            start = text.find(marker, start + 1)
    for match in _SPECIAL_SHAPE.finditer(text):
        cuts.add(match.start() + 1)
    if not cuts:
        return [text]
    parts, previous = [], 0
    for cut in sorted(cuts):
        parts.append(text[previous:cut])
        previous = cut
    parts.append(text[previous:])
    return parts


class Tokenizer:
    name = "tokenizer"
    # True when tokenize(special=False) is honoured; else special text is split apart first.
    native_special = False
    bos: int | None = None  # the BOS the server puts before a text prompt, if any
    eos: int | None = None
    metadata: dict[str, str] = {}

    def tokenize(self, text: str, special: bool) -> list[int]:
        raise NotImplementedError

    def detokenize(self, tokens: list[int]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _TokenizeApi:
    name: str
    tokenize_path: str
    # (text, model, add_special) -> request body
    tokenize_body: Callable[[str, str | None, bool], dict[str, Any]]
    detokenize_path: str
    detokenize_body: Callable[[list[int], str | None], dict[str, Any]]
    text_key: str


_TOKENIZE_APIS = (
    _TokenizeApi(
        "llama-server /tokenize",
        "/tokenize",
        lambda text, model, add: {"content": text, "add_special": add},
        "/detokenize",
        lambda tokens, model: {"tokens": tokens},
        "content",
    ),
    _TokenizeApi(
        "vLLM /tokenize",
        "/tokenize",
        lambda text, model, add: {"model": model, "prompt": text, "add_special_tokens": add},
        "/detokenize",
        lambda tokens, model: {"model": model, "tokens": tokens},
        "prompt",
    ),
    _TokenizeApi(
        # Always adds BOS (when the model has one) and always parses special tokens.
        "llama-cpp-python /extras/tokenize",
        "/extras/tokenize",
        lambda text, model, add: {"input": text},
        "/extras/detokenize",
        lambda tokens, model: {"tokens": tokens},
        "text",
    ),
)
PROBE_TEXT = "def tokenize_probe(x):\n    return x  # é"


class ServerTokenizer(Tokenizer):
    """The server's own tokenizer (it always parses special tokens)."""

    def __init__(
        self, http_: Http, api: _TokenizeApi, model: str | None, lead: list[int], bos: int | None
    ) -> None:
        self._http = http_
        self._api = api
        self._model = model
        self._lead = lead  # what the server puts before every text even when asked not to
        self.api_name = api.name
        self.bos = bos
        self.name = f"server ({api.name})"

    @classmethod
    def probe(
        cls, http_: Http, model: str | None, kinds: tuple[str, ...]
    ) -> ServerTokenizer | None:
        for api in _TOKENIZE_APIS:
            if not api.name.startswith(kinds):
                continue

            def ask(text: str, add: bool, api: _TokenizeApi = api) -> list[int] | None:
                body = api.tokenize_body(text, model, add)
                return _tokens_of(http_.call("POST", api.tokenize_path, body))

            try:
                tokens = ask(PROBE_TEXT, False)
                lead = ask("", False) or []
                with_special = ask("", True) or []
            except HttpStatusError as exc:
                # 404/405: no such endpoint; 400/422: another server's request shape.
                if exc.status in (401, 403) or (exc.status >= 500 and exc.status != 501):
                    raise
                continue
            if tokens is None or len(tokens) <= len(lead):
                continue
            bos = with_special[0] if len(with_special) == 1 else None
            return cls(http_, api, model, lead, bos)
        return None

    def tokenize(self, text: str, special: bool) -> list[int]:
        body = self._api.tokenize_body(text, self._model, False)
        tokens = _tokens_of(self._http.call("POST", self._api.tokenize_path, body))
        if tokens is None:
            raise RemoteEngineError(
                f"model server {self._http.endpoint.display} gave no tokens for a text"
            )
        if self._lead and tokens[: len(self._lead)] == self._lead:
            tokens = tokens[len(self._lead) :]
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        body = self._api.detokenize_body(tokens, self._model)
        data = self._http.call("POST", self._api.detokenize_path, body)
        text = data.get(self._api.text_key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise RemoteEngineError(
                f"model server {self._http.endpoint.display} gave no text for tokens"
            )
        return text


def _tokens_of(data: Any) -> list[int] | None:
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        return None
    out = []
    for item in data["tokens"]:
        if isinstance(item, dict):  # llama-server with_pieces
            item = item.get("id")
        if not isinstance(item, int):
            return None
        out.append(item)
    return out


class VocabTokenizer(Tokenizer):
    """A local GGUF's vocabulary only (llama.cpp `vocab_only`): exact, no round trips."""

    native_special = True

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.name = f"local vocabulary ({path.name})"
        self._llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.metadata = {str(k): str(v) for k, v in (self._llm.metadata or {}).items()}
        bos, eos = self._llm.token_bos(), self._llm.token_eos()
        adds_bos = self.metadata.get("tokenizer.ggml.add_bos_token", "false").lower() == "true"
        self.bos = bos if adds_bos and bos >= 0 else None
        self.eos = eos if eos >= 0 else None

    def tokenize(self, text: str, special: bool) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def close(self) -> None:
        self._llm.close()


class TextTokenizer(Tokenizer):
    """Approximate tokens for a server that cannot tokenize (Ollama): word-sized pieces.

    Budgets then count pieces instead of the model's tokens (close for code: BPE splits
    about as often), and the prompt goes out as text, which is all the server needs. Only
    the chosen family's markers are special, so template detection finds that family.
    """

    native_special = True
    _PIECE = re.compile(r" ?[A-Za-z_]+| ?\d{1,3}| ?[^\sA-Za-z_\d]+|\s*\n|\s+")

    def __init__(self, family: FimFamily) -> None:
        self.name = f"approximate, {family.name} markers (the server has no tokenizer endpoint)"
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []
        self._specials = tuple(dict.fromkeys(family_texts(family)))
        for text in self._specials:
            self._id(text)
        alternatives = "|".join(re.escape(s) for s in sorted(self._specials, key=len, reverse=True))
        self._special_re = re.compile(f"({alternatives})")

    def _id(self, piece: str) -> int:
        with self._lock:
            found = self._ids.get(piece)
            if found is None:
                found = self._ids[piece] = len(self._pieces)
                self._pieces.append(piece)
            return found

    def tokenize(self, text: str, special: bool) -> list[int]:
        chunks = self._special_re.split(text) if special else [text]
        tokens: list[int] = []
        for chunk in chunks:
            if not chunk:
                continue
            if special and chunk in self._specials:
                tokens.append(self._ids[chunk])
                continue
            tokens += [self._id(piece) for piece in self._PIECE.findall(chunk)]
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        return "".join(self._pieces[t] for t in tokens if 0 <= t < len(self._pieces))


class TokenMemory:
    """Tokenize results both ways: a text's tokens, and a token run's text.

    Prompts are built from tokenize() results and special tokens, so spelling a prompt
    back out needs no round trip (and keeps special tokens, which llama-cpp-python's
    /extras/detokenize would drop).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._by_text: OrderedDict[tuple[str, bool], tuple[int, ...]] = OrderedDict()
        self._by_first: dict[int, dict[tuple[int, ...], str]] = {}
        # Single special tokens seen (template probes); never forgotten, there are few.
        self.specials: dict[int, str] = {}
        self._lock = threading.Lock()

    def tokens(self, text: str, special: bool) -> tuple[int, ...] | None:
        with self._lock:
            found = self._by_text.get((text, special))
            if found is not None:
                self._by_text.move_to_end((text, special))
            return found

    def remember(self, text: str, special: bool, tokens: tuple[int, ...]) -> None:
        with self._lock:
            key = (text, special)
            self._by_text[key] = tokens
            self._by_text.move_to_end(key)
            if tokens:
                self._by_first.setdefault(tokens[0], {})[tokens] = text
            if special and len(tokens) == 1 and _looks_special(text):
                self.specials[tokens[0]] = text
            while len(self._by_text) > self._size:
                (old_text, _), old = self._by_text.popitem(last=False)
                bucket = self._by_first.get(old[0]) if old else None
                if bucket is not None and bucket.get(old) == old_text:
                    del bucket[old]
                    if not bucket:
                        del self._by_first[old[0]]

    def clear(self) -> None:
        with self._lock:
            self._by_text.clear()
            self._by_first.clear()
            self.specials.clear()

    def text_of(self, token: int) -> str | None:
        with self._lock:
            found = self.specials.get(token)
            if found is None:
                found = self._by_first.get(token, {}).get((token,))
            return found

    def spell(self, tokens: list[int]) -> list[str | list[int]]:
        """`tokens` as remembered texts; stretches never seen are left as token lists."""
        run = tuple(tokens)
        out: list[str | list[int]] = []
        unknown: list[int] = []
        i = 0
        with self._lock:
            while i < len(run):
                token = run[i]
                best: tuple[int, ...] | None = None
                text = ""
                bucket = self._by_first.get(token)
                if bucket:
                    rest = run[i:]
                    if rest in bucket:
                        best = rest  # the common case: one whole tokenize() result
                    else:  # else the longest remembered run starting here
                        for seq in bucket:
                            longer = best is None or len(seq) > len(best)
                            if longer and run[i : i + len(seq)] == seq:
                                best = seq
                    if best is not None:
                        text = bucket[best]
                if best is None and token in self.specials:
                    best, text = (token,), self.specials[token]
                if best is None:
                    unknown.append(token)
                    i += 1
                    continue
                if unknown:
                    out.append(unknown)
                    unknown = []
                out.append(text)
                i += len(best)
        if unknown:
            out.append(unknown)
        return out
