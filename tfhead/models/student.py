"""The real-time student: a per-person generator distilled from a person model (not in the paper;
docs/design.md §10). Training it is `tfhead.training.distill`; its presets are
`tfhead.config.STUDENT_PRESETS`.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from tfhead.models import blocks, layers, networks


@keras.saving.register_keras_serializable(package=layers.SERIALIZATION_PACKAGE)
class StudentGenerator(networks.BuildOnZeros, keras.Model):
    """The real-time per-person generator distilled from a person model (`tfhead.training.distill`).

    Not part of the paper: a person model's G costs tens of GMACs per 256² frame
    (docs/design.md §7), so one person's appearance is distilled into a small U-Net that a CPU runs in real time. The
    person lives in its weights; its only input is the landmark image.

      stem      conv3×3 stride 2 → channels[0] at R/2
      encoder   per level i (size R/2^(i+1)): `encoder_blocks[i]` inverted residuals at channels[i],
                then (except at the last level) a stride-2 inverted residual to channels[i+1]
      bottleneck `bottleneck_blocks` inverted residuals at channels[-1], R/2^L
      decoder   per level from the second-last up: sub-pixel ×2 (conv1×1 to 4·C, depth-to-space),
                concatenation with the encoder's output of that level, conv1×1 → ReLU, one
                inverted residual
      head      sub-pixel ×2 to R (head_channels), concatenation with the landmark image,
                conv3×3 → ReLU → conv3×3 → tanh

    Everything is CONV_2D, DEPTHWISE_CONV_2D, ADD, CONCATENATION, DEPTH_TO_SPACE and TANH: no
    attention, normalization or resizing, all inside XNNPACK.

    Args:
      resolution: Input and output size R; divisible by 2^len(channels).
      channels: Widths of the levels at R/2, R/4, ... (the last is the bottleneck's).
      encoder_blocks: Inverted residuals per encoder level (same length as `channels`).
      bottleneck_blocks: Inverted residuals at the bottleneck.
      expansion: Hidden-layer multiplier of the inverted residuals.
      head_channels: Width of the two full-resolution convolutions.

    With `warp_guidance` (a warp-guided teacher's student) it takes (landmark images, warps) like
    its teacher: the warp is concatenated to the landmark image at the stem and at the head, and
    the output is blended with it through a predicted mask, as in `networks.Generator`.

    Call arguments:
      inputs: landmark images `[batch, R, R, 3]` in [-1, 1], or (landmark images, warps) with
        `warp_guidance`. Returns `[batch, R, R, 3]` frames in [-1, 1].
    """

    def __init__(self, resolution: int = 256, channels: Sequence[int] = (16, 32, 64, 128),
                 encoder_blocks: Sequence[int] = (1, 1, 1, 1), bottleneck_blocks: int = 4,
                 expansion: int = 4, head_channels: int = 16, warp_guidance: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if len(encoder_blocks) != len(channels):
            raise ValueError(f"encoder_blocks {tuple(encoder_blocks)} needs one entry per level "
                             f"of channels {tuple(channels)}.")
        if resolution % (1 << len(channels)):
            raise ValueError(f"resolution {resolution} is not divisible by 2^{len(channels)}.")
        self.resolution = resolution
        self.channels = tuple(channels)
        self.encoder_blocks = tuple(encoder_blocks)
        self.bottleneck_blocks = bottleneck_blocks
        self.expansion = expansion
        self.head_channels = head_channels
        self.warp_guidance = warp_guidance

        conv = keras.layers.Conv2D
        self.stem = conv(channels[0], 3, strides=2, padding="same", activation="relu",
                         kernel_initializer="he_normal", name="stem")
        self.encoder_stages = []   # per level: [blocks at that level], then the down block
        for level, (width, count) in enumerate(zip(channels, encoder_blocks)):
            stage = [blocks.InvertedResidual(width, expansion, name=f"enc{level}_{i}")
                     for i in range(count)]
            down = (blocks.InvertedResidual(channels[level + 1], expansion, stride=2,
                                            name=f"down{level}")
                    if level + 1 < len(channels) else None)
            self.encoder_stages.append((stage, down))
        self.bottleneck = [blocks.InvertedResidual(channels[-1], expansion, name=f"bottleneck{i}")
                           for i in range(bottleneck_blocks)]
        self.decoder_stages = []   # per level from the second-last: (up, fuse, block)
        for level in range(len(channels) - 2, -1, -1):
            width = channels[level]
            self.decoder_stages.append((
                conv(4 * width, 1, kernel_initializer="he_normal", name=f"up{level}"),
                conv(width, 1, activation="relu", kernel_initializer="he_normal",
                     name=f"fuse{level}"),
                blocks.InvertedResidual(width, expansion, name=f"dec{level}")))
        self.head_up = conv(4 * head_channels, 1, kernel_initializer="he_normal", name="head_up")
        self.head = conv(head_channels, 3, padding="same", activation="relu",
                         kernel_initializer="he_normal", name="head")
        self.to_rgb = conv(4 if warp_guidance else 3, 3, padding="same", name="to_rgb")
        for stage, down in self.encoder_stages:
            networks.track_for_checkpoints(self, stage + [down])
        networks.track_for_checkpoints(self, self.bottleneck + self.decoder_stages)

    def _dummy_inputs(self):
        image = ops.zeros((1, self.resolution, self.resolution, 3))
        return (image, image) if self.warp_guidance else image

    def call(self, inputs, training=False):
        if self.warp_guidance:
            landmark_images, warp = inputs
            conditioning = ops.concatenate([landmark_images, ops.cast(warp, landmark_images.dtype)],
                                           axis=-1)
        else:
            landmark_images, warp = inputs, None
            conditioning = landmark_images
        x = self.stem(conditioning)
        skips = []
        for stage, down in self.encoder_stages:
            for block in stage:
                x = block(x)
            skips.append(x)
            if down is not None:
                x = down(x)
        for block in self.bottleneck:
            x = block(x)
        for (up, fuse, block), skip in zip(self.decoder_stages, reversed(skips[:-1])):
            x = ops.depth_to_space(up(x), 2, data_format="channels_last")
            x = block(fuse(ops.concatenate([x, skip], axis=-1)))
        x = ops.depth_to_space(self.head_up(x), 2, data_format="channels_last")
        x = self.head(ops.concatenate([x, ops.cast(conditioning, x.dtype)], axis=-1))
        x = self.to_rgb(x)
        if warp is None:
            return ops.tanh(x)
        mask = ops.sigmoid(x[..., 3:])
        return mask * ops.cast(warp, x.dtype) + (1.0 - mask) * ops.tanh(x[..., :3])

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "channels": list(self.channels), "encoder_blocks": list(self.encoder_blocks),
                "bottleneck_blocks": self.bottleneck_blocks, "expansion": self.expansion,
                "head_channels": self.head_channels, "warp_guidance": self.warp_guidance}
