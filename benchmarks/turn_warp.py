r"""The warp alone on a turning head: the plain piecewise-affine warp against the warp with head
points (`tfhead.face.motion.PhotoWarper(head_points=...)`), side by side.

    .venv/bin/python benchmarks/turn_warp.py --out=/tmp/turn_warp.png

The source is skimage's astronaut with her dlib landmarks. The targets are exact landmarks of a
procedural head turned by `--yaws` (degrees; `tfhead.face.procedural.procedural_landmarks`, whose
outline follows the turned head's silhouette) retargeted onto her with relative motion
(`tfhead.animation.driving.MotionMapper`), so no landmark detector's error is in the picture. Rows:
plain warp, warp with head points; columns: the yaws; each panel the region around her head. It
prints, per yaw, how many of the mesh's landmark triangles turn over (a fold) and the largest
sideways move of the outline's top against the brows' ends, in face widths.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
from absl import app, flags

from tfhead.animation import driving
from tfhead.face import landmarks, motion, procedural

_YAWS = flags.DEFINE_list("yaws", ["0", "17", "26", "34", "-26", "-34"], "Head turns, degrees.")
_IDENTITY = flags.DEFINE_integer("identity", 7, "Seed of the procedural head that turns.")
_OUT = flags.DEFINE_string("out", "/tmp/turn_warp.png", "The PNG to write.")


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, k]] for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                  - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def main(argv):
    del argv
    try:
        yaws = [float(v) for v in _YAWS.value]
    except ValueError as error:
        raise app.UsageError(f"--yaws must be numbers (degrees): {error}") from None
    if not _OUT.value.lower().endswith((".png", ".jpg", ".jpeg")):
        raise app.UsageError(f"--out must end in .png or .jpg, got {_OUT.value!r}.")
    import skimage.data

    photo = skimage.data.astronaut()
    source = landmarks.LandmarkDetector().detect(photo).landmarks.astype(np.float64)
    identity = procedural.random_identity(_IDENTITY.value)
    mapper = driving.MotionMapper("relative", source, max(photo.shape[:2]),
                                  driver_reference=procedural.procedural_landmarks(identity, 256))
    warpers = {"plain": motion.PhotoWarper(photo, source, head_points=False),
               "head points": motion.PhotoWarper(photo, source)}
    faces = warpers["plain"].triangles[np.all(warpers["plain"].triangles < 68, axis=1)]
    before = _signed_areas(source, faces)
    width = float(np.linalg.norm(source[16] - source[0]))
    centre = source.mean(axis=0)
    half = int(1.6 * np.ptp(source, axis=0).max())
    x0, y0 = np.maximum(np.round(centre - half).astype(int), 0)
    rows = {name: [] for name in warpers}
    print("| yaw ° | landmark triangles turned over | outline top vs brow ends, face widths |")
    print("|---:|---:|---:|")
    for yaw in yaws:
        target = mapper.landmarks(procedural.procedural_landmarks(
            identity, 256, yaw=np.deg2rad(yaw))).astype(np.float64)
        folded = int(np.sum(_signed_areas(target, faces) * before < 0))
        moved = target - source
        shear = max(abs(moved[0, 0] - moved[17, 0]), abs(moved[16, 0] - moved[26, 0])) / width
        print(f"| {yaw:+.0f} | {folded} | {shear:.2f} |")
        for name, warper in warpers.items():
            panel = np.ascontiguousarray(warper.warp(target)[y0:y0 + 2 * half, x0:x0 + 2 * half])
            panel = cv2.resize(panel, (240, 240), interpolation=cv2.INTER_AREA)
            cv2.putText(panel, f"{name} {yaw:+.0f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 2, cv2.LINE_AA)
            cv2.putText(panel, f"{name} {yaw:+.0f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 0, 0), 1, cv2.LINE_AA)
            rows[name].append(panel)
    picture = np.concatenate([np.concatenate(tiles, axis=1) for tiles in rows.values()], axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    if not cv2.imwrite(_OUT.value, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise app.UsageError(f"Could not write {_OUT.value}.")
    print(f"wrote {_OUT.value}: rows plain | head points, columns the yaws")


if __name__ == "__main__":
    app.run(main)
