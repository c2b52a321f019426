"""Primitive layers that own weights: spectrally normalized convolutions and dense layers,
instance normalization, and the initializer of the AdaIN projection's bias.

Spectral normalization is written here in the paper's form (Miyato et al. 2018, as the same lab's
code and every public port use it), not with `keras.layers.SpectralNormalization`:

* The layer keeps the **raw** kernel W as its trainable variable and normalizes it in the forward
  pass: the convolution uses W / σ(W), and the gradient flows through σ (the power-iteration
  vectors u, v are held constant, `stop_gradient`). Keras' wrapper instead assigns W / σ to the
  kernel variable on every training call, so no gradient flows through σ and each call rescales
  the whole matrix.
* σ is computed in float32 from the float32 kernel whatever the compute dtype: under
  `mixed_bfloat16` only the normalized kernel is cast to bfloat16 for the convolution. (Keras'
  wrapper ran its power iteration in the bfloat16 autocast scope and wrote the result back, which
  rounded every master weight to bfloat16 on every training call and erased Adam steps smaller
  than the rounding: docs/design.md §15.)
* A training call runs `power_iterations` steps and stores u and v (non-trainable, float32,
  aggregated `ONLY_FIRST_REPLICA`, so every replica of a `tf.distribute` strategy keeps the first
  replica's copy); an inference call uses the stored u, v, so after training its σ is the last
  training call's. The vectors start converged (15 iterations when the layer is built), as in
  PyTorch's `spectral_norm`.

Export sees W / σ as a function of constants and folds it into one constant kernel (checked in
`tests/test_export.py`).
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import ops

from tfhead.models import ops as tfops

SERIALIZATION_PACKAGE = "tfhead"


INITIAL_POWER_ITERATIONS = 15


class _SpectralNormalized(keras.layers.Layer):
    """What the spectrally normalized layers share: the raw kernel, u, v and σ (module docstring).

    Subclasses create `self.kernel` with `_add_kernel` in `build` and call `normalized_kernel` in
    `call`.
    """

    def __init__(self, power_iterations: int = 1, **kwargs):
        super().__init__(**kwargs)
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}.")
        self.power_iterations = int(power_iterations)

    def _add_kernel(self, shape, initializer) -> None:
        # autocast=False: read in float32 even inside a bfloat16 autocast scope.
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=initializer,
                                      autocast=False)
        rows, columns = math.prod(shape[:-1]), shape[-1]
        # u, v start converged on the initial kernel. Initializers (not assignments) so that this
        # also holds when Keras builds the layer symbolically, where assignments are discarded.
        start = {}

        def converged(index):
            def initializer(shape, dtype=None):
                if not start:
                    matrix = np.asarray(ops.convert_to_numpy(self.kernel), np.float64)
                    start["uv"] = _power_iteration_numpy(matrix.reshape(rows, columns),
                                                         INITIAL_POWER_ITERATIONS)
                return ops.cast(start["uv"][index], dtype or "float32")
            return initializer

        self.sn_u = self.add_weight(name="sn_u", shape=(columns,), initializer=converged(0),
                                    trainable=False, autocast=False,
                                    aggregation="only_first_replica")
        self.sn_v = self.add_weight(name="sn_v", shape=(rows,), initializer=converged(1),
                                    trainable=False, autocast=False,
                                    aggregation="only_first_replica")

    def _matrix(self):
        kernel = ops.cast(ops.convert_to_tensor(self.kernel), "float32")
        return ops.reshape(kernel, (-1, kernel.shape[-1]))  # [rows = fan-in, columns = units]

    @staticmethod
    def _power_iteration(matrix, u, iterations: int):
        v = None
        for _ in range(iterations):
            v = _l2_normalize(ops.matmul(matrix, u))
            u = _l2_normalize(ops.matmul(v, matrix))
        return ops.stop_gradient(u), ops.stop_gradient(v)

    def sigma(self, training: bool = False):
        """σ(W) = vᵀ W u (float32): with fresh power iterations when training (and u, v stored),
        with the stored u, v otherwise. The gradient flows through W only."""
        matrix = self._matrix()
        if training:
            u, v = self._power_iteration(matrix, ops.convert_to_tensor(self.sn_u),
                                         self.power_iterations)
            self.sn_u.assign(u)
            self.sn_v.assign(v)
        else:
            u, v = ops.convert_to_tensor(self.sn_u), ops.convert_to_tensor(self.sn_v)
        return ops.sum(ops.matmul(v, matrix) * u)

    def normalized_kernel(self, training: bool = False):
        """W / σ(W) in the layer's compute dtype."""
        kernel = ops.cast(ops.convert_to_tensor(self.kernel), "float32")
        return ops.cast(kernel / self.sigma(training), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class SpectralConv2D(_SpectralNormalized):
    """A spectrally normalized stride-1 'same'-padded (zero padding) 2-D convolution, NHWC.

    Args:
      filters: Output channels.
      kernel_size: Square kernel side.
      use_bias: Whether to add a bias (not normalized).
      power_iterations: Power iterations per training call.
    """

    def __init__(self, filters: int, kernel_size: int, use_bias: bool = True,
                 power_iterations: int = 1, **kwargs):
        super().__init__(power_iterations, **kwargs)
        self.filters, self.kernel_size, self.use_bias = int(filters), int(kernel_size), use_bias

    def build(self, input_shape):
        self._add_kernel((self.kernel_size, self.kernel_size, input_shape[-1], self.filters),
                         "glorot_uniform")
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)
        self.built = True

    def call(self, x, training=False):
        y = ops.conv(x, self.normalized_kernel(training), strides=1, padding="same")
        return y + self.bias if self.use_bias else y

    def call_resampled(self, x, resample: str, upsampling: str = "nearest", training=False):
        """This convolution with ×2 resampling folded in (`tfhead.models.ops`):

        resample="down": `downsample_avg_2x(self(x))`; resample="up":
        `self(upsample_2x(x, upsampling))` — the same function with 4/9 (3×3 kernels) or ¼ (1×1)
        of the products, and the same weights.
        """
        kernel = self.normalized_kernel(training)
        bias = self.bias if self.use_bias else None
        if resample == "down":
            return tfops.conv_avg_pool_2x(x, kernel, bias)
        if resample == "up":
            return tfops.upsample_conv_2x(x, kernel, bias, upsampling)
        raise ValueError(f"resample must be 'down' or 'up', got {resample!r}.")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class SpectralDense(_SpectralNormalized):
    """A spectrally normalized dense layer (with a bias).

    Args:
      units: Output features.
      bias_initializer: Initializer of the (not normalized) bias.
      power_iterations: Power iterations per training call.
    """

    def __init__(self, units: int, bias_initializer="zeros", power_iterations: int = 1,
                 **kwargs):
        super().__init__(power_iterations, **kwargs)
        self.units = int(units)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        self._add_kernel((input_shape[-1], self.units), "glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,),
                                    initializer=self.bias_initializer)
        self.built = True

    def call(self, x, training=False):
        return ops.matmul(x, self.normalized_kernel(training)) + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


def _power_iteration_numpy(matrix: np.ndarray, iterations: int):
    """(u, v) after `iterations` power-iteration steps on `matrix` [rows, columns] from a fixed
    start (deterministic for a seeded kernel)."""
    u = np.ones(matrix.shape[1]) / np.sqrt(matrix.shape[1])
    v = np.zeros(matrix.shape[0])
    for _ in range(iterations):
        v = matrix @ u
        v /= max(np.linalg.norm(v), 1e-12)
        u = v @ matrix
        u /= max(np.linalg.norm(u), 1e-12)
    return u.astype(np.float32), v.astype(np.float32)


def _l2_normalize(x, epsilon: float = 1e-12):
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x))), epsilon)


def sn_conv2d(filters: int, kernel_size: int, power_iterations: int = 1, name: str | None = None,
              use_bias: bool = True) -> SpectralConv2D:
    """A spectrally normalized 'same'-padded (zero padding, no MIRROR_PAD) convolution."""
    return SpectralConv2D(filters, kernel_size, use_bias=use_bias,
                          power_iterations=power_iterations, name=name)


def sn_dense(units: int, power_iterations: int = 1, name: str | None = None,
             bias_initializer="zeros") -> SpectralDense:
    """A spectrally normalized dense layer."""
    return SpectralDense(units, bias_initializer=bias_initializer,
                         power_iterations=power_iterations, name=name)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class InstanceNormalization(keras.layers.Layer):
    """Instance normalization with a learned per-channel affine (replaces tensorflow-addons').

    y = x · s + t with s = γ / √(σ² + ε) and t = β − μ · s, μ and σ² per sample and channel over
    height and width, in float32 whatever the compute dtype. The same function, weights (`gamma`,
    `beta`, in that order) and formula as Keras' `GroupNormalization(groups=-1)`, which this
    replaced: that layer reshapes to `[B, H, W, C, 1]` and takes its means over three axes of the
    5-D tensor, which XNNPACK runs ~20× slower than a mean over the two spatial axes of a 4-D one
    (66–92 ms against 3.7–4.2 for one 256²×64 norm in TFLite; Keras: 12–15 ms either way;
    BUILD_NOTES, "Instance normalization in TFLite"). Checkpoints of either layer load into the
    other.

    Args:
      epsilon: Added to the variance.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        self.built = True

    def call(self, x):
        mean, variance = tfops.instance_moments(x)  # float32, [B, 1, 1, C]
        scale = ops.rsqrt(variance + self.epsilon) * ops.cast(self.gamma, "float32")
        shift = ops.cast(self.beta, "float32") - mean * scale
        return ops.cast(ops.cast(x, "float32") * scale + shift, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def instance_normalization(epsilon: float = 1e-5, name: str | None = None) -> keras.layers.Layer:
    """Instance normalization with a learned per-channel affine (`InstanceNormalization`)."""
    return InstanceNormalization(epsilon, name=name)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class AdaINBiasInitializer(keras.initializers.Initializer):
    """Initial bias of the projection P: γ = 1 and β = 0 for every AdaIN layer.

    With this bias an untrained generator starts from plain instance normalization instead of
    multiplying every feature map by a near-zero random γ; P is still the affine map ψ̂ = P ê.

    Args:
      adain_channels: Channels of each AdaIN layer in ψ order; ψ holds, per layer, γ then β.
    """

    def __init__(self, adain_channels: Sequence[int]):
        self.adain_channels = [int(c) for c in adain_channels]

    def __call__(self, shape, dtype=None):
        pieces = []
        for channels in self.adain_channels:
            pieces += [keras.ops.ones((channels,)), keras.ops.zeros((channels,))]
        value = keras.ops.concatenate(pieces, axis=0)
        if tuple(shape) != tuple(value.shape):
            raise ValueError(f"AdaIN bias of shape {tuple(value.shape)} requested as {shape}.")
        return keras.ops.cast(value, dtype or "float32")

    def get_config(self):
        return {"adain_channels": self.adain_channels}
