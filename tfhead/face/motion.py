"""Real faces in motion: landmark tracks around a face's own geometry, and the photo warped along
them (NumPy/OpenCV only).

* `motion_track`: a face's detected landmarks moved along smooth tracks — mouth opening, blinks,
  small head turns, roll, scale and position changes — so the true landmarks of every frame are
  known. Export calibrates int8 on such tracks, distillation renders them, tests and benchmarks
  make driving clips of real portraits from them.
* `PhotoWarper`: the photo warped piecewise affinely over a Delaunay triangulation of its
  landmarks (plus anchors on the border) to any target landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

# ------------------------------------------------------------------------------------------------
# Landmark motion.

_UPPER_EYELIDS = {37: 41, 38: 40, 43: 47, 44: 46}   # upper lid point → lower lid point
_LOWER_LIP = list(range(55, 60)) + [65, 66, 67]
_CHIN = list(range(5, 12))


def motion_track(base: np.ndarray, num_frames: int, seed: int, fps: float = 25.0,
                 amplitude: float = 1.0) -> np.ndarray:
    """Smooth landmark motion around `base` `[68, 2]`: `[num_frames, 68, 2]`.

    Mouth opening and closing, blinks every ~2–4 s, small yaw (horizontal compression of the near
    side), roll up to ~6°, scale changes up to ~6% and drift of a few percent of the face size.
    `amplitude` scales all of them (1 = defaults above).
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(base, np.float64)
    centre = base[27:36].mean(axis=0)
    size = float(np.ptp(base, axis=0).max())
    t = np.arange(num_frames) / fps
    phase = rng.uniform(0, 2 * np.pi, size=6)
    mouth = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(0.6, 1.4) * t + phase[0]))  # 0..1
    mouth *= amplitude * rng.uniform(0.6, 1.0)
    blink_period = rng.uniform(2.0, 4.0)
    blink = np.clip(1 - np.abs(((t + phase[1]) % blink_period) - 0.15) / 0.12, 0, 1)
    yaw = amplitude * 0.12 * np.sin(2 * np.pi * 0.25 * t + phase[2])
    roll = amplitude * np.deg2rad(6.0) * np.sin(2 * np.pi * 0.18 * t + phase[3])
    scale = 1 + amplitude * 0.06 * np.sin(2 * np.pi * 0.13 * t + phase[4])
    drift = amplitude * 0.04 * size * np.stack(
        [np.sin(2 * np.pi * 0.1 * t + phase[5]), np.cos(2 * np.pi * 0.08 * t + phase[5])], axis=1)

    frames = []
    eye_height = np.mean([np.linalg.norm(base[u] - base[l]) for u, l in _UPPER_EYELIDS.items()])
    for i in range(num_frames):
        p = base.copy()
        open_px = mouth[i] * 0.12 * size
        p[_LOWER_LIP, 1] += open_px
        p[_CHIN, 1] += 0.6 * open_px * np.array([0.3, 0.6, 0.9, 1.0, 0.9, 0.6, 0.3])
        for upper, lower in _UPPER_EYELIDS.items():
            p[upper] += blink[i] * 0.85 * (p[lower] - p[upper]) * (eye_height > 0)
        rel = p - centre
        # Yaw: points compress towards the turning side, more the further they are from the centre.
        rel[:, 0] *= 1 - np.abs(yaw[i]) * 0.5
        rel[:, 0] += yaw[i] * size * 0.25 * (1 - (rel[:, 0] / (0.6 * size)) ** 2)
        c, s = np.cos(roll[i]), np.sin(roll[i])
        rel = rel @ np.array([[c, s], [-s, c]])
        frames.append(centre + drift[i] + scale[i] * rel)
    return np.stack(frames).astype(np.float32)


def _anchor_points(width: int, height: int, landmarks: np.ndarray) -> np.ndarray:
    """Fixed points that keep the warp local: the image border and a ring around the face."""
    border = [(0, 0), (width / 2, 0), (width - 1, 0), (width - 1, height / 2), (width - 1, height - 1),
              (width / 2, height - 1), (0, height - 1), (0, height / 2)]
    centre = landmarks.mean(axis=0)
    radius = 1.6 * float(np.ptp(landmarks, axis=0).max())
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    ring = np.clip(ring, 0, [width - 1, height - 1])
    return np.concatenate([np.array(border, np.float64), ring])


def _triangles(points: np.ndarray, width: int, height: int) -> list[tuple[int, int, int]]:
    subdiv = cv2.Subdiv2D((-1, -1, width + 2, height + 2))
    lookup = {}
    for i, (x, y) in enumerate(points):
        subdiv.insert((float(x), float(y)))
        lookup[(round(float(x), 3), round(float(y), 3))] = i
    triangles = []
    for tri in subdiv.getTriangleList():
        idx = []
        for k in range(3):
            key = (round(float(tri[2 * k]), 3), round(float(tri[2 * k + 1]), 3))
            if key not in lookup:
                break
            idx.append(lookup[key])
        if len(idx) == 3:
            triangles.append(tuple(idx))
    return triangles


class PhotoWarper:
    """Warps one photo so that its landmarks move to new positions (piecewise affine).

    The triangulation is computed once on the photo's landmarks plus fixed anchors.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.anchors = _anchor_points(w, h, np.asarray(landmarks, np.float64))
        self.source = np.concatenate([np.asarray(landmarks, np.float64), self.anchors])
        self.triangles = _triangles(self.source, w, h)

    def warp(self, target_landmarks: np.ndarray) -> np.ndarray:
        h, w = self.image.shape[:2]
        target = np.concatenate([np.asarray(target_landmarks, np.float64), self.anchors])
        out = self.image.copy()
        for tri in self.triangles:
            src, dst = self.source[list(tri)].astype(np.float32), target[list(tri)].astype(np.float32)
            x, y, bw, bh = cv2.boundingRect(dst)
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + bw, w), min(y + bh, h)
            if x1 <= x0 or y1 <= y0:
                continue
            m = cv2.getAffineTransform(src, dst - np.float32([x0, y0]))
            patch = cv2.warpAffine(self.image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT_101)
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillConvexPoly(mask, np.round(dst - [x0, y0]).astype(np.int32), 1, cv2.LINE_8)
            region = out[y0:y1, x0:x1]
            region[mask.astype(bool)] = patch[mask.astype(bool)]
        return out
