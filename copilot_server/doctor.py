"""`copilot-server doctor`: what model is in use, GPU offload, and measured speed here."""

from __future__ import annotations

import platform
import threading
import time
from typing import Any

from .config import Settings
from .engines.models import ModelNotFoundError, resolve_model_path, terminal_progress

# A fixed, realistic code prompt so figures compare across machines and runs.
_SPEED_PROMPT = "def fibonacci(n):\n    " + "\n".join(
    f"# step {i}: add the two previous numbers" for i in range(40)
)


def run_doctor(settings: Settings, measure_speed: bool = True) -> dict[str, Any]:
    import llama_cpp

    report: dict[str, Any] = {
        "ok": False,
        "version": _version(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "engine": settings.engine.kind,
    }
    if settings.engine.kind != "local":
        return _remote_doctor(settings, report, measure_speed)
    try:
        path = resolve_model_path(
            settings.model.path, progress=terminal_progress("assembling model")
        )
    except ModelNotFoundError as exc:
        report["error"] = str(exc)
        return report
    from .engines.llama import LlamaEngine

    started = time.perf_counter()
    try:
        engine = LlamaEngine(path, settings.model)
    except ModelNotFoundError as exc:
        report["error"] = str(exc)
        return report
    info = engine.info
    report["model"] = {
        "path": info.path,
        "name": info.name,
        "architecture": info.architecture,
        "size_bytes": info.size_bytes,
        "fim": info.fim.available,
        "fim_tokens": {
            "prefix": info.fim.prefix,
            "suffix": info.fim.suffix,
            "middle": info.fim.middle,
        },
        "chat_template": info.chat_template is not None,
        "n_ctx": info.n_ctx,
        "layers": info.n_layers,
        "load_seconds": round(time.perf_counter() - started, 2),
    }
    report["gpu_layers_offloaded"] = info.n_gpu_layers
    try:
        from .prompts import describe_template

        report["template"] = describe_template(engine, settings.model.template)
    except ImportError:
        report["template"] = "fim-psm" if info.fim.available else "chat"
    if measure_speed:
        report.update(measure(engine))
    engine.close()
    report["ok"] = True
    return report


def _remote_doctor(
    settings: Settings, report: dict[str, Any], measure_speed: bool
) -> dict[str, Any]:
    """A model server: the endpoint, its model, the prompt template and a measured round trip."""
    from .engines.loader import create_engine

    try:
        engine = create_engine(settings)
    except Exception as exc:
        report["error"] = str(exc)
        return report
    try:
        remote = engine.doctor(measure_speed) if hasattr(engine, "doctor") else {"ok": True}
        info = engine.info
        report["model"] = {"name": info.name, "path": info.path, "fim": info.fim.available}
        if remote.get("ok"):
            from .prompts import describe_template

            report["template"] = describe_template(engine, settings.model.template)
    finally:
        engine.close()
    report["remote"] = remote
    report["ok"] = bool(remote.get("ok"))
    if not report["ok"]:
        report["error"] = remote.get("error", "the model server check failed")
    return report


def measure(engine: Any) -> dict[str, float]:
    """Prompt and generation tokens/s: one cold prompt, then 32 generated tokens."""
    tokens = engine.tokenize(_SPEED_PROMPT)
    never = threading.Event()
    # Generating one token times the prompt; the KV cache is reset by a fresh prompt head.
    first = engine.generate(tokens, max_tokens=1, should_stop=lambda _t: False, cancel=never)
    prompt_tps = first.prompt_tokens_evaluated / max(first.prompt_ms / 1000, 1e-6)
    gen = engine.generate(
        tokens + [engine.tokenize("\n")[0]],
        max_tokens=32,
        should_stop=lambda _t: False,
        cancel=never,
    )
    gen_tps = max(gen.tokens_generated - 1, 1) / max(gen.generation_ms / 1000, 1e-6)
    return {
        "prompt_tokens_per_s": round(prompt_tps, 1),
        "generation_tokens_per_s": round(gen_tps, 1),
        "speed_prompt_tokens": len(tokens),
    }


def _version() -> str:
    from . import __version__

    return __version__
