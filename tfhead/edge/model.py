"""Running an exported person model with the LiteRT interpreter (no TensorFlow).

`Invoker` runs any single-input, single-output TFLite model on float arrays, quantizing and
dequantizing integer inputs and outputs with the tensors' own scales; `EdgeModel` is an exported
person model: it checks the file's metadata against the graph and against this runtime, and
renders landmark images to frames. `undelegated_ops` lists the nodes the XNNPACK CPU delegate did
not take (each one splits the graph and runs on TFLite's own kernels).
"""

from __future__ import annotations

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tfhead import __version__
from tfhead.edge import model_file
from tfhead.edge.model_file import ModelFileError
from tfhead.face import landmark_image

VALUE_RANGE = [-1.0, 1.0]


class Invoker:
    """One LiteRT interpreter over a model with one input and one output.

    Args:
      content: The TFLite flatbuffer.
      num_threads: Interpreter threads (the Python API uses 1 unless told).
    """

    def __init__(self, content: bytes, num_threads: int = 1):
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}.")
        self.content = content
        self.num_threads = num_threads
        self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"Expected one input and one output, the model has "
                                 f"{len(inputs)} and {len(outputs)}.")
        self.input, self.output = inputs[0], outputs[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input["shape"])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.output["shape"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Runs one float input of the input's shape; returns the float output."""
        dtype = self.input["dtype"]
        if dtype != np.float32:
            scale, zero_point = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], np.asarray(x, dtype))
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


def check_metadata(metadata: dict, invoker: Invoker, where: str) -> None:
    """Raises `ModelFileError` naming the mismatch when metadata, graph and runtime disagree."""
    if metadata.get("format") != model_file.FORMAT:
        raise ModelFileError(f"{where}: tfhead metadata of an unknown kind {metadata.get('format')!r}.")
    if metadata.get("format_version") != model_file.FORMAT_VERSION:
        raise ModelFileError(
            f"{where} is model-file format {metadata.get('format_version')} (exported by tfhead "
            f"{metadata.get('tfhead_version')}); this runner (tfhead {__version__}) reads format "
            f"{model_file.FORMAT_VERSION}. Export it again with this tfhead.")
    if metadata.get("landmark_image_version") != landmark_image.LANDMARK_IMAGE_VERSION:
        raise ModelFileError(
            f"{where} was trained on landmark images v{metadata.get('landmark_image_version')}; "
            f"this runner draws v{landmark_image.LANDMARK_IMAGE_VERSION}. Use the tfhead it was "
            "exported with, or fine-tune and export it again.")
    r = metadata.get("resolution")
    expected = (1, r, r, 3)
    for side, shape in (("input", invoker.input_shape), ("output", invoker.output_shape)):
        declared = tuple(metadata.get(side, {}).get("shape", ()))
        if shape != expected or declared != expected:
            raise ModelFileError(
                f"{where}: its metadata says resolution {r} (an {side} of {list(expected)}, "
                f"declared {list(declared)}) but the graph's {side} is {list(shape)}. The file was "
                "altered or its metadata belongs to another model; export it again.")
        value_range = metadata[side].get("range")
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
    """An exported person model on the LiteRT interpreter.

    Attributes:
      metadata: The file's tfhead metadata (see `model_file`).
      resolution, reference_landmarks, name: From the metadata.
    """

    def __init__(self, content: bytes, num_threads: int = 1, where: str = "the model"):
        metadata = model_file.read_metadata(content, where)
        try:
            self.invoker = Invoker(content, num_threads)
        except (ValueError, RuntimeError) as e:
            if isinstance(e, ModelFileError):
                raise
            raise ModelFileError(f"{where}: LiteRT cannot load it ({e}); the file is damaged or "
                                 "truncated. Copy or export it again.") from None
        check_metadata(metadata, self.invoker, where)
        self.metadata = metadata
        self.resolution = int(metadata["resolution"])
        self.reference_landmarks = np.asarray(metadata["reference_landmarks"], np.float32)
        self.name = metadata.get("person", "")

    @classmethod
    def load(cls, path: str, num_threads: int = 1) -> "EdgeModel":
        if os.path.isdir(path):
            raise ModelFileError(f"{path} is a folder; give the .tflite file itself (from "
                                 "export/export_tflite.py).")
        if not os.path.isfile(path):
            raise ModelFileError(f"No model file at {path}: export one with export/export_tflite.py.")
        with open(path, "rb") as f:
            return cls(f.read(), num_threads, where=path)

    def render(self, landmark_images: np.ndarray) -> np.ndarray:
        """Frames `[N, R, R, 3]` uint8 RGB from landmark images `[N, R, R, 3]` uint8 RGB."""
        landmark_images = np.asarray(landmark_images)
        if landmark_images.ndim == 3:
            landmark_images = landmark_images[None]
        r = self.resolution
        if landmark_images.shape[1:] != (r, r, 3):
            raise ValueError(f"Landmark images must be [N, {r}, {r}, 3], got "
                             f"{list(landmark_images.shape)}.")
        frames = [self.invoker(landmark_image.to_model_range(image)[None])[0]
                  for image in landmark_images]
        return landmark_image.from_model_range(np.stack(frames))
