"""The preprocessed record format: one owner of its schema, its shard names and its manifest.

A preprocessed folder (`train/preprocess.py`) holds

    videos-XXXXX-of-YYYYY.tfrecord   one `tf.train.Example` per kept video (`video_example`)
    manifest.json                    options, counts, every kept video (index, key, person,
                                     frames) and every skipped file or video with its reason

Per video: JPEG crops `frames` [N], `landmarks` [N, 68, 2] (crop pixels), `num_frames`,
`video_index` (the row of D's W), `person_index`, `video_key`, `person_id`, and per frame its
`clip`, `source_frame` and `crop_box` (cx, cy, size in source pixels), plus the crops'
`resolution` and `landmark_image_version`.

The writer (`tfhead.data.preprocess`), the episode reader (`tfhead.data.episodes`), meta-learning (the number
of videos is W's row count) and evaluation all go through here. Examples and TFRecord files are
written without TensorFlow (`video_example`, `RecordWriter`), so preprocessing workers never load
it; only the reader imports it.
"""

from __future__ import annotations

import functools
import glob
import json
import os

import numpy as np

from tfhead import errors
from tfhead.face import landmark_image

MANIFEST = "manifest.json"
SHARD_PATTERN = "videos-*-of-*.tfrecord"


class DataError(errors.TfheadError, ValueError):
    """Preprocessed data that is missing or cannot give what is asked of it."""


def shard_name(index: int, count: int) -> str:
    return f"videos-{index:05d}-of-{count:05d}.tfrecord"


def record_files(pattern_or_dir: str) -> list[str]:
    """Shard files of a preprocessed folder, or of a glob pattern, sorted."""
    pattern = (os.path.join(pattern_or_dir, SHARD_PATTERN) if os.path.isdir(pattern_or_dir)
               else pattern_or_dir)
    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"No TFRecord shards match {pattern!r}; run train/preprocess.py first.")
    return files


def load_manifest(directory: str) -> dict:
    """The manifest of a preprocessed folder.

    Raises:
      DataError: there is none (preprocessing never ran there, or has not finished).
    """
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise DataError(f"No {MANIFEST} in {directory}: point at a folder written by "
                        "train/preprocess.py (or let it finish).")
    with open(path) as f:
        return json.load(f)


def dataset_info(data: str) -> dict:
    """What training needs from a preprocessed folder (or a glob of its shards): its `directory`,
    `num_videos` (the rows of W), `resolution`, `landmark_image_version` and each kept video's
    stored frame count (`frames`)."""
    directory = os.path.dirname(record_files(data)[0])
    manifest = load_manifest(directory)
    return {"directory": directory, "num_videos": len(manifest["videos"]),
            "resolution": manifest["options"]["resolution"],
            "landmark_image_version": manifest["landmark_image_version"],
            "frames": [v["frames"] for v in manifest["videos"]]}


def video_example(jpegs: list[bytes], landmarks: np.ndarray, clips: list[str],
                  source_frames: list[int], crop_boxes: list[tuple[float, float, float]],
                  video_index: int, person_index: int, video_key: str, person_id: str,
                  resolution: int) -> bytes:
    """One video as a serialized `tf.train.Example` of the schema above.

    Encoded here, without TensorFlow (a preprocessing worker would pay ~3 s to import it): the
    bytes equal `tf.train.Example(...).SerializeToString(deterministic=True)` of the same
    features (`tests/test_preprocess.py` checks it), so any reader of Examples reads them.
    """
    floats = np.asarray(landmarks, np.float32).reshape(-1)
    features = {
        "frames": _bytes_list(jpegs),
        "landmarks": _float_list(floats),
        "num_frames": _int64_list([len(jpegs)]),
        "video_index": _int64_list([video_index]),
        "person_index": _int64_list([person_index]),
        "video_key": _bytes_list([video_key.encode()]),
        "person_id": _bytes_list([person_id.encode()]),
        "clip": _bytes_list([c.encode() for c in clips]),
        "source_frame": _int64_list(source_frames),
        "crop_box": _float_list(np.asarray([v for box in crop_boxes for v in box], np.float32)),
        "resolution": _int64_list([resolution]),
        "landmark_image_version": _int64_list([landmark_image.LANDMARK_IMAGE_VERSION]),
    }
    # Features.feature is a map<string, Feature>: one entry (key = 1, value = 2) per feature, in
    # key order as deterministic serialization writes them; Example.features is field 1.
    entries = b"".join(_field(1, _field(1, key.encode()) + _field(2, value))
                       for key, value in sorted(features.items()))
    return _field(1, entries)


# Protocol-buffer wire format of the four messages involved (tensorflow/core/example/feature.proto):
# Feature { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3 } },
# each list `repeated ... value = 1` (floats and int64s packed).

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _packed(payload: bytes) -> bytes:
    return _field(1, payload) if payload else b""  # an empty repeated field is not written


def _bytes_list(values) -> bytes:
    return _field(1, b"".join(_field(1, bytes(v)) for v in values))


def _float_list(values: np.ndarray) -> bytes:
    return _field(2, _packed(np.asarray(values, "<f4").tobytes()))


def _int64_list(values) -> bytes:
    return _field(3, _packed(b"".join(_varint(int(v)) for v in values)))


class RecordWriter:
    """Writes a TFRecord file (what `tf.io.TFRecordWriter` writes) without TensorFlow.

    Each record: its length (uint64, little-endian), the masked CRC-32C of those 8 bytes, the
    data, the masked CRC-32C of the data. CRC-32C comes from `google-crc32c` (C code).
    """

    def __init__(self, path: str):
        self._file = open(path, "wb")

    def write(self, data: bytes) -> None:
        length = len(data).to_bytes(8, "little")
        self._file.write(length + _masked_crc(length) + data + _masked_crc(data))

    def close(self) -> None:
        """Flushes the file to disk (the caller renames it into place next) and closes it."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _masked_crc(data: bytes) -> bytes:
    import google_crc32c

    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF).to_bytes(4, "little")


@functools.cache
def _features():
    import tensorflow as tf

    return {
        "frames": tf.io.VarLenFeature(tf.string),
        "landmarks": tf.io.VarLenFeature(tf.float32),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
        "video_index": tf.io.FixedLenFeature([], tf.int64),
        "person_index": tf.io.FixedLenFeature([], tf.int64),
        "video_key": tf.io.FixedLenFeature([], tf.string),
        "person_id": tf.io.FixedLenFeature([], tf.string),
        "clip": tf.io.VarLenFeature(tf.string),
        "source_frame": tf.io.VarLenFeature(tf.int64),
        "crop_box": tf.io.VarLenFeature(tf.float32),
        "resolution": tf.io.FixedLenFeature([], tf.int64),
        "landmark_image_version": tf.io.FixedLenFeature([], tf.int64),
    }


def parse_video(serialized) -> dict:
    """One stored video: JPEG `frames` [N], `landmarks` [N, 68, 2] (crop pixels), its ids, and per
    frame its `clip` [N], `source_frame` [N] and `crop_box` [N, 3] (cx, cy, size; source pixels)."""
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, _features())
    parsed["frames"] = tf.sparse.to_dense(parsed["frames"])
    parsed["landmarks"] = tf.reshape(tf.sparse.to_dense(parsed["landmarks"]), [-1, 68, 2])
    parsed["clip"] = tf.sparse.to_dense(parsed["clip"])
    parsed["source_frame"] = tf.sparse.to_dense(parsed["source_frame"])
    parsed["crop_box"] = tf.reshape(tf.sparse.to_dense(parsed["crop_box"]), [-1, 3])
    return parsed
