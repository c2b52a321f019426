"""The exported model file: a TFLite flatbuffer carrying tfhead's metadata (no TensorFlow).

The metadata is UTF-8 JSON in the model's own `metadata` table under the name "tfhead" (the
flatbuffer field TFLite reserves for this; the interpreter ignores it), so one `.tflite` file is
everything a device needs. Written by `tfhead.export`, read and checked by `EdgeModel`:

    format, format_version      "tfhead-person-tflite", FORMAT_VERSION
    tfhead_version              the tfhead that exported it
    preset, resolution          the architecture preset and the side R of input and output
    landmark_image_version      the rasterization the model was trained on (tfhead.face.landmark_image)
    inputs, output              name, shape [1, R, R, 3], dtype and value range ([-1, 1]: RGB
                                uint8 / 127.5 - 1) of each input, in the order the runner feeds
                                them (`input_names`: the landmark image, then for a warp-guided
                                model the warp), and of the frame. The graph's inputs are found by
                                these names (its signature), not by position.
    warp_guidance               whether the generator also takes the source crop warped to the
                                target landmarks (`tfhead.face.source`)
    source                      the source photo, for the warp and for pasting the frames back:
                                {"photo": the metadata entry holding it, "photo_format": "jpeg",
                                "photo_landmarks": [68, 2] in photo pixels}; null for a model made
                                without one (a warp-guided model always has it)
    person, mode                the person's name; "fine-tuned", "feed-forward" or "student"
    quantization                fp32, fp16, dynamic or int8
    reference_landmarks         [68, 2] the source's landmarks in crop pixels (relative motion)
    parity                      the export-time TFLite-vs-Keras check, per image set

The source photo itself is a second metadata entry, `SOURCE_PHOTO_NAME`: JPEG bytes, not JSON.

Format 1 (before warp guidance) had one input described under "input", no warp_guidance and no
source; the runner still reads it (`READABLE_FORMAT_VERSIONS`).
"""

from __future__ import annotations

import json
import struct

import cv2
import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tfhead import errors
from tfhead.face.source import PersonSource

# How a person model was made: fine-tuned (paper §3.3), feed-forward (ψ = P ê, no fine-tuning)
# or a student distilled from one of those. Person checkpoints and model files share the names.
PERSON_MODES = ("fine-tuned", "feed-forward", "student")
METADATA_NAME = "tfhead"
FORMAT = "tfhead-person-tflite"
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
SOURCE_PHOTO_NAME = "tfhead_source_photo"
# The source photo is stored as JPEG at this quality rather than PNG, to keep the file small:
# skimage's 512² astronaut is 97 KiB against 454 KiB, off by 2 grey levels on average (99% of
# pixels within 12). The runner's warp and paste-back use this copy, so they differ from the
# checkpoint's by that much; the export's parity check feeds both graphs the same inputs.
SOURCE_JPEG_QUALITY = 95
LANDMARK_INPUT, WARP_INPUT = "landmark_image", "warp"


class ModelFileError(errors.TfheadError, ValueError):
    """A model file that is missing, not a tfhead export, or made for another tfhead."""


def input_names(warp_guidance: bool) -> tuple[str, ...]:
    """The inputs of a person model file, in the order they are fed: the landmark image, and for
    a warp-guided model the warp."""
    return (LANDMARK_INPUT, WARP_INPUT) if warp_guidance else (LANDMARK_INPUT,)


def _entry_buffer_index(model: schema.Model, name: str) -> int | None:
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is not None and entry.Name().decode() == name:
            return entry.Buffer()
    return None


def read_entry(content: bytes, name: str, where: str = "the model") -> bytes | None:
    """The bytes of metadata entry `name` of a TFLite flatbuffer (None when it has none).

    Raises:
      ModelFileError: not a TFLite file, or a damaged one.
    """
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelFileError(f"{where} is not a TFLite model (no TFL3 identifier).")
    try:
        model = schema.Model.GetRootAs(content, 0)
        index = _entry_buffer_index(model, name)
        data = None if index is None else model.Buffers(index).DataAsNumpy()
    except (struct.error, IndexError, TypeError, ValueError, UnicodeDecodeError):
        # The flatbuffer's offsets point past its end: the file was cut short or overwritten.
        raise ModelFileError(
            f"{where} is damaged or truncated ({len(content):,} bytes; its tables point past "
            "the end). Copy or export it again.") from None
    if index is None:
        return None
    return b"" if isinstance(data, int) else bytes(data)  # DataAsNumpy() gives 0 when empty


def read_metadata(content: bytes, where: str = "the model") -> dict:
    """The tfhead metadata of a TFLite flatbuffer.

    Raises:
      ModelFileError: not a TFLite file, or one without tfhead metadata.
    """
    data = read_entry(content, METADATA_NAME, where)
    if data is None:
        raise ModelFileError(
            f"{where} has no tfhead metadata: it was not exported by export/export_tflite.py, "
            "which writes the resolution, landmark-image version and value range the runner needs.")
    if not data:
        raise ModelFileError(f"{where}: its tfhead metadata entry is empty; export it again.")
    try:
        return json.loads(data.decode("utf-8"))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{where}: its tfhead metadata is not valid JSON ({e}).") from None


def with_metadata(content: bytes, metadata: dict, entries: dict[str, bytes] | None = None) -> bytes:
    """A copy of TFLite flatbuffer `content` with `metadata` as its "tfhead" entry and each of
    `entries` (name → bytes) as an entry of its own, replacing entries of the same names; other
    entries are kept."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    payloads = {METADATA_NAME: json.dumps(metadata, sort_keys=True).encode("utf-8"),
                **(entries or {})}
    model.metadata = [m for m in (model.metadata or [])
                      if m.name is None or m.name.decode() not in payloads]
    for name, payload in payloads.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    size = len(content) + sum(len(p) for p in payloads.values()) + 1024
    builder = flatbuffers.Builder(size)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def source_entry(source: PersonSource) -> tuple[dict, dict[str, bytes]]:
    """The metadata's "source" record of `source`, and the entries for `with_metadata` that hold
    its photo (JPEG, `SOURCE_JPEG_QUALITY`)."""
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(source.photo, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, SOURCE_JPEG_QUALITY])
    if not ok:
        raise ValueError(f"OpenCV could not encode the {list(source.photo.shape)} source photo "
                         "as JPEG.")
    record = {"photo": SOURCE_PHOTO_NAME, "photo_format": "jpeg",
              "photo_landmarks": np.round(source.photo_landmarks, 3).tolist()}
    return record, {SOURCE_PHOTO_NAME: jpeg.tobytes()}


def read_source(content: bytes, metadata: dict, where: str = "the model") -> PersonSource | None:
    """The model's source photo (`PersonSource` at the model's resolution), or None when the
    metadata has none (format 1, or a model exported without a photo).

    Raises:
      ModelFileError: the record or the photo is missing or damaged.
    """
    record = metadata.get("source")
    if record is None:
        return None
    if not isinstance(record, dict) or record.get("photo_format") != "jpeg":
        raise ModelFileError(f"{where}: its source record {str(record)[:200]} is not a JPEG "
                             "photo with landmarks; export it again.")
    data = read_entry(content, str(record.get("photo")), where)
    photo = (None if not data else
             cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    if photo is None:
        raise ModelFileError(f"{where}: its source photo (metadata entry {record.get('photo')!r}) "
                             "is missing or not a readable JPEG; export it again.")
    try:
        return PersonSource(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB),
                            np.asarray(record.get("photo_landmarks"), np.float32),
                            int(metadata["resolution"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{where}: its source photo cannot be used ({e}); export it "
                             "again.") from None


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
