"""Per-person TFLite export (docs/design.md §7).

    model = PersonModel.load("people/astronaut")
    result = export(model, "fp16", "astronaut.fp16.tflite")
    print(result.size_bytes, result.parity)

The person's ψ' is folded into the graph: every AdaIN becomes instance normalization with a
constant affine, and P, E, D and W are not part of it. The serving function maps one landmark image
`[1, R, R, 3]` float32 in [-1, 1] (RGB uint8 / 127.5 - 1) to one frame `[1, R, R, 3]` in [-1, 1]
(the generator's tanh). A warp-guided model (`ModelConfig.warp_guidance`) has a second input,
"warp": the source crop warped to the target landmarks, `[1, R, R, 3]` in [-1, 1] like the landmark
image; the inputs are named ("landmark_image", "warp") and found by name, and the file carries the
source photo and its landmarks, so the runner computes the warp and pastes the frames back without
the person checkpoint (`tfhead.edge.model_file`). The int8 model takes and returns int8 tensors
whose scales and zero points the runner reads from the graph. Conversion is restricted to
TFLITE_BUILTINS, so a graph needing a Flex (TensorFlow) op fails here, not on the device.

Quantization modes:
  fp32     float weights and arithmetic.
  fp16     float16 weights (half the file), dequantized to float32 at load time on CPUs.
  dynamic  int8 weights; XNNPACK quantizes activations per batch on the fly.
  int8     int8 weights and activations for the convolutions, calibrated on the inputs of the
           person's own motion (landmark images, and warps); normalization, attention, residual
           sums and the output stay float (`INT8_FLOAT_OPS`), because quantizing them degraded
           the frames (BUILD_NOTES.md).

Before anything is written, the TFLite model runs against the Keras model on three image sets —
`noise` (uniform random tensors), `faces` (random procedural faces) and `person` (held-out frames
of the person's own motion or driving video), each fed as the model takes it (`model_inputs`: the
landmark images, and the source warped to the same landmarks) — and must stay within the mode's
`THRESHOLDS` on each; otherwise `ExportParityError` reports the numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import time
import warnings
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from tfhead import __version__, errors
from tfhead.animation import driving
from tfhead.edge import model as edge_model
from tfhead.edge import model_file
from tfhead.evaluation import metrics
from tfhead.face import landmark_image, landmarks, motion, procedural
from tfhead.io import outputs
from tfhead.io.fileio import tmp_name
from tfhead.models.person import PersonModel

log = logging.getLogger("tfhead")

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
PARITY_SETS = ("noise", "faces", "person")
# Kept in float in the int8 model: instance-norm/AdaIN statistics and affine, attention,
# residual sums and the output. The convolutions (and the resampling around them) run in int8.
INT8_FLOAT_OPS = ("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "SUB", "MUL", "NEG", "SQUARE", "ADD",
                  "BATCH_MATMUL", "SOFTMAX", "TANH")


class ExportError(errors.TfheadError, ValueError):
    """The model cannot be exported (unsupported ops, bad inputs)."""


class ExportParityError(ExportError):
    """The converted model differs from the Keras model by more than the mode allows."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Largest allowed |TFLite − Keras| (max and mean over pixels, values in [-1, 1]) and the
    smallest allowed SSIM between the two frames (computed on [-1, 1], max_val 2), on the image
    sets in `sets`. Quantized modes are not held to the `noise` set: uniform noise lies far outside
    the activation ranges a landmark image produces (its numbers are still measured and stored)."""

    max_abs: float
    mean_abs: float
    min_ssim: float
    sets: tuple[str, ...] = PARITY_SETS

    def violations(self, numbers: dict) -> list[str]:
        found = []
        if not numbers["max_abs"] <= self.max_abs:
            found.append(f"max |diff| {numbers['max_abs']:.4g} > {self.max_abs:g}")
        if not numbers["mean_abs"] <= self.mean_abs:
            found.append(f"mean |diff| {numbers['mean_abs']:.4g} > {self.mean_abs:g}")
        if not numbers["ssim"] >= self.min_ssim:
            found.append(f"SSIM {numbers['ssim']:.4f} < {self.min_ssim:g}")
        return found


# Set from what was measured on the demo's fine-tuned person (small128 at 16→128 channels) and on
# random-weight models (BUILD_NOTES.md, "Export"), with ~2–5× headroom: a correct conversion
# passes, a broken one (a wrong constant, a layer out of order, a badly calibrated scale) does not.
THRESHOLDS: dict[str, Thresholds] = {
    "fp32": Thresholds(max_abs=5e-3, mean_abs=2e-4, min_ssim=0.999),
    "fp16": Thresholds(max_abs=5e-2, mean_abs=3e-3, min_ssim=0.995),
    "dynamic": Thresholds(max_abs=0.5, mean_abs=0.04, min_ssim=0.95, sets=("faces", "person")),
    "int8": Thresholds(max_abs=1.0, mean_abs=0.08, min_ssim=0.85, sets=("faces", "person")),
}


@dataclasses.dataclass
class ExportResult:
    path: str | None
    quantization: str
    size_bytes: int
    parity: dict[str, dict[str, float]]   # set → {max_abs, mean_abs, ssim}
    undelegated: list[str]                # ops XNNPACK did not take (the goal: none)
    partitions: int
    operators: list[str]
    seconds: float
    content: bytes = dataclasses.field(repr=False, default=b"")


def serving_function(model: PersonModel) -> tf.types.experimental.ConcreteFunction:
    """The frozen per-person graph: landmark image `[1, R, R, 3]` (and for a warp-guided model
    the warp, same shape) → frame, ψ' a constant (a student has no ψ': the person is in its
    weights). The arguments' names are the inputs' names in the file (`model_file.input_names`)."""
    spec = functools.partial(tf.TensorSpec, [1, model.resolution, model.resolution, 3], tf.float32)
    if model.student is not None:
        def render(*inputs):
            return model.generator(inputs if model.warp_guidance else inputs[0], training=False)
    else:
        generator = model.generator.generator
        psi = tf.constant(np.asarray(model.generator.psi)[None], tf.float32)

        def render(landmark_image, warp=None):
            return generator.render(landmark_image, psi, warp, training=False)

    if model.warp_guidance:
        @tf.function(input_signature=[spec(name=model_file.LANDMARK_INPUT),
                                      spec(name=model_file.WARP_INPUT)], autograph=False)
        def serve(landmark_image, warp):
            return {"frame": render(landmark_image, warp)}
    else:
        @tf.function(input_signature=[spec(name=model_file.LANDMARK_INPUT)], autograph=False)
        def serve(landmark_image):
            return {"frame": render(landmark_image)}

    return convert_variables_to_constants_v2(serve.get_concrete_function())


def person_track_points(model: PersonModel, count: int, seed: int) -> np.ndarray:
    """`[count, 68, 2]` landmarks of the person's own geometry in motion: mouth, blinks, head
    turns, roll, scale and drift around the reference landmarks."""
    return motion.motion_track(model.reference_landmarks, count, seed=seed)


def driver_points(model: PersonModel, driver: str, count: int,
                  detector: landmarks.LandmarkDetector | None = None) -> np.ndarray:
    """Up to `count` landmark sets `[M, 68, 2]` of a driving video retargeted onto the person
    (relative motion, as the runner maps them), evenly spaced over the video.

    Raises:
      driving.DrivingError: unreadable video, or no face in it.
    """
    detector = detector or landmarks.LandmarkDetector()
    source = driving.DrivingSource(driver, model.resolution, detector, redetect_every=1)
    mapper = driving.MotionMapper("relative", model.reference_landmarks, model.resolution)
    mapped = [mapper.landmarks(item.landmarks) for item in source if item.landmarks is not None]
    if not mapped:
        raise driving.DrivingError(f"No face found in {driver}; it cannot calibrate the export.")
    picks = np.unique(np.linspace(0, len(mapped) - 1, min(count, len(mapped))).round().astype(int))
    return np.stack([mapped[i] for i in picks]).astype(np.float32)


def random_face_points(resolution: int, count: int, seed: int) -> np.ndarray:
    """Landmarks `[count, 68, 2]` of random procedural identities at random mouth/eye openings."""
    rng = np.random.default_rng(seed)
    return np.stack([
        procedural.procedural_landmarks(procedural.random_identity(int(rng.integers(1 << 30))),
                                        resolution, mouth_open=float(rng.uniform(0, 1)),
                                        eyes_open=float(rng.uniform(0.2, 1)))
        for _ in range(count)]).astype(np.float32)


@dataclasses.dataclass
class ExportInputs:
    """The model inputs an export uses: calibration (int8) and the parity sets.

    Each is a list with one array per input of the model, in the file's order
    (`model_file.input_names`): the landmark images, and for a warp-guided model the source warped
    to the same landmarks (`PersonModel.model_inputs`). Make it once with `export_inputs` and reuse
    it for every mode, so that all files of one person are calibrated and checked on the same
    inputs.
    """

    calibration: list[np.ndarray]        # uint8 [N, R, R, 3] per input
    parity: dict[str, list[np.ndarray]]  # set name → float32 [M, R, R, 3] in [-1, 1] per input
    points: dict[str, np.ndarray]        # "faces", "person" → their target landmarks [M, 68, 2]
    source: str                          # where the person's landmarks came from


def export_inputs(model: PersonModel, driver: str | None = None, calibration_count: int = 64,
                  parity_count: int = 8, seed: int = 0,
                  detector: landmarks.LandmarkDetector | None = None) -> ExportInputs:
    """Calibration and parity inputs: from `driver` (a video of the motion the model will be
    driven with) when given, else from generated tracks around the person's geometry. Parity
    frames of the person are held out of calibration."""
    if calibration_count < 1 or parity_count < 1:
        raise ValueError(f"calibration_count and parity_count must be >= 1, got "
                         f"{calibration_count} and {parity_count}.")
    r = model.resolution
    if driver is not None:
        points = driver_points(model, driver, calibration_count + parity_count, detector)
        if len(points) < 2:
            raise ExportError(f"{driver} gives {len(points)} face frame(s); calibration needs "
                              "more.")
        held_out = np.zeros(len(points), bool)  # every step-th frame, spread over the video
        step = max(2, len(points) // parity_count)
        held_out[np.arange(1, len(points), step)[:parity_count]] = True
        calibration, person = points[~held_out], points[held_out]
        source = f"driving video {driver}"
    else:
        calibration = person_track_points(model, calibration_count, seed)
        person = person_track_points(model, parity_count, seed + 1)
        source = "generated tracks around the person's landmarks"
    rng = np.random.default_rng(seed + 2)
    noise = [rng.uniform(-1, 1, size=(parity_count, r, r, 3)).astype(np.float32)
             for _ in model_file.input_names(model.warp_guidance)]
    faces = random_face_points(r, parity_count, seed + 3)

    def parity_inputs(points):
        return [landmark_image.to_model_range(x) for x in model.model_inputs(points)]

    return ExportInputs(model.model_inputs(calibration),
                        {"noise": noise, "faces": parity_inputs(faces),
                         "person": parity_inputs(person)},
                        {"faces": faces, "person": person}, source)


def convert(serve: tf.types.experimental.ConcreteFunction, quantization: str,
            calibration: Sequence[np.ndarray] | None = None, trackable=None) -> bytes:
    """TFLite flatbuffer of a frozen serving function in one quantization mode.

    Args:
      serve: The function; its inputs keep their names in the file's signature.
      quantization: One of QUANTIZATIONS.
      calibration: For int8: one uint8 array `[N, ...]` per input of `serve`, in its order.
      trackable: The object holding the function's variables (None: a frozen function's).

    Raises:
      ExportError: an op outside TFLITE_BUILTINS, or int8 without calibration images.
    """
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantization!r}; valid: {list(QUANTIZATIONS)}.")
    # With a trackable the converter writes a signature that names the inputs; calibration and
    # the runner find them through it (it may order the graph's inputs otherwise). The function's
    # own inputs come first in `serve.inputs`, then the variables an unfrozen one captures.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve], trackable or tf.Module())
    names = [t.name.split(":")[0]
             for t in serve.inputs[:len(serve.inputs) - len(serve.captured_inputs)]]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        with warnings.catch_warnings():
            # The quantization debugger builds a tf.lite.Interpreter (deprecated in favour of
            # LiteRT, which is what runs the models) and notes that no input statistics were
            # given (calibration provides them): neither concerns the result.
            warnings.simplefilter("ignore", UserWarning)
            return _convert(converter, quantization, calibration, names)
    except ExportError:
        raise
    except Exception as e:  # the converter raises ConverterError and friends
        missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op",
                                        str(e))))
        if missing:
            raise ExportError(
                f"The {quantization} graph needs TensorFlow ops that are not TFLite built-ins: "
                f"{', '.join(missing)}. They would need Flex (select TF ops), which the standalone "
                "runtime does not have; rewrite them with built-in ops.") from None
        raise ExportError(f"TFLite conversion ({quantization}, TFLITE_BUILTINS only) failed: "
                          f"{str(e).strip()[:2000]}") from None


def _convert(converter, quantization, calibration, names) -> bytes:
    if quantization != "int8":
        return converter.convert()
    if calibration is None or not len(calibration) or not len(calibration[0]):
        raise ExportError("int8 export needs calibration inputs (landmark images).")
    if len(calibration) != len(names):
        raise ExportError(f"int8 calibration has {len(calibration)} input(s); the graph takes "
                          f"{len(names)} ({', '.join(names)}).")
    floats = [landmark_image.to_model_range(np.asarray(x)) for x in calibration]

    def representative():
        for i in range(len(floats[0])):
            yield {name: x[i][None] for name, x in zip(names, floats)}

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    # Selective quantization: the debugger's converter leaves the listed ops in float (the
    # supported way to keep sensitive layers out of a full-integer model).
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(INT8_FLOAT_OPS), fully_quantize=True))
    return debugger.get_nondebug_quantized_model()


def parity(reference: Callable[..., np.ndarray], invoker: edge_model.Invoker,
           inputs: Sequence[np.ndarray]) -> dict[str, float]:
    """max/mean |TFLite − reference| and the mean SSIM between them over `inputs` (one float array
    `[N, R, R, 3]` per model input; both are called with one `[1, R, R, 3]` array per input)."""
    singles = [[x[i:i + 1] for x in inputs] for i in range(len(inputs[0]))]
    expected = np.concatenate([reference(*one) for one in singles])
    got = np.concatenate([invoker(*one) for one in singles])
    difference = np.abs(got - expected)
    return {"max_abs": float(difference.max()), "mean_abs": float(difference.mean()),
            "ssim": float(metrics.ssim(got, expected, value_range=2.0).mean())}


def metadata_for(model: PersonModel, quantization: str, invoker: edge_model.Invoker,
                 numbers: dict, source: str, photo: dict | None) -> dict:
    """The file's tfhead metadata (`tfhead.edge.model_file`); `photo` is the source record of
    `model_file.source_entry`, or None for a model without a source."""
    r = model.resolution

    def tensor(side, details, encoding):
        return {"name": side, "shape": [1, r, r, 3], "dtype": np.dtype(details["dtype"]).name,
                "range": list(edge_model.VALUE_RANGE), "encoding": encoding}

    encodings = {
        model_file.LANDMARK_INPUT: "RGB landmark image (tfhead.face.landmark_image), "
                                   "uint8 / 127.5 - 1",
        model_file.WARP_INPUT: "RGB source crop warped to the target landmarks "
                               "(tfhead.face.source.PersonSource.warp), uint8 / 127.5 - 1"}
    names = model_file.input_names(model.warp_guidance)
    return {
        "format": model_file.FORMAT, "format_version": model_file.FORMAT_VERSION,
        "tfhead_version": __version__, "preset": model.preset, "resolution": r,
        "landmark_image_version": landmark_image.LANDMARK_IMAGE_VERSION,
        "inputs": [tensor(name, details, encodings[name])
                   for name, details in zip(names, invoker.inputs)],
        "output": tensor("frame", invoker.output, "RGB frame, uint8 = (x + 1) * 127.5"),
        "warp_guidance": model.warp_guidance, "source": photo,
        "person": model.name, "mode": model.mode, "quantization": quantization,
        "reference_landmarks": np.asarray(model.reference_landmarks).round(3).tolist(),
        "parity": numbers, "calibration": source if quantization == "int8" else None,
        "record": {k: v for k, v in model.record.items() if isinstance(v, (str, int, float))},
    }


def is_tfhead_model_file(path: str) -> bool:
    """Whether `path` is a `.tflite` that tfhead exported (it carries tfhead metadata)."""
    try:
        with open(path, "rb") as f:
            model_file.read_metadata(f.read(), path)
    except (OSError, model_file.ModelFileError):
        return False
    return True


def check_output(path: str, flag: str = "--out", inputs: outputs.Inputs | None = None) -> str:
    """Checks a `.tflite` output path before any conversion (see `tfhead.io.outputs`): an existing
    file is replaced only when tfhead exported it. Returns the absolute path."""
    return outputs.file_output(path, flag=flag, kind="tfhead .tflite model",
                               extensions=(".tflite",), inputs=inputs,
                               replaceable=is_tfhead_model_file,
                               not_replaceable_hint=" (no tfhead metadata)")


def export(model: PersonModel, quantization: str, path: str | None = None,
           inputs: ExportInputs | None = None, thresholds: Thresholds | None = None,
           num_threads: int = 2) -> ExportResult:
    """Converts, checks parity and (when `path` is given) writes one `.tflite` file atomically.

    Raises:
      outputs.OutputPathError: `path` is refused (`check_output`), before any conversion.
      ExportError: conversion failed or the file would not load in the runner.
      ExportParityError: the converted model is outside `thresholds` (default: the mode's
        `THRESHOLDS`) on some image set; nothing is written.
    """
    start = time.monotonic()
    if path is not None:
        path = check_output(path)
    inputs = inputs or export_inputs(model)
    names = model_file.input_names(model.warp_guidance)
    if len(inputs.calibration) != len(names):
        raise ExportError(
            f"The export inputs have {len(inputs.calibration)} input(s) per frame; "
            f"{model.name}'s {'warp-guided ' if model.warp_guidance else ''}model takes "
            f"{len(names)} ({', '.join(names)}). Make them with export_inputs(model).")
    thresholds = thresholds or THRESHOLDS[quantization]
    serve = serving_function(model)
    content = convert(serve, quantization, inputs.calibration, model.generator)
    operators = model_file.operator_names(content)
    foreign = [name for name in operators if name.startswith("Flex") or name == "CUSTOM"
               or not name.isupper()]
    if foreign:
        raise ExportError(f"The {quantization} graph needs non-builtin ops {foreign}; the "
                          "standalone runtime lacks them.")
    invoker = edge_model.Invoker(content, num_threads, names)

    def reference(*x):  # the Keras person model itself, ψ' a variable: this also checks the fold
        x = tuple(tf.constant(one) for one in x)
        return np.asarray(model.generator(x if model.warp_guidance else x[0], training=False))

    numbers = {name: parity(reference, invoker, arrays)
               for name, arrays in inputs.parity.items()}
    failures = {name: thresholds.violations(numbers[name]) for name in thresholds.sets
                if name in numbers}
    failures = {name: v for name, v in failures.items() if v}
    if failures:
        detail = "; ".join(f"{name}: {', '.join(v)}" for name, v in failures.items())
        raise ExportParityError(
            f"The {quantization} TFLite model differs from the Keras model beyond the "
            f"{quantization} thresholds ({detail}). Measured: {format_parity(numbers)}. "
            "Nothing was written; try a float mode or calibrate on a driving video.")
    undelegated, partitions = edge_model.undelegated_ops(invoker)
    photo, entries = (None, {}) if model.source is None else model_file.source_entry(model.source)
    content = model_file.with_metadata(
        content, metadata_for(model, quantization, invoker, numbers, inputs.source, photo),
        entries)
    # The file must load in the runner exactly as it will on the device.
    edge_model.EdgeModel(content, where=f"the exported {quantization} model")
    if path is not None:
        path = os.path.abspath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = tmp_name(path)
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    return ExportResult(path, quantization, len(content), numbers, undelegated, partitions,
                        sorted(set(operators)), time.monotonic() - start, content)


def format_parity(numbers: dict) -> str:
    """The parity numbers of every image set on one line, for logs and command lines."""
    return "; ".join(f"{name} max {n['max_abs']:.3g} mean {n['mean_abs']:.3g} SSIM {n['ssim']:.4f}"
                     for name, n in numbers.items())
