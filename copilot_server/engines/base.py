"""The small interface every engine (in-process llama.cpp, remote HTTP) offers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass, field
from typing import Any, Protocol

from .tokens import token_cache

# Called with the whole text generated so far; returns True when the suggestion is whole.
StopCheck = Callable[[str], bool]


@dataclass(frozen=True)
class FimTokens:
    """The model's own fill-in-the-middle special tokens (None = the model has none)."""

    prefix: int | None
    suffix: int | None
    middle: int | None
    # Qwen2.5-Coder repo-level context markers; other families leave these None.
    repo_name: int | None = None
    file_sep: int | None = None

    @property
    def available(self) -> bool:
        return None not in (self.prefix, self.suffix, self.middle)


@dataclass(frozen=True)
class FimLayout:
    """A fill-in-the-middle prompt as the texts it lays out, for a server that lays FIM
    prompts out itself (llama-server's /infill) and takes texts rather than tokens."""

    prefix: str
    suffix: str
    middle: str  # the typed part of the cursor's line, after the middle marker
    files: tuple[tuple[str, str], ...]  # other files as (path, text), in prompt order
    # The FIM ids the tokens were written with (repo_name, file_sep: None where unused).
    markers: FimTokens

    def marked_like(self, fim: FimTokens) -> bool:
        """Written with `fim`'s markers: a server writes its own model's markers, so a
        prompt laid out with another family's must go to it as tokens."""
        used, own = astuple(self.markers), astuple(fim)
        return fim.available and all(u is None or u == o for u, o in zip(used, own, strict=True))


class LaidOutTokens(list[int]):
    """A FIM prompt's token ids carrying the layout they spell. The Engine protocol takes
    token ids; an engine whose server lays the prompt out again reads `layout_of` instead of
    parsing the tokens back. A copy or a slice is a plain list: tokens only."""

    def __init__(self, tokens: Iterable[int], layout: FimLayout) -> None:
        super().__init__(tokens)
        self.layout = layout


def layout_of(prompt: list[int]) -> FimLayout | None:
    return prompt.layout if isinstance(prompt, LaidOutTokens) else None


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    architecture: str
    size_bytes: int
    n_ctx: int
    n_ctx_train: int
    n_gpu_layers: int
    n_layers: int
    gpu_offload_supported: bool
    fim: FimTokens
    chat_template: str | None
    eos_token: int | None
    metadata: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class Generation:
    """What one model call produced and what it cost."""

    text: str
    tokens_generated: int
    prompt_tokens: int
    # Prompt tokens actually evaluated: the rest came from the KV cache.
    prompt_tokens_evaluated: int
    stop_reason: str  # "eos" | "stopped" | "max_tokens" | "cancelled" | "context_full"
    prompt_ms: float
    generation_ms: float
    # Set by the completion service around the engine's call (metrics, bench):
    stop_ms: float = 0.0  # the trimmer's stop checks, inside generation_ms
    trim_ms: float = 0.0  # cleaning the text after the last token
    queued_ms: float = 0.0  # waiting for the model thread

    @property
    def total_ms(self) -> float:
        return self.prompt_ms + self.generation_ms


_work = threading.local()


@contextlib.contextmanager
def background_work() -> Iterator[None]:
    """Generations started on this thread inside the block are background work (explain,
    fix): an engine that schedules requests itself (the shared engine host) lets
    completions go first, between tokens. Other engines ignore it."""
    previous = getattr(_work, "background", False)
    _work.background = True
    try:
        yield
    finally:
        _work.background = previous


def in_background_work() -> bool:
    return bool(getattr(_work, "background", False))


class CancelledGeneration(Exception):
    """Raised when a generation's cancel flag was set before it produced a result."""


class EngineUnavailable(RuntimeError):
    """The engine cannot answer now (a model server or the engine host is down or
    failing); the message says what to check. Code above engines/ catches this, never a
    concrete engine's error."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do beyond the Engine protocol, read by `capabilities_of`."""

    # tokenize() is a round trip to a server: the engine may need `ensure_ready()` first,
    # and counting tokens ahead of time costs a request per line.
    tokenizes_remotely: bool = False
    last_error: str | None = None  # why its last call failed, while it is failing
    # generate(heal=...) constrains the first tokens (HealingEngine). None: the engine does
    # not say (a test stand-in), which prompts/fim.py reads apart from False (remote).
    heals_tokens: bool | None = None
    branches: bool = False  # first_token_candidates(): the likeliest first tokens (alternatives)
    ends_generation: bool = False  # is_end_of_generation(token): EOS and the like
    prompt_lookup: bool = False  # generate_with_lookup(): copies drafted from the prompt
    doctor: bool = False  # doctor(measure_speed): its own part of the doctor report


def capabilities_of(engine: object) -> Capabilities:
    """The one reader of an engine's optional attributes (engines and test stand-ins that
    lack one get the default); nothing above engines/ probes an engine otherwise."""
    heals = getattr(engine, "heals_tokens", None)
    return Capabilities(
        tokenizes_remotely=bool(getattr(engine, "tokenizes_remotely", False)),
        last_error=getattr(engine, "error", None),
        heals_tokens=None if heals is None else bool(heals),
        branches=getattr(engine, "first_token_candidates", None) is not None,
        ends_generation=getattr(engine, "is_end_of_generation", None) is not None,
        prompt_lookup=getattr(engine, "generate_with_lookup", None) is not None,
        doctor=hasattr(engine, "doctor"),
    )


async def ensure_ready(engine: object) -> None:
    """Reach the engine's server before a request is built from its tokens, on a thread:
    network I/O never runs on the event loop. A model server that is away fails here,
    with a reason (EngineUnavailable). Engines that tokenize in process need nothing."""
    if capabilities_of(engine).tokenizes_remotely:
        await asyncio.to_thread(engine.ensure_ready)  # type: ignore[attr-defined]


async def count_tokens(engine: Engine | None, text: str) -> int:
    """`text`'s token count (the engine's token cache) from the event loop: a remote
    tokenizer is asked from a thread (a round trip to its server); a local one answers in
    place, where a thread hop would cost more than the count."""
    if engine is None or not text:
        return 0
    if capabilities_of(engine).tokenizes_remotely:
        return await asyncio.to_thread(token_cache(engine), text)
    return token_cache(engine)(text)


def describe(engine: object) -> dict[str, Any] | None:
    """Extra status of an engine that has one (the shared engine's host: a round trip, so
    only for the status command); None for the others."""
    host_status = getattr(engine, "host_status", None)
    return host_status() if host_status is not None else None


@dataclass(frozen=True)
class GenerateOptions:
    """How one generation runs: the keywords every engine's `generate` takes, as one value
    (each engine builds it with `GenerateOptions(**options)`, so a misspelt keyword fails)."""

    max_tokens: int
    should_stop: StopCheck
    # Checked between tokens: a superseded request stops within one token's time.
    cancel: threading.Event
    temperature: float = 0.0
    stop_tokens: frozenset[int] = frozenset()  # end the generation as EOS does
    # Token healing: the model writes this text first, token by token, with any
    # tokenization of it (engines with `heals_tokens`; others never get a prompt needing it).
    heal: str = ""


class Engine(Protocol):
    info: ModelInfo

    def tokenize(self, text: str, *, special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str: ...

    def generate(self, prompt: list[int], **options: Any) -> Generation:
        """Stream a completion of `prompt`; `options` are GenerateOptions' fields."""
        ...

    def close(self) -> None: ...


class HealingEngine(Engine, Protocol):
    """An engine that can constrain its first tokens (token healing, prompts/healing.py):
    `generate(..., heal=text)` makes the model write `text` first. Others (remote engines)
    lack these and get prompts that need no constraint."""

    heals_tokens: bool

    def token_pieces(self) -> list[bytes]:
        """Every token's bytes, by id (b"" for control tokens)."""
        ...
