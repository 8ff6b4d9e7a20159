"""The engine host's wire: JSON lines over a Unix domain socket, and where the socket lives.

One message per line, one JSON object each, with an `op`. Client -> host: `hello`,
`tokenize`, `detokenize`, `generate`, `verdict` (per streamed token: stop or go on),
`cancel`, `status`. Host -> client: `ready` or `error` (after hello), `result` (tokenize,
detokenize, status), `token` (one streamed token's text), `done` (a generation's figures).
Lines, not a length prefix: a prompt is a few thousand small integers (~30 KB) and
`readline` on a buffered socket file costs microseconds; a token's round trip is ~0.1 ms
against 10-50 ms to decode it.

The socket lives in `$XDG_RUNTIME_DIR/copilot-server/` (per user, tmpfs, mode 0700 by
the system), else in `<tmp>/copilot-server-<uid>/` created with mode 0700 and refused
when another user owns it. One host per (model file, GPU layers, context size): the
socket's name is a hash of them, so another model gets its own host.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
# A line longer than this is not ours (a prompt is < 1 MB even at n_ctx=32k).
MAX_LINE = 16 * 1024 * 1024


class WireError(Exception):
    """The other end broke the protocol, or the connection is gone."""


def runtime_dir() -> Path:
    """The per-user folder for host sockets and lock files (created, mode 0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        folder = Path(base) / "copilot-server"
    else:
        folder = Path(tempfile.gettempdir()) / f"copilot-server-{os.getuid()}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    # A folder someone else made (or a link) in a shared /tmp could hand our socket to them.
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        raise WireError(f"{folder} is not a folder owned by this user; refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)
    return folder


def host_key(model_path: str | os.PathLike[str], n_gpu_layers: int | str, n_ctx: int) -> str:
    """What decides whether two servers can share a host: the same model file (by real
    path, size and modification time, so a replaced file gets a new host), the same
    GPU layers and the same context size."""
    real = os.path.realpath(model_path)
    try:
        info = os.stat(real)
        identity = f"{real}\0{info.st_size}\0{int(info.st_mtime)}"
    except OSError:
        identity = real
    digest = hashlib.sha256(f"{identity}\0{n_gpu_layers}\0{n_ctx}".encode()).hexdigest()
    return digest[:16]


def socket_path(key: str, folder: Path | None = None) -> Path:
    # Short names: a Unix socket path has at most 107 bytes.
    return (folder or runtime_dir()) / f"engine-{key}.sock"


def lock_path(key: str, folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / f"engine-{key}.lock"


def log_path(key: str, folder: Path | None = None) -> Path:
    return (folder or runtime_dir()) / f"engine-{key}.log"


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED); None where the
    platform cannot tell (the 0700 folder and 0600 socket still keep others out)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


class Channel:
    """One connected socket: whole-line sends from any thread, reads from one thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reader = sock.makefile("rb", buffering=65536)
        self._send_lock = threading.Lock()
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        data = encode(message)
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self.closed = True
                raise WireError(f"connection lost: {exc}") from None

    def receive(self) -> dict[str, Any] | None:
        """The next message; None when the other end closed the connection."""
        try:
            line = self._reader.readline(MAX_LINE + 1)
        except (OSError, ValueError):
            line = b""
        if not line:
            self.closed = True
            return None
        if len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise WireError("message too long or cut off")
        try:
            message = json.loads(line)
        except ValueError:
            raise WireError("a line that is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise WireError("a message without an op")
        return message

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            self._reader.close()
        except OSError:
            pass


def connect(path: Path, timeout: float = 2.0) -> Channel:
    """Connect to a host socket; raises OSError when nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    sock.settimeout(None)
    return Channel(sock)
