"""Atomic file writes: a reader (or a rerun after a crash) sees the old file or the new one, never
half of one. Temporary files are named `.tmp-<pid>-<name>` beside their target."""

from __future__ import annotations

import json
import os


def tmp_name(path: str) -> str:
    return os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")


def write_text_atomic(path: str, text: str) -> None:
    tmp = tmp_name(path)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))
