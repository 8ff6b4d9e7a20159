"""Engines run the model: in-process llama.cpp, or a remote server."""
