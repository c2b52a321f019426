"""Blocks composed of the primitive layers: the BigGAN-style residual block and SAGAN self-attention.

Paper §3.2 / docs/design.md §3. Both blocks are shape-preserving in channels layout (NHWC) and
are used by all three networks.
"""

from __future__ import annotations

import keras
from keras import ops

from tfhead.models import layers
from tfhead.models import ops as tfops

RESAMPLE_MODES = ("none", "down", "up")
NORM_MODES = ("none", "instance", "adain")


@keras.saving.register_keras_serializable(package=layers.SERIALIZATION_PACKAGE)
class ResidualBlock(keras.layers.Layer):
    """Pre-activation residual block (BigGAN, Brock et al. 2019).

    main: [norm → ReLU] → (upsample ×2) → conv3×3 → norm → ReLU → conv3×3 → (avg-pool ×2)
    skip: (upsample ×2) → conv1×1 → (avg-pool ×2)   — only when channels or size change.

    Args:
      filters: Output channels.
      resample: "none", "down" (average pooling at the end) or "up" (×2 at the start).
      norm: "none" (E and D), "instance" (G's encoder) or "adain" (G's decoder; the AdaIN
        parameters come from the caller).
      preactivation: Whether the block starts with norm → ReLU. False for the first block of a
        network, whose input is an image.
      epsilon: Normalization epsilon.
      power_iterations: Spectral normalization power iterations.
      upsampling: How "up" enlarges: "nearest" (BigGAN's, the paper's) or "bilinear"
        (`ops.upsample_bilinear_2x`).

    Call arguments:
      x: `[batch, height, width, in_channels]`.
      adain_params: With norm="adain", a tuple (γ1, β1, γ2, β2) of `[batch, in_channels]` and
        `[batch, filters]` tensors for the first and second normalization.
    """

    def __init__(self, filters: int, resample: str = "none", norm: str = "none",
                 preactivation: bool = True, epsilon: float = 1e-5, power_iterations: int = 1,
                 upsampling: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if resample not in RESAMPLE_MODES:
            raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}.")
        if norm not in NORM_MODES:
            raise ValueError(f"norm must be one of {NORM_MODES}, got {norm!r}.")
        if upsampling not in tfops.UPSAMPLING_MODES:
            raise ValueError(
                f"upsampling must be one of {tfops.UPSAMPLING_MODES}, got {upsampling!r}.")
        self.filters = filters
        self.resample = resample
        self.upsampling = upsampling
        self.norm = norm
        self.preactivation = preactivation
        self.epsilon = epsilon
        self.power_iterations = power_iterations
        self.conv1 = layers.sn_conv2d(filters, 3, power_iterations, name="conv1")
        self.conv2 = layers.sn_conv2d(filters, 3, power_iterations, name="conv2")
        if norm == "instance":
            self.norm1 = layers.instance_normalization(epsilon, name="norm1") if preactivation else None
            self.norm2 = layers.instance_normalization(epsilon, name="norm2")
        self.skip_conv = None

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels != self.filters or self.resample != "none":
            self.skip_conv = layers.sn_conv2d(self.filters, 1, self.power_iterations, name="skip")
        # Built here: resampling convolutions are run through `call_resampled`, not `__call__`.
        self.conv1.build((None, None, None, in_channels))
        self.conv2.build((None, None, None, self.filters))
        if self.skip_conv is not None:
            self.skip_conv.build((None, None, None, in_channels))
        self.built = True

    def _normalize(self, x, index, adain_params, training):
        if self.norm == "instance":
            layer = self.norm1 if index == 1 else self.norm2
            return layer(x, training=training)
        if self.norm == "adain":
            gamma, beta = adain_params[2 * (index - 1)], adain_params[2 * (index - 1) + 1]
            return tfops.adain(x, gamma, beta, self.epsilon)
        return x

    def call(self, x, adain_params=None, training=False):
        if self.norm == "adain" and (adain_params is None or len(adain_params) != 4):
            raise ValueError("A norm='adain' block needs adain_params=(γ1, β1, γ2, β2).")
        h = x
        if self.preactivation:
            h = ops.relu(self._normalize(h, 1, adain_params, training))
        # ×2 resampling is folded into the adjacent convolution (`SpectralConv2D.call_resampled`):
        # the same function as upsample → conv1 and conv2 → pool, with fewer products.
        if self.resample == "up":
            h = self.conv1.call_resampled(h, "up", self.upsampling, training=training)
        else:
            h = self.conv1(h, training=training)
        h = ops.relu(self._normalize(h, 2, adain_params, training))
        if self.resample == "down":
            h = self.conv2.call_resampled(h, "down", training=training)
        else:
            h = self.conv2(h, training=training)

        skip = x
        if self.skip_conv is not None:
            if self.resample == "none":
                skip = self.skip_conv(skip, training=training)
            else:
                skip = self.skip_conv.call_resampled(skip, self.resample, self.upsampling,
                                                     training=training)
        return h + skip

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        factor = {"none": 1.0, "down": 0.5, "up": 2.0}[self.resample]
        return (batch, int(height * factor), int(width * factor), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "resample": self.resample,
                "norm": self.norm, "preactivation": self.preactivation, "epsilon": self.epsilon,
                "power_iterations": self.power_iterations, "upsampling": self.upsampling}


@keras.saving.register_keras_serializable(package=layers.SERIALIZATION_PACKAGE)
class SelfAttention(keras.layers.Layer):
    """SAGAN self-attention (Zhang et al. 2019): y = x + γ · o, γ initialised to 0.

    Queries and keys have C/8 channels, values C/2 (as in BigGAN), the output a 1×1 conv back to C;
    attention runs over all H·W positions.

    Call arguments:
      x: `[batch, height, width, channels]`; returns the same shape.
    """

    def __init__(self, power_iterations: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.power_iterations = power_iterations

    def build(self, input_shape):
        channels = input_shape[-1]
        key_channels = max(1, channels // 8)
        value_channels = max(1, channels // 2)
        self.query = layers.sn_conv2d(key_channels, 1, self.power_iterations, name="query",
                                      use_bias=False)
        self.key = layers.sn_conv2d(key_channels, 1, self.power_iterations, name="key", use_bias=False)
        self.value = layers.sn_conv2d(value_channels, 1, self.power_iterations, name="value",
                                      use_bias=False)
        self.out = layers.sn_conv2d(channels, 1, self.power_iterations, name="out", use_bias=False)
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")
        self.built = True

    def call(self, x, training=False):
        _, height, width, channels = x.shape
        positions = height * width
        query = ops.reshape(self.query(x, training=training), (-1, positions, self.query.filters))
        key = ops.reshape(self.key(x, training=training), (-1, positions, self.key.filters))
        value = ops.reshape(self.value(x, training=training),
                            (-1, positions, self.value.filters))
        logits = ops.matmul(query, ops.transpose(key, (0, 2, 1)))  # [B, N, N]
        attention = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        attended = ops.matmul(ops.cast(attention, value.dtype), value)  # [B, N, C/2]
        attended = ops.reshape(attended, (-1, height, width, self.value.filters))
        return x + ops.cast(self.gamma, x.dtype) * self.out(attended, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package=layers.SERIALIZATION_PACKAGE)
class InvertedResidual(keras.layers.Layer):
    """MobileNetV2's inverted residual block (Sandler et al. 2018), for the real-time student.

    conv1×1 (C_in → e·C_in) → ReLU → depthwise 3×3 (stride s) → ReLU → conv1×1 (→ C_out), plus the
    input when the shape is unchanged. No normalization: the student is trained for one person
    with regression losses, and at inference every layer is a convolution with a fused ReLU
    (CONV_2D / DEPTHWISE_CONV_2D / ADD, all inside XNNPACK).

    Args:
      filters: Output channels.
      expansion: Width multiplier of the hidden layer (e).
      stride: 1, or 2 to halve height and width.

    Call arguments:
      x: `[batch, height, width, in_channels]`; returns `[batch, height / s, width / s, filters]`.
    """

    def __init__(self, filters: int, expansion: int = 4, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}.")
        if expansion < 1:
            raise ValueError(f"expansion must be >= 1, got {expansion}.")
        self.filters, self.expansion, self.stride = filters, expansion, stride

    def build(self, input_shape):
        in_channels = input_shape[-1]
        hidden = in_channels * self.expansion
        self.expand = keras.layers.Conv2D(hidden, 1, activation="relu",
                                          kernel_initializer="he_normal", name="expand")
        self.depthwise = keras.layers.DepthwiseConv2D(3, self.stride, padding="same",
                                                      activation="relu",
                                                      depthwise_initializer="he_normal",
                                                      name="depthwise")
        self.project = keras.layers.Conv2D(self.filters, 1, kernel_initializer="glorot_uniform",
                                           name="project")
        self.residual = self.stride == 1 and in_channels == self.filters
        self.built = True

    def call(self, x):
        h = self.project(self.depthwise(self.expand(x)))
        return x + h if self.residual else h

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.stride == 2:
            height, width = height // 2, width // 2
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "expansion": self.expansion,
                "stride": self.stride}
