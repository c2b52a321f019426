"""Weight-free tensor math shared by the layers: instance statistics, AdaIN, resampling, pooling.

Every function takes and returns NHWC tensors `[batch, height, width, channels]` and is written
with `keras.ops` in forms that convert to TFLite built-ins inside the XNNPACK CPU delegate:
no RESIZE_NEAREST_NEIGHBOR, MIRROR_PAD or GATHER (docs/design.md §7), and no AVERAGE_POOL_2D
(see `downsample_avg_2x`).
"""

from __future__ import annotations

from keras import ops


def instance_moments(x):
    """Per-sample, per-channel mean and variance over height and width.

    Args:
      x: `[batch, height, width, channels]`.

    Returns:
      (mean, variance), each `[batch, 1, 1, channels]`, computed in float32.
    """
    x = ops.cast(x, "float32")
    mean = ops.mean(x, axis=(1, 2), keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True)
    return mean, variance


def instance_norm(x, epsilon: float = 1e-5):
    """Instance normalization without an affine transform: zero mean, unit std per channel."""
    mean, variance = instance_moments(x)
    normalized = (ops.cast(x, "float32") - mean) * ops.rsqrt(variance + epsilon)
    return ops.cast(normalized, x.dtype)


def adain(x, gamma, beta, epsilon: float = 1e-5):
    """Adaptive instance normalization (Huang & Belongie 2017), as used by G (paper §3.2).

    Normalizes each channel of each sample and then sets its std to `gamma` and its mean to `beta`.

    Args:
      x: `[batch, height, width, channels]`.
      gamma: `[batch, channels]` (or `[channels]`) target standard deviations.
      beta: `[batch, channels]` (or `[channels]`) target means.
      epsilon: Added to the variance.

    Returns:
      A tensor shaped like `x`.
    """
    normalized = ops.cast(instance_norm(x, epsilon), "float32")
    gamma = _as_nhwc_vector(ops.cast(gamma, "float32"))
    beta = _as_nhwc_vector(ops.cast(beta, "float32"))
    return ops.cast(normalized * gamma + beta, x.dtype)


def _as_nhwc_vector(v):
    """[C] or [B, C] → broadcastable against [B, H, W, C] (reshape, not x[:, None] indexing)."""
    if len(v.shape) == 1:
        return ops.reshape(v, (1, 1, 1, -1))
    return ops.expand_dims(ops.expand_dims(v, 1), 1)


def upsample_nearest_2x(x):
    """×2 nearest-neighbour upsampling as channel tiling + depth-to-space.

    depth_to_space with block 2 moves channel group (i * 2 + j) to pixel offset (i, j); four copies
    of `x` side by side therefore give every output pixel its nearest input pixel. This converts to
    CONCATENATION + DEPTH_TO_SPACE, which XNNPACK runs, instead of RESIZE_NEAREST_NEIGHBOR.
    """
    tiled = ops.concatenate([x, x, x, x], axis=-1)
    return ops.depth_to_space(tiled, 2, data_format="channels_last")


def upsample_bilinear_2x(x):
    """×2 bilinear upsampling (half-pixel centres, edges clamped; `tf.image.resize`'s rule).

    Each output pixel mixes its nearest input pixel (3/4) with the next one towards it along each
    axis (1/4), which is nearest upsampling followed by a [1, 2, 1]/4 blur per axis. G's up blocks
    use it with `generator_upsampling="bilinear"`: nearest upsampling leaves the 2-, 4- and 8-px
    block pattern of three ×2 steps in a briefly trained G (docs/design.md §3). Converts to
    RESIZE_BILINEAR, which XNNPACK runs.
    """
    height, width = x.shape[1], x.shape[2]
    return ops.image.resize(x, (2 * height, 2 * width), interpolation="bilinear",
                            data_format="channels_last")


def upsample_2x(x, mode: str):
    """×2 upsampling by `mode`: "nearest" (`upsample_nearest_2x`) or "bilinear"."""
    if mode == "nearest":
        return upsample_nearest_2x(x)
    if mode == "bilinear":
        return upsample_bilinear_2x(x)
    raise ValueError(f"Unknown upsampling {mode!r}; valid: {UPSAMPLING_MODES}.")


UPSAMPLING_MODES = ("nearest", "bilinear")


def downsample_avg_2x(x):
    """×2 average pooling, written as two reshapes and two means over pairs.

    `[B, H, W, C]` → `[B·H/2, 2, W/2, 2C]` (row pairs; column pairs side by side in channels) →
    mean over the row pair → `[B·H/2, W/2, 2, C]` → mean over the column pair → `[B, H/2, W/2, C]`.
    Equal to `average_pool` (tested), and every TFLite mode keeps it inside XNNPACK: an int8
    AVERAGE_POOL_2D must share its input's scale, stays int8 and is not delegated; a 2×2 depthwise
    convolution with weights 1/4 has its kernel int8-quantized in dynamic-range mode once
    4·C ≥ 1024, and that hybrid DEPTHWISE_CONV_2D is not delegated either (BUILD_NOTES.md,
    "Export"). It costs ~0.3–0.7 ms more per call than `average_pool` in a training step.
    """
    _, height, width, channels = x.shape
    pairs = ops.reshape(x, (-1, 2, width // 2, 2 * channels))
    rows = ops.mean(pairs, axis=1)
    columns = ops.reshape(rows, (-1, width // 2, 2, channels))
    return ops.reshape(ops.mean(columns, axis=2), (-1, height // 2, width // 2, channels))


def global_pool(x, mode: str = "sum"):
    """Global sum or max pooling over height and width: `[B, H, W, C]` → `[B, C]`."""
    if mode == "sum":
        return ops.sum(x, axis=(1, 2))
    if mode == "max":
        return ops.max(x, axis=(1, 2))
    raise ValueError(f"Unknown pooling mode {mode!r}; valid: ['sum', 'max'].")
