"""Running an exported person model with the LiteRT interpreter (no TensorFlow).

`Invoker` runs any TFLite model with one output and one or more inputs on float arrays,
quantizing and dequantizing integer inputs and outputs with the tensors' own scales; `EdgeModel`
is an exported person model: it checks the file's metadata against the graph and against this
runtime, rebuilds the source photo from the file, and renders target landmarks to frames
(rasterize, warp the source for a warp-guided model, generator). `undelegated_ops` lists the nodes
the XNNPACK CPU delegate did not take (each one splits the graph and runs on TFLite's own kernels).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tfhead import __version__
from tfhead.edge import model_file
from tfhead.edge.model_file import ModelFileError
from tfhead.face import landmark_image
from tfhead.face import source as source_lib

VALUE_RANGE = [-1.0, 1.0]


class Invoker:
    """One LiteRT interpreter over a model with one output and one or more inputs.

    Args:
      content: The TFLite flatbuffer.
      num_threads: Interpreter threads (the Python API uses 1 unless told).
      input_names: The inputs by their signature names, in the order `__call__` takes them (the
        converter may order a graph's inputs otherwise); None takes the graph's own order.

    Raises:
      ModelFileError: not one output, or the named inputs are not the model's.
    """

    def __init__(self, content: bytes, num_threads: int = 1,
                 input_names: Sequence[str] | None = None):
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}.")
        self.content = content
        self.num_threads = num_threads
        self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        outputs = self.interpreter.get_output_details()
        if len(outputs) != 1:
            raise ModelFileError(f"Expected one output, the model has {len(outputs)}.")
        self.output = outputs[0]
        if input_names is None:
            self.inputs = self.interpreter.get_input_details()
            return
        signatures = self.interpreter.get_signature_list()
        named = (self.interpreter.get_signature_runner().get_input_details()
                 if len(signatures) == 1 else {})
        if sorted(named) != sorted(input_names):
            raise ModelFileError(f"Expected the inputs {list(input_names)}; the model's signature "
                                 f"names {sorted(named) if named else 'none'}.")
        self.inputs = [named[name] for name in input_names]

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(d) for d in details["shape"]) for details in self.inputs]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.output["shape"])

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        """Runs one float array per input, of the inputs' shapes and order; returns the float
        output."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"The model takes {len(self.inputs)} input(s), got {len(inputs)}.")
        for details, x in zip(self.inputs, inputs):
            dtype = details["dtype"]
            if dtype != np.float32:
                scale, zero_point = details["quantization"]
                info = np.iinfo(dtype)
                x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
            self.interpreter.set_tensor(details["index"], np.asarray(x, dtype))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            y = (y.astype(np.float32) - zero_point) * scale
        return np.array(y, np.float32)

    def op_names(self) -> list[str]:
        """The model's nodes, in order (without the delegate's own nodes)."""
        return [op["op_name"] for op in self.interpreter._get_ops_details()
                if op["op_name"] != "DELEGATE"]


def undelegated_ops(invoker: Invoker) -> tuple[list[str], int]:
    """(op names of the nodes XNNPACK did not take, number of delegated partitions).

    The interpreter lists the original nodes and then one DELEGATE node per partition, whose
    inputs and outputs are the tensors crossing the partition's boundary. A node lies inside a
    partition when walking back from the partition's outputs reaches it before reaching the
    boundary; every other node runs outside the delegate.
    """
    ops = invoker.interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op["index"] for op in ops if op["op_name"] != "DELEGATE"
                for t in op["outputs"]}
    inside: set[int] = set()
    for delegate in delegates:
        boundary = {int(t) for t in delegate["inputs"]}
        stack, seen = [int(t) for t in delegate["outputs"]], set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in boundary or tensor not in producer:
                continue
            seen.add(tensor)
            node = producer[tensor]
            inside.add(node)
            stack += [int(t) for t in ops[node]["inputs"] if t >= 0]
    outside = [op["op_name"] for op in ops
               if op["op_name"] != "DELEGATE" and op["index"] not in inside]
    return outside, len(delegates)


def declared_inputs(metadata: dict) -> list[dict]:
    """The input tensors the metadata declares, in feeding order (format 1 declared one,
    "input"); an empty list when the declaration is malformed."""
    inputs = ([metadata.get("input")] if metadata.get("format_version") == 1
              else metadata.get("inputs"))
    if not isinstance(inputs, list) or not all(isinstance(t, dict) for t in inputs):
        return []
    return inputs


def check_format(metadata: dict, where: str) -> None:
    """Raises `ModelFileError` when the metadata is not of a tfhead person model file this runner
    reads, or declares inputs its kind of model does not take (checked before the graph is
    loaded: the declaration says how to find the graph's inputs)."""
    if metadata.get("format") != model_file.FORMAT:
        raise ModelFileError(f"{where}: tfhead metadata of an unknown kind {metadata.get('format')!r}.")
    if metadata.get("format_version") not in model_file.READABLE_FORMAT_VERSIONS:
        raise ModelFileError(
            f"{where} is model-file format {metadata.get('format_version')} (exported by tfhead "
            f"{metadata.get('tfhead_version')}); this runner (tfhead {__version__}) reads formats "
            f"{', '.join(map(str, model_file.READABLE_FORMAT_VERSIONS))}. Export it again with "
            "this tfhead.")
    if metadata["format_version"] == 1:
        return
    names = [tensor.get("name") for tensor in declared_inputs(metadata)]
    expected = list(model_file.input_names(bool(metadata.get("warp_guidance"))))
    if names != expected:
        raise ModelFileError(
            f"{where}: its metadata declares the inputs {names}, but a "
            f"{'warp-guided' if metadata.get('warp_guidance') else 'landmark-only'} model takes "
            f"{expected}. The metadata was altered; export it again.")
    if metadata.get("warp_guidance") and metadata.get("source") is None:
        raise ModelFileError(f"{where}: a warp-guided model without its source photo; the runner "
                             "cannot compute the warp. Export it again.")


def check_metadata(metadata: dict, invoker: Invoker, where: str) -> None:
    """Raises `ModelFileError` naming the mismatch when metadata (of a readable format), graph
    and runtime disagree."""
    if metadata.get("landmark_image_version") != landmark_image.LANDMARK_IMAGE_VERSION:
        raise ModelFileError(
            f"{where} was trained on landmark images v{metadata.get('landmark_image_version')}; "
            f"this runner draws v{landmark_image.LANDMARK_IMAGE_VERSION}. Use the tfhead it was "
            "exported with, or fine-tune and export it again.")
    inputs = declared_inputs(metadata)
    if len(inputs) != len(invoker.input_shapes):
        raise ModelFileError(f"{where}: its metadata declares {len(inputs)} input(s), the graph "
                             f"has {len(invoker.input_shapes)}. Export it again.")
    r = metadata.get("resolution")
    expected = (1, r, r, 3)
    tensors = [(f"input {tensor.get('name')}", tensor, shape)
               for tensor, shape in zip(inputs, invoker.input_shapes)]
    tensors.append(("output", metadata.get("output", {}), invoker.output_shape))
    for side, tensor, shape in tensors:
        declared = tuple(tensor.get("shape", ()))
        if shape != expected or declared != expected:
            raise ModelFileError(
                f"{where}: its metadata says resolution {r} ({side} {list(expected)}, declared "
                f"{list(declared)}) but the graph's {side} is {list(shape)}. The file was "
                "altered or its metadata belongs to another model; export it again.")
        value_range = tensor.get("range")
        if value_range != VALUE_RANGE:
            raise ModelFileError(f"{where}: {side} value range {value_range}; this runner "
                                 f"feeds and reads {VALUE_RANGE}.")
    points = np.asarray(metadata.get("reference_landmarks", []), np.float32)
    if points.shape != (68, 2):
        raise ModelFileError(f"{where}: reference_landmarks must be [68, 2], got "
                             f"{list(points.shape)}.")
    if metadata.get("mode") not in model_file.PERSON_MODES:
        raise ModelFileError(f"{where}: unknown model mode {metadata.get('mode')!r}.")


class EdgeModel:
    """An exported person model on the LiteRT interpreter: a renderer for
    `tfhead.animation.reenact`, like a person checkpoint.

    Attributes:
      metadata: The file's tfhead metadata (see `model_file`).
      resolution, reference_landmarks, name, warp_guidance: From the metadata.
      source: The source photo (`PersonSource`, rebuilt from the file) or None: the warp of a
        warp-guided model is computed from it, and reenact pastes the frames back into it.
    """

    def __init__(self, content: bytes, num_threads: int = 1, where: str = "the model"):
        metadata = model_file.read_metadata(content, where)
        check_format(metadata, where)
        # A format-1 file has one input, taken as is; later ones are found by name.
        names = (None if metadata["format_version"] == 1
                 else model_file.input_names(bool(metadata.get("warp_guidance"))))
        try:
            self.invoker = Invoker(content, num_threads, names)
        except (ValueError, RuntimeError) as e:
            if isinstance(e, ModelFileError):
                raise ModelFileError(f"{where}: {e} The file was altered; export it "
                                     "again.") from None
            raise ModelFileError(f"{where}: LiteRT cannot load it ({e}); the file is damaged or "
                                 "truncated. Copy or export it again.") from None
        check_metadata(metadata, self.invoker, where)
        self.metadata = metadata
        self.resolution = int(metadata["resolution"])
        self.reference_landmarks = np.asarray(metadata["reference_landmarks"], np.float32)
        self.name = metadata.get("person", "")
        self.warp_guidance = bool(metadata.get("warp_guidance", False))
        self.source = model_file.read_source(content, metadata, where)

    @classmethod
    def load(cls, path: str, num_threads: int = 1) -> "EdgeModel":
        if os.path.isdir(path):
            raise ModelFileError(f"{path} is a folder; give the .tflite file itself (from "
                                 "export/export_tflite.py).")
        if not os.path.isfile(path):
            raise ModelFileError(f"No model file at {path}: export one with export/export_tflite.py.")
        with open(path, "rb") as f:
            return cls(f.read(), num_threads, where=path)

    def model_inputs(self, landmarks: np.ndarray) -> list[np.ndarray]:
        """The graph's uint8 inputs for target landmarks `[N, 68, 2]` (crop pixels): landmark
        images, and for a warp-guided model the warps of the source."""
        return source_lib.model_inputs(landmarks, self.resolution,
                                       self.source if self.warp_guidance else None)

    def render(self, landmarks: np.ndarray) -> np.ndarray:
        """Frames `[N, R, R, 3]` uint8 RGB for target landmarks `[N, 68, 2]` in crop pixels."""
        inputs = self.model_inputs(landmarks)
        frames = [self.invoker(*(landmark_image.to_model_range(x[i])[None] for x in inputs))[0]
                  for i in range(len(inputs[0]))]
        return landmark_image.from_model_range(np.stack(frames))
