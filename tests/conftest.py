"""Shared test setup: quiet TensorFlow, two logical CPU devices, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _two_logical_cpus():
    """MirroredStrategy tests need two devices; the CPU is split before TensorFlow starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


_two_logical_cpus()

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _keras_seed():
    """Every test starts from the same Keras/TF random state, whatever ran before it."""
    import keras

    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def astronaut():
    """A real portrait: [("astronaut.png", RGB uint8)]."""
    import skimage.data

    return [("astronaut.png", skimage.data.astronaut())]


@pytest.fixture(scope="session")
def driver(tmp_path_factory, astronaut):
    """A real-photo warp of the astronaut (30 frames, 25 fps) with 3 blank frames in the middle,
    silent and with an audio track: {"silent": path, "audio": path}."""
    from tfhead import datasets, landmarks, synthetic
    from tfhead import video as video_lib

    directory = tmp_path_factory.mktemp("driver")
    image = astronaut[0][1]
    points = landmarks.LandmarkDetector().detect(image).landmarks
    warped = str(directory / "warp.mp4")
    datasets.make_photo_warp_clip(warped, image, points, 30, seed=3, amplitude=1.0)
    frames = list(video_lib.iter_frames(warped))
    for i in (12, 13, 14):
        frames[i] = np.zeros_like(frames[i])
    silent = str(directory / "silent.mp4")
    synthetic.write_video(silent, np.stack(frames), fps=25.0)
    with_audio = str(directory / "driver.mp4")
    video_lib.add_tone(silent, with_audio)
    return {"silent": silent, "audio": with_audio}
