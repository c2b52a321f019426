"""Reading video files with OpenCV, with errors that say what is wrong with the file.

Frames are returned as RGB uint8 (OpenCV decodes BGR; the conversion happens here, once).
Imports only NumPy and OpenCV.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Iterator

import numpy as np
import cv2

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class VideoReadError(IOError):
    """A video file that cannot be opened or decoded."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frame_count: int   # as reported by the container; may exceed what decodes in a damaged file
    fps: float
    width: int
    height: int


def _open(path: str) -> cv2.VideoCapture:
    if not os.path.isfile(path):
        raise VideoReadError(f"No such video file: {path}")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"Unreadable video (OpenCV cannot open it; not a video or damaged): {path}")
    return capture


def probe(path: str) -> VideoInfo:
    """Frame count, fps and size of a video, checking that its first frame decodes."""
    capture = _open(path)
    try:
        info = VideoInfo(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS)),
                         int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok or info.frame_count <= 0:
        raise VideoReadError(f"Corrupt video (no decodable frames): {path}")
    return info


def iter_frames(path: str) -> Iterator[np.ndarray]:
    """Every decodable frame of a video, RGB uint8, in order."""
    capture = _open(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def read_frames(path: str, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` (RGB uint8), reading sequentially (exact in any container).

    Frames past the end of what decodes are missing from the result; the caller reports them.
    """
    wanted = sorted(set(int(i) for i in indices))
    frames: dict[int, np.ndarray] = {}
    if not wanted:
        return frames
    capture = _open(path)
    try:
        position = 0
        for index in wanted:
            while position < index:
                if not capture.grab():
                    return frames
                position += 1
            ok, frame = capture.read()
            if not ok:
                return frames
            position += 1
            frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    return frames
