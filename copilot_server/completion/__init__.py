"""The completion room (DESIGN.md): the path of one inline completion. The service itself is
still `copilot_server/completions.py`; parts that are new live here."""
