"""Every knob a user can turn, validated in one place.

Precedence (lowest first): defaults < config file < environment < CLI <
initializationOptions (+ `copilot.reloadModel` arguments) < the project's settings
(workspace/configuration, didChangeConfiguration) < runtime toggles. Each layer is a
partial dict merged over the previous one and validated as a whole, so a bad value names
its key and the previous settings stay.

The project's layer cannot set USER_ONLY_KEYS (where code and keys go, what is loaded and
run on this machine): a cloned repository's `.vscode/settings.json` must not send the
user's code and API key to its own server. See `project_overrides`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONFIG_SECTION = "copilotServer"


class SettingsError(ValueError):
    """A setting had a bad value; the message names the key and what is allowed."""


class CompletionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Languages (LSP languageId) for which completions are off.
    disabled_languages: list[str] = Field(default_factory=list)
    # Generation cap per suggestion: a 0.5B model at ~20 tok/s gives ~3 s worst case.
    max_tokens: int = Field(default=64, ge=1, le=4096)
    # Multi-line suggestions get at most this many lines (Copilot shows ~10).
    max_lines: int = Field(default=12, ge=1, le=200)
    # Requests during model load wait this long before giving up with an empty answer.
    model_wait_s: float = Field(default=60.0, ge=0, le=3600)
    # Size of the (prompt -> suggestion) LRU cache.
    cache_size: int = Field(default=256, ge=0, le=100_000)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # Suggestions to cycle through on an explicit request (invoked, or the cycle key);
    # requests while typing stay single. Each extra one costs its own decode (~0.3-1 s).
    alternatives: int = Field(default=3, ge=1, le=10)
    # With a model server (engine.kind not local/shared), complete inside files that look
    # like secrets (.env, *.pem, .npmrc, credentials, ...) anyway: their text would leave
    # the machine. User-only (see USER_ONLY_KEYS).
    allow_secret_files_remote: bool = False
    # A cursor line longer than this (minified code, data) gets no completion: the typed
    # part of the line goes into the prompt whole, and tokenizing a 1.5 MB line took ~1 s
    # per keystroke, twice, on the event loop.
    max_line_chars: int = Field(default=2_000, ge=80, le=1_000_000)


class ContextSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Token budgets per context part, counted with the model's tokenizer.
    # Sized on cursor holes in code the project did not write (bench holes): 384 + 96
    # tied a plain 768 + 256 client after operators and at indentation; 640 + 160 beats
    # it there, and the cold prompt with the other parts stays below its ~940 tokens.
    # Typing reuses the KV cache, so the windows cost mostly the first request in a region.
    prefix_tokens: int = Field(default=640, ge=16, le=32_000)
    suffix_tokens: int = Field(default=160, ge=0, le=32_000)
    scope_tokens: int = Field(default=96, ge=0, le=8_000)
    import_tokens: int = Field(default=96, ge=0, le=8_000)
    definition_tokens: int = Field(default=192, ge=0, le=16_000)
    snippet_tokens: int = Field(default=192, ge=0, le=16_000)
    # Workspace index limits.
    index_enabled: bool = True
    index_max_files: int = Field(default=5_000, ge=0, le=1_000_000)
    index_max_file_bytes: int = Field(default=512_000, ge=1_000, le=50_000_000)


class ModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Path to a GGUF file; None = $COPILOT_SERVER_MODEL, else the model of `profile`.
    path: str | None = None
    # Which shipped model: "fast" (Qwen2.5-Coder-0.5B), "quality" (1.5B, the `quality`
    # extra), or "auto": quality on a GPU or where this machine's measured speed predicts
    # a typing p50 under the bound (engines/profiles.py), else fast.
    profile: Literal["auto", "fast", "quality"] = "auto"
    # "auto" = all layers when the llama.cpp build can offload to a GPU, else 0.
    n_gpu_layers: int | Literal["auto", "all"] = "auto"
    n_ctx: int = Field(default=4096, ge=256, le=1_048_576)
    n_batch: int = Field(default=512, ge=8, le=65_536)
    # None = as many threads as physical cores llama.cpp detects.
    threads: int | None = Field(default=None, ge=1, le=1024)
    # Force a prompt template instead of detecting it from the GGUF ("auto").
    template: str = "auto"

    @field_validator("n_gpu_layers")
    @classmethod
    def _non_negative_layers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < -1:
            raise ValueError("must be 'auto', 'all', -1 (all) or a layer count >= 0")
        return value


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "shared": the model runs in the user's engine host, one process for every editor
    # window (engines/host.py); "local": in this process; the others are model servers.
    kind: Literal["shared", "local", "llama-server", "openai"] = "shared"
    url: str | None = None
    model_name: str | None = None
    # Name of the environment variable holding the API key (the key itself is never stored).
    api_key_env: str = "COPILOT_SERVER_API_KEY"
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=2, ge=0, le=10)
    # The engine host exits after this long without clients (its model's memory returns).
    host_idle_s: float = Field(default=600.0, ge=1, le=7 * 24 * 3600)
    # KV states of recent documents the host keeps to switch windows without a prefill:
    # ~12 KB per prompt token for the 0.5B model; restoring 750 tokens takes ~10 ms where
    # re-reading them takes ~4 s on a 2-core CPU. 0 turns it off.
    host_saved_states: int = Field(default=4, ge=0, le=64)


# Engine kinds whose model runs on this machine: in this process or in the engine host.
LOCAL_MODEL_KINDS = ("local", "shared")


class NextEditSettings(BaseModel):
    """Next edit suggestions (textDocument/copilotInlineEdit). A source is on by default
    only where its measured precision on `copilot-server bench next-edit` is >= 0.5."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # The last edit repeated where its pattern still stands (no model; a few ms). Bench
    # precision 0.80 (227 mined pairs; README "Next edits").
    propagation: bool = True
    # The model rewrites a window around the cursor (seconds on a CPU). Off: bench
    # precision 0.00 with the default Qwen2.5-Coder-0.5B-Instruct (100 pairs).
    model: bool = False
    # Lines of the window the model rewrites.
    window_lines: int = Field(default=21, ge=3, le=200)
    # Generation cap for one rewrite (the window is ~250 tokens for 21 lines of code).
    max_tokens: int = Field(default=512, ge=16, le=4096)
    # Prompt-lookup drafts per decode step (0 = plain decoding).
    draft_tokens: int = Field(default=16, ge=0, le=64)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelSettings = Field(default_factory=ModelSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    completion: CompletionSettings = Field(default_factory=CompletionSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    next_edit: NextEditSettings = Field(default_factory=NextEditSettings)
    explain_max_tokens: int = Field(default=200, ge=16, le=4096)
    fix_max_tokens: int = Field(default=256, ge=16, le=4096)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def merged(self, overrides: dict[str, Any] | None) -> Settings:
        """A new Settings with `overrides` (nested, partial) applied; raises SettingsError."""
        if not overrides:
            return self
        if not isinstance(overrides, dict):
            raise SettingsError(f"settings must be an object, got {type(overrides).__name__}")
        base = self.model_dump()
        return validate_settings(_deep_merge(base, _normalise_keys(overrides)))


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _camel_to_snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def _normalise_keys(data: Any) -> Any:
    """Editors send camelCase (VS Code settings) or snake_case; accept both."""
    if isinstance(data, dict):
        return {_camel_to_snake(str(k)): _normalise_keys(v) for k, v in data.items()}
    return data


def validate_settings(data: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{key}'")
            continue
        allowed = ""
        ctx = err.get("ctx") or {}
        if "expected" in ctx:
            allowed = f" (allowed: {ctx['expected']})"
        problems.append(f"setting '{key}': {err['msg']}{allowed}; got {err.get('input')!r}")
    return "invalid settings: " + "; ".join(problems)


# Settings only the user sets (defaults, config file, environment, CLI,
# initializationOptions, `copilot.reloadModel`), never a project's settings: they decide
# where code and API keys go (engine), which file llama.cpp parses and how much of this
# machine it takes (model: a crafted GGUF is an attack on the parser; n_ctx is memory), and
# whether secret files may leave the machine. A section name covers every key in it, keys
# added later included, less PROJECT_SETTABLE.
USER_ONLY_KEYS = ("model", "engine", "completion.allow_secret_files_remote")
# Harmless to take from a project: how long to wait for the model server, how often to retry.
PROJECT_SETTABLE = frozenset({"engine.timeout_s", "engine.retries"})


def is_user_only(key: str) -> bool:
    """Whether the dotted snake_case `key` may come only from the user's layers."""
    if key in PROJECT_SETTABLE:
        return False
    return any(key == k or key.startswith(k + ".") for k in USER_ONLY_KEYS)


def project_overrides(overrides: Any, user: Settings) -> tuple[Any, list[str]]:
    """A project layer (workspace/configuration, didChangeConfiguration) without its
    user-only keys, and the names of those that would have changed `user` (the settings of
    the user's own layers). A user-only key whose value equals the user's is dropped
    silently: clients (VS Code, Neovim) echo the user's settings in these answers too."""
    if not isinstance(overrides, dict):
        return overrides, []
    kept: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in _flatten(_normalise_keys(overrides)):
        if not is_user_only(key):
            _put(kept, key, value)
            continue
        try:
            changes = _get(user.merged(_put({}, key, value)), key) != _get(user, key)
        except (SettingsError, AttributeError):
            changes = True  # not even valid: certainly not what the user set
        if changes:
            refused.append(key)
    return kept, refused


def merge_overrides(base: Any, extra: Any) -> Any:
    """Two partial layers as one (`extra` wins), keys normalised; a non-dict `extra` (an
    error validation will name) replaces."""
    if not isinstance(base, dict) or not isinstance(extra, dict):
        return extra
    return _deep_merge(_normalise_keys(base), _normalise_keys(extra))


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"a": {"b": 1}} -> [("a.b", 1)]; an empty or non-dict value stays a leaf."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _flatten(value, name + ".")
        else:
            out.append((name, value))
    return out


def _put(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    node = data
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


def _get(settings: Any, key: str) -> Any:
    for part in key.split("."):
        settings = getattr(settings, part)
    return settings


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "copilot-server" / "config.json"


def load_settings(
    config_file: Path | None = None, cli_overrides: dict[str, Any] | None = None
) -> Settings:
    """Defaults < config file < environment < CLI flags."""
    settings = Settings()
    path = config_file or default_config_path()
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SettingsError(f"cannot read config file {path}: {exc}") from None
        settings = settings.merged(data)
    env: dict[str, Any] = {}
    if os.environ.get("COPILOT_SERVER_GPU_LAYERS"):
        raw = os.environ["COPILOT_SERVER_GPU_LAYERS"]
        env.setdefault("model", {})["n_gpu_layers"] = int(raw) if raw.lstrip("-").isdigit() else raw
    if os.environ.get("COPILOT_SERVER_PROFILE"):
        env.setdefault("model", {})["profile"] = os.environ["COPILOT_SERVER_PROFILE"]
    if os.environ.get("COPILOT_SERVER_ENGINE"):
        env.setdefault("engine", {})["kind"] = os.environ["COPILOT_SERVER_ENGINE"]
    if os.environ.get("COPILOT_SERVER_THREADS"):
        env.setdefault("model", {})["threads"] = os.environ["COPILOT_SERVER_THREADS"]
    settings = settings.merged(env)
    return settings.merged(cli_overrides)


@dataclass(frozen=True)
class SettingsChange:
    """What one `SettingsStore.apply` did: the settings before and after (equal when it
    failed), the error that kept the old ones, and the warning about user-only keys a
    project tried to set (each key is warned about once)."""

    old: Settings
    new: Settings
    error: str | None = None
    refused: str | None = None

    @property
    def model_changed(self) -> bool:
        return self.new.model != self.old.model or self.new.engine != self.old.engine

    @property
    def enabled_changed(self) -> bool:
        return self.new.completion.enabled != self.old.completion.enabled


class SettingsStore:
    """The one place the running settings live; every service reads `current`.

    Layers, lowest first: the base (defaults < config file < environment < CLI), then the
    client's layers. Each client layer replaces its own previous value, so a setting the
    user removes falls back to the layer below (config file, defaults), not to a stale
    value. "workspace" is the project's layer: it cannot set `USER_ONLY_KEYS`."""

    LAYERS = ("initializationOptions", "workspace", "runtime")
    PROJECT_SOURCES = ("workspace/configuration", "didChangeConfiguration")

    def __init__(self, base: Settings | None = None) -> None:
        self._base = base or Settings()
        self._current = self._base
        self._layers: dict[str, Any] = {}
        self._refused_keys: set[str] = set()  # user-only keys a project tried (warned once)
        self._listeners: list[Callable[[SettingsChange], None]] = []

    @classmethod
    def of(cls, settings: Settings | SettingsStore | None) -> SettingsStore:
        """A store as given, or a fixed one around plain settings (tests, CLI, bench)."""
        return settings if isinstance(settings, SettingsStore) else cls(settings)

    @property
    def current(self) -> Settings:
        return self._current

    def subscribe(self, listener: Callable[[SettingsChange], None]) -> None:
        """`listener(change)` after every successful `apply`."""
        self._listeners.append(listener)

    def apply(self, overrides: Any, source: str, *, merge: bool = False) -> SettingsChange:
        """Validate and apply one layer; on error keep the previous settings (the change's
        `error` says why). `merge` adds to the layer instead of replacing it."""
        layer = "workspace" if source in self.PROJECT_SOURCES else source
        layer = layer if layer in self.LAYERS else "runtime"
        refused = None
        if layer == "workspace":
            overrides, refused = self._without_user_only(overrides, source)
        elif merge:
            overrides = merge_overrides(self._layers.get(layer) or {}, overrides or {})
        layers = {**self._layers, layer: overrides or {}}
        old = self._current
        try:
            new = self._base
            for name in self.LAYERS:
                new = new.merged(layers.get(name))
        except SettingsError as exc:
            error = f"copilot-server: {exc} (from {source}); previous settings kept."
            return SettingsChange(old, old, error=error, refused=refused)
        self._layers = layers
        self._current = new
        change = SettingsChange(old, new, refused=refused)
        for listener in self._listeners:
            listener(change)
        return change

    def _without_user_only(self, overrides: Any, source: str) -> tuple[Any, str | None]:
        """The project's layer less the user-only keys, and one warning for the keys it
        tried to change that were not warned about before (a key that repeats the user's
        own value is not a problem)."""
        try:
            user = self._base.merged(self._layers.get("initializationOptions"))
        except SettingsError:
            user = self._base
        kept, refused = project_overrides(overrides, user)
        if not any(key not in self._refused_keys for key in refused):
            return kept, None
        self._refused_keys.update(refused)
        return kept, (
            f"copilot-server: ignored {', '.join(refused)} from the project's settings "
            f"({source}). Where code and API keys go and which model runs are set only by "
            "you: user settings (initializationOptions), the config file, the environment "
            "or the command line."
        )
