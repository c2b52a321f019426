"""Atomic file writes: a reader (or a rerun after a crash) sees the old file or the new one, never
half of one. Temporary files are named `.tmp-<pid>-<name>` beside their target; a run that was
killed leaves them behind, and the next run removes those whose process is gone
(`remove_stale_temporaries`)."""

from __future__ import annotations

import json
import os
import re
import shutil

TMP_PREFIX = ".tmp-"
_TMP_PATTERN = re.compile(r"^\.tmp-(\d+)-")


def tmp_name(path: str) -> str:
    name = f"{TMP_PREFIX}{os.getpid()}-{os.path.basename(path)}"
    return os.path.join(os.path.dirname(path), name)


def write_text_atomic(path: str, text: str) -> None:
    tmp = tmp_name(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_temporary(name: str) -> bool:
    """Whether a file name follows the project's temporary pattern `.tmp-<pid>-<name>`."""
    return _TMP_PATTERN.match(name) is not None


def remove_stale_temporaries(directory: str) -> list[str]:
    """Removes `.tmp-<pid>-*` files and folders in `directory` whose process is gone.

    Only names of this project's pattern are touched, and only when no process with that id runs
    on this machine (a temporary of a live run, this one included, is left alone). A folder that
    does not exist has nothing to clean. Returns the paths removed.
    """
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    removed = []
    for name in names:
        match = _TMP_PATTERN.match(name)
        if match is None or process_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed
