"""`copilot-server bench --profile fast|quality|both|auto`: which models a bench run measures,
what `auto` chooses on this machine, and its predicted against the measured typing p50.

The prediction is the one `auto` decides with (engines/profiles.py), from the fast model's
tokens/s measured under the bench's own settings (CPU, the bench's threads), so the
comparison checks the formula where it was applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings
from ..engines import profiles
from ..engines.models import DEFAULT_MODEL, assemble, resolve_model_path
from .common import fmt, ratio, table

BENCH_PROFILES = ("auto", "fast", "quality", "both")


def auto_decision(settings: Settings) -> profiles.ProfileDecision:
    """`auto`'s choice under these settings; measures the fast model first if needed."""
    model_settings = settings.model.model_copy(update={"profile": "auto", "path": None})
    decision = profiles.decide(model_settings)
    if decision.needs_measurement:
        from ..engines.loader import local_engine

        engine = local_engine(assemble(DEFAULT_MODEL), model_settings)
        try:
            profiles.measure_now(model_settings, engine)
        finally:
            engine.close()
        decision = profiles.decide(model_settings)
    return decision


def models_to_bench(settings: Settings, which: str) -> list[tuple[str, Path]]:
    """(profile, GGUF) pairs to run; a model the user named beats the profile. Raises
    ModelNotFoundError (saying how to install it) when a profile's model is missing."""
    explicit = profiles.explicit_model(settings.model)
    if explicit:
        return [("custom", resolve_model_path(explicit))]
    if which == "both":
        names = ["fast", "quality"]
    elif which == "auto":
        names = [auto_decision(settings).choice.profile]
    else:
        names = [which]
    return [(name, assemble(profiles.PROFILE_MODELS[name])) for name in names]


def typing_p50(report: dict[str, Any]) -> float | None:
    ours = report.get("typing", {}).get("clients", {}).get("ours") or {}
    return (ours.get("look_latency_ms") or {}).get("p50")


def prediction(settings: Settings, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """auto's choice and, per profile run, the predicted and the measured typing p50."""
    decision = auto_decision(settings)
    measurement = decision.measurement
    assert measurement is not None
    rows = {}
    for name, report in reports.items():
        if name not in profiles.COST:
            continue
        predicted = profiles.predict_typing_p50_ms(measurement, name)
        rows[name] = {"predicted_ms": predicted, "measured_ms": typing_p50(report)}
    return {
        "auto_chooses": decision.choice.profile,
        "reason": decision.choice.reason,
        "prompt_tokens_per_s": measurement.prompt_tps,
        "generation_tokens_per_s": measurement.generation_tps,
        "bound_ms": profiles.QUALITY_BOUND_MS,
        "typing_p50": rows,
    }


def render_prediction(pred: dict[str, Any]) -> str:
    lines = [
        f"auto chooses {pred['auto_chooses']}: {pred['reason']}",
    ]
    for name, row in pred["typing_p50"].items():
        mark = " (auto's choice)" if name == pred["auto_chooses"] else ""
        lines.append(
            f"  {name}{mark}: predicted typing p50 {fmt(row['predicted_ms'])} ms, "
            f"measured {fmt(row['measured_ms'])} ms"
        )
    return "\n".join(lines)


def comparison_rows(
    reports: dict[str, dict[str, Any]], headline_rows: Any
) -> tuple[list[str], list[list[str]]]:
    """One row per headline measure, one column per profile (our client's figures)."""
    names = list(reports)
    columns = {name: {row[0]: row[1] for row in headline_rows(reports[name])} for name in names}
    labels: list[str] = []
    for name in names:
        labels += [label for label in columns[name] if label not in labels]
    headers = ["measure", *names]
    if names == ["fast", "quality"]:
        headers.append("quality/fast")
    rows = []
    for label in labels:
        row = [label, *(columns[name].get(label, "") for name in names)]
        if len(headers) > len(names) + 1:
            row.append(_ratio_text(columns["quality"].get(label), columns["fast"].get(label)))
        rows.append(row)
    return headers, rows


def _ratio_text(a: str | None, b: str | None) -> str:
    def number(text: str | None) -> float | None:
        if not text or "(" in text:  # counts with a detail in brackets: no ratio
            return None
        try:
            return float((text or "").rstrip("%").split(" ")[0])
        except ValueError:
            return None

    return fmt(ratio(number(a), number(b)), "x")


def comparison_markdown(
    reports: dict[str, dict[str, Any]], pred: dict[str, Any] | None, headline_rows: Any
) -> str:
    headers, rows = comparison_rows(reports, headline_rows)
    first = next(iter(reports.values()))
    models = ", ".join(f"{name}: `{r.get('model')}`" for name, r in reports.items())
    text = (
        f"Measured with `copilot-server bench --profile both` on {first.get('machine')}; "
        f"{models}.\n\n{table(headers, rows)}\n"
    )
    if pred:
        text += "\n" + render_prediction(pred).replace("\n  ", "\n- ") + "\n"
    return text
