"""Every knob a user can turn, validated in one place.

Precedence (lowest first): defaults < config file < environment < initializationOptions
< workspace/configuration. Each layer is a partial dict merged over the previous one and
validated as a whole, so a bad value names its key and the previous settings stay.
"""

from __future__ import annotations

import json
import os
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


class ContextSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Token budgets per context part, counted with the model's tokenizer.
    prefix_tokens: int = Field(default=384, ge=16, le=32_000)
    # A short suffix keeps the cold prompt cheap; the model mostly needs the next lines.
    suffix_tokens: int = Field(default=96, ge=0, le=32_000)
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

    # Path to a GGUF file; None = $COPILOT_SERVER_MODEL, else the embedded default.
    path: str | None = None
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

    kind: Literal["local", "llama-server", "openai"] = "local"
    url: str | None = None
    model_name: str | None = None
    # Name of the environment variable holding the API key (the key itself is never stored).
    api_key_env: str = "COPILOT_SERVER_API_KEY"
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=2, ge=0, le=10)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelSettings = Field(default_factory=ModelSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    completion: CompletionSettings = Field(default_factory=CompletionSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
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
    if os.environ.get("COPILOT_SERVER_THREADS"):
        env.setdefault("model", {})["threads"] = os.environ["COPILOT_SERVER_THREADS"]
    settings = settings.merged(env)
    return settings.merged(cli_overrides)
