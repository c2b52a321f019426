"""The README's before/after picture: driver | before | after, at a few moments of one case of
`benchmarks/one_shot.py`.

    .venv/bin/python benchmarks/before_after.py --driver=/tmp/os/clips/procedural.mp4 \
        --before=/tmp/os/outputs/<paper system>.mp4 --after=/tmp/os/outputs/<default>.mp4 \
        --frames=0,7,36,50 --out=docs/before_after.jpg

Each panel is the face region of its video (the crop box of the frame's dlib face, 1.6 face sizes,
so a 128² model output and a pasted-back 512² photo are shown at the same scale), resized to
`--size` pixels; rows are moments, columns driver | before | after.
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np
from absl import app, flags

from tfhead import errors
from tfhead.face import landmarks
from tfhead.io import video as video_lib

_DRIVER = flags.DEFINE_string("driver", None, "The driving clip.", required=True)
_BEFORE = flags.DEFINE_string("before", None, "The output video shown as 'before'.", required=True)
_AFTER = flags.DEFINE_string("after", None, "The output video shown as 'after'.", required=True)
_FRAMES = flags.DEFINE_list("frames", ["0", "10", "20", "30"], "Frame indices (rows).")
_SIZE = flags.DEFINE_integer("size", 160, "Panel side in pixels.", lower_bound=32)
_OUT = flags.DEFINE_string("out", "before_after.jpg", "The JPEG to write.")


def face_panel(frame: np.ndarray, detector: landmarks.LandmarkDetector, size: int) -> np.ndarray:
    """The square around the frame's face (the whole frame when none is found), `size`²."""
    try:
        points = detector.detect(frame).landmarks
    except landmarks.LandmarkError:
        return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    centre = (points.min(0) + points.max(0)) / 2
    half = 0.8 * float(np.ptp(points, axis=0).max())
    x0, y0 = (centre - half).astype(int)
    x1, y1 = (centre + half).astype(int)
    padded = cv2.copyMakeBorder(frame, 512, 512, 512, 512, cv2.BORDER_REPLICATE)
    square = padded[y0 + 512:y1 + 512, x0 + 512:x1 + 512]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def main(argv):
    del argv
    detector = landmarks.LandmarkDetector()
    try:
        wanted = [int(i) for i in _FRAMES.value]
    except ValueError:
        raise app.UsageError(f"--frames must be frame indices, got {_FRAMES.value}.") from None
    videos = []
    for flag, path in (("--driver", _DRIVER.value), ("--before", _BEFORE.value),
                       ("--after", _AFTER.value)):
        try:
            frames = video_lib.read_frames(path, wanted)
        except errors.TfheadError as e:
            sys.exit(f"before_after: {flag}: {e}")
        missing = [i for i in wanted if i not in frames]
        if missing:
            sys.exit(f"before_after: {flag}: {path} has no frame {missing[0]} (it decodes "
                     f"{len(frames)} of the {len(wanted)} asked for).")
        videos.append(frames)
    rows = [np.concatenate([face_panel(v[i], detector, _SIZE.value) for v in videos], axis=1)
            for i in wanted]
    picture = np.concatenate(rows, axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    cv2.imwrite(_OUT.value, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {_OUT.value}: {picture.shape[1]}×{picture.shape[0]}")


if __name__ == "__main__":
    app.run(main)
