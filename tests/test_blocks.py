import keras
import numpy as np
import pytest

from tfhead.models import blocks, layers


def _top_singular_value(kernel):
    kernel = np.asarray(kernel, np.float64)
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


@pytest.mark.parametrize("make,shape", [(lambda: layers.sn_conv2d(16, 3), (2, 8, 8, 8)),
                                        (lambda: layers.sn_dense(8), (4, 5))])
def test_normalized_kernel_has_top_singular_value_one(rng, make, shape):
    layer = make()
    x = rng.normal(size=shape).astype("float32")
    layer(x)  # build: u and v start converged
    assert abs(_top_singular_value(layer.normalized_kernel()) - 1.0) < 0.02
    # A new kernel with σ = 5 (next 2.5): the raw kernel keeps it, the normalized one reaches 1.
    shape = layer.kernel.shape
    left, _, right = np.linalg.svd(rng.normal(size=(int(np.prod(shape[:-1])), shape[-1])),
                                   full_matrices=False)
    spectrum = np.linspace(2.5, 0.5, min(left.shape[1], right.shape[0]))
    spectrum[0] = 5.0
    layer.kernel.assign(((left * spectrum) @ right).reshape(shape).astype("float32"))
    for _ in range(30):
        layer(x, training=True)
    assert abs(_top_singular_value(layer.kernel) - 5.0) < 1e-3
    assert abs(_top_singular_value(layer.normalized_kernel()) - 1.0) < 0.02


def test_training_calls_update_u_v_and_never_the_kernel(rng):
    dense = layers.sn_dense(8)
    x = rng.normal(size=(4, 5)).astype("float32")
    dense(x)
    dense.kernel.assign(rng.normal(size=(5, 8)).astype("float32"))
    state = lambda: [np.asarray(v).copy() for v in (dense.kernel, dense.sn_u, dense.sn_v)]
    before = state()
    inference = np.asarray(dense(x, training=False))
    for a, b in zip(before, state()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(inference, np.asarray(dense(x, training=False)))
    dense(x, training=True)
    after = state()
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.allclose(after[1], before[1]) and not np.allclose(after[2], before[2])


def test_gradient_flows_through_sigma(rng):
    """Paper form: d⟨G, W/σ⟩/dW = G/σ − ⟨G, W⟩/σ² · v uᵀ (u, v constant), not G/σ alone."""
    import tensorflow as tf

    dense = layers.sn_dense(6)
    x = rng.normal(size=(3, 4)).astype("float32")
    dense(x)
    dense.kernel.assign(rng.normal(size=(4, 6)).astype("float32"))
    dense(x, training=True)  # u, v for this kernel
    upstream = rng.normal(size=(4, 6)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(dense.normalized_kernel(training=False) * upstream)
    gradient = tape.gradient(loss, dense.kernel.value)
    w, u, v = (np.asarray(a, np.float64) for a in (dense.kernel, dense.sn_u, dense.sn_v))
    sigma = v @ w @ u
    expected = upstream / sigma - np.sum(upstream * w) / sigma ** 2 * np.outer(v, u)
    np.testing.assert_allclose(np.asarray(gradient), expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected - upstream / sigma).max() > 1e-2  # the σ term is not negligible


def test_bfloat16_training_calls_keep_float32_master_weights(rng):
    """Under mixed_bfloat16 a training call must not round the float32 kernel to bfloat16, and an
    Adam-sized step (5e-5) must survive the next call."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        conv = layers.sn_conv2d(16, 3)
        x = rng.normal(size=(2, 8, 8, 8)).astype("float32")
        conv(x)
    finally:
        keras.config.set_dtype_policy(previous)
    assert conv.kernel.dtype == "float32" and conv.compute_dtype == "bfloat16"
    conv(x, training=True)
    kernel = np.asarray(conv.kernel, np.float32)
    low_bits = kernel.view(np.uint32) & 0xFFFF
    assert np.count_nonzero(low_bits) > 0.9 * kernel.size  # not bfloat16-representable
    conv.kernel.assign(kernel - 5e-5)
    conv(x, training=True)
    np.testing.assert_array_equal(np.asarray(conv.kernel), kernel - np.float32(5e-5))
    assert keras.backend.standardize_dtype(conv(x, training=True).dtype) == "bfloat16"


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


def _unfolded_block(block, x, params):
    """The block as its docstring writes it: resampling as its own step next to each conv."""
    from keras import ops

    from tfhead.models import ops as tfops

    h = ops.relu(block._normalize(x, 1, params, False)) if block.preactivation else x
    if block.resample == "up":
        h = tfops.upsample_2x(h, block.upsampling)
    h = ops.relu(block._normalize(block.conv1(h), 2, params, False))
    h = block.conv2(h)
    skip = x
    if block.resample == "down":
        h, skip = tfops.downsample_avg_2x(h), tfops.downsample_avg_2x(block.skip_conv(x))
    elif block.resample == "up":
        skip = block.skip_conv(tfops.upsample_2x(x, block.upsampling))
    return h + skip


@pytest.mark.parametrize("resample,norm,upsampling", [
    ("down", "none", "nearest"), ("down", "instance", "nearest"), ("up", "adain", "nearest"),
    ("up", "adain", "bilinear")])
def test_folded_resampling_equals_the_unfolded_block(rng, resample, norm, upsampling):
    """Folding ×2 resampling into the convolutions changes only rounding: outputs and the kernels'
    gradients match the block written step by step (bias and borders included)."""
    import tensorflow as tf

    block = blocks.ResidualBlock(5, resample=resample, norm=norm, upsampling=upsampling,
                                 preactivation=norm != "none")
    x = tf.constant(rng.normal(size=(2, 8, 6, 3)).astype("float32"))
    params = None
    if norm == "adain":
        params = tuple(tf.constant(rng.normal(1.0, 0.3, size=(2, c)).astype("float32"))
                       for c in (3, 3, 5, 5))
    block(x, adain_params=params)
    for weight in block.trainable_weights:  # biases away from zero, so they are checked too
        if "kernel" not in weight.path:
            weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.5)
    results = []
    for fn in (lambda: block(x, adain_params=params), lambda: _unfolded_block(block, x, params)):
        with tf.GradientTape() as tape:
            y = fn()
            loss = tf.reduce_sum(y * tf.sin(y))
        results.append((y.numpy(), [g.numpy() for g in tape.gradient(loss, block.trainable_weights)]))
    (y_folded, g_folded), (y_plain, g_plain) = results
    scale = np.abs(y_plain).max()
    np.testing.assert_allclose(y_folded, y_plain, atol=1e-5 * scale)
    # A bias before a norm has a zero gradient in exact arithmetic: compare on the common scale.
    gradient_scale = max(np.abs(b).max() for b in g_plain)
    for a, b in zip(g_folded, g_plain):
        np.testing.assert_allclose(a, b, atol=1e-4 * gradient_scale)


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
    (layers.InstanceNormalization, dict(epsilon=1e-3)),
])
def test_blocks_serialize_their_constructor_arguments(cls, args):
    """get_config holds every constructor argument with its value (non-defaults chosen, so a
    forgotten key or a default written instead of the attribute fails), and a round trip keeps it."""
    block = cls(**args, name="block")
    config = block.get_config()
    assert {key: config[key] for key in args} == args
    clone = keras.layers.deserialize(keras.layers.serialize(block))
    assert type(clone) is cls and clone.get_config() == config


class _Holder(keras.layers.Layer):
    """A layer holding a norm as the attribute `norm`, as `ResidualBlock` holds `norm1`."""

    def __init__(self, make, **kwargs):
        super().__init__(**kwargs)
        self.norm = make()

    def call(self, x):
        return self.norm(x)


def test_instance_normalization_is_keras_group_norm_per_channel(rng, tmp_path):
    """`InstanceNormalization` computes what `GroupNormalization(groups=-1)` (the layer it
    replaced) computes, gradients included, and weights saved with either load into the other
    (checkpoints made before the change)."""
    import tensorflow as tf

    x = tf.constant(rng.normal(2.0, 3.0, size=(2, 6, 5, 4)).astype("float32"))

    def model(make):
        return keras.Sequential([keras.Input((6, 5, 4)), _Holder(make, name="holder")])

    ours = model(lambda: layers.instance_normalization(name="norm"))
    theirs = model(lambda: keras.layers.GroupNormalization(groups=-1, epsilon=1e-5,
                                                               name="norm"))
    theirs.set_weights([rng.normal(size=4).astype("float32") for _ in range(2)])
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    assert [v.path.split("/", 1)[1] for v in ours.weights] == ["holder/norm/gamma",
                                                              "holder/norm/beta"]
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    weights = tf.range(4, dtype=tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ours, y_theirs = ours(x), theirs(x)
        loss_ours = tf.reduce_sum(y_ours * weights)
        loss_theirs = tf.reduce_sum(y_theirs * weights)
    np.testing.assert_allclose(y_ours, y_theirs, atol=1e-5)
    np.testing.assert_allclose(tf.reduce_mean(y_ours, axis=(1, 2)),
                               np.broadcast_to(np.asarray(ours.weights[1]), (2, 4)), atol=1e-5)
    for g_ours, g_theirs in zip(tape.gradient(loss_ours, [x, *ours.weights]),
                                tape.gradient(loss_theirs, [x, *theirs.weights])):
        np.testing.assert_allclose(g_ours, g_theirs, atol=1e-4)
    theirs.set_weights([np.zeros(4, "float32")] * 2)
    ours.save_weights(tmp_path / "ours.weights.h5")
    theirs.load_weights(tmp_path / "ours.weights.h5")
    np.testing.assert_allclose(theirs(x), y_ours, atol=1e-5)
