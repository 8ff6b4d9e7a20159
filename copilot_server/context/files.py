"""Which workspace files may be read: skipped folders, .gitignore rules, likely secrets."""

from __future__ import annotations

import fnmatch
import functools
import os
import stat as stat_module
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Folders never worth indexing, ignored or not: version control, caches, environments.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".jj",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".gradle",
        ".idea",
    }
)
# Likely secrets, never read (file name globs; a trailing / marks a folder). Matching a
# harmless file by mistake only loses a little context; reading a key into a prompt would
# be worse.
SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.gpg",
    "*.asc",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    "secret",
    "secrets",
    "*secret.*",
    "*secrets.*",
    "*_secret*",
    "*-secret*",
    "credentials",
    "*credentials.*",
    "*_credentials*",
    ".ssh/",
    ".gnupg/",
    ".aws/",
    ".docker/",
)
# Bounds on what one file and the whole index may hold (definitions of ~300 bytes each:
# ~30 MB at the total cap).


def is_secret_name(name: str, is_dir: bool) -> bool:
    """fnmatch on the lower-cased name (cheap: open documents are checked per region)."""
    lowered = name.lower()
    for pattern in SECRET_PATTERNS:
        if pattern.endswith("/"):
            if is_dir and fnmatch.fnmatchcase(lowered, pattern[:-1]):
                return True
        elif fnmatch.fnmatchcase(lowered, pattern):
            return True
    return False


@functools.lru_cache(maxsize=8192)
def is_secret_path(path: str) -> bool:
    """Whether a file looks like it holds secrets, by its name or a folder's name."""
    parts = Path(path).parts
    if not parts:
        return False
    return is_secret_name(parts[-1], False) or any(is_secret_name(p, True) for p in parts[:-1])


class IgnoreRules:
    """.gitignore files at every level of one workspace folder (plus .git/info/exclude)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._specs.clear()

    def _spec(self, folder: Path) -> Any:
        with self._lock:
            if folder in self._specs:
                return self._specs[folder]
        import pathspec

        lines: list[str] = []
        candidates = [folder / ".gitignore"]
        if folder == self.root:
            candidates.append(folder / ".git" / "info" / "exclude")
        for candidate in candidates:
            try:
                if candidate.is_file() and not candidate.is_symlink():
                    lines += candidate.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
        spec = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        with self._lock:
            self._specs[folder] = spec
        return spec

    def ignored(self, path: Path, is_dir: bool) -> bool:
        """Git's answer for `path` (its parent folders are assumed not ignored)."""
        result: bool | None = None
        folder = path.parent
        chain: list[Path] = []
        while True:
            chain.append(folder)
            if folder == self.root or folder.parent == folder:
                break
            folder = folder.parent
        for base in reversed(chain):  # deeper .gitignore files have the last word
            spec = self._spec(base)
            if spec is None:
                continue
            rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            include = spec.check_file(rel).include
            if include is not None:
                result = include
        return bool(result)


def stat_is_plain_file(stat: os.stat_result) -> bool:
    return stat_module.S_ISREG(stat.st_mode)  # from lstat: a link is not a plain file


def inside(path: str, roots: Iterable[str]) -> bool:
    """Whether `path`, every link resolved, is in one of the (resolved) `roots`."""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def read_no_follow(path: str, limit: int) -> bytes | None:
    """Up to `limit` bytes of the plain file at `path`; None for a link (O_NOFOLLOW: it may
    have become one since it was checked) or anything else that cannot be read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat_is_plain_file(os.fstat(fd)):
            return None  # a FIFO or device must not block or feed the reader
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit)
    except OSError:
        return None
    finally:
        os.close(fd)
