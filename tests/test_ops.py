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


def _conv_same(x, kernel):
    """A NumPy stride-1 zero-padded 'same' convolution (odd square kernel), the reference."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],), np.float64)
    for dy in range(k):
        for dx in range(k):
            out += padded[:, dy:dy + height, dx:dx + width] @ kernel[dy, dx]
    return out


@pytest.mark.parametrize("size", [1, 3])
def test_conv_avg_pool_is_pool_after_conv(rng, size):
    """The folded 4×4 stride-2 convolution (or the pooled 1×1) equals conv → 2×2 average pool,
    borders included, on non-square inputs."""
    x = rng.normal(size=(2, 6, 10, 3)).astype("float32")
    kernel = rng.normal(size=(size, size, 3, 5)).astype("float32")
    bias = rng.normal(size=(5,)).astype("float32")
    conv = _conv_same(x, kernel) + bias
    expected = conv.reshape(2, 3, 2, 5, 2, 5).mean(axis=(2, 4))
    got = np.asarray(tfops.conv_avg_pool_2x(x, kernel, bias))
    assert got.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("size,mode", [(3, "nearest"), (1, "nearest"), (1, "bilinear"),
                                       (3, "bilinear")])
def test_upsample_conv_is_conv_after_upsampling(rng, size, mode):
    """The sub-pixel form (nearest, 3×3), the swapped 1×1 and the unfolded bilinear 3×3 all equal
    conv(upsample(x)) + bias, borders included."""
    x = rng.normal(size=(2, 5, 3, 4)).astype("float32")
    kernel = rng.normal(size=(size, size, 4, 6)).astype("float32")
    bias = rng.normal(size=(6,)).astype("float32")
    expected = _conv_same(np.asarray(tfops.upsample_2x(x, mode), np.float64), kernel) + bias
    got = np.asarray(tfops.upsample_conv_2x(x, kernel, bias, mode))
    assert got.shape == (2, 10, 6, 6)
    np.testing.assert_allclose(got, expected, atol=1e-4)
