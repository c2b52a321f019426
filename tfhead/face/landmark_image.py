"""Rasterizing 68-point landmarks into the landmark image y (docs/design.md §2).

This is the one rasterization function of the project: preprocessing, the training pipeline,
fine-tuning, animation and the on-device runner all call `draw_landmarks`. A mismatch between
training-time and inference-time landmark images is the most common cause of bad results in public
ports, so anything that changes the picture (parts, colours, thickness) must bump
`LANDMARK_IMAGE_VERSION`, which exported models carry in their metadata.

Imports only NumPy and OpenCV (no TensorFlow).
"""

from __future__ import annotations

import cv2
import numpy as np

LANDMARK_IMAGE_VERSION = 1

# (name, indices, closed, RGB colour), iBUG 68-point layout.
PARTS: tuple[tuple[str, tuple[int, ...], bool, tuple[int, int, int]], ...] = (
    ("jaw", tuple(range(0, 17)), False, (255, 255, 255)),
    ("right_brow", tuple(range(17, 22)), False, (255, 0, 0)),
    ("left_brow", tuple(range(22, 27)), False, (0, 255, 0)),
    ("nose_bridge", tuple(range(27, 31)), False, (0, 0, 255)),
    ("lower_nose", (30,) + tuple(range(31, 36)), False, (0, 0, 255)),
    ("right_eye", tuple(range(36, 42)), True, (255, 0, 255)),
    ("left_eye", tuple(range(42, 48)), True, (0, 255, 255)),
    ("outer_lips", tuple(range(48, 60)), True, (255, 255, 0)),
    ("inner_lips", tuple(range(60, 68)), True, (255, 255, 0)),
)

_SUBPIXEL_BITS = 4  # cv2 draws with 1/16-pixel precision


def line_thickness(size: int) -> int:
    """Polyline thickness for an image of `size` pixels: 2 px at 256², scaled, at least 1."""
    return max(1, int(round(2.0 * size / 256.0)))


def draw_landmarks(landmarks: np.ndarray, size: int, thickness: int | None = None) -> np.ndarray:
    """Draws landmarks as coloured anti-aliased polylines on black.

    Args:
      landmarks: `[68, 2]` (x, y) pixel coordinates inside the `size` × `size` image (the crop).
      size: Output height and width.
      thickness: Line thickness; default `line_thickness(size)`.

    Returns:
      `[size, size, 3]` uint8 **RGB** image.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must have shape (68, 2), got {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks contain NaN or infinite values.")
    thickness = line_thickness(size) if thickness is None else thickness
    image = np.zeros((size, size, 3), np.uint8)
    fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    for _, indices, closed, colour in PARTS:
        cv2.polylines(image, [fixed[list(indices)].reshape(-1, 1, 2)], closed, colour,
                      thickness=thickness, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    return image


def draw_batch(landmarks: np.ndarray, size: int) -> np.ndarray:
    """`draw_landmarks` for a batch: `[N, 68, 2]` → `[N, size, size, 3]` uint8 RGB."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3:
        raise ValueError(f"landmarks must have shape (N, 68, 2), got {landmarks.shape}.")
    if len(landmarks) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([draw_landmarks(points, size) for points in landmarks])


def to_model_range(image_uint8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [-1, 1], the value range of every network input and output."""
    return image_uint8.astype(np.float32) / 127.5 - 1.0


def from_model_range(image: np.ndarray) -> np.ndarray:
    """float [-1, 1] → uint8 [0, 255] (clipped)."""
    return np.clip((np.asarray(image, np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
