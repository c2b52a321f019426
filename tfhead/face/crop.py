"""Square face crops around landmarks, with their inverse (docs/design.md §2).

One crop rule serves training, fine-tuning and driving: `crop_box` turns landmarks into a square
box, `stable_box` turns a landmark track into one box for a whole clip, and `CropTransform` maps
images and points into the crop and back (the inverse is what pastes results back into a frame).

Imports only NumPy and OpenCV (no TensorFlow).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# The 68 landmarks span brows to chin; the box is widened by `scale` and moved up by `shift_up`
# (fractions of the box size) so that forehead, hair line and chin fit.
DEFAULT_SCALE = 1.8
DEFAULT_SHIFT_UP = 0.12


@dataclasses.dataclass(frozen=True)
class Box:
    """A square box: centre (cx, cy) and side length, in source-image pixels."""

    cx: float
    cy: float
    size: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def crop_box(landmarks: np.ndarray, scale: float = DEFAULT_SCALE,
             shift_up: float = DEFAULT_SHIFT_UP) -> Box:
    """The square crop box of one frame's `[68, 2]` landmarks."""
    points = np.asarray(landmarks, np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    size = float(max(high - low)) * scale
    cx, cy = (low + high) / 2.0
    return Box(float(cx), float(cy - shift_up * size), size)


def stable_box(track: np.ndarray, scale: float = DEFAULT_SCALE,
               shift_up: float = DEFAULT_SHIFT_UP) -> Box:
    """One box for a clip: the median centre and the 90th-percentile size of per-frame boxes.

    Args:
      track: `[frames, 68, 2]` landmarks; frames with NaN (no face) are ignored.
    """
    track = np.asarray(track, np.float64)
    valid = np.all(np.isfinite(track), axis=(1, 2))
    if not valid.any():
        raise ValueError("stable_box needs at least one frame with landmarks.")
    boxes = [crop_box(t, scale, shift_up) for t in track[valid]]
    return Box(float(np.median([b.cx for b in boxes])), float(np.median([b.cy for b in boxes])),
               float(np.percentile([b.size for b in boxes], 90)))


@dataclasses.dataclass(frozen=True)
class CropTransform:
    """Maps a `Box` of a source image onto an `out_size` × `out_size` crop.

    Pixels outside the source image are filled by replicating the border.
    """

    box: Box
    out_size: int

    @property
    def matrix(self) -> np.ndarray:
        """2×3 affine matrix source → crop."""
        s = self.out_size / self.box.size
        x0, y0 = self.box.cx - self.box.size / 2.0, self.box.cy - self.box.size / 2.0
        return np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]], np.float64)

    @property
    def inverse_matrix(self) -> np.ndarray:
        """2×3 affine matrix crop → source."""
        return cv2.invertAffineTransform(self.matrix)

    def crop_image(self, image: np.ndarray) -> np.ndarray:
        """Crops and resizes `image` (any channel order; it is kept).

        When the box is larger than the output, the image is first shrunk with area averaging so
        that the crop does not alias; the affine warp then only resamples by less than 2×.
        """
        return shrink_warp(image, self.matrix, self.out_size / self.box.size, self.out_size)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source-image points `[N, 2]` → crop coordinates."""
        return _apply(self.matrix, points)

    def from_crop(self, points: np.ndarray) -> np.ndarray:
        """Crop points `[N, 2]` → source-image coordinates."""
        return _apply(self.inverse_matrix, points)

    def paste(self, crop: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Warps `crop` back into a copy of `frame` (inside the box only)."""
        h, w = frame.shape[:2]
        back = cv2.warpAffine(crop, self.inverse_matrix, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones(crop.shape[:2], np.uint8), self.inverse_matrix, (w, h),
                              flags=cv2.INTER_NEAREST).astype(bool)
        out = frame.copy()
        out[mask] = back[mask]
        return out


def shrink_warp(image: np.ndarray, matrix: np.ndarray, scale: float, out_size: int) -> np.ndarray:
    """`image` warped by the 2×3 `matrix` (which shrinks by `scale`) to `out_size` ×
    `out_size`, area-averaged first when it shrinks by more than 2× (no aliasing), border
    replicated: how every model input crop is made."""
    if scale < 0.5:
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                           interpolation=cv2.INTER_AREA)
        sx, sy = small.shape[1] / w, small.shape[0] / h
        matrix = np.asarray(matrix, np.float64) @ np.array([[1.0 / sx, 0, 0], [0, 1.0 / sy, 0],
                                                            [0, 0, 1.0]])
        image = small
    return cv2.warpAffine(image, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
