"""tf.data episodes for meta-learning (paper §3.1, docs/design.md §1 and §9).

An episode is one video: K frames (with their landmark images) for the embedder and one more frame
of the same video as the target. The K + 1 frames are a random draw *without replacement*, so the
target is never one of the K (the first failure mode of public ports in docs/design.md §9).

Elements (after batching, `B` = batch size, `R` = resolution), images in [-1, 1]:
  frames            [B, K, R, R, 3]   embedder frames
  landmark_images   [B, K, R, R, 3]   their landmark images
  target_frame      [B, R, R, 3]
  target_landmark_image [B, R, R, 3]
  target_landmarks  [B, 68, 2]        crop pixels
  target_warp       [B, R, R, 3]      with `warp_guidance` only: the first of the K frames warped
                                      piecewise-affinely to the target's landmarks (G's warp input)
  video_index       [B] int32         row of D's W
  frame_indices     [B, K] int32      positions of the K frames in the video's stored frames
  target_index      [B] int32         position of the target frame
  epoch, position   [B] int64         where the episode is in the stream (for exact resumption)

Determinism: with the same `seed`, files, shuffling and episode draws are the same on every run, and
a run resumed from a recorded (epoch, position) continues the same stream (`episode_dataset`).
"""

from __future__ import annotations

import tensorflow as tf

from tfhead.data.records import DataError, dataset_info, parse_video, record_files
from tfhead.face import landmark_image, motion

# Shards read at once (each open reader buffers ~256 KiB). With the writer's round-robin shards
# (`tfhead.data.preprocess.shard_members`) and the shuffle buffer this mixes persons per batch.
INTERLEAVE_CYCLE = 16


def landmark_images(landmarks, resolution: int):
    """`[N, 68, 2]` → `[N, R, R, 3]` float32 in [-1, 1] with `tfhead.face.landmark_image.draw_landmarks`."""
    images = tf.numpy_function(
        lambda points: landmark_image.to_model_range(landmark_image.draw_batch(points, resolution)),
        [landmarks], tf.float32, stateful=False)
    return tf.ensure_shape(images, [None, resolution, resolution, 3])


def warp_to_target(frame, frame_landmarks, target_landmarks):
    """`frame` `[R, R, 3]` float32 warped so that `frame_landmarks` move to `target_landmarks`
    (`tfhead.face.motion.PhotoWarper`, in the input pipeline)."""
    warped = tf.numpy_function(
        lambda image, source, target: motion.PhotoWarper(image, source).warp(target),
        [frame, frame_landmarks, target_landmarks], tf.float32, stateful=False)
    return tf.ensure_shape(warped, frame.shape)


def _decode(jpegs, resolution: int):
    images = tf.map_fn(lambda j: tf.io.decode_jpeg(j, channels=3), jpegs,
                       fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    images = tf.ensure_shape(images, [None, resolution, resolution, 3])
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def sample_episode(video: dict, seed, k_shots: int, resolution: int,
                   warp_guidance: bool = False) -> dict:
    """K embedder frames and one distinct target frame of `video`, drawn with a stateless seed
    (and with `warp_guidance` the first of the K warped to the target's landmarks)."""
    order = tf.random.experimental.stateless_shuffle(
        tf.range(tf.cast(video["num_frames"], tf.int32)), seed=seed)
    chosen = order[:k_shots + 1]
    frames = _decode(tf.gather(video["frames"], chosen), resolution)
    points = tf.gather(video["landmarks"], chosen)
    drawn = landmark_images(points, resolution)
    extra = ({"target_warp": warp_to_target(frames[0], points[0], points[k_shots])}
             if warp_guidance else {})
    return {
        **extra,
        "frames": frames[:k_shots],
        "landmark_images": drawn[:k_shots],
        "target_frame": frames[k_shots],
        "target_landmark_image": drawn[k_shots],
        "target_landmarks": points[k_shots],
        "video_index": tf.cast(video["video_index"], tf.int32),
        "frame_indices": chosen[:k_shots],
        "target_index": chosen[k_shots],
    }


def episode_dataset(pattern_or_dir: str, k_shots: int, batch_size: int, resolution: int,
                    seed: int = 0, shuffle: bool = True, repeat: bool = True,
                    shuffle_buffer: int = 1024, drop_remainder: bool = True,
                    start: tuple[int, int] = (0, 0),
                    input_context: tf.distribute.InputContext | None = None,
                    warp_guidance: bool = False) -> tf.data.Dataset:
    """Batched meta-learning episodes from preprocessed shards (see the module docstring).

    The stream is a sequence of epochs; epoch `e` is a function of (`seed`, `e`) alone: its file
    order, its shuffle and each episode's frame draw (a stateless seed from the episode's position).
    Every element carries `epoch` and `position` (its index within the epoch), so a training loop
    that records the last consumed pair resumes the exact same stream with
    `start=(epoch, position + 1)`: the skipped part of that epoch is read but not decoded.

    Videos with fewer than K + 1 stored frames are dropped (they cannot give an episode); if the
    manifest beside the shards shows that no video has K + 1 frames, this fails at once instead of
    repeating an empty epoch forever.

    Args:
      input_context: From `strategy.distribute_datasets_from_function`: each input pipeline reads
        its own subset of the shard files; `batch_size` is then the per-pipeline batch.
      warp_guidance: Add `target_warp` (for a warp-guided generator, `ModelConfig.warp_guidance`).
    """
    files = record_files(pattern_or_dir)
    _check_episodes_possible(pattern_or_dir, k_shots)
    if input_context is not None and input_context.num_input_pipelines > 1:
        files = files[input_context.input_pipeline_id::input_context.num_input_pipelines]
        if not files:
            raise DataError(
                f"Input pipeline {input_context.input_pipeline_id} has no shard file: there are "
                f"fewer shards than the {input_context.num_input_pipelines} workers; preprocess "
                "with more shards (--videos_per_shard).")
    start_epoch, start_position = (int(v) for v in start)
    seed = int(seed)

    def check(video):
        tf.debugging.assert_equal(
            tf.cast(video["resolution"], tf.int32), resolution,
            message=f"Records were preprocessed at another resolution than {resolution}.")
        tf.debugging.assert_equal(
            tf.cast(video["landmark_image_version"], tf.int32),
            landmark_image.LANDMARK_IMAGE_VERSION,
            message="Records were made with another landmark-image version; preprocess again.")
        return video

    def one_epoch(epoch):
        # File order: a stateless permutation of (seed, epoch). The buffer shuffle below takes a
        # Python seed (a tensor seed fails under a global seed), so it varies per epoch through
        # its input order.
        names = tf.constant(files)
        if shuffle:
            names = tf.random.experimental.stateless_shuffle(
                names, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        ds = tf.data.Dataset.from_tensor_slices(names)
        # A wide interleave: consecutive videos come from INTERLEAVE_CYCLE different shards.
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(INTERLEAVE_CYCLE, len(files)),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.map(parse_video, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.map(check).filter(lambda v: v["num_frames"] >= k_shots + 1)
        if shuffle:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
        ds = ds.enumerate().skip(
            tf.where(epoch == start_epoch, tf.constant(start_position, tf.int64), 0))
        return ds.map(lambda position, video: (epoch, position, video))

    last_epoch = 2 ** 62 if repeat else start_epoch + 1
    ds = tf.data.Dataset.range(start_epoch, last_epoch).flat_map(one_epoch)

    def episode(epoch, position, video):
        draw_seed = tf.stack([tf.constant(seed, tf.int64) * 1_000_003 + epoch, position])
        return {**sample_episode(video, draw_seed, k_shots, resolution, warp_guidance),
                "epoch": epoch, "position": position}

    ds = ds.map(episode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _check_episodes_possible(data: str, k_shots: int) -> None:
    try:
        frames = dataset_info(data)["frames"]
    except DataError:  # shards without a manifest: the filter below still applies
        return
    if frames and max(frames) < k_shots + 1:
        raise DataError(
            f"No video in {data} has the {k_shots + 1} frames an episode needs (K = {k_shots} "
            f"+ 1 target; the longest has {max(frames)}). Lower K or preprocess with more "
            "--frames_per_video.")
