"""Evaluation metrics: golden values on real and generated faces."""

import numpy as np
import pytest
import scipy.linalg

from tfhead.evaluation import metrics
from tfhead.face import landmarks, motion, procedural


@pytest.fixture(scope="module")
def detector():
    return landmarks.LandmarkDetector()


@pytest.fixture(scope="module")
def faces(astronaut, detector):
    """The astronaut, the astronaut with another expression and pose (a real-photo warp, true
    landmarks known), and a procedural face with its exact landmarks."""
    image = astronaut[0][1]
    points = detector.detect(image).landmarks
    track = motion.motion_track(points, 10, seed=1)
    warped = motion.PhotoWarper(image, points).warp(track[5])
    identity = procedural.random_identity(3)
    other_points = procedural.procedural_landmarks(identity, 512)
    other = procedural.render_face(identity, other_points, 512)
    return {"image": image, "points": points, "warped": warped, "warped_points": track[5],
            "other": other, "other_points": other_points}


def test_identical_frames_give_ssim_one_and_infinite_psnr(faces):
    batch = np.stack([faces["image"], faces["warped"]])
    np.testing.assert_allclose(metrics.ssim(batch, batch), [1.0, 1.0], atol=1e-6)
    assert np.all(np.isinf(metrics.psnr(batch, batch)))


def test_ssim_and_psnr_fall_with_noise(faces, rng):
    clean = faces["image"][None]
    scores = []
    for sigma in (5, 20, 60):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
        scores.append((metrics.ssim(noisy, clean)[0], metrics.psnr(noisy, clean)[0]))
    ssims, psnrs = zip(*scores)
    assert ssims[0] > ssims[1] > ssims[2] and psnrs[0] > psnrs[1] > psnrs[2]
    # PSNR of Gaussian noise σ = 5 on 8 bits: 20·log10(255/5) ≈ 34.2 dB (clipping lowers σ a bit).
    assert psnrs[0] == pytest.approx(34.2, abs=0.6)


def test_landmark_error_is_zero_on_the_detected_landmarks_and_grows_with_offset(faces, detector):
    image, points = faces["image"], faces["points"]
    np.testing.assert_allclose(metrics.landmark_error(image[None], points[None], detector), [0.0],
                               atol=1e-9)
    ocular = np.linalg.norm(points[36] - points[45])
    shifted = points + np.array([0.1 * ocular, 0.0])
    np.testing.assert_allclose(metrics.landmark_error(image[None], shifted[None], detector), [0.1],
                               rtol=1e-6)
    # The warp's true landmarks are found again to within a few percent of the eye distance.
    error = metrics.landmark_error(faces["warped"][None], faces["warped_points"][None], detector)
    assert 0 < error[0] < 0.05
    blank = np.zeros_like(image)[None]
    assert np.isnan(metrics.landmark_error(blank, points[None], detector)[0])


def test_csim_of_the_same_person_beats_two_different_faces(faces, detector):
    identity = metrics.FaceIdentity(detector)
    astronaut = identity.descriptor(faces["image"])
    same = identity.descriptor(faces["warped"])
    other = identity.descriptor(faces["other"], faces["other_points"])
    assert astronaut.shape == (128,)
    np.testing.assert_allclose(metrics.csim(astronaut[None], astronaut[None]), [1.0], atol=1e-6)
    same_person = metrics.csim(astronaut[None], same[None])[0]
    different = metrics.csim(astronaut[None], other[None])[0]
    assert same_person > 0.95 and different < same_person - 0.05
    # No face: a NaN descriptor, and a NaN CSIM.
    blank = identity.descriptor(np.zeros_like(faces["image"]))
    assert np.isnan(blank).all() and np.isnan(metrics.csim(blank[None], astronaut[None])[0])


def test_fid_matches_the_closed_form(rng):
    a = rng.normal(size=(4000, 3)) @ np.diag([1.0, 2.0, 0.5])
    b = rng.normal(size=(4000, 3)) + np.array([1.0, -2.0, 0.0])
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b)
                - 2 * np.trace(scipy.linalg.sqrtm(cov_a @ cov_b).real))
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same Gaussians: FID → |Δμ|² = 5 plus Tr terms (identity vs diag(1, 4, 0.25)).
    assert metrics.fid(a, b) == pytest.approx(5 + (1 - 1) ** 2 + (2 - 1) ** 2 + (0.5 - 1) ** 2,
                                              abs=0.3)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """InceptionV3 no-top weights built here (random initialisation, Keras 3 format), and the
    model that wrote them."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(299, 299, 3))
    path = str(tmp_path_factory.mktemp("weights") / "inception_v3_notop.weights.h5")
    model.save_weights(path)
    return path, model


def test_inception_features_and_fid_on_weights_built_here(inception_weights, faces):
    import tensorflow as tf

    path, source_model = inception_weights
    features = metrics.InceptionFeatures(path, batch_size=2)
    frames = np.stack([faces["image"], faces["warped"], faces["other"][:512, :512],
                       faces["image"][:, ::-1]])
    out = features(frames)
    # The file's weights were loaded (a fresh InceptionV3 starts from other random weights).
    resized = tf.image.resize(tf.constant(frames[:2], tf.float32), (299, 299)) / 127.5 - 1.0
    np.testing.assert_allclose(out[:2], np.asarray(source_model(resized)), rtol=1e-4, atol=1e-5)
    assert out.shape == (4, 2048) and np.isfinite(out).all()
    np.testing.assert_allclose(features(frames[:1]), out[:1], rtol=1e-4, atol=1e-5)
    assert metrics.fid(out, out) == pytest.approx(0.0, abs=1e-3)
    assert metrics.fid(out[:2], out[2:]) > 0


def test_missing_or_wrong_inception_weights_name_the_flag(tmp_path):
    with pytest.raises(metrics.MetricWeightsError, match="--inception_weights"):
        metrics.InceptionFeatures(None)
    with pytest.raises(metrics.MetricWeightsError, match="--inception_weights: no such file"):
        metrics.InceptionFeatures(str(tmp_path / "missing.h5"))
    import keras

    wrong = str(tmp_path / "wrong.weights.h5")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(wrong)
    with pytest.raises(metrics.MetricWeightsError, match="is not InceptionV3"):
        metrics.InceptionFeatures(wrong)


def test_block_pattern_sees_the_grid_of_repeated_nearest_upsampling(faces, rng):
    """A smooth image enlarged ×8 by three nearest ×2 steps has a period-8 grid; the same image
    enlarged bilinearly, and a real photo, have none."""
    import cv2

    small = cv2.GaussianBlur(rng.uniform(0, 255, (16, 16, 3)).astype(np.float32), (0, 0), 1.0)
    nearest = small
    for _ in range(3):
        nearest = np.repeat(np.repeat(nearest, 2, axis=0), 2, axis=1)
    bilinear = cv2.resize(small, (128, 128), interpolation=cv2.INTER_LINEAR)
    photo = cv2.resize(faces["image"], (128, 128), interpolation=cv2.INTER_AREA)
    grid, smooth, real = metrics.block_pattern(
        np.stack([nearest, bilinear, photo]).astype(np.uint8), period=8)
    assert grid > 5.0
    assert smooth < 1.3 and real < 1.3
    # A frame is accepted alone; too small a frame for the period is refused.
    assert metrics.block_pattern(photo, 4).shape == (1,)
    with pytest.raises(ValueError, match="larger than the period"):
        metrics.block_pattern(photo[:6, :6], 8)
