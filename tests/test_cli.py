"""Headless commands with the real model: complete, doctor, and a broken model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import (
    SAMPLE,
    SAMPLE_URI,
    SERVER_COMMAND,
    inline_params,
    items_of,
    open_document,
    profile,
)
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

CLI = [sys.executable, "-m", "copilot_server"]


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.model
def test_complete_suggests_loading_the_json_in_load_config(tmp_path):
    source = tmp_path / "config_loader.py"
    source.write_text(SAMPLE)
    done = _run("complete", str(source), "--line", "5", "--character", "8", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    first_line = result["text"].split("\n")[0]
    assert "json.load(f)" in first_line
    assert result["tokens_generated"] >= result["tokens_shown"] > 0
    assert result["prompt_tokens"] > 0 and result["latency_ms"] > 0


@pytest.mark.model
def test_doctor_reports_real_figures():
    done = _run("doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"]["path"].endswith(".gguf")
    assert report["model"]["fim"] is True
    assert report["model"]["architecture"] == "qwen2"
    assert isinstance(report["gpu_offload"], bool)
    assert report["prompt_tokens_per_s"] > 1
    assert report["generation_tokens_per_s"] > 1


def test_complete_rejects_position_past_end_and_binary_files(tmp_path):
    source = tmp_path / "short.py"
    source.write_text("x = 1\n")
    done = _run("complete", str(source), "--line", "40", "--character", "0")
    assert done.returncode == 1 and "past the end" in done.stderr
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    done = _run("complete", str(binary), "--line", "0", "--character", "0")
    assert done.returncode == 1 and "binary" in done.stderr


def test_missing_model_says_how_to_get_one(tmp_path):
    env = {**os.environ, "COPILOT_SERVER_MODEL": str(tmp_path / "missing.gguf")}
    done = _run("model", env=env)
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "COPILOT_SERVER_MODEL" in done.stderr


def _corrupt_model(path: Path) -> Path:
    path.write_bytes(b"GGUF" + os.urandom(4096))
    return path


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=SERVER_COMMAND,
        server_env={
            **os.environ,
            "COPILOT_SERVER_MODEL": str(_corrupt_model(Path("/tmp/copilot-corrupt-test.gguf"))),
        },
    )
)
async def broken_model_client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=profile("vscode")))
    yield
    await lsp_client.shutdown_session()


async def test_corrupt_model_gives_error_status_and_the_server_stays_up(
    broken_model_client: LanguageClient,
):
    open_document(broken_model_client, SAMPLE)
    result = await broken_model_client.text_document_inline_completion_async(
        inline_params(SAMPLE_URI, 5, 8)
    )
    assert items_of(result) == []
    status = await broken_model_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="copilot.status")
    )
    assert status["state"] == "error"
    assert "could not load" in status["message"] or "GGUF" in status["message"]
    assert any("copilot-server" in m.message for m in broken_model_client.messages)
