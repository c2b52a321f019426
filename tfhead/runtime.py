"""Process-level helpers without TensorFlow, shared by training, animation and the on-device runner:
graceful SIGINT/SIGTERM handling, human-readable durations, and quiet TensorFlow start-up for the
entry points.
"""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import sys
import tempfile
import threading
from typing import Sequence

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


_VERBOSITY = re.compile(r"^--?(?:verbosity|v)(?:=(-?\d+))?$")


def verbosity_requested(argv: Sequence[str]) -> int:
    """absl's `--verbosity` / `-v` level found in a command line (0 when absent), read before absl
    parses the flags — TensorFlow must be configured before it is imported."""
    level = 0
    for i, arg in enumerate(argv[1:], start=1):
        match = _VERBOSITY.match(arg)
        if match is None:
            continue
        value = match.group(1)
        if value is None and i + 1 < len(argv):
            value = argv[i + 1]
        try:
            level = int(value) if value is not None else level
        except ValueError:
            continue
    return level


_QUIET_ENV = "TFHEAD_QUIET_TENSORFLOW"  # set by quiet_tensorflow, inherited by worker processes


def quiet_tensorflow(argv: Sequence[str] = (), import_now: bool = True) -> None:
    """Hides TensorFlow's native log lines unless the command line asks for `--verbosity=1` or more.

    On a machine without a GPU every TensorFlow run prints alarming but harmless lines — `E0000 …
    failed call to cuInit`, grappler's `remapper failed`, oneDNN and CPU-feature notices. Entry
    points call this at import time, before anything imports TensorFlow: it sets
    `TF_CPP_MIN_LOG_LEVEL=3` and imports TensorFlow through `import_tensorflow`, because the lines
    printed while its libraries load ignore that variable (TensorFlow issue #100442). Worker
    processes inherit the setting and import TensorFlow only if and when they need it; so can an
    entry point that may not need it at all (`import_now=False`: it then imports TensorFlow through
    `import_tensorflow`). With `--verbosity=1` nothing is hidden (TF_CPP_MIN_LOG_LEVEL is left as
    the user set it).
    """
    if verbosity_requested(argv) >= 1:
        os.environ[_QUIET_ENV] = "0"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ[_QUIET_ENV] = "1"
    import multiprocessing

    if import_now and multiprocessing.parent_process() is None:
        import_tensorflow()


def import_tensorflow():
    """`import tensorflow`, with the lines its libraries print while loading sent to a file when
    `quiet_tensorflow` asked for quiet (in this process or a parent). Should the import fail, they
    are replayed before the error. Returns the module (None where TensorFlow is not installed and
    nothing was asked of it: the on-device install)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return None
    if os.environ.get(_QUIET_ENV) != "1":
        import tensorflow
        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow
