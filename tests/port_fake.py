"""A client port (ports.py) that records what would go to the editor: a fake of the
transport only; the features under test run on real documents, settings and models."""

from __future__ import annotations

from typing import Any

from copilot_server.ports import ClientFeatures, MessageLevel


class RecordingPort:
    """The client port's transport, recorded; the client answers `configuration` with
    `settings`."""

    def __init__(self, settings: Any = None, folders: list[str] | None = None) -> None:
        self.features = ClientFeatures()
        self.sent: list[tuple[str, Any]] = []
        self.settings = settings
        self.folders = folders or []

    def notify(self, method: str, params: Any) -> None:
        self.sent.append((method, params))

    def log(self, level: MessageLevel, message: str) -> None:
        self.sent.append(("log", (level, message)))

    def show_message(self, level: MessageLevel, message: str) -> None:
        self.sent.append(("message", (level, message)))

    async def begin_progress(self, title: str, **kwargs: Any) -> None:
        return None

    async def apply_edit(self, edit: Any, label: str) -> bool:
        self.sent.append(("edit", edit))
        return True

    async def configuration(self, section: str) -> Any:
        return self.settings

    def workspace_folders(self) -> list[str]:
        return self.folders
