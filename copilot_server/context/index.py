"""Workspace index: the definitions in the workspace's files, kept fresh with watchfiles.

What goes in: files with a tree-sitter grammar under the workspace folders, except what
.gitignore (every level, plus .git/info/exclude) ignores, version-control and tool
folders, binaries, files over `index_max_file_bytes`, and likely secrets (.env, keys,
credentials). Symlinks are never followed, so the index never leaves the folders: the walk
skips them, the watcher watches each real folder on its own (watchfiles' recursive mode
follows directory links, e.g. into /etc), and a file is checked again when it is read
(`stat_inside`, `read_inside`; O_NOFOLLOW), since a file can become a link at any time.

What it holds: per file, its definitions as the model would be shown them (signature or
short body), capped per file and in total, so memory stays bounded whatever the
workspace's size; a name → definitions map for look-ups.

How it runs: `start()` returns at once. A background thread walks the folders and hands
batches of files to a worker *process* that parses them: tree-sitter holds the GIL while
it parses (a 300 KB file: ~150 ms), which in a thread would stall the event loop and the
completion being served. Look-ups while the index builds see what is there so far. Then
the thread watches the folders and re-indexes what changes.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ContextSettings
from ..syntax.definitions import Definition
from ..syntax.languages import spec_for
from .files import (
    SKIP_DIRS,
    IgnoreRules,
    inside,
    is_secret_name,
    is_secret_path,
    read_no_follow,
    stat_is_plain_file,
)
from .index_worker import Parsed, lower_priority, parse_files

log = logging.getLogger(__name__)


MAX_DEFINITIONS = 100_000
BATCH = 32
# Changed files remembered for "recently edited" snippets.
RECENT_FILES = 16
# How long the watcher waits for a burst of changes to settle (watchfiles default 1.6 s).
WATCH_DEBOUNCE_MS = 400


@dataclass
class IndexStats:
    files: int = 0
    definitions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    build_s: float = 0.0
    state: str = "idle"  # idle | building | watching | ready | stopped

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "definitions": self.definitions,
            "skipped": dict(self.skipped),
            "build_s": round(self.build_s, 3),
            "state": self.state,
        }


@dataclass(frozen=True)
class _FileEntry:
    mtime_ns: int
    size: int
    definitions: tuple[Definition, ...]


class WorkspaceIndex:
    def __init__(
        self,
        folders: Iterable[str | Path] = (),
        settings: ContextSettings | Callable[[], ContextSettings] | None = None,
        *,
        include_secrets: bool = False,
        use_process: bool = True,
    ) -> None:
        # Fixed settings, or where to read the current ones (the server's settings store:
        # a change applies from the next batch of files).
        fixed = settings or ContextSettings()
        self._settings = fixed if callable(fixed) else (lambda: fixed)
        self.include_secrets = include_secrets
        self.use_process = use_process
        self._lock = threading.RLock()
        self._files: dict[str, _FileEntry] = {}
        self._by_name: dict[str, list[Definition]] = {}
        self._total_definitions = 0
        self._recent: OrderedDict[str, float] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changing = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.ready = threading.Event()  # the first build is done (or there is none)
        self.watching = threading.Event()  # the watcher is in place
        self.stats = IndexStats()
        self.folders: list[Path] = []
        self._rules: dict[Path, IgnoreRules] = {}
        # The real (not linked) folders the last walk went through: what the watcher watches.
        self._dirs: set[str] = set()
        self.set_folders(folders)

    # -- configuration -----------------------------------------------------------------

    @property
    def settings(self) -> ContextSettings:
        return self._settings()

    def set_folders(self, folders: Iterable[str | Path]) -> None:
        resolved: list[Path] = []
        for folder in folders:
            path = Path(folder).expanduser()
            try:
                path = path.resolve(strict=True)
            except OSError:
                log.warning("workspace folder %s does not exist; not indexed", folder)
                continue
            if path.is_dir() and path not in resolved:
                resolved.append(path)
        self.folders = resolved
        self._rules = {folder: IgnoreRules(folder) for folder in resolved}

    # -- life cycle --------------------------------------------------------------------

    def start(self, folders: Iterable[str | Path] | None = None, *, watch: bool = True) -> None:
        """Build in the background, then watch; returns at once."""
        if folders is not None:
            self.set_folders(folders)
        if not self.settings.index_enabled or not self.folders or self._thread is not None:
            if not self.folders or not self.settings.index_enabled:
                self.ready.set()
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(watch,), name="workspace-index", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.stats.state = "stopped"

    def change_folders(self, folders: Iterable[str | Path]) -> None:
        """The editor added or removed workspace folders: drop what is now outside them
        and index the new set (in the background when the index was running; files
        already indexed are not parsed again). Blocks up to a second while the watcher
        stops: call it off the event loop."""
        with self._changing:
            running = self._thread is not None
            if running:
                self.stop()
            self.set_folders(folders)
            with self._lock:
                for path in [p for p in self._files if self._folder_of(Path(p)) is None]:
                    self._drop(path)
                for path in [p for p in self._recent if self._folder_of(Path(p)) is None]:
                    del self._recent[path]
                self.stats.files = len(self._files)
                self.stats.definitions = self._total_definitions
            self.ready.clear()
            self.watching.clear()
            if running:
                self.start()
            else:
                self.ready.set()

    def build(self) -> None:
        """Index every folder now, in this thread (the CLI, tests, the benchmark)."""
        started = time.perf_counter()
        self.stats.state = "building"
        self._index_paths(self.iter_files())
        self.stats.build_s = time.perf_counter() - started
        self.stats.state = "ready"
        self.ready.set()

    def _run(self, watch: bool) -> None:
        try:
            self.build()
            log.info(
                "workspace index: %d files, %d definitions in %.1f s",
                self.stats.files,
                self.stats.definitions,
                self.stats.build_s,
            )
            if watch and not self._stop.is_set():
                self.stats.state = "watching"
                self._watch()
        except Exception:  # the index is a help: never let it take the server down
            log.exception("workspace index failed")
        finally:
            self.ready.set()

    # -- what to index -----------------------------------------------------------------

    def _folder_of(self, path: Path) -> Path | None:
        for folder in self.folders:
            if path == folder or folder in path.parents:
                return folder
        return None

    def skip_reason(self, path: str | Path) -> str | None:
        """Why `path` is not indexed (None: it is). Checks every folder on the way down."""
        path = Path(os.path.abspath(path))
        folder = self._folder_of(path)
        if folder is None:
            return "outside workspace"
        rules = self._rules[folder]
        current = folder
        for part in path.relative_to(folder).parts[:-1]:
            current = current / part
            if current.is_symlink():
                return "symlink"
            if part in SKIP_DIRS:
                return "skipped folder"
            if rules.ignored(current, is_dir=True):
                return "gitignored"
        if path.is_symlink():
            return "symlink"
        if not self.include_secrets and is_secret_path(str(path.relative_to(folder))):
            return "secret"
        if rules.ignored(path, is_dir=False):
            return "gitignored"
        if spec_for("", str(path)) is None:
            return "no grammar"
        return None

    def iter_files(self) -> Iterator[str]:
        """Files to index, walking each folder without following symlinks."""
        limit = self.settings.index_max_files
        yielded = 0
        walked: set[str] = set()
        self._dirs = walked
        for folder in self.folders:
            rules = self._rules[folder]
            stack = [folder]
            while stack:
                if self._stop.is_set():
                    return
                current = stack.pop()
                walked.add(str(current))
                try:
                    entries = sorted(os.scandir(current), key=lambda e: e.name)
                except OSError:
                    continue
                subdirs: list[Path] = []
                for entry in entries:
                    path = Path(entry.path)
                    if entry.is_symlink():
                        self.stats.skip("symlink")
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name in SKIP_DIRS or rules.ignored(path, is_dir=True):
                            continue
                        if not self.include_secrets and is_secret_name(entry.name, True):
                            self.stats.skip("secret")
                            continue
                        subdirs.append(path)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if spec_for("", entry.name) is None:
                        continue  # not code we can parse: not even counted
                    if not self.include_secrets and is_secret_name(entry.name, False):
                        self.stats.skip("secret")
                        continue
                    if rules.ignored(path, is_dir=False):
                        self.stats.skip("gitignored")
                        continue
                    if yielded >= limit:
                        self.stats.skip("file limit")
                        return
                    yielded += 1
                    yield str(path)
                stack.extend(reversed(subdirs))

    # -- indexing ----------------------------------------------------------------------

    def _index_paths(self, paths: Iterable[str]) -> None:
        batch: list[str] = []
        for path in paths:
            if self._stop.is_set():
                return
            batch.append(path)
            if len(batch) >= BATCH:
                self._apply(self._parse_batch(batch))
                batch = []
        if batch:
            self._apply(self._parse_batch(batch))

    def _parse_batch(self, paths: list[str]) -> list[Parsed]:
        known = {p: (e.mtime_ns, e.size) for p in paths if (e := self._files.get(p)) is not None}
        roots = tuple(str(folder) for folder in self.folders)
        args = (paths, known, self.settings.index_max_file_bytes, roots)
        if self.use_process:
            pool = self._worker_pool()
            if pool is not None:
                try:
                    return pool.submit(parse_files, *args).result()
                except Exception as exc:  # a dead worker: carry on in this thread
                    log.warning("index worker failed (%s); indexing in-process", exc)
                    self.use_process = False
        return parse_files(*args)

    def _worker_pool(self) -> concurrent.futures.ProcessPoolExecutor | None:
        if self._pool is None:
            try:
                # spawn, not fork: the server process has threads (llama.cpp, asyncio).
                context = multiprocessing.get_context("spawn")
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=context, initializer=lower_priority
                )
            except (OSError, ValueError) as exc:
                log.warning("cannot start the index worker (%s); indexing in-process", exc)
                self.use_process = False
        return self._pool

    def _apply(self, results: list[Parsed]) -> None:
        with self._lock:
            for parsed in results:
                if parsed.reason == "unchanged":
                    continue
                self._drop(parsed.path)
                if parsed.reason is not None:
                    self.stats.skip(parsed.reason)
                    continue
                if len(self._files) >= self.settings.index_max_files:
                    # The watcher adds files too (a build writing thousands): same cap.
                    self.stats.skip("file limit")
                    continue
                definitions = parsed.definitions
                room = MAX_DEFINITIONS - self._total_definitions
                if room <= 0:
                    self.stats.skip("definition cap")
                    continue
                definitions = definitions[:room]
                self._files[parsed.path] = _FileEntry(parsed.mtime_ns, parsed.size, definitions)
                for definition in definitions:
                    self._by_name.setdefault(definition.name, []).append(definition)
                self._total_definitions += len(definitions)
            self.stats.files = len(self._files)
            self.stats.definitions = self._total_definitions

    def _drop(self, path: str) -> None:
        entry = self._files.pop(path, None)
        if entry is None:
            return
        for definition in entry.definitions:
            same = self._by_name.get(definition.name)
            if same is None:
                continue
            same[:] = [d for d in same if d.path != path]
            if not same:
                del self._by_name[definition.name]
        self._total_definitions -= len(entry.definitions)

    def update_paths(self, paths: Iterable[str]) -> None:
        """Re-index changed files and drop deleted ones (what the watcher calls)."""
        wanted: list[str] = []
        for raw in paths:
            path = os.path.abspath(raw)
            if Path(path).name == ".gitignore":
                self._reload_rules()
                return
            if not os.path.lexists(path) or self.skip_reason(path) is not None:
                with self._lock:
                    self._drop(path)
                    self._recent.pop(path, None)  # e.g. replaced by a link to elsewhere
                    self.stats.files = len(self._files)
                    self.stats.definitions = self._total_definitions
                continue
            wanted.append(path)
            with self._lock:
                self._recent[path] = time.time()
                self._recent.move_to_end(path)
                while len(self._recent) > RECENT_FILES:
                    self._recent.popitem(last=False)
        if wanted:
            self._index_paths(wanted)

    def _reload_rules(self) -> None:
        """A .gitignore changed: re-walk everything (unchanged files are not re-parsed)."""
        for rules in self._rules.values():
            rules.clear()
        self.resync()

    def resync(self) -> None:
        """Walk the folders again: index what is new or changed, drop what is gone."""
        present = set(self.iter_files())
        with self._lock:
            for path in [p for p in self._files if p not in present]:
                self._drop(path)
        self._index_paths(sorted(present))

    def _watch(self) -> None:
        """Watch each real folder of the last walk on its own, not recursively: watchfiles'
        recursive mode walks directory links (out of the workspace, e.g. into /etc). A
        folder created or deleted ends the round; the next one walks the folders again."""
        failures = 0
        while not self._stop.is_set() and failures < 3:
            dirs = [d for d in sorted(self._dirs) if os.path.isdir(d)]
            if not dirs:
                return
            outcome = self._watch_round(dirs)
            if outcome == "stop":
                return
            failures = failures + 1 if outcome == "failed" else 0
            self.resync()  # index the new folder's files; the walk updates self._dirs

    def _watch_round(self, dirs: list[str]) -> str:
        """ "changed" when a folder came or went (watch again), "failed" when a folder was
        gone before its watch was set, "stop" otherwise."""
        import watchfiles

        known = set(dirs)

        def keep(_change: Any, path: str) -> bool:
            name = os.path.basename(path)
            if name == ".gitignore" or spec_for("", name) is not None or path in known:
                return True
            return self._new_folder_wanted(path)

        try:
            for changes in watchfiles.watch(
                *dirs,
                watch_filter=keep,
                debounce=WATCH_DEBOUNCE_MS,
                stop_event=self._stop,
                raise_interrupt=False,
                # The first (possibly empty) yield says the watcher is in place.
                yield_on_timeout=True,
                rust_timeout=1_000,
                recursive=False,
            ):
                if self._stop.is_set():
                    return "stop"
                if not self.watching.is_set():
                    # Catch up with what changed between the walk and the watcher's start.
                    self.resync()
                    self.watching.set()
                paths = sorted({path for _change, path in changes})
                files = [path for path in paths if path not in known and not os.path.isdir(path)]
                if files:
                    self.update_paths(files)
                if len(files) < len(paths):
                    return "changed"
        except FileNotFoundError as exc:
            log.debug("a watched folder went away (%s); walking again", exc)
            return "failed"
        except Exception as exc:  # e.g. out of inotify watches: keep the built index
            log.warning("workspace index stops watching: %s", exc)
        return "stop"

    def _new_folder_wanted(self, path: str) -> bool:
        """A folder that appeared where the walk would enter it (not a link, not skipped,
        not ignored): watching it means walking again."""
        folder = Path(path)
        if not folder.is_dir() or folder.is_symlink() or folder.name in SKIP_DIRS:
            return False
        if not self.include_secrets and is_secret_name(folder.name, True):
            return False
        root = self._folder_of(folder)
        return root is not None and not self._rules[root].ignored(folder, is_dir=True)

    # -- queries -----------------------------------------------------------------------

    def lookup(self, name: str, limit: int = 8) -> list[Definition]:
        with self._lock:
            found = self._by_name.get(name)
            return list(found[:limit]) if found else []

    def definitions_in(self, path: str) -> tuple[Definition, ...]:
        with self._lock:
            entry = self._files.get(os.path.abspath(path))
            return entry.definitions if entry else ()

    def indexed_files(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    def recent_files(self, limit: int = 8) -> list[str]:
        """Files changed on disk since the index was built, most recent first."""
        with self._lock:
            return list(reversed(self._recent))[:limit]

    def stat_inside(self, path: str) -> os.stat_result | None:
        """The stat of `path` when it is a plain file (not a link) whose real path is in a
        workspace folder, checked now: a recently edited file may have been replaced by a
        link to elsewhere since the watcher saw it."""
        try:
            stat = os.lstat(path)
        except OSError:
            return None
        if not stat_is_plain_file(stat):
            return None
        if not inside(path, [str(folder) for folder in self.folders]):
            return None
        return stat

    def read_inside(self, path: str, max_bytes: int) -> str | None:
        """The text of `path` if `stat_inside` allows it, read without following a link."""
        if self.stat_inside(path) is None:
            return None
        data = read_no_follow(path, max_bytes)
        return None if data is None else data.decode("utf-8", errors="replace")

    def display_path(self, path: str) -> str:
        """`path` relative to its workspace folder (what the model is shown)."""
        absolute = Path(os.path.abspath(path))
        folder = self._folder_of(absolute)
        if folder is None:
            return path
        return absolute.relative_to(folder).as_posix()
