"""The client port: what the features may ask of the editor on the other end (notify,
log, show a message, show progress, apply an edit, read its settings and workspace
folders), as plain values and no LSP library.

lsp/client_port.py is the one implementation; features below lsp/ take a port, never the
server, so they can be imported and tested alone (tests/port_fake.py records the calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from .documents.positions import Encoding


class MessageLevel(IntEnum):
    """The LSP MessageType numbers."""

    ERROR = 1
    WARNING = 2
    INFO = 3
    LOG = 4


@dataclass(frozen=True)
class ClientFeatures:
    """What the client said it supports at `initialize` (and the negotiated encoding)."""

    encoding: Encoding = "utf-16"
    work_done_progress: bool = False
    code_action_resolve_edit: bool = False  # codeAction/resolve may fill in `edit`
    code_action_disabled: bool = False  # shows an action's `disabled` reason
    document_changes: bool = False  # workspace edits as versioned document changes
    configuration: bool = False  # answers workspace/configuration
    inline_completion: bool = False


# What a cancellable progress calls when the user cancels it.
OnCancel = Callable[[], None]


class Progress(Protocol):
    """One work-done progress shown by the client."""

    def report(self, message: str, percentage: int) -> None:
        """Safe to call from any thread."""

    def end(self, message: str | None = None) -> None: ...


class ClientPort(Protocol):
    @property
    def features(self) -> ClientFeatures: ...

    def notify(self, method: str, params: Any) -> None:
        """A notification of ours (`copilot/status`, `copilot/explanation`); loop thread."""

    def log(self, level: MessageLevel, message: str) -> None: ...

    def show_message(self, level: MessageLevel, message: str) -> None: ...

    async def begin_progress(
        self, title: str, *, message: str | None = None, on_cancel: OnCancel | None = None
    ) -> Progress | None:
        """A progress the client shows, or None where it cannot (no support, no answer).
        With `on_cancel` the user may cancel it (called on the loop when they do)."""

    async def apply_edit(self, edit: Any, label: str) -> bool:
        """Ask the client to apply a workspace edit (built at the LSP edge); applied?"""

    async def configuration(self, section: str) -> Any:
        """The client's settings under `section` (workspace/configuration), or None where
        it cannot say (no support, no answer, an error)."""

    def workspace_folders(self) -> list[str]:
        """The local folders of the client's workspace (its root when it has no folders)."""
