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
