r"""How dlib reads the eyes of a turning head: its eye heights against the true ones, per frame.

    .venv/bin/python benchmarks/turn_eyes.py              # the one-shot benchmark's `turn` driver
    .venv/bin/python benchmarks/turn_eyes.py --max_yaw=0.25   # the `procedural` driver's turns

The clip is `benchmarks/one_shot.py`'s turning driver (same schedule seed, identity and yaw), whose
true landmarks are known. For every frame it prints the head's turn and the schedule's eye closure,
then each eye's width and height (mean of the two lid distances, in pixels of the 256² frame) from
the true landmarks and from dlib's 68-point fit, and last, over the frames where dlib finds the
face, the range of dlib's heights for open eyes at rest (|turn| < 0.3), open eyes turned
(|turn| ≥ 0.6) and blink peaks (closure ≥ 0.8). Relative motion turns a drop of the driver's eye
height into a closing eye on the source, so where the turned-open range reaches the blink range no
rule on dlib's heights alone can tell a turned open eye from a half-closed one.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import one_shot  # noqa: E402  (the benchmark's clips)

from tfhead.face import landmarks  # noqa: E402

# Named apart from one_shot's own flags, which importing it defines.
_YAW = flags.DEFINE_float("max_yaw", one_shot.TURN_YAW, "Largest head turn, radians.")
_FRAMES = flags.DEFINE_integer("clip_frames", 64, "Frames of the clip.", lower_bound=8)
_SEED = flags.DEFINE_integer("schedule_seed", 3,
                             "Schedule seed (3: the one-shot benchmark's `turn` driver).")
_IDENTITY = flags.DEFINE_integer("identity_seed", 10_000, "Procedural identity seed.")

EYES = {"left": np.arange(36, 42), "right": np.arange(42, 48)}


def eye_size(points: np.ndarray, indices: np.ndarray) -> tuple[float, float]:
    """(width corner to corner, height as the mean of the two lid distances)."""
    e = points[indices]
    height = (np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / 2
    return float(np.linalg.norm(e[3] - e[0])), float(height)


def main(argv):
    del argv
    schedule = one_shot.talking_schedule(_FRAMES.value, _SEED.value, 25.0)
    frames, truth = one_shot.procedural_driver(_IDENTITY.value, schedule, yaw_amount=_YAW.value)
    detector = landmarks.LandmarkDetector()
    print("| frame | turn | closure | true w / h left | true w / h right | dlib w / h left "
          "| dlib w / h right |")
    print("|---:|---:|---:|---|---|---|---|")
    groups: dict[str, list[float]] = {"open, at rest": [], "open, turned": [], "blink peak": []}
    for t in range(len(frames)):
        try:
            detected = detector.detect(frames[t]).landmarks
        except landmarks.FaceNotFoundError:
            detected = None
        true = [eye_size(truth[t], EYES[side]) for side in EYES]
        cells = [f"{w:.1f} / {h:.1f}" for w, h in true]
        if detected is None:
            cells += ["no face", "no face"]
        else:
            measured = [eye_size(detected, EYES[side]) for side in EYES]
            cells += [f"{w:.1f} / {h:.1f}" for w, h in measured]
            turn, closure = abs(schedule.yaw[t]), schedule.closure[t]
            heights = [h for _, h in measured]
            if closure >= 0.8:
                groups["blink peak"] += heights
            elif closure == 0 and turn < 0.3:
                groups["open, at rest"] += heights
            elif closure == 0 and turn >= 0.6:
                groups["open, turned"] += heights
        print(f"| {t} | {schedule.yaw[t]:+.2f} | {schedule.closure[t]:.2f} | " + " | ".join(cells)
              + " |")
    print()
    print("| dlib eye height | frames × eyes | min | median | max |")
    print("|---|---:|---:|---:|---:|")
    for name, heights in groups.items():
        if heights:
            print(f"| {name} | {len(heights)} | {min(heights):.1f} | {np.median(heights):.1f} | "
                  f"{max(heights):.1f} |")
        else:
            print(f"| {name} | 0 | | | |")


if __name__ == "__main__":
    app.run(main)
