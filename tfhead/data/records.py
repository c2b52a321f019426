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
of videos is W's row count) and evaluation all go through here. TensorFlow is imported only by the
two functions that build or parse an Example, so preprocessing workers that only find landmarks
never load it.
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
                  resolution: int):
    """One video as a `tf.train.Example` of the schema above."""
    import tensorflow as tf

    def _bytes(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def _ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def _floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    features = {
        "frames": _bytes(jpegs),
        "landmarks": _floats(np.asarray(landmarks, np.float32).reshape(-1)),
        "num_frames": _ints([len(jpegs)]),
        "video_index": _ints([video_index]),
        "person_index": _ints([person_index]),
        "video_key": _bytes([video_key.encode()]),
        "person_id": _bytes([person_id.encode()]),
        "clip": _bytes([c.encode() for c in clips]),
        "source_frame": _ints(source_frames),
        "crop_box": _floats([v for box in crop_boxes for v in box]),
        "resolution": _ints([resolution]),
        "landmark_image_version": _ints([landmark_image.LANDMARK_IMAGE_VERSION]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


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
