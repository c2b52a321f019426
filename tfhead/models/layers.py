"""Primitive layers that own weights: spectrally normalized convolutions and dense layers,
instance normalization, and the initializer of the AdaIN projection's bias.

Spectral normalization is Keras 3's `keras.layers.SpectralNormalization`. Note how it works (it
follows the former tensorflow-addons wrapper): in a *training* call it runs `power_iterations`
power-iteration steps, divides the kernel by its estimated top singular value σ and **assigns**
the result to the kernel variable; inference calls use the stored kernel as it is. Gradients
therefore flow to the normalized kernel, not through σ. After any training-mode call the kernel's
top singular value is ≈ 1, which is what the tests check and what export relies on (the exported
kernel is already normalized).
"""

from __future__ import annotations

from typing import Sequence

import keras

SERIALIZATION_PACKAGE = "tfhead"


def sn_conv2d(filters: int, kernel_size: int, power_iterations: int = 1, name: str | None = None,
              use_bias: bool = True) -> keras.layers.Layer:
    """A spectrally normalized 'same'-padded (zero padding, no MIRROR_PAD) Conv2D."""
    conv = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias,
                               kernel_initializer="glorot_uniform")
    return keras.layers.SpectralNormalization(conv, power_iterations=power_iterations, name=name)


def sn_dense(units: int, power_iterations: int = 1, name: str | None = None,
             bias_initializer="zeros") -> keras.layers.Layer:
    """A spectrally normalized Dense layer."""
    dense = keras.layers.Dense(units, bias_initializer=bias_initializer)
    return keras.layers.SpectralNormalization(dense, power_iterations=power_iterations, name=name)


def instance_normalization(epsilon: float = 1e-5, name: str | None = None) -> keras.layers.Layer:
    """Instance normalization with a learned per-channel affine.

    Keras-core `GroupNormalization` with one group per channel (`groups=-1`) is exactly instance
    normalization; it replaces `tfa.layers.InstanceNormalization` (which was itself implemented as
    this group normalization in tensorflow-addons).
    """
    return keras.layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name)


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
