"""Model profiles: `fast` (0.5B), `quality` (1.5B), and `auto`, which picks by measured speed.

`auto` measures this machine once: prompt and generation tokens/s of the fast model and
whether the llama.cpp build offloads to a GPU. The result is cached under the cache dir,
keyed by the llama.cpp build (version + system info), the CPU (model name + flags), the
threads and the GPU layers, so a new build or machine is measured again.

The measurement never makes a completion wait: it runs on a background thread after the
fast model has loaded (the first start uses `fast`), yields the model to any request the
moment one asks for it (the cancel flag is checked between tokens), and its choice takes
effect at the next start (or at once with `copilot-server doctor`, which measures in the
foreground when nothing is cached).

The choice (`choose_profile`) is a pure function of a `Measurement`:
  - a GPU build that offloads → quality;
  - else quality when the predicted typing p50 of the 1.5B is under QUALITY_BOUND_MS:

        p50(model) = OVERHEAD_MS + 1000 · (PROMPT_TOKENS · Cp / p  +  SHOWN_TOKENS · Cg / g)

    p, g: the fast model's measured prompt and generation tokens/s; Cp, Cg: the model's
    cost per token relative to the 0.5B (1 for fast; QUALITY_PROMPT_COST and
    QUALITY_GEN_COST for the 1.5B);
  - and only when the quality model is installed; else fast, with one message on how to
    install it. Nothing is downloaded at run time.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import LOCAL_MODEL_KINDS, ModelSettings
from .base import background_work
from .models import DEFAULT_MODEL, LARGER_MODEL, MODEL_ENV, SplitModel, cache_dir, is_available

log = logging.getLogger(__name__)

Profile = Literal["fast", "quality"]
PROFILE_MODELS: dict[str, SplitModel] = {"fast": DEFAULT_MODEL, "quality": LARGER_MODEL}

# The typing p50 `auto` accepts for the 1.5B: above ~400 ms a suggestion that appears
# while the user pauses arrives after they have typed on (the replay's looks wait 250 ms+).
QUALITY_BOUND_MS = 400.0
# Debounce (150 ms, as editors and our replay use) plus server time around the model
# (p50 4.8 ms in the full typing replay).
OVERHEAD_MS = 160.0
# The median look of the full typing replay (README, 0.5B: p50 475 ms; 13 of its 58 looks
# were cache answers at ~155 ms, so the median is a model call) evaluates a few prompt
# tokens (KV reuse keeps the rest: typically the characters typed since the last call and
# the line's tail; the mean of 41 per call is pulled up by cold first requests) and
# generates the rest of the line before the first line is shown. Fitted there: 16 and 6.
PROMPT_TOKENS = 16.0
SHOWN_TOKENS = 6.0
# Cost per token of the 1.5B relative to the 0.5B: CPU time per token with one thread (so
# other processes' load does not count), best of 3, on the 2-core AMD EPYC here. Prompt
# tokens: 9.0 vs 20.4 ms (2.3×). A generated token also pays llama-cpp-python's sampling
# over the 152k-token vocabulary, the same for both models: 32.4 vs 49.6 ms (1.5×).
QUALITY_PROMPT_COST = 2.3
QUALITY_GEN_COST = 1.5
COST = {"fast": (1.0, 1.0), "quality": (QUALITY_PROMPT_COST, QUALITY_GEN_COST)}

HOW_TO_CHANGE = (
    "set model.profile to auto, fast or quality (config file ~/.config/copilot-server/"
    "config.json, the editor's copilotServer settings, $COPILOT_SERVER_PROFILE or "
    "--profile); model.path or $COPILOT_SERVER_MODEL loads any GGUF instead; "
    "`copilot-server doctor --remeasure` measures this machine again"
)


def install_hint() -> str:
    return (
        f"The quality model ({LARGER_MODEL.file_name}) is not installed: using the fast one. "
        "Install it with `.venv/bin/pip install 'copilot-server[quality]'` "
        "(or `make demo PROFILE=quality`); nothing is downloaded at run time."
    )


# -- the measurement and the choice ---------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What `auto` knows about this machine (tokens/s are of the fast model)."""

    gpu_offload: bool
    prompt_tps: float | None = None  # None: not measured yet
    generation_tps: float | None = None
    machine: str = ""  # the cache key it was measured under
    measured_at: str = ""
    # 1-minute load average then: a busy machine measures slow (`doctor --remeasure`).
    load_avg: float | None = None
    facts: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def measured(self) -> bool:
        return bool(self.prompt_tps and self.generation_tps)


@dataclass(frozen=True)
class ProfileChoice:
    profile: Profile  # what is loaded
    reason: str
    wanted: Profile  # what the rule picks, installed or not
    predicted_p50_ms: dict[str, float] = field(default_factory=dict)
    note: str = ""  # for the user: how to install the quality model, when it is missing


def predict_typing_p50_ms(measurement: Measurement, profile: str) -> float | None:
    """The formula in the module docstring; None when the machine is not measured."""
    if not measurement.measured:
        return None
    cost_prompt, cost_gen = COST[profile]
    assert measurement.prompt_tps and measurement.generation_tps
    seconds = (
        PROMPT_TOKENS * cost_prompt / measurement.prompt_tps
        + SHOWN_TOKENS * cost_gen / measurement.generation_tps
    )
    return OVERHEAD_MS + 1000 * seconds


def choose_profile(
    measurement: Measurement, quality_installed: bool, bound_ms: float = QUALITY_BOUND_MS
) -> ProfileChoice:
    """`auto`'s rule: quality on a GPU or under the bound, when installed; else fast."""
    predicted = {
        name: round(ms)
        for name in COST
        if (ms := predict_typing_p50_ms(measurement, name)) is not None
    }
    if measurement.gpu_offload:
        wanted: Profile = "quality"
        reason = "the llama.cpp build offloads to a GPU"
    elif not measurement.measured:
        wanted = "fast"
        reason = (
            "this machine is not measured yet (it is measured once, in the background after "
            "the model loads; the choice applies from the next start, or run "
            "`copilot-server doctor`)"
        )
    else:
        speed = (
            f"{measurement.prompt_tps:.0f} prompt tok/s, "
            f"{measurement.generation_tps:.1f} generated tok/s measured with the 0.5B"
        )
        quality_ms = predicted["quality"]
        if quality_ms <= bound_ms:
            wanted = "quality"
            reason = (
                f"predicted typing p50 with the 1.5B {quality_ms} ms ≤ {bound_ms:.0f} ms ({speed})"
            )
        else:
            wanted = "fast"
            reason = (
                f"predicted typing p50 with the 1.5B {quality_ms} ms > {bound_ms:.0f} ms "
                f"(fast: {predicted['fast']} ms; {speed})"
            )
    if wanted == "quality" and not quality_installed:
        return ProfileChoice("fast", reason, wanted, predicted, install_hint())
    return ProfileChoice(wanted, reason, wanted, predicted)


# -- this machine ------------------------------------------------------------------------


def effective_threads(settings: ModelSettings) -> int:
    # As LlamaEngine: the setting, else every core.
    return settings.threads or max(1, os.cpu_count() or 2)


def gpu_offload(settings: ModelSettings) -> bool:
    """The build offloads to a GPU and the settings let it (n_gpu_layers ≠ 0)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload()) and settings.n_gpu_layers != 0


def _cpu() -> tuple[str, str]:
    """CPU model name and feature flags (Linux /proc/cpuinfo; elsewhere what platform says)."""
    name, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not name:
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.strip()
                if name and flags:
                    break
    except OSError:
        pass
    return name or platform.processor() or platform.machine(), flags


_FACTS: dict[tuple[int, bool], dict[str, Any]] = {}


def machine_facts(settings: ModelSettings) -> dict[str, Any]:
    """What the speed depends on: llama.cpp build, CPU, threads, GPU use (cached per process)."""
    threads, gpu = effective_threads(settings), gpu_offload(settings)
    if (threads, gpu) not in _FACTS:
        import llama_cpp

        cpu, flags = _cpu()
        _FACTS[(threads, gpu)] = {
            "llama_cpp_python": llama_cpp.__version__,
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            "cpu": cpu,
            "cpu_flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16],
            "cores": os.cpu_count(),
            "threads": threads,
            "gpu_offload": gpu,
            "n_gpu_layers": str(settings.n_gpu_layers),
            "model_sha256": DEFAULT_MODEL.sha256,
        }
    return _FACTS[(threads, gpu)]


def machine_key(facts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def measurements_dir() -> Path:
    return cache_dir().parent / "profiles"


def _cache_file(key: str) -> Path:
    return measurements_dir() / f"machine-{key}.json"


def load_measurement(key: str) -> Measurement | None:
    """The cached measurement for this key; a missing or damaged file is no measurement."""
    try:
        data = json.loads(_cache_file(key).read_text(encoding="utf-8"))
        measurement = Measurement(**data)
    except (OSError, ValueError, TypeError):
        return None
    return measurement if measurement.machine == key and measurement.measured else None


def save_measurement(measurement: Measurement) -> Path:
    path = _cache_file(measurement.machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(measurement), indent=2), encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a file
    return path


# -- deciding what to load ---------------------------------------------------------------


@dataclass(frozen=True)
class ProfileDecision:
    setting: str  # model.profile: auto | fast | quality
    choice: ProfileChoice
    model: SplitModel
    measurement: Measurement | None = None  # auto only
    needs_measurement: bool = False  # auto, and this machine is not measured yet

    def describe(self) -> dict[str, Any]:
        """For doctor and status: what was chosen, why, and how to change it."""
        out: dict[str, Any] = {
            "setting": self.setting,
            "chosen": self.choice.profile,
            "model": self.model.file_name,
            "reason": self.choice.reason,
            "quality_installed": is_available(LARGER_MODEL),
            "how_to_change": HOW_TO_CHANGE,
        }
        if self.choice.note:
            out["note"] = self.choice.note
        if self.measurement is not None:
            out["bound_ms"] = QUALITY_BOUND_MS
            out["predicted_typing_p50_ms"] = self.choice.predicted_p50_ms
            out["measurement"] = {
                "gpu_offload": self.measurement.gpu_offload,
                "prompt_tokens_per_s": self.measurement.prompt_tps,
                "generation_tokens_per_s": self.measurement.generation_tps,
                "measured_at": self.measurement.measured_at or "not yet",
                "load_avg_then": self.measurement.load_avg,
                "cores": os.cpu_count(),
                "cache": str(_cache_file(self.measurement.machine)),
            }
        return out


def explicit_model(settings: ModelSettings) -> str | None:
    """A model the user named (model.path, else $COPILOT_SERVER_MODEL): it beats profiles."""
    return settings.path or os.environ.get(MODEL_ENV) or None


def decide(settings: ModelSettings) -> ProfileDecision:
    """Which shipped model the profile setting means on this machine (cheap: no loading)."""
    installed = is_available(LARGER_MODEL)
    if settings.profile != "auto":
        if settings.profile == "quality" and not installed:
            reason = "model.profile = quality, but the quality model is not installed"
            choice = ProfileChoice("fast", reason, "quality", note=install_hint())
        else:
            choice = ProfileChoice(
                settings.profile, f"model.profile = {settings.profile}", settings.profile
            )
        return ProfileDecision(settings.profile, choice, PROFILE_MODELS[choice.profile])
    facts = machine_facts(settings)
    key = machine_key(facts)
    cached = load_measurement(key)
    measurement = cached or Measurement(gpu_offload=facts["gpu_offload"], machine=key, facts=facts)
    choice = choose_profile(measurement, installed)
    return ProfileDecision(
        "auto",
        choice,
        PROFILE_MODELS[choice.profile],
        measurement,
        needs_measurement=cached is None,
    )


# -- measuring ---------------------------------------------------------------------------

# A list the model continues for many tokens (no early end of text), in a fresh context.
_SPEED_HEAD = "# speed check {stamp}\n"
_SPEED_BODY = (
    "def is_prime(n: int) -> bool:\n"
    "    if n < 2:\n        return False\n"
    "    for d in range(2, int(n ** 0.5) + 1):\n"
    "        if n % d == 0:\n            return False\n    return True\n\n\n"
    "# The first primes, checked against is_prime in the tests below.\n"
    "PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,"
)
# ~96 prompt tokens: a batch of the size a keystroke evaluates, not a whole cold file,
# and short enough that a request arriving mid-batch waits well under a second.
SPEED_PROMPT_TOKENS = 96
SPEED_GENERATED = 32


def measure_speed(engine: Any, cancel: threading.Event | None = None) -> tuple[float, float] | None:
    """Prompt and generation tokens/s of `engine`; None when `cancel` was set meanwhile."""
    cancel = cancel or threading.Event()

    def stop(_text: str) -> bool:
        return cancel.is_set()

    body = engine.tokenize(_SPEED_BODY)
    best_prompt = 0.0
    for _ in range(2):  # the better of two: a busy neighbour only ever slows one down
        head = engine.tokenize(_SPEED_HEAD.format(stamp=time.time_ns()))  # fresh KV each time
        prompt = (head + body)[:SPEED_PROMPT_TOKENS]
        first = engine.generate(prompt, max_tokens=1, should_stop=stop, cancel=cancel)
        if first.stop_reason == "cancelled" or cancel.is_set():
            return None
        seconds = max(first.prompt_ms / 1000, 1e-6)
        best_prompt = max(best_prompt, first.prompt_tokens_evaluated / seconds)
    gen = engine.generate(prompt, max_tokens=SPEED_GENERATED, should_stop=stop, cancel=cancel)
    if gen.stop_reason == "cancelled" or cancel.is_set() or gen.tokens_generated < 4:
        return None
    # The first token's time is the prompt's; the rest are decode steps.
    gen_tps = (gen.tokens_generated - 1) / max(gen.generation_ms / 1000, 1e-6)
    return best_prompt, gen_tps


def measure_now(
    settings: ModelSettings, engine: Any, cancel: threading.Event | None = None
) -> Measurement | None:
    """Measure with `engine` (the fast model) and cache the result for this machine."""
    measurement = take_measurement(settings, engine, cancel)
    if measurement is not None:
        keep(measurement)
    return measurement


def take_measurement(
    settings: ModelSettings, engine: Any, cancel: threading.Event | None = None
) -> Measurement | None:
    """This machine's measurement with `engine` (the fast model), not cached yet."""
    facts = machine_facts(settings)
    speed = measure_speed(engine, cancel)
    if speed is None:
        return None
    return Measurement(
        gpu_offload=facts["gpu_offload"],
        prompt_tps=round(speed[0], 1),
        generation_tps=round(speed[1], 2),
        machine=machine_key(facts),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        load_avg=_load_avg(),
        facts=facts,
    )


def keep(measurement: Measurement) -> None:
    assert measurement.prompt_tps and measurement.generation_tps
    path = save_measurement(measurement)
    log.info(
        "measured this machine: %.0f prompt tok/s, %.1f generated tok/s (%s)",
        measurement.prompt_tps,
        measurement.generation_tps,
        path,
    )


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on Windows
        return None


def is_fast_model(engine: Any) -> bool:
    return Path(getattr(engine.info, "path", "")).name == DEFAULT_MODEL.file_name


class BackgroundMeasurement:
    """Measures the fast model once, on a low-priority thread, yielding to every request.

    `engine_wanted()` is called whenever a request asks for the engine: the running step
    is cancelled (between tokens) and thrown away, and the measurement tries again only
    after IDLE_S without requests, since its prompts replace the editor's KV cache.
    """

    START_DELAY_S = 1.0  # let the documents opened during the load be read first
    IDLE_S = 60.0
    ATTEMPTS = 3

    def __init__(self, settings: ModelSettings, engine: Any, wanted_at: float = 0.0) -> None:
        self._settings = settings
        self._engine = engine
        self._cancel = threading.Event()  # a request wants the engine, or we stop
        self._stopping = threading.Event()
        # Requests that waited for the load count: the editor is already in use.
        self._wants = 1 if wanted_at else 0
        self._last_want = wanted_at
        self.result: Measurement | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="profile-measure", daemon=True)

    def start(self) -> BackgroundMeasurement:
        _running.add(self)
        self._thread.start()
        return self

    def engine_wanted(self) -> None:
        self._wants += 1
        self._last_want = time.monotonic()
        self._cancel.set()

    def stop(self) -> None:
        """Cancel and wait for the thread: closing the engine under a running step crashes
        the process. It ends at the next token, or after the prompt batch it is reading
        (96 tokens: under a second on a quiet 2-core CPU)."""
        self._stopping.set()
        self._cancel.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        _running.discard(self)

    def _run(self) -> None:
        from ..priority import lower_thread_priority

        lower_thread_priority()  # as the model thread: measure what completions get
        try:
            if self._stopping.wait(self.START_DELAY_S):
                return
            attempts = 0
            while attempts < self.ATTEMPTS and not self._stopping.is_set():
                if self._wants and not self._wait_for_idle():
                    return
                seen = self._wants
                self._cancel.clear()
                if self._stopping.is_set():
                    return
                if self._wants != seen:
                    continue  # a request came in between: wait for quiet again
                attempts += 1
                try:
                    # Background work: an engine host serving other windows lets their
                    # completions go first (engines/base.py).
                    with background_work():
                        measured = take_measurement(self._settings, self._engine, self._cancel)
                except Exception:  # a failed measurement leaves `auto` on fast, never crashes
                    log.exception("measuring this machine failed")
                    return
                # A request during the measurement shared the CPU with it: not kept.
                if measured is not None and self._wants == seen:
                    keep(measured)
                    self.result = measured
                    return
                log.debug("speed measurement gave way to a request (attempt %d)", attempts)
        finally:
            self.done.set()
            _running.discard(self)

    def _wait_for_idle(self) -> bool:
        while not self._stopping.is_set():
            quiet = time.monotonic() - self._last_want
            if quiet >= self.IDLE_S:
                return True
            self._stopping.wait(min(5.0, self.IDLE_S - quiet))
        return False


_running: set[BackgroundMeasurement] = set()


@atexit.register
def _stop_all() -> None:
    # A daemon thread inside llama.cpp while the interpreter tears the model down crashes.
    for measurement in list(_running):
        measurement.stop()


def measure_in_background(
    settings: Any, engine: Any, wanted_at: float = 0.0
) -> BackgroundMeasurement | None:
    """Start measuring when `auto` needs it: local fast model, nothing cached, no path."""
    if settings.engine.kind not in LOCAL_MODEL_KINDS or settings.model.profile != "auto":
        return None
    if explicit_model(settings.model) or not is_fast_model(engine):
        return None
    try:
        if not decide(settings.model).needs_measurement:
            return None
    except Exception:
        log.exception("cannot tell whether this machine is measured")
        return None
    return BackgroundMeasurement(settings.model, engine, wanted_at).start()
