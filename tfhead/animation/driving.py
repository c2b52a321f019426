"""Driving a person model: frames of a video file or webcam → landmark images (NumPy/OpenCV/dlib).

Shared by `tfhead-animate` (TensorFlow) and the on-device runner (LiteRT), so that both crop,
track, retarget and rasterize exactly as training did (docs/design.md §9).

* `DrivingSource` reads frames, tracks the driver's landmarks (`LandmarkTracker`) and maps them into
  a fixed square crop around the driver's first detected face (the training crop rule).
* `MotionMapper` turns the driver's crop landmarks into the landmarks the person model is drawn
  with: `absolute` uses them as they are; `relative` (default) retargets the driver's motion from a
  reference (neutral) frame onto the source's own geometry (`tfhead.face.retarget`).

Frames without a face: the last landmarks seen are held (the output keeps the last expression and
pose); before the driver's first face, the source's own reference landmarks are used (the person
at rest). Both cases are counted in the report; a driver with too few faces overall is refused by
the reenactment loop (`reenact.ReenactOptions.min_face_fraction`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator

import cv2
import numpy as np

from tfhead import errors
from tfhead.face import crop as crop_lib
from tfhead.face import landmark_image, landmarks, retarget
from tfhead.io import video as video_lib


class DrivingError(errors.TfheadError, IOError):
    """A driving video or camera that cannot be read."""


@dataclasses.dataclass
class DrivingFrame:
    """One driving frame.

    Attributes:
      index: Frame number in the source.
      image: The full RGB frame.
      crop: `[R, R, 3]` RGB crop with the driver's crop box (black before the first face).
      landmarks: `[68, 2]` driver landmarks in crop pixels, or None when no face was found.
      decode_seconds, landmark_seconds: Time spent decoding and finding landmarks (per-stage
        reports).
    """

    index: int
    image: np.ndarray
    crop: np.ndarray
    landmarks: np.ndarray | None
    decode_seconds: float
    landmark_seconds: float


class DrivingSource:
    """Iterates a driving video file (path) or webcam (integer index) with tracked landmarks.

    Args:
      source: A video path, or a camera index (int, or a string of digits).
      resolution: Side of the crops (the person model's resolution).
      detector: A `LandmarkDetector`.
      redetect_every: Run the face detector every N frames even while tracking (0 = only on loss).
      max_frames: Stop after this many frames (None: to the end; needed for endless webcams).
    """

    def __init__(self, source: str | int, resolution: int, detector: landmarks.LandmarkDetector,
                 redetect_every: int = 0, max_frames: int | None = None):
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        self.source, self.resolution, self.max_frames = source, resolution, max_frames
        self.is_camera = isinstance(source, int)
        if self.is_camera:
            self._capture = cv2.VideoCapture(source)
            if not self._capture.isOpened():
                raise DrivingError(f"Cannot open camera {source}; check that it exists and is free.")
            self.fps = float(self._capture.get(cv2.CAP_PROP_FPS)) or 25.0
            self.frame_count = None
        else:
            info = check_source(source)
            self.fps = info.fps if info.fps > 0 else 25.0
            self.frame_count = info.frame_count
            self._capture = cv2.VideoCapture(source)
        self.tracker = landmarks.LandmarkTracker(detector, redetect_every=redetect_every)
        self.transform: crop_lib.CropTransform | None = None

    def __len__(self) -> int:
        counts = [c for c in (self.frame_count, self.max_frames) if c is not None]
        return min(counts) if counts else 0

    def __iter__(self) -> Iterator[DrivingFrame]:
        index = 0
        try:
            while self.max_frames is None or index < self.max_frames:
                start = time.perf_counter()
                ok, bgr = self._capture.read()
                if not ok:
                    break
                image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                decoded = time.perf_counter()
                result = self.tracker.update(image)
                points = None
                if result.landmarks is not None:
                    if self.transform is None:
                        self.transform = crop_lib.CropTransform(
                            crop_lib.crop_box(result.landmarks), self.resolution)
                    points = self.transform.to_crop(result.landmarks).astype(np.float32)
                crop = (self.transform.crop_image(image) if self.transform is not None
                        else np.zeros((self.resolution, self.resolution, 3), np.uint8))
                done = time.perf_counter()
                yield DrivingFrame(index, image, crop, points, decoded - start, done - decoded)
                index += 1
        finally:
            self._capture.release()
        if index == 0:
            raise DrivingError(f"Driving video {self.source}: no frame could be decoded.")


def check_source(source: str | int) -> video_lib.VideoInfo | None:
    """Cheap checks of a driver before any model is loaded: a camera index passes (it is opened
    later; None is returned); a path must be a readable video file whose first frame decodes — not
    a folder, not a still image — and its `VideoInfo` is returned.

    Raises:
      DrivingError: what is wrong, in one line.
    """
    if isinstance(source, int) or str(source).isdigit():
        return None
    try:
        return video_lib.probe(source)
    except video_lib.VideoReadError as e:
        raise DrivingError(f"Driving video: {str(e).rstrip('.')}. The driver must be a video "
                           "file or a camera index (0, 1, …).") from None


class MotionMapper:
    """Driver crop landmarks → the landmarks (and landmark image) the person is drawn with.

    Args:
      mode: "relative" (default in the tools) or "absolute".
      source_reference: The person's reference landmarks `[68, 2]` (crop pixels).
      resolution: Side of the landmark images.
      driver_reference: The driver's neutral landmarks for `relative`; None = the first face seen.
    """

    def __init__(self, mode: str, source_reference: np.ndarray, resolution: int,
                 driver_reference: np.ndarray | None = None):
        if mode not in retarget.MOTION_MODES:
            raise ValueError(f"Unknown motion mode {mode!r}; valid: {list(retarget.MOTION_MODES)}.")
        self.mode, self.resolution = mode, resolution
        self.source_reference = np.asarray(source_reference, np.float32)
        self._retargeter = (retarget.Retargeter(source_reference, driver_reference)
                            if mode == "relative" and driver_reference is not None else None)
        self._last: np.ndarray | None = None
        self.held = 0      # frames drawn with the previous frame's landmarks
        self.at_rest = 0   # frames before the driver's first face (source reference used)

    def landmarks(self, driver_landmarks: np.ndarray | None) -> np.ndarray:
        if driver_landmarks is None:
            if self._last is None:
                self.at_rest += 1
                return self.source_reference
            self.held += 1
            return self._last
        if self.mode == "absolute":
            mapped = np.asarray(driver_landmarks, np.float32)
        else:
            if self._retargeter is None:
                self._retargeter = retarget.Retargeter(self.source_reference, driver_landmarks)
            mapped = self._retargeter(driver_landmarks)
        self._last = mapped
        return mapped

    def landmark_image(self, driver_landmarks: np.ndarray | None) -> np.ndarray:
        """`[R, R, 3]` uint8 landmark image for one driver frame."""
        return landmark_image.draw_landmarks(self.landmarks(driver_landmarks), self.resolution)


def neutral_landmarks(source: str, frame: int, resolution: int,
                      detector: landmarks.LandmarkDetector) -> np.ndarray:
    """The driver's landmarks at `frame` in the crop of its first face (for `--neutral_frame`)."""
    if frame < 0:
        raise DrivingError(f"The neutral frame must be >= 0, got {frame}.")
    driving = DrivingSource(source, resolution, detector, max_frames=frame + 1)
    found, last = None, -1
    for item in driving:
        last = item.index
        if item.index == frame:
            found = item.landmarks
    if last < frame:
        raise DrivingError(f"The neutral frame {frame} is past the driver's end: it has "
                           f"{last + 1} frame(s) (numbered from 0). Choose an earlier one.")
    if found is None:
        raise DrivingError(f"No face in driving frame {frame}; choose another --neutral_frame.")
    return found
