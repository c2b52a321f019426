"""The exported model file: a TFLite flatbuffer carrying tfhead's metadata (no TensorFlow).

The metadata is UTF-8 JSON in the model's own `metadata` table under the name "tfhead" (the
flatbuffer field TFLite reserves for this; the interpreter ignores it), so one `.tflite` file is
everything a device needs. Written by `tfhead.export`, read and checked by `EdgeModel`:

    format, format_version      "tfhead-person-tflite", FORMAT_VERSION
    tfhead_version              the tfhead that exported it
    preset, resolution          the architecture preset and the side R of input and output
    landmark_image_version      the rasterization the model was trained on (tfhead.face.landmark_image)
    input, output               name, shape [1, R, R, 3], dtype and value range ([-1, 1]: RGB
                                uint8 / 127.5 - 1) of the landmark image and of the frame
    person, mode                the person's name; "fine-tuned", "feed-forward" or "student"
    quantization                fp32, fp16, dynamic or int8
    reference_landmarks         [68, 2] the source's landmarks in crop pixels (relative motion)
    parity                      the export-time TFLite-vs-Keras check, per image set
"""

from __future__ import annotations

import json
import struct

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tfhead import errors

# How a person model was made: fine-tuned (paper §3.3), feed-forward (ψ = P ê, no fine-tuning)
# or a student distilled from one of those. Person checkpoints and model files share the names.
PERSON_MODES = ("fine-tuned", "feed-forward", "student")
METADATA_NAME = "tfhead"
FORMAT = "tfhead-person-tflite"
FORMAT_VERSION = 1


class ModelFileError(errors.TfheadError, ValueError):
    """A model file that is missing, not a tfhead export, or made for another tfhead."""


def _metadata_buffer_index(model: schema.Model) -> int | None:
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is not None and entry.Name().decode() == METADATA_NAME:
            return entry.Buffer()
    return None


def read_metadata(content: bytes, where: str = "the model") -> dict:
    """The tfhead metadata of a TFLite flatbuffer.

    Raises:
      ModelFileError: not a TFLite file, or one without tfhead metadata.
    """
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelFileError(f"{where} is not a TFLite model (no TFL3 identifier).")
    try:
        model = schema.Model.GetRootAs(content, 0)
        index = _metadata_buffer_index(model)
        data = None if index is None else model.Buffers(index).DataAsNumpy()
    except (struct.error, IndexError, TypeError, ValueError, UnicodeDecodeError):
        # The flatbuffer's offsets point past its end: the file was cut short or overwritten.
        raise ModelFileError(
            f"{where} is damaged or truncated ({len(content):,} bytes; its tables point past "
            "the end). Copy or export it again.") from None
    if index is None:
        raise ModelFileError(
            f"{where} has no tfhead metadata: it was not exported by export/export_tflite.py, "
            "which writes the resolution, landmark-image version and value range the runner needs.")
    if isinstance(data, int):  # DataAsNumpy() gives 0 for an empty buffer
        raise ModelFileError(f"{where}: its tfhead metadata entry is empty; export it again.")
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{where}: its tfhead metadata is not valid JSON ({e}).") from None


def with_metadata(content: bytes, metadata: dict) -> bytes:
    """A copy of TFLite flatbuffer `content` with `metadata` as its "tfhead" entry (replacing any)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    payload = json.dumps(metadata, sort_keys=True).encode("utf-8")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, np.uint8)
    model.metadata = [m for m in (model.metadata or [])
                      if m.name is None or m.name.decode() != METADATA_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def operator_names(content: bytes) -> list[str]:
    """Names of the operator codes a TFLite flatbuffer uses: builtins by name ("CONV_2D"),
    custom ops by their custom code ("FlexConv2D" for a TensorFlow op carried by Flex)."""
    model = schema.Model.GetRootAs(content, 0)
    builtins = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.append((code.CustomCode() or b"CUSTOM").decode())
        else:
            names.append(builtins.get(builtin, f"BUILTIN_{builtin}"))
    return names
