"""The LSP edge: the JSON-RPC protocol (framing, envelope checks, error answers) on pygls."""
