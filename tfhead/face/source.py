"""The picture a person model animates: the source photo, its landmarks and its face crop.

A person model keeps its first shot (`PersonSource`) for two jobs (docs/design.md §14):

* **Warp guidance.** A warp-guided generator (`ModelConfig.warp_guidance`) takes, besides the
  landmark image, the source crop warped piecewise-affinely to the frame's target landmarks, the
  mouth gap the warp opens painted dark and closing eyes covered (`warp`;
  `tfhead.face.motion.PhotoWarper` and `paint_openings`: ~1 ms per 128² frame, ~2 ms per 256²).
* **Paste-back.** The generated crop is put back into the full photo, which follows the head
  (`paste_back`, `tfhead.face.paste.PasteBack`): the result is shown at the photo's resolution.

The crop is not stored: it is made from the photo with the training crop rule
(`tfhead.face.crop`), exactly as fine-tuning made it. NumPy/OpenCV only (the on-device runner
uses this module).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import cv2
import numpy as np

from tfhead.face import crop as crop_lib
from tfhead.face import landmark_image, motion, paste
from tfhead.io import images

PHOTO_FILE = "photo.png"
# Photos larger than this (longer side, px) are stored downscaled: paste-back output stays a
# video a phone or a browser plays, and a checkpoint stays small.
MAX_PHOTO_SIDE = 1280


@dataclasses.dataclass
class PersonSource:
    """One photo of the person with its 68 landmarks, and the model's crop of it.

    Attributes:
      photo: RGB uint8 `[H, W, 3]`.
      photo_landmarks: `[68, 2]` float32 in photo pixels.
      resolution: The model's crop side R.
    """

    photo: np.ndarray
    photo_landmarks: np.ndarray
    resolution: int

    def __post_init__(self):
        photo = np.asarray(self.photo)
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(f"The source photo must be RGB uint8 [H, W, 3], got {photo.dtype} "
                             f"{list(photo.shape)}.")
        points = np.asarray(self.photo_landmarks, np.float32)
        if points.shape != (68, 2) or not np.isfinite(points).all():
            raise ValueError(f"The source landmarks must be finite [68, 2], got "
                             f"{list(points.shape)}.")
        scale = MAX_PHOTO_SIDE / max(photo.shape[:2])
        if scale < 1:
            size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
            points = points * np.float32(scale)
        self.photo, self.photo_landmarks = np.ascontiguousarray(photo), points

    @functools.cached_property
    def transform(self) -> crop_lib.CropTransform:
        return crop_lib.CropTransform(crop_lib.crop_box(self.photo_landmarks), self.resolution)

    @functools.cached_property
    def crop(self) -> np.ndarray:
        """The model's `[R, R, 3]` uint8 crop of the photo (the training crop rule)."""
        return self.transform.crop_image(self.photo)

    @functools.cached_property
    def landmarks(self) -> np.ndarray:
        """The landmarks in crop pixels `[68, 2]` float32 (the person's reference landmarks)."""
        return self.transform.to_crop(self.photo_landmarks).astype(np.float32)

    @functools.cached_property
    def _warper(self) -> motion.PhotoWarper:
        return motion.PhotoWarper(self.crop, self.landmarks)

    def warp(self, points: np.ndarray) -> np.ndarray:
        """The crop warped to target landmarks (`[N, 68, 2]` or `[68, 2]` crop pixels →
        `[N, R, R, 3]` or `[R, R, 3]` uint8), the mouth gap the warp opens painted dark and
        closing eyes painted as closed lids (`motion.paint_openings`): a warp-guided model's second
        input."""
        points = np.asarray(points, np.float32)
        single = points.ndim == 2
        warped = np.stack([motion.paint_openings(self._warper.warp(p), p, self.landmarks)
                           for p in (points[None] if single else points)])
        return warped[0] if single else warped

    def paste_back(self, **options) -> paste.PasteBack:
        """A `PasteBack` of this photo (`options`: its keyword arguments)."""
        return paste.PasteBack(self.photo, self.photo_landmarks, self.resolution, **options)

    # -- On disk -------------------------------------------------------------------------------

    def save(self, folder: str) -> dict:
        """Writes `PHOTO_FILE` into `folder`; returns what person.json keeps about it."""
        if not cv2.imwrite(os.path.join(folder, PHOTO_FILE),
                           cv2.cvtColor(self.photo, cv2.COLOR_RGB2BGR)):
            raise OSError(f"Could not write {os.path.join(folder, PHOTO_FILE)}.")
        return {"file": PHOTO_FILE, "landmarks": np.round(self.photo_landmarks, 3).tolist()}

    @classmethod
    def load(cls, folder: str, record: dict, resolution: int) -> "PersonSource":
        """Reads what `save` wrote. Raises ValueError (with the reason) when it is damaged."""
        if not isinstance(record, dict) or "landmarks" not in record:
            raise ValueError("its source record lacks the photo's landmarks")
        path = os.path.join(folder, str(record.get("file", PHOTO_FILE)))
        try:
            image = images.read_image(path)
        except images.ImageReadError:
            raise ValueError(f"{os.path.basename(path)} is missing or not a readable "
                             "image") from None
        return cls(image, np.asarray(record["landmarks"], np.float32), resolution)


def model_inputs(points: np.ndarray, resolution: int,
                 source: PersonSource | None) -> list[np.ndarray]:
    """A person generator's uint8 inputs for target landmarks `[N, 68, 2]` (crop pixels): the
    landmark images, and with a `source` (a warp-guided model) the warps."""
    drawn = landmark_image.draw_batch(np.asarray(points, np.float32), resolution)
    return [drawn] if source is None else [drawn, source.warp(points)]
