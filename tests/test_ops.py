import numpy as np
import pytest

from tfhead.models import ops as tfops


def test_adain_sets_channel_mean_and_std(rng):
    x = rng.normal(3.0, 5.0, size=(2, 16, 16, 4)).astype("float32")
    gamma = np.array([[0.5, 2.0, 1.0, 3.0], [1.5, 0.1, 4.0, 1.0]], "float32")
    beta = np.array([[-1.0, 0.0, 2.0, 5.0], [0.3, -2.0, 1.0, 0.0]], "float32")
    y = np.asarray(tfops.adain(x, gamma, beta, epsilon=1e-8))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), beta, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2)), gamma, rtol=1e-3)


def test_adain_accepts_one_parameter_vector_for_the_batch(rng):
    x = rng.normal(size=(3, 8, 8, 2)).astype("float32")
    gamma, beta = np.array([2.0, 0.5], "float32"), np.array([1.0, -1.0], "float32")
    np.testing.assert_allclose(np.asarray(tfops.adain(x, gamma, beta)),
                               np.asarray(tfops.adain(x, np.tile(gamma, (3, 1)),
                                                      np.tile(beta, (3, 1)))), atol=1e-6)


def test_instance_norm(rng):
    x = rng.normal(-2.0, 3.0, size=(2, 8, 8, 3)).astype("float32")
    y = np.asarray(tfops.instance_norm(x, epsilon=1e-8))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, rtol=1e-4)


def test_upsample_is_nearest_neighbour(rng):
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    expected = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(np.asarray(tfops.upsample_nearest_2x(x)), expected)


def test_downsample_is_2x2_average(rng):
    x = rng.normal(size=(3, 4, 6, 5)).astype("float32")
    expected = x.reshape(3, 2, 2, 3, 2, 5).mean(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(tfops.downsample_avg_2x(x)), expected, atol=1e-6)


def test_global_pool(rng):
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(tfops.global_pool(x, "sum")), x.sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(tfops.global_pool(x, "max")), x.max(axis=(1, 2)))
    with pytest.raises(ValueError):
        tfops.global_pool(x, "mean")
