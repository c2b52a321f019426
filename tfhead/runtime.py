"""Process-level helpers without TensorFlow, shared by training, animation and the on-device runner:
graceful SIGINT/SIGTERM handling and human-readable durations.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading

log = logging.getLogger("tfhead")


class Interrupts:
    """Turns SIGINT/SIGTERM into a request the loop honours after the current step.

    A second signal of the same kind restores the default behaviour (a second Ctrl-C kills).
    Handlers are installed only in the main thread; elsewhere `requested` stays None.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self.requested = signum
        log.warning("Received %s: stopping after this step (send it again to stop at once).",
                    signal.Signals(signum).name)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"
