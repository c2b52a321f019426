import keras
import numpy as np
import pytest

from tfhead.models import blocks, layers


def _top_singular_value(kernel):
    kernel = np.asarray(kernel)
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def test_spectral_norm_keeps_top_singular_value_near_one(rng):
    conv = layers.sn_conv2d(16, 3)
    x = rng.normal(size=(2, 8, 8, 8)).astype("float32")
    conv(x)  # build
    conv.kernel.assign(np.asarray(conv.kernel) * 5.0)  # σ well above 1
    assert _top_singular_value(conv.kernel) > 3.0
    for _ in range(30):
        conv(x, training=True)
    assert abs(_top_singular_value(conv.kernel) - 1.0) < 0.02


def test_inference_calls_leave_the_kernel_alone(rng):
    dense = layers.sn_dense(8)
    x = rng.normal(size=(4, 5)).astype("float32")
    dense(x)
    before = np.asarray(dense.kernel).copy()
    dense(x, training=False)
    np.testing.assert_array_equal(np.asarray(dense.kernel), before)
    dense(x, training=True)
    assert not np.allclose(np.asarray(dense.kernel), before)


@pytest.mark.parametrize("resample,norm,out_size", [
    ("down", "none", 4), ("down", "instance", 4), ("none", "none", 8), ("up", "adain", 16)])
def test_residual_block_shapes(rng, resample, norm, out_size):
    block = blocks.ResidualBlock(12, resample=resample, norm=norm)
    x = rng.normal(size=(2, 8, 8, 6)).astype("float32")
    params = None
    if norm == "adain":
        params = (np.ones((2, 6), "float32"), np.zeros((2, 6), "float32"),
                  np.ones((2, 12), "float32"), np.zeros((2, 12), "float32"))
    y = block(x, adain_params=params)
    assert tuple(y.shape) == (2, out_size, out_size, 12)
    assert block.compute_output_shape(x.shape) == (2, out_size, out_size, 12)


def test_residual_block_identity_skip_has_no_conv(rng):
    block = blocks.ResidualBlock(6, resample="none")
    block(rng.normal(size=(1, 4, 4, 6)).astype("float32"))
    assert block.skip_conv is None
    changed = blocks.ResidualBlock(8, resample="none")
    changed(rng.normal(size=(1, 4, 4, 6)).astype("float32"))
    assert changed.skip_conv is not None


def test_adain_block_requires_parameters(rng):
    with pytest.raises(ValueError, match="adain_params"):
        blocks.ResidualBlock(4, norm="adain")(rng.normal(size=(1, 4, 4, 4)).astype("float32"))


def test_adain_parameters_change_the_output(rng):
    block = blocks.ResidualBlock(4, norm="adain")
    x = rng.normal(size=(1, 8, 8, 4)).astype("float32")
    ones, zeros = np.ones((1, 4), "float32"), np.zeros((1, 4), "float32")
    a = np.asarray(block(x, adain_params=(ones, zeros, ones, zeros)))
    b = np.asarray(block(x, adain_params=(2 * ones, zeros + 0.5, ones, zeros)))
    assert np.abs(a - b).max() > 1e-3


def test_self_attention_starts_as_identity_and_learns_a_gate(rng):
    attention = blocks.SelfAttention()
    x = rng.normal(size=(2, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(np.asarray(attention(x)), x, atol=1e-6)
    attention.gamma.assign(1.0)
    y = np.asarray(attention(x))
    assert y.shape == x.shape and np.abs(y - x).max() > 1e-3


@pytest.mark.parametrize("cls, args", [
    (blocks.ResidualBlock, dict(filters=8, resample="down", norm="instance", preactivation=False,
                                epsilon=1e-3, power_iterations=2)),
    (blocks.SelfAttention, dict(power_iterations=3)),
    (blocks.InvertedResidual, dict(filters=16, expansion=2, stride=2)),
])
def test_blocks_serialize_their_constructor_arguments(cls, args):
    """get_config holds every constructor argument with its value (non-defaults chosen, so a
    forgotten key or a default written instead of the attribute fails), and a round trip keeps it."""
    block = cls(**args, name="block")
    config = block.get_config()
    assert {key: config[key] for key in args} == args
    clone = keras.layers.deserialize(keras.layers.serialize(block))
    assert type(clone) is cls and clone.get_config() == config
