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


# Resampling folded into the adjacent convolution (exact; only the rounding differs).
#
# A residual block's "conv3×3 → 2×2 average pool" is one 4×4 convolution of stride 2, and
# "nearest ×2 → conv3×3" is four 2×2 convolutions at the low resolution, one per output pixel
# phase (sub-pixel convolution). The kernels below are linear maps of the block's 3×3 kernel, so
# the layer keeps its one 3×3 weight (checkpoints, spectral normalization and its σ unchanged)
# and computes 4/9 of the multiply-accumulates; export folds the maps into constant kernels.
#
# Along one axis, with the 3×3 kernel's taps k0, k1, k2 at offsets -1, 0, +1:
#   pool after conv: low-res output r reads high-res rows 2r-1 … 2r+2 with weights
#     ½·(k0, k0+k1, k1+k2, k2)                                   (`_POOL_TAPS`, 4×3)
#   conv after nearest ×2: output row 2r+i reads low-res rows r-1, r (i = 0) with (k0, k1+k2)
#     or rows r, r+1 (i = 1) with (k0+k1, k2)                     (`_UP_TAPS[i]`, 2×3)
# Zero padding at the high resolution is zero padding at the low one, so borders are exact too.
_POOL_TAPS = ((0.5, 0.0, 0.0), (0.5, 0.5, 0.0), (0.0, 0.5, 0.5), (0.0, 0.0, 0.5))
_UP_TAPS = (((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),
            ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))


def _map_kernel(kernel, rows, columns):
    """Σ_yx rows[a][y]·columns[b][x]·kernel[y, x] for a kernel `[3, 3, in, out]`, in float32.

    Two matrix products over the kernel's spatial axes (forward and backward are products too):
    as an einsum this cost 33 ms per paper256 G call in TensorFlow, and as sums of slices its
    gradient cost 13× the forward pass (each slice's gradient is a full-size tensor).
    """
    kernel = ops.cast(kernel, "float32")
    rows = ops.convert_to_tensor(rows, "float32")
    columns = ops.convert_to_tensor(columns, "float32")
    mapped = ops.tensordot(rows, kernel, axes=([1], [0]))  # [a, x, in, out]
    mapped = ops.tensordot(columns, mapped, axes=([1], [1]))  # [b, a, in, out]
    return ops.transpose(mapped, (1, 0, 2, 3))


def conv_avg_pool_2x(x, kernel, bias=None):
    """`downsample_avg_2x(conv(x, kernel, "same") + bias)` in one convolution.

    A 3×3 kernel becomes a 4×4 kernel of stride 2 (16 taps per output instead of 9·4 = 36); a 1×1
    kernel runs after the pooling (¼ of the products). Other kernel sizes are not folded.

    Args:
      x: `[batch, height, width, in]` with even height and width.
      kernel: `[k, k, in, out]`.
      bias: `[out]` or None.
    """
    size = kernel.shape[0]
    if size == 3:
        folded = ops.cast(_map_kernel(kernel, _POOL_TAPS, _POOL_TAPS), kernel.dtype)
        # "same" with stride 2 and a 4-tap kernel pads one row/column on each side (even sizes).
        y = ops.conv(x, folded, strides=2, padding="same")
    elif size == 1:
        y = ops.conv(downsample_avg_2x(x), kernel, strides=1, padding="same")
    else:
        y = downsample_avg_2x(ops.conv(x, kernel, strides=1, padding="same"))
    return y + bias if bias is not None else y


def upsample_conv_2x(x, kernel, bias=None, mode: str = "nearest"):
    """`conv(upsample_2x(x, mode), kernel, "same") + bias` with the products at the low resolution.

    Nearest with a 3×3 kernel: one 2×2 convolution of the zero-padded input gives the four output
    phases as four channel groups, each cut to its offset and interleaved by depth-to-space (16
    products per output pixel and input channel instead of 36). A 1×1 kernel runs before the
    upsampling in both modes (¼ of the products; bilinear weights sum to one, so the bias commutes
    too). Bilinear with a 3×3 kernel is not folded: each phase would need a 3×3 kernel anyway.
    """
    size = kernel.shape[0]
    if size == 1:
        y = ops.conv(x, kernel, strides=1, padding="same")
        return upsample_2x(y + bias if bias is not None else y, mode)
    if size != 3 or mode != "nearest":
        y = ops.conv(upsample_2x(x, mode), kernel, strides=1, padding="same")
        return y + bias if bias is not None else y
    height = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
    width = x.shape[2] if x.shape[2] is not None else ops.shape(x)[2]
    out = kernel.shape[-1]
    taps = _UP_TAPS[0] + _UP_TAPS[1]  # rows 2i + a: phase i's tap a
    both = _map_kernel(kernel, taps, taps)  # [2i + a, 2j + b, in, out]
    both = ops.reshape(both, (2, 2, 2, 2, kernel.shape[2], out))  # [i, a, j, b, in, out]
    both = ops.transpose(both, (1, 3, 4, 0, 2, 5))  # [a, b, in, i, j, out]
    folded = ops.cast(ops.reshape(both, (2, 2, kernel.shape[2], 4 * out)), kernel.dtype)
    padded = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = ops.conv(padded, folded, strides=1, padding="valid")  # [b, h+1, w+1, 4·out]
    # Phase (i, j) sits at offset (i, j) of the padded grid; depth_to_space puts channel group
    # 2i + j at pixel offset (i, j), as `upsample_nearest_2x` relies on.
    cut = [y[:, i:i + height, j:j + width, (2 * i + j) * out:(2 * i + j + 1) * out]
           for i in (0, 1) for j in (0, 1)]
    y = ops.depth_to_space(ops.concatenate(cut, axis=-1), 2, data_format="channels_last")
    return y + bias if bias is not None else y


def global_pool(x, mode: str = "sum"):
    """Global sum or max pooling over height and width: `[B, H, W, C]` → `[B, C]`."""
    if mode == "sum":
        return ops.sum(x, axis=(1, 2))
    if mode == "max":
        return ops.max(x, axis=(1, 2))
    raise ValueError(f"Unknown pooling mode {mode!r}; valid: ['sum', 'max'].")
