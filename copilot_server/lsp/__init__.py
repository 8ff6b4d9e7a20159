"""The LSP edge: the JSON-RPC protocol (framing, envelope checks, error answers) on pygls."""

from ..logs import add_traffic_logger

# pygls logs each message it sends at INFO: shown only at our debug level (see logs.py).
add_traffic_logger("pygls")
