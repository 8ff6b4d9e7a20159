"""The workspace index on real folders: what it reads, what it never reads, and freshness."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from copilot_server.config import ContextSettings
from copilot_server.context.files import is_secret_path
from copilot_server.context.index import WorkspaceIndex
from copilot_server.lsp.convert import workspace_folders


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _function(name: str) -> str:
    return f"def {name}(value):\n    return value\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    _write(root, "src/app.py", _function("app_main"))
    _write(root, "src/util/strings.py", _function("slugify"))
    _write(
        root,
        "web/main.ts",
        "export function renderPage(id: number): string {\n  return `${id}`;\n}\n",
    )
    _write(root, ".gitignore", "build/\n*.gen.py\n!keep.gen.py\n")
    _write(root, "build/out.py", _function("built_thing"))
    _write(root, "src/schema.gen.py", _function("generated_thing"))
    _write(root, "src/keep.gen.py", _function("kept_generated"))
    _write(root, "src/util/.gitignore", "local_*.py\n")
    _write(root, "src/util/local_scratch.py", _function("scratch_thing"))
    _write(root, "node_modules/lib/index.js", "function fromNodeModules() {}\n")
    _write(root, ".git/hooks/pre.py", _function("git_hook"))
    # Secrets: never read, whatever their extension.
    _write(root, ".env", "API_KEY=abc\n")
    _write(root, "config/secrets.py", "def secret_thing():\n    return 'hunter2'\n")
    _write(root, "deploy/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    _write(root, ".ssh/helper.py", _function("ssh_thing"))
    # Binaries and oversized files.
    (root / "src/blob.py").write_bytes(b"def blob_thing():\x00\x01\x02 pass\n")
    _write(root, "src/huge.py", _function("huge_thing") + "# padding\n" * 400)
    return root


def _names(index: WorkspaceIndex) -> set[str]:
    return {d.name for path in index.indexed_files() for d in index.definitions_in(path)}


def _index(root: Path, **settings) -> WorkspaceIndex:
    limits = {"index_max_file_bytes": 2_000, **settings}
    index = WorkspaceIndex([root], ContextSettings(**limits), use_process=False)
    index.build()
    return index


def test_index_reads_code_and_respects_gitignore_secrets_binaries_and_size(workspace):
    index = _index(workspace)
    assert _names(index) == {"app_main", "slugify", "renderPage", "kept_generated"}
    assert index.stats.skipped.get("binary") == 1
    assert index.stats.skipped.get("too large") == 1
    assert index.stats.skipped.get("secret", 0) >= 2
    found = index.lookup("slugify")
    assert len(found) == 1 and found[0].text == "def slugify(value):\n    return value"
    assert index.display_path(found[0].path) == "src/util/strings.py"
    assert index.lookup("renderPage")[0].language == "typescript"


def test_skip_reason_explains_every_exclusion(workspace):
    index = WorkspaceIndex([workspace], ContextSettings(), use_process=False)
    assert index.skip_reason(workspace / "src/app.py") is None
    assert index.skip_reason(workspace / "build/out.py") == "gitignored"
    assert index.skip_reason(workspace / "src/schema.gen.py") == "gitignored"
    assert index.skip_reason(workspace / "src/keep.gen.py") is None
    assert index.skip_reason(workspace / "src/util/local_scratch.py") == "gitignored"
    assert index.skip_reason(workspace / "node_modules/lib/index.js") == "skipped folder"
    assert index.skip_reason(workspace / "config/secrets.py") == "secret"
    assert index.skip_reason(workspace / ".ssh/helper.py") == "secret"
    assert index.skip_reason(workspace / "README.md") == "no grammar"
    assert index.skip_reason(workspace.parent / "elsewhere.py") == "outside workspace"


def test_secret_names():
    for path in (
        ".env",
        "app/.env.local",
        "prod.env",
        "id_ed25519",
        "k.pem",
        "a/secrets.py",
        "x/.aws/c.py",
    ):
        assert is_secret_path(path), path
    for path in ("src/main.py", "SecretManager.java", "environment.py", "keys.py"):
        assert not is_secret_path(path), path


def test_symlinks_are_never_followed_out_of_the_workspace(workspace, tmp_path):
    outside = tmp_path / "outside"
    _write(outside, "leak.py", _function("outside_thing"))
    os.symlink(outside, workspace / "linked_dir")
    os.symlink(outside / "leak.py", workspace / "src/linked.py")
    index = _index(workspace)
    assert "outside_thing" not in _names(index)
    assert index.stats.skipped.get("symlink") == 2
    assert index.skip_reason(workspace / "linked_dir/leak.py") == "symlink"
    index.update_paths([str(workspace / "linked_dir/leak.py"), str(workspace / "src/linked.py")])
    assert "outside_thing" not in _names(index)


def test_file_and_definition_caps_bound_memory(workspace):
    for i in range(30):
        _write(workspace, f"many/m{i:02}.py", _function(f"many_{i:02}"))
    index = _index(workspace, index_max_files=10)
    assert len(index.indexed_files()) <= 10
    assert index.stats.skipped.get("file limit") == 1


def test_update_paths_reindexes_changed_and_drops_deleted_files(workspace):
    index = _index(workspace)
    app = workspace / "src/app.py"
    app.write_text(_function("app_main") + "\n\n" + _function("app_extra"))
    os.utime(app, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    index.update_paths([str(app)])
    assert index.lookup("app_extra") and index.recent_files() == [str(app)]
    (workspace / "src/util/strings.py").unlink()
    index.update_paths([str(workspace / "src/util/strings.py")])
    assert index.lookup("slugify") == []
    # A new ignore rule drops what it now ignores.
    _write(workspace, ".gitignore", "build/\n*.gen.py\n!keep.gen.py\nweb/\n")
    index.update_paths([str(workspace / ".gitignore")])
    assert index.lookup("renderPage") == []


def test_start_returns_at_once_and_the_watcher_keeps_the_index_fresh(workspace):
    index = WorkspaceIndex(
        [workspace], ContextSettings(index_max_file_bytes=2_000), use_process=True
    )
    started = time.perf_counter()
    index.start()
    assert time.perf_counter() - started < 0.5  # the first completion is not kept waiting
    try:
        assert index.ready.wait(60), "index build did not finish"
        assert index.lookup("slugify")
        assert index.watching.wait(30), "the watcher did not start"
        _write(workspace, "src/fresh.py", _function("fresh_function"))
        deadline = time.monotonic() + 20
        while not index.lookup("fresh_function") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert index.lookup("fresh_function"), "the watcher did not pick up a new file"
        (workspace / "src/fresh.py").unlink()
        deadline = time.monotonic() + 20
        while index.lookup("fresh_function") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not index.lookup("fresh_function")
    finally:
        index.stop()
    assert index.stats.state == "stopped"


def test_disabled_or_folderless_index_is_ready_and_empty(workspace):
    index = WorkspaceIndex([workspace], ContextSettings(index_enabled=False))
    index.start()
    assert index.ready.is_set() and index.indexed_files() == []
    empty = WorkspaceIndex([])
    empty.start()
    assert empty.ready.is_set() and empty.lookup("anything") == []


def test_workspace_folders_from_a_pygls_workspace(tmp_path):
    class Folder:
        def __init__(self, uri: str) -> None:
            self.uri = uri

    class Workspace:
        folders = {"a": Folder((tmp_path / "a").as_uri()), "b": Folder("untitled:x")}
        root_path = str(tmp_path / "root")

    assert workspace_folders(Workspace()) == [str(tmp_path / "a")]
    Workspace.folders = {}
    assert workspace_folders(Workspace()) == [str(tmp_path / "root")]


def test_changing_folders_drops_the_old_one_and_indexes_the_new_one(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first, "a.py", _function("from_first"))
    _write(second, "b.py", _function("from_second"))
    index = WorkspaceIndex([first], ContextSettings(), use_process=False)
    index.start()
    try:
        assert index.ready.wait(30)
        assert index.lookup("from_first") and not index.lookup("from_second")
        index.change_folders([second])
        assert index.ready.wait(30)
        assert index.folders == [second.resolve()]
        assert not index.lookup("from_first") and index.lookup("from_second")
        assert index.stats.files == 1
        # Still watching: the new folder's files are followed.
        assert index.watching.wait(30)
        _write(second, "c.py", _function("written_later"))
        deadline = time.monotonic() + 20
        while not index.lookup("written_later") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert index.lookup("written_later")
    finally:
        index.stop()
