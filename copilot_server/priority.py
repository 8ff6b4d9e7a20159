"""Lower CPU priority for background threads (the model, counting ahead).

On a machine whose cores llama.cpp keeps busy, the event loop must still get a core at
once to answer a keystroke, and the editor must stay responsive. A thread that lowers its
own priority passes it on to the threads it starts (llama.cpp's OpenMP team inherits the
model thread's), and loses nothing when nothing else wants the CPU.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

BACKGROUND_NICE = 5


def lower_thread_priority(steps: int = BACKGROUND_NICE) -> None:
    """Lower the calling thread's priority by `steps` nice levels (Linux: nice is per
    thread), relative to the process's own. Elsewhere, or where it is not permitted, the
    thread keeps its priority."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + steps))
    except OSError as exc:
        log.debug("thread keeps its priority: %s", exc)
