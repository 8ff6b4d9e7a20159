"""copilot-server: a local, private code copilot speaking the Language Server Protocol."""

__version__ = "0.1.0"
