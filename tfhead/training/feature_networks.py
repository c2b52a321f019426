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

* **dlib's face-recognition ResNet** (`tfhead.training.face_net`, no download: its weights ship in
  the installed `face-recognition-models` package). `FaceNetFeatures` crops the face chip out of a
  model crop, resizes it to 150² and returns the activations at the ends of the stem and of the
  five residual levels, and the 128-d descriptor. It plays the VGGFace role of L_CNT when no
  VGGFace file is given (`content_loss="vgg"` without `--vggface_weights`), and with
  `content_loss="face_net"` it is the content loss of CPU runs with no weight file at all
  (pixel L1 + its activations + the identity term, docs/design.md §14).

`content_loss="random_vgg"` builds the VGGs with random weights and `"pixel_l1"` no network at all;
both exist for smoke tests and CPU benchmarks only, and training logs and saved configs name them.
"""

from __future__ import annotations

import os

import keras
import numpy as np
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


# Where the face chip lies in a model crop (fractions of the crop side). The crop rule
# (`tfhead.face.crop`: box 1.8 × the landmarks' extent, moved up by 0.12 of its size) puts the
# landmarks' centre at (0.5, 0.62) and their extent at 0.56 of the side; dlib's 150² chip with
# padding 0.25 spans about 1.4 extents around it. Real and generated frames go through the same
# chip, so the content loss does not depend on its exact placement.
FACE_CHIP_CENTRE = (0.5, 0.58)
FACE_CHIP_SIDE = 0.78
FACE_CONTENT_LAYERS = ("stem", "alevel4", "alevel3", "alevel2", "alevel1", "alevel0")


def _bilinear_matrix(start: float, end: float, size: int, length: int) -> np.ndarray:
    """`[size, length]` weights of `tf.image.crop_and_resize`'s bilinear samples along one axis:
    sample i sits at start·(length − 1) + i·(end − start)·(length − 1)/(size − 1); a sample
    outside the image is 0 (the op's extrapolation value)."""
    matrix = np.zeros((size, length), np.float32)
    step = (end - start) * (length - 1) / (size - 1) if size > 1 else 0.0
    for i in range(size):
        position = (start * (length - 1) + i * step if size > 1
                    else 0.5 * (start + end) * (length - 1))
        if position < 0 or position > length - 1:
            continue
        low = int(np.floor(position))
        high = min(low + 1, length - 1)
        fraction = position - low
        matrix[i, low] += 1.0 - fraction
        matrix[i, high] += fraction
    return matrix


class FaceNetFeatures:
    """dlib's face-recognition ResNet on the face chip of model crops (see the module docstring).

    Call with RGB crops in [-1, 1] `[batch, R, R, 3]`; returns (activations of
    `FACE_CONTENT_LAYERS`, descriptors `[batch, 128]`). Frozen; gradients flow to the input.
    """

    kind = "face_net"

    def __init__(self, path: str | None = None):
        from tfhead.training import face_net
        self.chip_size = face_net.CHIP_SIZE
        try:
            self.model = face_net.build_face_net(path, feature_layers=FACE_CONTENT_LAYERS)
        except (OSError, ValueError) as e:
            raise FeatureWeightsError(
                f"dlib's face-recognition model could not be read ({e}); reinstall the "
                "face-recognition-models package (pip install face-recognition-models).") from None
        half = FACE_CHIP_SIDE / 2
        (cx, cy) = FACE_CHIP_CENTRE
        self.box = (cy - half, cx - half, cy + half, cx + half)  # y1, x1, y2, x2

    def chips(self, images):
        """The 150² chips `[batch, 150, 150, 3]` in [0, 255]: `tf.image.crop_and_resize` of the
        fixed box (bilinear), computed as two products with constant interpolation matrices so
        that XLA (`--xla`), which has no CropAndResize kernel, compiles it too."""
        import tensorflow as tf
        images = tf.cast(images, tf.float32)
        height, width = images.shape[1], images.shape[2]
        y1, x1, y2, x2 = self.box
        rows = tf.constant(_bilinear_matrix(y1, y2, self.chip_size, height))
        columns = tf.constant(_bilinear_matrix(x1, x2, self.chip_size, width))
        chips = tf.einsum("iy,byxc->bixc", rows, images)
        chips = tf.einsum("jx,bixc->bijc", columns, chips)
        return (chips + 1.0) * 127.5

    def __call__(self, images):
        outputs = self.model(self.chips(images), training=False)
        return [outputs[name] for name in FACE_CONTENT_LAYERS], outputs["descriptor"]


def build_content_networks(content_loss: str, input_size: int, vgg19_path: str | None = None,
                           vggface_path: str | None = None) -> tuple | None:
    """The networks of L_CNT, each with a `kind` that names its weight in `TrainConfig`:

    * "vgg": (VGG19, VGGFace), or (VGG19, dlib face net) when `vggface_path` is None;
    * "random_vgg": both VGGs with random weights (smoke tests);
    * "face_net": (dlib face net,) — with pixel L1, the content loss without weight files;
    * "pixel_l1": None.
    """
    if content_loss == "pixel_l1":
        return None
    if content_loss == "face_net":
        return (FaceNetFeatures(),)
    random_weights = content_loss == "random_vgg"
    if content_loss not in ("vgg", "random_vgg"):
        raise ValueError(f"Unknown content_loss {content_loss!r}; valid: vgg, random_vgg, "
                         "face_net, pixel_l1.")
    vgg19 = FeatureNetwork("vgg19", input_size, vgg19_path, random_weights)
    if content_loss == "vgg" and vggface_path is None:
        return (vgg19, FaceNetFeatures())
    return (vgg19, FeatureNetwork("vggface", input_size, vggface_path, random_weights))
