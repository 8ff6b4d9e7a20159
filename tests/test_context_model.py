"""The context engine and the `context` preview with the real model's tokenizer.

Only the vocabulary is loaded (no weights, no generation): budgets are checked in real
tokens, and KV-cache reuse as llama.cpp measures it, by the common token prefix of
consecutive prompts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from copilot_server.completion import CompletionRequest
from copilot_server.config import Settings
from copilot_server.context.engine import ContextEngine
from copilot_server.context.index import WorkspaceIndex
from copilot_server.documents import DocumentStore
from copilot_server.prompts import build_fim_prompt
from copilot_server.prompts.whitespace import without_trailing_whitespace
from copilot_server.sequences import common_prefix_len

pytestmark = pytest.mark.model

HELPERS = '''"""Storage helpers."""

import json


def load_records(path: str, limit: int = 100) -> list[dict]:
    """Read at most `limit` records from a JSON lines file."""
    with open(path) as handle:
        return [json.loads(line) for line in handle][:limit]


class RecordCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self.items.get(key)
'''


def app_source() -> str:
    steps = "".join(f"        checked_{i} = self.validate(records[{i}])\n" for i in range(60))
    return (
        "import os\nimport logging\n\nfrom store.helpers import RecordCache, load_records\n\n"
        "log = logging.getLogger(__name__)\n\n\n"
        "class Importer:\n    def __init__(self, root: str) -> None:\n        self.root = root\n"
        "        self.cache = RecordCache(256)\n\n"
        "    def run(self, name: str) -> int:\n"
        "        records = load_records(os.path.join(self.root, name))\n"
        f"{steps}        extra = load_records(name, limit=5)\n        spare = RecordCache(8)\n"
        "        \n        return len(records)\n"
    )


@pytest.fixture(scope="module")
def engine():
    from copilot_server.engines.models import resolve_model_path
    from tests.gguf_factory import load_vocab_engine

    loaded = load_vocab_engine(resolve_model_path(None))
    yield loaded
    loaded.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "store").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "store" / "helpers.py").write_text(HELPERS)
    (root / "app.py").write_text(app_source())
    return root


def test_parts_fit_their_budgets_in_real_tokens_and_typing_reuses_the_kv_cache(engine, workspace):
    settings = Settings()
    index = WorkspaceIndex([workspace], settings.context, use_process=False)
    index.build()
    store = DocumentStore()
    text = app_source()
    uri = (workspace / "app.py").as_uri()
    doc = store.open(uri, "python", 1, text)
    builder = ContextEngine(store, index)
    offset = text.index("        \n        return len") + 8
    line = text[:offset].count("\n")
    prompts = []
    for i, ch in enumerate("total = sum(len(r) for r in records)"):
        store.change(uri, 2 + i, [((line, 8 + i, line, 8 + i), ch)], "utf-16")
        request = CompletionRequest(
            uri, str(workspace / "app.py"), "python", doc.text, offset + i + 1
        )
        context = builder(request, engine, settings)
        prompts.append(build_fim_prompt(engine, without_trailing_whitespace(context)))
    first = prompts[0]
    kinds = [part.name for part in first.parts]
    assert kinds[:2] == ["imports", "definition"] and kinds[-3:] == ["prefix", "suffix", "line"]
    assert "scope" in kinds  # `class Importer` / `def run` scrolled out of the window
    budgets = settings.context
    limits = {
        "imports": budgets.import_tokens,
        "definition": budgets.definition_tokens,
        "similar": budgets.snippet_tokens,
        "scope": budgets.scope_tokens,
        "prefix": budgets.prefix_tokens,
        "suffix": budgets.suffix_tokens,
    }
    for name, limit in limits.items():
        # A snippet is tokenized with its path line in the prompt (a few tokens more).
        spent = sum(part.tokens for part in first.parts if part.name == name)
        assert spent <= limit + (
            8 if name in ("imports", "definition", "similar", "scope") else 0
        ), name
    definition = next(part for part in first.parts if part.name == "definition")
    assert "def load_records(path: str, limit: int = 100) -> list[dict]:" in definition.text
    # Each keystroke re-evaluates only the typed tail: >97% of the prompt comes from cache.
    pairs = zip(prompts, prompts[1:], strict=False)
    evaluated = sum(len(b.tokens) - common_prefix_len(a.tokens, b.tokens) for a, b in pairs)
    total = sum(len(p.tokens) for p in prompts[1:])
    assert evaluated / total < 0.03, (evaluated, total)


def test_context_command_prints_every_part_with_its_token_count(workspace):
    line = app_source().split("\n").index("        ")
    args = [
        sys.executable,
        "-m",
        "copilot_server",
        "context",
        str(workspace / "app.py"),
        "--line",
        str(line),
    ]
    done = subprocess.run(
        [*args, "--character", "8", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    names = [part["name"] for part in report["parts"]]
    assert names[0] == "imports" and names[-3:] == ["prefix", "suffix", "line"]
    definition = next(part for part in report["parts"] if part["name"] == "definition")
    assert definition["path"] == "store/helpers.py" and definition["tokens"] > 10
    assert report["path"] == "app.py" and report["index"]["files"] == 2
    assert sum(part["tokens"] for part in report["parts"]) < report["prompt_tokens"]
    assert all(
        part["budget"] is None or part["tokens"] <= part["budget"] + 8 for part in report["parts"]
    )
    text = subprocess.run([*args, "--character", "8"], capture_output=True, text=True, timeout=300)
    assert text.returncode == 0, text.stderr
    assert "── definition  store/helpers.py · " in text.stdout and "tokens / 192 ──" in text.stdout
    assert "── line · " in text.stdout and "prompt tokens" in text.stdout.split("\n")[0]
