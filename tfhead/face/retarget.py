"""Relative motion: the driver's head motion and expression, retargeted onto the source's own face
geometry (docs/design.md §9, the identity leak of landmark-driven models). NumPy only.

A landmark-driven generator draws whatever face shape the landmark image shows, so driving person A
with person B's raw landmarks (`absolute` mode) gives A's texture on B's jaw, eyes and nose. In
`relative` mode only *changes* from the driver's reference (neutral) frame are transferred:

1. Pose. A similarity transform T_t (rotation, scale, translation) is fitted from the driver's
   reference landmarks to frame t on rigid points (eye corners, nose). It is the head's in-plane
   motion.
2. Expression. Frame t is brought back into the reference pose, T_t⁻¹(d_t); its difference to the
   reference, Δ_t = T_t⁻¹(d_t) − d_ref, is the expression (mouth opening, blinks, brows, and the 2-D
   shape change of small out-of-plane turns).
3. Transfer. Δ_t is rotated and scaled from the driver's face into the source's (the similarity S
   from d_ref to s_ref, fitted on the same rigid points), added to the source's reference landmarks,
   and the result is moved by the driver's pose change about the source's own centre, with the
   translation scaled by the face-size ratio.

With d_t = d_ref the output is exactly s_ref; distances that do not move in the driver keep the
source's proportions.
"""

from __future__ import annotations

import numpy as np

# Points whose layout a change of expression barely moves: eye corners and the nose.
RIGID_POINTS = np.array([36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35])
MOTION_MODES = ("relative", "absolute")


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ≈ s · R · src + t (Umeyama 1991, no reflection).

    Returns (s, R [2, 2], t [2]).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = (a ** 2).sum() / len(a)
    if var <= 1e-12:
        raise ValueError("Degenerate landmarks: the rigid points coincide.")
    u, sigma, vt = np.linalg.svd(b.T @ a / len(a))
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rotation = u @ d @ vt
    scale = float((sigma * np.diag(d)).sum() / var)
    return scale, rotation, mu_d - scale * rotation @ mu_s


def apply_similarity(points: np.ndarray, scale: float, rotation: np.ndarray,
                     translation: np.ndarray) -> np.ndarray:
    return scale * np.asarray(points, np.float64) @ rotation.T + translation


class Retargeter:
    """Maps driver landmarks to landmarks with the source's geometry (see the module docstring).

    Args:
      source_reference: The source's landmarks `[68, 2]` (crop pixels), e.g. its neutral photo.
      driver_reference: The driver's reference (neutral) landmarks `[68, 2]` in its crop pixels.
    """

    def __init__(self, source_reference: np.ndarray, driver_reference: np.ndarray):
        self.source_reference = np.asarray(source_reference, np.float64)
        self.driver_reference = np.asarray(driver_reference, np.float64)
        for name, points in (("source", self.source_reference), ("driver", self.driver_reference)):
            if points.shape != (68, 2) or not np.isfinite(points).all():
                raise ValueError(f"{name} reference landmarks must be finite [68, 2], got "
                                 f"{points.shape}.")
        self._to_source = fit_similarity(self.driver_reference[RIGID_POINTS],
                                         self.source_reference[RIGID_POINTS])
        self._driver_centre = self.driver_reference[RIGID_POINTS].mean(0)
        self._source_centre = self.source_reference[RIGID_POINTS].mean(0)

    def __call__(self, driver_landmarks: np.ndarray) -> np.ndarray:
        d = np.asarray(driver_landmarks, np.float64)
        pose_scale, pose_rotation, pose_translation = fit_similarity(
            self.driver_reference[RIGID_POINTS], d[RIGID_POINTS])
        # Frame t back in the reference pose: T_t⁻¹(d) = Rᵀ(d − t) / s.
        unposed = (d - pose_translation) @ pose_rotation / pose_scale
        expression = unposed - self.driver_reference
        k, rotation, _ = self._to_source
        shaped = self.source_reference + k * expression @ rotation.T
        # The driver's pose change about its own rigid centre, replayed about the source's.
        moved_centre = apply_similarity(self._driver_centre, pose_scale, pose_rotation,
                                        pose_translation)
        shift = k * (moved_centre - self._driver_centre) @ rotation.T
        rotation_in_source = rotation @ pose_rotation @ rotation.T
        return (self._source_centre + pose_scale * (shaped - self._source_centre)
                @ rotation_in_source.T + shift).astype(np.float32)


def face_proportions(landmarks: np.ndarray) -> dict[str, float]:
    """Shape ratios that identify a face's geometry (each over the face height, brow to chin)."""
    p = np.asarray(landmarks, np.float64)
    height = np.linalg.norm(p[8] - (p[19] + p[24]) / 2)
    return {"jaw_width": np.linalg.norm(p[0] - p[16]) / height,
            "eye_distance": np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0)) / height,
            "nose_length": np.linalg.norm(p[27] - p[33]) / height,
            "mouth_width": np.linalg.norm(p[48] - p[54]) / height}
