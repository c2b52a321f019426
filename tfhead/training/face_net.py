"""dlib's face-recognition ResNet, read straight from its model file into Keras 3.

The network is dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (the ``anet_type`` of dlib's
``examples/dnn_face_recognition_ex.cpp`` and of ``dlib.face_recognition_model_v1``): a
29-convolution ResNet that maps a 150×150 RGB face chip to a 128-d descriptor in which faces of
one person lie within Euclidean distance ~0.6 of each other. The project uses it as an identity
loss (the descriptor) and, through `feature_layers`, as a perceptual content loss (the activations
at the end of each residual level).

Weights come from the file shipped by the installed ``face-recognition-models`` package
(``face_recognition_models.face_recognition_model_location()``); nothing is downloaded and dlib
is not needed at run time: `read_dlib_resnet` decodes dlib's binary serialization itself.
Licence: Davis King's dlib-models README says he has released his model files into the public
domain, and the ``face-recognition-models`` package that ships this file carries a CC0 1.0
Universal licence.

Layer list (dlib notation, input → output; dlib is NCHW, this model is NHWC)::

    input_rgb_image_sized<150>        x ↦ (x − (122.782, 117.001, 104.298)) / 256 per RGB channel
    con<32,7,7,2,2> affine relu        → 72×72×32   ("stem_conv", "stem_affine", "stem_relu")
    max_pool<3,3,2,2>                  → 35×35×32   ("stem")
    alevel4 = 3 × ares<32>             → 35×35×32   ("alevel4")
    alevel3 = ares_down<64>  + 3 × ares<64>   → 17×17×64   ("alevel3")
    alevel2 = ares_down<128> + 2 × ares<128>  → 8×8×128    ("alevel2")
    alevel1 = ares_down<256> + 2 × ares<256>  → 4×4×256    ("alevel1")
    alevel0 = ares_down<256>                  → 2×2×256    ("alevel0")
    avg_pool_everything                → 256        ("embedding")
    fc_no_bias<128>                    → 128        ("descriptor"; loss_metric passes it unchanged)

with ``ares<N>(x) = relu(x + B(x))`` and ``ares_down<N>(x) = relu(avg_pool<2,2,2,2>(x) ⊕ B↓(x))``,
where ``B = affine∘con<N,3,3,1,1>∘relu∘affine∘con<N,3,3,s,s>`` (s = 1, or 2 for B↓). ``affine`` is
batch normalization frozen to a per-channel scale and shift. dlib pads a convolution or pooling by
``k // 2`` when its stride is 1 and by 0 otherwise, so the stride-2 layers are "valid" ones.
``⊕`` is dlib's ``add_prev`` on tensors of different sizes: the result has the larger size in every
dimension and each operand is zero-padded at its end (bottom rows, right columns, last channels).
The shortcut of ``ares_down`` therefore keeps the input's channels (the new ones are the block's
alone), and in ``alevel1``/``alevel0`` the pooled shortcut is larger than the block output
(4×4 vs 3×3, 2×2 vs 1×1), so the block only feeds the top-left part of the sum — dlib's behaviour,
reproduced here.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
from keras import ops

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128

#: Layer names meant for `build_face_net(feature_layers=...)`, with the per-sample shape of their
#: output (NHWC). Any other layer name of the model is accepted too ("<level>_res<i>_conv1", …).
FEATURE_SHAPES = {
    "stem": (35, 35, 32),
    "alevel4": (35, 35, 32),
    "alevel3": (17, 17, 64),
    "alevel2": (8, 8, 128),
    "alevel1": (4, 4, 256),
    "alevel0": (2, 2, 256),
    "embedding": (256,),
}
FEATURE_LAYERS = tuple(FEATURE_SHAPES)

# Residual levels of anet_type, input → output: (name, filters, starts with ares_down, blocks).
_LEVELS = (
    ("alevel4", 32, False, 3),
    ("alevel3", 64, True, 4),
    ("alevel2", 128, True, 3),
    ("alevel1", 256, True, 3),
    ("alevel0", 256, True, 1),
)

# Wrapper versions dlib writes in front of a layer (dlib/dnn/core.h): add_layer 1 (2 adds the
# parameter gradient), add_layer over the input layer 2 (3 adds the sample expansion factor),
# add_tag_layer / add_skip_layer 1.
_ADD_LAYER_VERSIONS = (1, 2)
_INPUT_ADD_LAYER_VERSIONS = (2, 3)
_TAG_VERSIONS = (1,)


def default_model_path() -> str:
    """Path of ``dlib_face_recognition_resnet_model_v1.dat`` in the face-recognition-models package.

    Returns:
        The file path (the package ships the file; nothing is downloaded).
    """
    import face_recognition_models

    return face_recognition_models.face_recognition_model_location()


# ----------------------------------------------------------------------------------------------
# The architecture: dlib's anet_type, flattened input → output.


def _anet_layers() -> list[dict]:
    """dlib's ``anet_type`` as a flat list, input → output.

    Returns:
        One dict per dlib layer object (add_layer, tag or skip) with ``type``, ``name`` and the
        settings the file must agree with; the first entry is the input layer.
    """
    layers = [
        {"type": "input_rgb_image_sized", "name": "input_rgb", "nr": CHIP_SIZE, "nc": CHIP_SIZE},
        {"type": "con", "name": "stem_conv", "num_filters": 32, "nr": 7, "nc": 7, "stride": (2, 2)},
        {"type": "affine", "name": "stem_affine"},
        {"type": "relu", "name": "stem_relu"},
        {"type": "max_pool", "name": "stem", "nr": 3, "nc": 3, "stride": (2, 2)},
    ]
    for level, filters, down, blocks in _LEVELS:
        for i in range(blocks):
            prefix = f"{level}_res{i}"
            stride = 2 if down and i == 0 else 1
            layers += [
                {"type": "tag", "name": f"{prefix}_tag1", "tag": 1},
                {"type": "con", "name": f"{prefix}_conv1", "num_filters": filters, "nr": 3, "nc": 3,
                 "stride": (stride, stride)},
                {"type": "affine", "name": f"{prefix}_affine1"},
                {"type": "relu", "name": f"{prefix}_relu1"},
                {"type": "con", "name": f"{prefix}_conv2", "num_filters": filters, "nr": 3, "nc": 3,
                 "stride": (1, 1)},
                {"type": "affine", "name": f"{prefix}_affine2"},
            ]
            if stride == 2:
                layers += [
                    {"type": "tag", "name": f"{prefix}_tag2", "tag": 2},
                    {"type": "skip", "name": f"{prefix}_skip1", "tag": 1},
                    {"type": "avg_pool", "name": f"{prefix}_shortcut", "nr": 2, "nc": 2,
                     "stride": (2, 2)},
                    {"type": "add_prev", "name": f"{prefix}_add", "tag": 2},
                ]
            else:
                layers.append({"type": "add_prev", "name": f"{prefix}_add", "tag": 1})
            layers.append({"type": "relu", "name": level if i == blocks - 1 else prefix})
    layers += [
        {"type": "avg_pool", "name": "embedding_pool", "nr": 0, "nc": 0, "stride": (1, 1)},
        {"type": "fc_no_bias", "name": "descriptor", "num_outputs": DESCRIPTOR_SIZE},
    ]
    return layers


def _default_padding(k: int, stride: int) -> int:
    """dlib's default padding of con_, max_pool_ and avg_pool_ (dlib/dnn/layers.h)."""
    return 0 if stride != 1 else k // 2


# ----------------------------------------------------------------------------------------------
# dlib's serialization format (dlib/serialize.h, dlib/float_details.h, dlib/dnn/tensor.h).


class _Reader:
    """A cursor over the bytes of a dlib-serialized file that raises ValueError on surprises."""

    def __init__(self, data: bytes, source: str):
        self.data = data
        self.pos = 0
        self.source = source

    def fail(self, what: str, found: str, at: int | None = None) -> ValueError:
        at = self.pos if at is None else at
        return ValueError(f"{self.source}: at byte {at}: expected {what}, found {found}. "
                          "Is this dlib's dlib_face_recognition_resnet_model_v1.dat?")

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.fail(what, f"the end of the file ({len(self.data) - self.pos} bytes left, "
                                  f"{n} needed)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def integer(self, what: str, max_bytes: int = 8, signed: bool = True) -> int:
        """dlib's integer: a control byte (0x80 = negative, low 4 bits = byte count), then
        the absolute value in little-endian order."""
        start = self.pos
        control = self.take(1, what)[0]
        count, negative = control & 0x0F, bool(control & 0x80)
        if control & 0x70 or count > max_bytes or (negative and not signed):
            raise self.fail(what, f"the byte 0x{control:02x}, which is no dlib integer control "
                                  f"byte for a {max_bytes}-byte {'' if signed else 'un'}signed "
                                  "integer", at=start)
        value = int.from_bytes(self.take(count, what), "little")
        return -value if negative else value

    def expect_int(self, what: str, allowed, max_bytes: int = 4) -> int:
        start = self.pos
        value = self.integer(what, max_bytes)
        if value not in allowed:
            raise self.fail(f"{what} (one of {sorted(allowed)})", str(value), at=start)
        return value

    def real(self, what: str) -> float:
        """dlib's float_details: int64 mantissa then int16 exponent, value = m·2^e."""
        start = self.pos
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(what, "the old ASCII float format or no float at all", at=start)
        mantissa = self.integer(what + " (mantissa)", 8)
        exponent = self.integer(what + " (exponent)", 2)
        if exponent == 32000:
            return math.inf
        if exponent == 32001:
            return -math.inf
        if exponent >= 32002:
            return math.nan
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            raise self.fail(what, f"mantissa {mantissa} and exponent {exponent}",
                            at=start) from None

    def boolean(self, what: str) -> bool:
        start = self.pos
        char = self.take(1, what)
        if char not in (b"0", b"1"):
            raise self.fail(what + " (the character '0' or '1')", repr(char), at=start)
        return char == b"1"

    def string(self, what: str) -> str:
        start = self.pos
        size = self.integer(what + " (string length)", 8, signed=False)
        if size > len(self.data) - self.pos:
            raise self.fail(what, f"a string length of {size} bytes and then the end of the file "
                                  f"({len(self.data) - self.pos} bytes left)", at=start)
        return self.take(size, what).decode("latin-1")

    def expect_string(self, what: str, allowed) -> str:
        start = self.pos
        value = self.string(what)
        if value not in allowed:
            raise self.fail(f"{what} (one of {list(allowed)})", repr(value[:40]), at=start)
        return value

    def _dims(self, what: str) -> tuple[int, int, int, int]:
        dims = []
        for axis in ("num_samples", "k", "nr", "nc"):
            start = self.pos
            value = self.integer(f"{what} {axis}", 8)
            if value < 0:
                raise self.fail(f"{what} {axis} >= 0", str(value), at=start)
            dims.append(value)
        return tuple(dims)

    def tensor(self, what: str) -> np.ndarray:
        """A dlib tensor: version, (num_samples, k, nr, nc), then the values; version 2 stores
        them as little-endian float32, version 1 as dlib floats. Returns an NCHW float32 array."""
        version = self.expect_int(f"{what} tensor version", (1, 2))
        start = self.pos
        dims = self._dims(what)
        size = int(np.prod(dims, dtype=np.int64))
        if version == 2:
            if 4 * size > len(self.data) - self.pos:
                raise self.fail(f"{what}: {size} float32 values for dimensions {dims}",
                                f"the end of the file ({len(self.data) - self.pos} bytes left, "
                                f"{4 * size} needed)", at=start)
            values = np.frombuffer(self.data, "<f4", size, self.pos).astype(np.float32)
            self.pos += 4 * size
        else:
            values = np.array([self.real(f"{what} value {i}") for i in range(size)], np.float32)
        return values.reshape(dims)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        self.expect_int(f"{what} alias_tensor version", (1,))
        return self._dims(what)


# Layer-detail readers: each reads what the layer's serialize() writes, after its version string.


def _check(reader: _Reader, start: int, spec: dict, field: str, found, expected) -> None:
    if found != expected:
        raise reader.fail(f"{field} = {expected} for {spec['name']} ({spec['type']})",
                          str(found), at=start)


def _read_input(r: _Reader, spec: dict) -> dict:
    start = r.pos
    r.expect_string("the input layer version", ("input_rgb_image_sized",))
    avg = [np.float32(r.real(f"input_rgb_image_sized avg_{c}")) for c in ("red", "green", "blue")]
    nr = r.integer("input_rgb_image_sized nr", 8, signed=False)
    nc = r.integer("input_rgb_image_sized nc", 8, signed=False)
    _check(r, start, spec, "image size", (nr, nc), (spec["nr"], spec["nc"]))
    return {"avg_rgb": np.array(avg, np.float32), "nr": nr, "nc": nc}


def _read_con(r: _Reader, spec: dict) -> dict:
    start = r.pos
    version = r.expect_string(f"{spec['name']}: con_ version", ("con_4", "con_5"))
    params = r.tensor(f"{spec['name']} params").ravel()
    num_filters = r.integer("con_ num_filters", 8)
    nr, nc = r.integer("con_ nr", 8), r.integer("con_ nc", 8)
    stride = (r.integer("con_ stride_y", 4), r.integer("con_ stride_x", 4))
    padding = (r.integer("con_ padding_y", 4), r.integer("con_ padding_x", 4))
    filters = r.alias_tensor(f"{spec['name']} filters")
    r.alias_tensor(f"{spec['name']} biases")
    for field in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.real(f"con_ {field}_multiplier")
    use_bias = r.boolean("con_ use_bias") if version == "con_5" else True
    expected_padding = (_default_padding(spec["nr"], spec["stride"][0]),
                        _default_padding(spec["nc"], spec["stride"][1]))
    _check(r, start, spec, "(num_filters, nr, nc, stride, padding)",
           (num_filters, nr, nc, stride, padding),
           (spec["num_filters"], spec["nr"], spec["nc"], spec["stride"], expected_padding))
    _check(r, start, spec, "the filters' shape (num_filters, *, nr, nc)",
           (filters[0], filters[2], filters[3]), (num_filters, nr, nc))
    n_weights = int(np.prod(filters))
    _check(r, start, spec, "the parameter count", params.size,
           n_weights + (num_filters if use_bias else 0))
    bias = params[n_weights:] if use_bias else np.zeros(num_filters, np.float32)
    return {"kernel": params[:n_weights].reshape(filters), "bias": bias, "stride": stride,
            "padding": padding}


def _read_affine(r: _Reader, spec: dict) -> dict:
    start = r.pos
    version = r.expect_string(f"{spec['name']}: affine_ version", ("affine_", "affine_2"))
    params = r.tensor(f"{spec['name']} params").ravel()
    gamma = r.alias_tensor(f"{spec['name']} gamma")
    beta = r.alias_tensor(f"{spec['name']} beta")
    r.expect_int("affine_ mode (0 = CONV_MODE, 1 = FC_MODE)", (0, 1))
    disabled = r.boolean("affine_ is_disabled") if version.endswith("2") else False
    if disabled:
        return {"disabled": True}
    channels = gamma[1]
    _check(r, start, spec, "per-channel gamma and beta of shape (1, k, 1, 1)",
           (gamma, beta, params.size), ((1, channels, 1, 1), (1, channels, 1, 1), 2 * channels))
    return {"disabled": False, "gamma": params[:channels], "beta": params[channels:]}


def _read_relu(r: _Reader, spec: dict) -> dict:
    r.expect_string(f"{spec['name']}: relu_ version", ("relu_",))
    return {}


def _read_pool(r: _Reader, spec: dict) -> dict:
    start = r.pos
    kind = spec["type"]
    r.expect_string(f"{spec['name']}: {kind}_ version", (f"{kind}_2",))
    nr, nc = r.integer(f"{kind}_ nr", 8), r.integer(f"{kind}_ nc", 8)
    stride = (r.integer(f"{kind}_ stride_y", 4), r.integer(f"{kind}_ stride_x", 4))
    padding = (r.integer(f"{kind}_ padding_y", 4), r.integer(f"{kind}_ padding_x", 4))
    expected_padding = (_default_padding(spec["nr"], spec["stride"][0]),
                        _default_padding(spec["nc"], spec["stride"][1]))
    _check(r, start, spec, "(nr, nc, stride, padding)", (nr, nc, stride, padding),
           (spec["nr"], spec["nc"], spec["stride"], expected_padding))
    return {"stride": stride, "padding": padding}


def _read_add_prev(r: _Reader, spec: dict) -> dict:
    r.expect_string(f"{spec['name']}: add_prev_ version", ("add_prev_",))
    return {}


def _read_fc(r: _Reader, spec: dict) -> dict:
    start = r.pos
    version = r.expect_string(f"{spec['name']}: fc_ version", ("fc_2", "fc_3"))
    num_outputs = r.integer("fc_ num_outputs", 8, signed=False)
    num_inputs = r.integer("fc_ num_inputs", 8, signed=False)
    params = r.tensor(f"{spec['name']} params")
    weights = r.alias_tensor(f"{spec['name']} weights")
    r.alias_tensor(f"{spec['name']} biases")
    r.expect_int("fc_ bias_mode (1 = FC_NO_BIAS)", (1,))
    for field in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.real(f"fc_ {field}_multiplier")
    if version == "fc_3":
        r.boolean("fc_ use_bias")
    _check(r, start, spec, "num_outputs", num_outputs, spec["num_outputs"])
    _check(r, start, spec, "the weights' shape (num_inputs, num_outputs)",
           (weights[0], weights[1], params.size),
           (num_inputs, num_outputs, num_inputs * num_outputs))
    return {"kernel": params.reshape(num_inputs, num_outputs)}


_DETAIL_READERS = {
    "con": _read_con,
    "affine": _read_affine,
    "relu": _read_relu,
    "max_pool": _read_pool,
    "avg_pool": _read_pool,
    "add_prev": _read_add_prev,
    "fc_no_bias": _read_fc,
}


def _skip_add_layer_state(r: _Reader, spec: dict, version: int, over_input: bool) -> None:
    """The state add_layer writes after its layer details (dlib/dnn/core.h)."""
    for field in ("this_layer_setup_called", "gradient_input_is_stale",
                  "get_output_and_gradient_input_disabled"):
        r.boolean(f"{spec['name']}: add_layer {field}")
    r.tensor(f"{spec['name']}: add_layer x_grad")
    r.tensor(f"{spec['name']}: add_layer cached_output")
    if over_input:
        r.tensor(f"{spec['name']}: add_layer grad_final")
        if version >= 3:
            r.integer(f"{spec['name']}: add_layer sample_expansion_factor", 4, signed=False)
    elif version >= 2:
        r.tensor(f"{spec['name']}: add_layer params_grad")


def read_dlib_resnet(path: str | os.PathLike | None = None) -> list[dict]:
    """Decodes ``dlib_face_recognition_resnet_model_v1.dat`` without dlib.

    The file is ``dlib::serialize`` of
    ``loss_metric<fc_no_bias<128, ... input_rgb_image_sized<150>>>``: the loss layer, then one
    version number per layer from the output down to the input, the input layer, and each layer's
    details (a version string and its parameters) with its add_layer state from the input up.
    dlib does not store the architecture (not even the tag ids), so the reader follows dlib's
    ``anet_type`` and checks every kernel size, stride, padding and parameter count against it.

    Args:
        path: the model file; default: the one in the face-recognition-models package.

    Returns:
        dlib's layers, input → output, one dict each with ``type`` (``"input_rgb_image_sized"``,
        ``"con"``, ``"affine"``, ``"relu"``, ``"max_pool"``, ``"avg_pool"``, ``"tag"``, ``"skip"``,
        ``"add_prev"``, ``"fc_no_bias"``), ``name`` (the Keras layer name `build_face_net` gives
        it) and the parameters as float32 arrays in dlib's layout: ``kernel`` (num_filters, k, nr,
        nc) and ``bias`` for con; ``gamma``, ``beta`` for affine; ``kernel`` (num_inputs,
        num_outputs) for fc_no_bias; ``avg_rgb`` for the input; ``tag`` ids for tag, skip and
        add_prev. A last entry of type ``"loss_metric"`` holds ``margin`` and
        ``distance_threshold``.

    Raises:
        ValueError: the file is not this network in dlib's format (truncated, other network, other
            file); the message names the byte offset and what was expected there.
    """
    path = default_model_path() if path is None else os.fspath(path)
    with open(path, "rb") as f:
        r = _Reader(f.read(), path)

    r.expect_int("add_loss_layer version", (1,))
    loss_version = r.expect_string("loss layer version", ("loss_metric_", "loss_metric_2"))
    if loss_version == "loss_metric_2":
        loss = {"margin": r.real("loss_metric_ margin"),
                "distance_threshold": r.real("loss_metric_ dist_thresh")}
    else:  # the values dlib hard-coded for this version
        loss = {"margin": 0.1, "distance_threshold": 0.75}

    spec = _anet_layers()
    versions = {}
    for i in range(len(spec) - 1, 0, -1):  # the wrappers, outermost (the fc layer) first
        layer = spec[i]
        if layer["type"] in ("tag", "skip"):
            allowed = _TAG_VERSIONS
            what = f"add_{layer['type']}_layer version of {layer['name']}"
        elif i == 1:
            allowed, what = _INPUT_ADD_LAYER_VERSIONS, f"add_layer version of {layer['name']}"
        else:
            allowed, what = _ADD_LAYER_VERSIONS, f"add_layer version of {layer['name']}"
        versions[i] = r.expect_int(what, allowed)

    result = [dict(spec[0], **_read_input(r, spec[0]))]
    for i in range(1, len(spec)):
        layer = spec[i]
        if layer["type"] in ("tag", "skip"):
            result.append(dict(layer))
            continue
        details = _DETAIL_READERS[layer["type"]](r, layer)
        _skip_add_layer_state(r, layer, versions[i], over_input=(i == 1))
        result.append(dict(layer, **details))
    if r.pos != len(r.data):
        raise r.fail("the end of the file after the fc_no_bias layer",
                     f"{len(r.data) - r.pos} more bytes")
    result.append({"type": "loss_metric", "name": "loss_metric", **loss})
    return result


# ----------------------------------------------------------------------------------------------
# The Keras model.


@keras.saving.register_keras_serializable(package="tfhead")
class ZeroPaddedAdd(keras.layers.Layer):
    """dlib's ``add_prev``: the sum of two NHWC tensors of possibly different static sizes.

    The output has the larger size in each of height, width and channels; each input is
    zero-padded at the end of those axes (bottom rows, right columns, last channels) first.
    """

    def _target(self, shapes):
        return [max(s[axis] for s in shapes) for axis in (1, 2, 3)]

    def call(self, inputs):
        target = self._target([tuple(x.shape) for x in inputs])
        total = None
        for x in inputs:
            pads = [(0, 0)] + [(0, t - s) for t, s in zip(target, tuple(x.shape)[1:])]
            if any(after for _, after in pads):
                x = ops.pad(x, pads)
            total = x if total is None else total + x
        return total

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], *self._target(input_shapes))


def _keras_padding(spec_layer: dict, kernel: tuple[int, int]):
    """Keras padding equal to dlib's symmetric ``padding`` for this kernel and stride."""
    padding, stride = spec_layer["padding"], spec_layer["stride"]
    if padding == (0, 0):
        return "valid", None
    if stride == (1, 1) and all(k % 2 == 1 and p == k // 2 for k, p in zip(kernel, padding)):
        return "same", None
    return "valid", ((padding[0], padding[0]), (padding[1], padding[1]))


def build_face_net(path: str | os.PathLike | None = None,
                   feature_layers=None) -> keras.Model:
    """dlib's face-recognition ResNet as a Keras 3 model with the weights of the dlib file.

    Args:
        path: dlib's ``dlib_face_recognition_resnet_model_v1.dat``; default: the one in the
            face-recognition-models package.
        feature_layers: names of layers whose activations the model returns as well, e.g.
            `FEATURE_LAYERS` = ("stem", "alevel4", "alevel3", "alevel2", "alevel1", "alevel0",
            "embedding"): the stem after max-pooling, the ends (after the last ReLU) of the five
            residual levels and the 256-d pooled vector before the fc layer; per-sample shapes in
            `FEATURE_SHAPES`. Every other layer name of the model is accepted too
            (``"<level>_res<i>_conv1"``, ``"…_add"``, …; see
             ``[l.name for l in model.layers]``). dlib's affine layers have no layer of their own:
            each is folded into the convolution before it, whose output is therefore the
            affine's.

    Returns:
        A frozen (``trainable=False``) functional model. Input: ``[batch, 150, 150, 3]`` float32
        RGB in 0–255, the face chip exactly as ``dlib.get_face_chip(image, shape, size=150,
        padding=0.25)`` makes it. Output: the 128-d descriptor ``[batch, 128]``, equal to dlib's
        ``compute_face_descriptor`` (not normalized; same person ⇔ distance < 0.6). With
        `feature_layers`, a dict ``{"descriptor": [batch, 128], name: activation, ...}``.

    Raises:
        ValueError: the file is not dlib's model (see `read_dlib_resnet`), or a feature layer name
            is unknown.
    """
    layers = read_dlib_resnet(path)
    chip = keras.Input((CHIP_SIZE, CHIP_SIZE, 3), dtype="float32", name="face_chip")
    named, tags, weights = {}, {}, []
    previous = None  # the name of the layer just built, if it was a convolution
    x = chip
    for layer in layers:
        kind, name = layer["type"], layer["name"]
        if kind == "input_rgb_image_sized":
            # dlib: (pixel − avg) / 256 per channel; Normalization divides by sqrt(variance) = 256.
            keras_layer = keras.layers.Normalization(
                mean=layer["avg_rgb"].tolist(), variance=[256.0 ** 2] * 3, name=name)
            x = keras_layer(x)
        elif kind == "con":
            kernel = layer["kernel"]
            padding, explicit = _keras_padding(layer, kernel.shape[2:])
            if explicit is not None:
                x = keras.layers.ZeroPadding2D(explicit, name=name + "_pad")(x)
            keras_layer = keras.layers.Conv2D(kernel.shape[0], kernel.shape[2:],
                                              strides=layer["stride"], padding=padding, name=name)
            x = keras_layer(x)
            # dlib filters are (out, in, rows, cols); Keras kernels (rows, cols, in, out).
            weights.append((keras_layer, [kernel.transpose(2, 3, 1, 0), layer["bias"]]))
        elif kind == "affine":
            if layer["disabled"]:
                continue
            gamma, beta = layer["gamma"].reshape(-1), layer["beta"].reshape(-1)
            if previous is not None:  # weights[-1] is that convolution
                # Right after a convolution (every affine of this network): folded into its
                # kernel and bias, y = γ·(W∗x + b) + β = (γW)∗x + (γb + β). A frozen network
                # needs no separate op, and oneDNN's grappler fusion of a 1×1 depthwise
                # convolution with the add and ReLU that follow produced a node with no op
                # type, which made the remapper give up on the whole training step's graph.
                conv, (kernel, bias) = weights[-1]
                weights[-1] = (conv, [kernel * gamma, bias * gamma + beta])
            else:  # read_dlib_resnet's layer list rules this out; a guard against its change
                raise ValueError(f"{name}: an affine layer that does not follow a convolution "
                                 "(dlib's model has none; tfhead folds each into its "
                                 "convolution)")
        elif kind == "relu":
            x = keras.layers.ReLU(name=name)(x)
        elif kind in ("max_pool", "avg_pool"):
            if layer["nr"] == 0:  # *_pool_everything
                pool = (keras.layers.GlobalMaxPooling2D if kind == "max_pool"
                        else keras.layers.GlobalAveragePooling2D)
                x = pool(keepdims=True, name=name)(x)
            elif layer["padding"] != (0, 0):
                raise ValueError(f"{name}: padded {kind} is not supported")
            else:
                pool = (keras.layers.MaxPooling2D if kind == "max_pool"
                        else keras.layers.AveragePooling2D)
                x = pool((layer["nr"], layer["nc"]), strides=layer["stride"], padding="valid",
                         name=name)(x)
        elif kind == "tag":
            tags[layer["tag"]] = x
        elif kind == "skip":
            x = tags[layer["tag"]]
        elif kind == "add_prev":
            x = ZeroPaddedAdd(name=name)([x, tags[layer["tag"]]])
        elif kind == "fc_no_bias":
            if tuple(x.shape[1:3]) != (1, 1):  # dlib flattens in (k, nr, nc) order
                x = keras.layers.Permute((3, 1, 2), name=name + "_nchw")(x)
            x = keras.layers.Flatten(name="embedding")(x)
            named["embedding"] = x
            keras_layer = keras.layers.Dense(layer["kernel"].shape[1], use_bias=False, name=name)
            x = keras_layer(x)
            weights.append((keras_layer, [layer["kernel"]]))
        elif kind == "loss_metric":
            continue  # loss_metric's output is the fc output as is
        named[name] = x
        previous = name if kind == "con" else None

    model_outputs = named["descriptor"]
    if feature_layers is not None:
        feature_layers = list(feature_layers)
        unknown = [n for n in feature_layers if n not in named or n == "descriptor"]
        if unknown:
            raise ValueError(f"Unknown feature layers {unknown}; known: {FEATURE_LAYERS} and "
                             f"{sorted(n for n in named if n not in FEATURE_SHAPES)}")
        model_outputs = {"descriptor": named["descriptor"], **{n: named[n] for n in feature_layers}}
    model = keras.Model(chip, model_outputs, name="dlib_face_resnet")
    for keras_layer, values in weights:
        keras_layer.set_weights([np.asarray(v, np.float32) for v in values])
    model.trainable = False
    return model
