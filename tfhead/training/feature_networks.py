"""The two pretrained networks of the content loss L_CNT (docs/design.md §4), from weight files.

* **VGG19** (ImageNet), activations at conv1_1, conv2_1, conv3_1, conv4_1, conv5_1.
  Accepted file: the Keras VGG19 no-top weights (`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`,
  Keras-2 HDF5 layout, layers `block1_conv1` … `block5_conv4`), or a Keras 3 `.weights.h5` saved from
  `keras.applications.VGG19(include_top=False)`. Input convention of those weights (converted from
  Caffe): **BGR, 0–255, minus the ImageNet mean (103.939, 116.779, 123.68) in BGR order**.
* **VGGFace** (Parkhi et al. 2015; VGG16 layout), the same five layers. Accepted file: a VGG16 no-top
  weights file with the 13 convolutions in order (e.g. the Keras conversion of the VGGFace Caffe
  model with layers `conv1_1` … `conv5_3`), Keras-2 HDF5 or Keras 3 `.weights.h5`. Input convention
  of the Caffe model: **BGR, 0–255, minus the VGGFace mean (93.5940, 104.7624, 129.1863) in BGR
  order**.

Both networks take generator-range images (RGB in [-1, 1]) and convert them to their convention
inside, so a caller can never feed the wrong one. Nothing is downloaded: a missing file raises
`FeatureWeightsError` naming the flag that provides it.

`content_loss="random_vgg"` builds the same networks with random weights and `"pixel_l1"` none at all;
both exist for smoke tests and CPU benchmarks only, and training logs and saved configs name them.
"""

from __future__ import annotations

import os

import keras
from keras import ops

from tfhead import errors

VGG19_FLAG = "--vgg19_weights"
VGGFACE_FLAG = "--vggface_weights"
CONTENT_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
VGGFACE_MEAN_BGR = (93.5940, 104.7624, 129.1863)


class FeatureWeightsError(errors.TfheadError, ValueError):
    """A feature network's weight file is missing or does not fit the network."""


def caffe_input(images, mean_bgr):
    """RGB in [-1, 1] → BGR in [0, 255] minus `mean_bgr` (the Caffe convention)."""
    rgb = (ops.cast(images, "float32") + 1.0) * 127.5
    bgr = ops.flip(rgb, axis=-1)
    return bgr - ops.reshape(ops.convert_to_tensor(mean_bgr, "float32"), (1, 1, 1, 3))


def _vgg(kind: str, input_size: int):
    if kind == "vgg19":
        return keras.applications.VGG19(include_top=False, weights=None,
                                        input_shape=(input_size, input_size, 3))
    return keras.applications.VGG16(include_top=False, weights=None,
                                    input_shape=(input_size, input_size, 3))


def _load(model: keras.Model, path: str | None, flag: str, description: str) -> None:
    if path is None:
        raise FeatureWeightsError(
            f"The content loss needs {description} weights: pass {flag}=/path/to/file.h5 "
            "(nothing is downloaded; see tfhead/training/feature_networks.py for the accepted files), or use "
            "--content_loss=pixel_l1 / random_vgg for smoke tests only.")
    if not os.path.isfile(path):
        raise FeatureWeightsError(f"{flag}: no such file: {path}")
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as e:
        raise FeatureWeightsError(
            f"{flag}: {path} does not fit the {description} layout "
            f"({len([l for l in model.layers if l.weights])} convolutions, no top): {e}") from None


class FeatureNetwork:
    """A frozen VGG truncated after conv5_1, returning the activations of `CONTENT_LAYERS`.

    Call with RGB images in [-1, 1] `[batch, R, R, 3]`; returns a list of 5 activation tensors.
    """

    def __init__(self, kind: str, input_size: int, weights_path: str | None = None,
                 random_weights: bool = False):
        if kind not in ("vgg19", "vggface"):
            raise ValueError(f"kind must be 'vgg19' or 'vggface', got {kind!r}.")
        self.kind = kind
        self.random_weights = random_weights
        self.mean_bgr = IMAGENET_MEAN_BGR if kind == "vgg19" else VGGFACE_MEAN_BGR
        full = _vgg(kind, input_size)
        if not random_weights:
            _load(full, weights_path, VGG19_FLAG if kind == "vgg19" else VGGFACE_FLAG,
                  "VGG19 (ImageNet)" if kind == "vgg19" else "VGGFace (VGG16 layout)")
        outputs = [full.get_layer(name).output for name in CONTENT_LAYERS]
        self.model = keras.Model(full.input, outputs, name=f"{kind}_features")
        self.model.trainable = False

    def __call__(self, images):
        return self.model(caffe_input(images, self.mean_bgr), training=False)


def build_content_networks(content_loss: str, input_size: int, vgg19_path: str | None = None,
                           vggface_path: str | None = None) -> tuple[FeatureNetwork, FeatureNetwork] | None:
    """(VGG19, VGGFace) for `content_loss` "vgg" or "random_vgg"; None for "pixel_l1"."""
    if content_loss == "pixel_l1":
        return None
    random_weights = content_loss == "random_vgg"
    if content_loss not in ("vgg", "random_vgg"):
        raise ValueError(f"Unknown content_loss {content_loss!r}; valid: vgg, random_vgg, pixel_l1.")
    return (FeatureNetwork("vgg19", input_size, vgg19_path, random_weights),
            FeatureNetwork("vggface", input_size, vggface_path, random_weights))
