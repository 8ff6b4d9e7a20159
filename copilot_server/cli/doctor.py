"""`copilot-server doctor`: the model and the profile that chose it (and why), GPU offload,
and measured speed here."""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from typing import Any

from ..config import LOCAL_MODEL_KINDS, Settings
from ..engines.base import capabilities_of
from ..engines.models import ModelNotFoundError, resolve_model_path, terminal_progress


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from .doctor import run_doctor

    report = run_doctor(settings, measure_speed=not args.skip_speed, remeasure=args.remeasure)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in _flatten(report):
            print(f"{key:32} {value}")
    return 0 if report.get("ok") else 1


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _flatten(value, name + ".")
        else:
            out.append((name, value))
    return out


# A fixed, realistic code prompt so figures compare across machines and runs.
_SPEED_PROMPT = "def fibonacci(n):\n    " + "\n".join(
    f"# step {i}: add the two previous numbers" for i in range(40)
)


def run_doctor(
    settings: Settings, measure_speed: bool = True, remeasure: bool = False
) -> dict[str, Any]:
    import llama_cpp

    report: dict[str, Any] = {
        "ok": False,
        "version": _version(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "engine": settings.engine.kind,
    }
    if settings.engine.kind not in LOCAL_MODEL_KINDS:
        return _remote_doctor(settings, report, measure_speed)
    try:
        engine, report["profile"], load_seconds = _load_chosen(settings, remeasure)
    except ModelNotFoundError as exc:
        report["error"] = str(exc)
        return report
    info = engine.info
    if settings.engine.kind == "shared":
        from pathlib import Path

        from ..engines.shared import host_report

        # The model is loaded here to measure it; editors share the engine host's copy.
        report["engine_host"] = host_report(Path(info.path), settings)
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
        "load_seconds": round(load_seconds, 2),
    }
    report["gpu_layers_offloaded"] = info.n_gpu_layers
    try:
        from ..prompts import describe_template

        report["template"] = describe_template(engine, settings.model.template)
    except ImportError:
        report["template"] = "fim-psm" if info.fim.available else "chat"
    if measure_speed:
        report.update(measure(engine))
    engine.close()
    report["ok"] = True
    return report


def _load_chosen(settings: Settings, remeasure: bool) -> tuple[Any, dict[str, Any], float]:
    """Load the model the settings choose; for `auto`, measure this machine first when it
    is not measured yet (or --remeasure), so the report gives the choice it will make."""
    from ..engines import profiles
    from ..engines.loader import local_engine
    from ..engines.models import DEFAULT_MODEL, assemble

    progress = terminal_progress("assembling model")
    explicit = profiles.explicit_model(settings.model)
    if explicit:
        path = resolve_model_path(explicit, progress=progress)
        source = "model.path" if settings.model.path else "$COPILOT_SERVER_MODEL"
        chosen = {
            "setting": settings.model.profile,
            "chosen": "custom",
            "model": path.name,
            "reason": f"{source} = {explicit} (it overrides the profile)",
            "how_to_change": profiles.HOW_TO_CHANGE,
        }
        started = time.perf_counter()
        return local_engine(path, settings.model), chosen, time.perf_counter() - started
    decision = profiles.decide(settings.model)
    engine = None
    started = time.perf_counter()
    if settings.model.profile == "auto" and (decision.needs_measurement or remeasure):
        engine = local_engine(assemble(DEFAULT_MODEL, progress=progress), settings.model)
        load_seconds = time.perf_counter() - started
        profiles.measure_now(settings.model, engine)
        decision = profiles.decide(settings.model)
    if engine is not None and decision.model is not DEFAULT_MODEL:
        engine.close()
        engine = None
    if engine is None:
        started = time.perf_counter()
        engine = local_engine(assemble(decision.model, progress=progress), settings.model)
        load_seconds = time.perf_counter() - started
    return engine, decision.describe(), load_seconds


def _remote_doctor(
    settings: Settings, report: dict[str, Any], measure_speed: bool
) -> dict[str, Any]:
    """A model server: the endpoint, its model, the prompt template and a measured round trip."""
    from ..engines.loader import create_engine

    try:
        engine = create_engine(settings)
    except Exception as exc:
        report["error"] = str(exc)
        return report
    try:
        has_doctor = capabilities_of(engine).doctor
        remote = engine.doctor(measure_speed) if has_doctor else {"ok": True}
        info = engine.info
        report["model"] = {"name": info.name, "path": info.path, "fim": info.fim.available}
        if remote.get("ok"):
            from ..prompts import describe_template

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
    from .. import __version__

    return __version__
