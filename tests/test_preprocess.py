"""train/preprocess.py on generated clips: records, manifest, skips, resumability after SIGKILL,
and the episode sampler on its output."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfhead.data import corpora, episodes, preprocess, records
from tfhead.face import landmark_image
from tfhead.io import video as video_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(REPO, "train", "preprocess.py")
FLAGS = ["--resolution=64", "--frames_per_video=6", "--videos_per_shard=2", "--no_progress_bar"]


def run_cli(input_dir, out_dir, *extra, check=True):
    result = subprocess.run([sys.executable, CLI, f"--input={input_dir}", f"--out={out_dir}",
                             *FLAGS, *extra], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    corpora.make_procedural_corpus(str(root), persons=3, videos_per_person=2, clips_per_video=2,
                                   frames_per_clip=8, size=192)
    (root / "notes.txt").write_text("not a video")
    (root / "broken.mp4").write_text("this is text, not a video")
    clip = (root / "id00000" / "video00" / "clip00.mp4").read_bytes()
    truncated = root / "id00007" / "video00"
    truncated.mkdir(parents=True)
    (truncated / "clip00.mp4").write_bytes(clip[:len(clip) // 2])
    import skimage.data

    from tfhead.face import landmarks
    photo = skimage.data.astronaut()
    corpora.make_photo_warp_clip(str(root / "astronaut" / "video00" / "clip00.mp4"), photo,
                                 landmarks.LandmarkDetector().detect(photo).landmarks,
                                 num_frames=12, seed=1)
    blank = root / "id00008" / "video00"
    blank.mkdir(parents=True)
    video_lib.write_video(str(blank / "clip00.mp4"), np.full((8, 128, 128, 3), 90, np.uint8))
    return str(root)


@pytest.fixture(scope="module")
def processed(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    result = run_cli(corpus, out, "--workers=2")
    return str(out), result


def test_manifest_counts_and_skips(processed):
    out, result = processed
    manifest = records.load_manifest(out)
    counts = manifest["counts"]
    assert counts["videos_found"] == 10 and counts["videos_kept"] == 7 and counts["persons"] == 4
    assert counts["frames"] == 42 and counts["non_video_files_ignored"] >= 1
    skipped_files = {f["path"]: f["reason"] for f in manifest["skipped_files"]}
    assert "broken.mp4" in skipped_files and "id00007/video00/clip00.mp4" in skipped_files
    assert all("Unreadable" in r or "Corrupt" in r for r in skipped_files.values())
    skipped = {v["video"]: v["reason"] for v in manifest["skipped_videos"]}
    assert skipped["id00008/video00"] == "no face in too many frames (6 of 6)"
    assert set(skipped) == {"broken", "id00007/video00", "id00008/video00"}
    assert [v["video_index"] for v in manifest["videos"]] == list(range(7))
    assert manifest["videos"][0]["key"] == "astronaut/video00"  # sorted keys
    assert len(manifest["shards"]) == 4
    assert "7 videos of 4 persons" in result.stdout
    assert "landmarks:" in result.stderr and "/s, ETA" in result.stderr  # progress with rate, ETA


def test_records_hold_crops_landmarks_and_dense_indices(processed):
    out, _ = processed
    manifest = records.load_manifest(out)
    seen = {}
    for record in tf.data.TFRecordDataset(records.record_files(out)):
        video = records.parse_video(record)
        n = int(video["num_frames"])
        assert video["frames"].shape == (n,) and video["landmarks"].shape == (n, 68, 2)
        frame = tf.io.decode_jpeg(video["frames"][0]).numpy()
        assert frame.shape == (64, 64, 3)
        points = video["landmarks"].numpy()
        assert points.min() > 0 and points.max() < 64  # face inside the crop
        seen[int(video["video_index"])] = video["video_key"].numpy().decode()
    assert seen == {v["video_index"]: v["key"] for v in manifest["videos"]}


def test_real_photo_warp_records_keep_true_geometry(corpus, processed):
    """The astronaut clip: stored landmarks mapped back through the stored crop box are within the
    landmark tolerance of the true warped landmarks of the same source frames."""
    from tests.test_landmarks import MAX_NME, nme
    from tfhead.face import crop
    out, _ = processed
    truth = np.load(os.path.join(corpus, "astronaut", "video00", "clip00.landmarks.npy"))
    for record in tf.data.TFRecordDataset(records.record_files(out)):
        video = records.parse_video(record)
        if video["video_key"].numpy() != b"astronaut/video00":
            continue
        frames = video["source_frame"].numpy()
        assert list(frames) == sorted(set(np.round(np.linspace(0, 11, 6)).astype(int)))
        for points, box, index in zip(video["landmarks"].numpy(), video["crop_box"].numpy(), frames):
            transform = crop.CropTransform(crop.Box(*box), 64)
            assert nme(transform.from_crop(points), truth[index]) < MAX_NME
        return
    pytest.fail("the astronaut video is missing from the records")


# Runs train/preprocess.py and SIGKILLs itself right after the first task of one stage has
# finished (a landmarks chunk or a shard written), so the kill always lands mid-run — polling for
# files from outside raced with the fast second stage.
_KILL_AFTER_FIRST = """
import os, runpy, signal, sys
from tfhead.data import preprocess
stage, cli = sys.argv[1], sys.argv[2]
original = preprocess._Progress.__call__
def progress(self, n):
    original(self, n)
    if self.stage == stage and self.done < self.total:
        os.kill(os.getpid(), signal.SIGKILL)
preprocess._Progress.__call__ = progress
sys.argv = sys.argv[2:]
runpy.run_path(cli, run_name="__main__")
"""


@pytest.mark.slow
@pytest.mark.parametrize("stage,stage_file", [("landmarks", ".work/landmarks-*.json"),
                                              ("shards", "videos-*.tfrecord")])
def test_killed_run_resumes_to_the_same_records(corpus, processed, tmp_path, stage, stage_file):
    import glob
    reference, _ = processed
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", _KILL_AFTER_FIRST, stage, CLI,
                             f"--input={corpus}", f"--out={out}", *FLAGS, "--workers=1"],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert glob.glob(str(out / stage_file))  # the first task's output is there ...
    assert not (out / "manifest.json").exists()  # ... and the run is unfinished
    run_cli(corpus, out, "--workers=1")
    for name in records.load_manifest(reference)["shards"]:
        assert (out / name).read_bytes() == open(os.path.join(reference, name), "rb").read()
    ours, theirs = (records.load_manifest(str(out)), records.load_manifest(reference))
    for key in ("counts", "videos", "skipped_videos", "shards"):
        assert ours[key] == theirs[key]
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]


def test_other_options_on_an_existing_output_fail_clearly(corpus, processed):
    out, _ = processed
    result = run_cli(corpus, out, "--frames_per_video=5", check=False)
    assert result.returncode != 0 and "other options" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_input_fails_clearly(tmp_path):
    result = run_cli(tmp_path / "nope", tmp_path / "out", check=False)
    assert result.returncode != 0 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_episodes_never_put_the_target_among_the_k(processed):
    out, _ = processed
    ds = episodes.episode_dataset(out, k_shots=4, batch_size=3, resolution=64, seed=3)
    for episode in ds.take(40):
        k = episode["frame_indices"].numpy()
        t = episode["target_index"].numpy()
        for b in range(3):
            assert t[b] not in k[b] and len(set(k[b])) == 4
    assert episode["frames"].shape == (3, 4, 64, 64, 3)
    assert episode["landmark_images"].shape == (3, 4, 64, 64, 3)
    assert episode["target_frame"].shape == (3, 64, 64, 3)
    assert episode["video_index"].dtype == tf.int32
    frames = episode["frames"].numpy()
    assert -1.0 <= frames.min() and frames.max() <= 1.0


def test_episode_landmark_images_match_the_rasterizer(processed):
    from tfhead.face import landmark_image
    out, _ = processed
    episode = next(iter(episodes.episode_dataset(out, 2, 1, 64, seed=0)))
    expected = landmark_image.to_model_range(
        landmark_image.draw_landmarks(episode["target_landmarks"][0].numpy(), 64))
    np.testing.assert_array_equal(episode["target_landmark_image"][0].numpy(), expected)


def test_warp_guided_episodes_carry_the_first_frame_warped_to_the_target(processed):
    from tfhead.data import records
    from tfhead.face import motion
    out, _ = processed
    episode = next(iter(episodes.episode_dataset(out, 2, 1, 64, seed=0, warp_guidance=True)))
    assert "target_warp" not in next(iter(episodes.episode_dataset(out, 2, 1, 64, seed=0)))
    # Recompute it from the stored video: frame_indices[0] warped to the target's landmarks.
    video = next(v for v in (records.parse_video(r) for r in tf.data.TFRecordDataset(
        records.record_files(out))) if int(v["video_index"]) == int(episode["video_index"][0]))
    first = int(episode["frame_indices"][0, 0])
    frame = tf.io.decode_jpeg(video["frames"][first]).numpy().astype(np.float32) / 127.5 - 1.0
    expected = motion.PhotoWarper(frame, video["landmarks"][first].numpy()).warp(
        episode["target_landmarks"][0].numpy())
    np.testing.assert_allclose(episode["target_warp"][0].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(episode["frames"][0, 0].numpy(), frame, atol=1e-6)


def test_episodes_are_deterministic_per_seed(processed):
    out, _ = processed

    def draws(seed):
        ds = episodes.episode_dataset(out, 2, 2, 64, seed=seed)
        return [np.concatenate([e["video_index"].numpy(), e["frame_indices"].numpy().ravel(),
                                e["target_index"].numpy()]) for e in ds.take(6)]

    first, again, other = draws(5), draws(5), draws(6)
    assert all((a == b).all() for a, b in zip(first, again))
    assert any((a != b).any() for a, b in zip(first, other))


def test_videos_too_short_for_an_episode_are_dropped(processed):
    out, _ = processed
    # Every stored video has 6 frames: K = 6 leaves no target. The manifest shows it, so this
    # fails at once (a repeated empty epoch would otherwise spin forever).
    with pytest.raises(ValueError, match="7 frames an episode needs"):
        episodes.episode_dataset(out, k_shots=6, batch_size=1, resolution=64, repeat=False)
    assert sum(1 for _ in episodes.episode_dataset(out, 5, 1, 64, repeat=False)) == 7


def test_a_resumed_stream_continues_exactly(processed):
    """Restarting from the last consumed (epoch, position) gives the same episodes as never
    stopping — across an epoch boundary (7 videos per epoch, 2 per batch)."""
    out, _ = processed

    def key(e):
        return np.concatenate([e["video_index"].numpy(), e["frame_indices"].numpy().ravel(),
                               e["target_index"].numpy(), e["epoch"].numpy()])

    full = [key(e) for e in episodes.episode_dataset(out, 2, 2, 64, seed=4).take(9)]
    first = list(episodes.episode_dataset(out, 2, 2, 64, seed=4).take(5))
    last = (int(first[-1]["epoch"][-1]), int(first[-1]["position"][-1]))
    assert last[0] == 1  # 10 episodes: the 5th batch is already in the second epoch
    resumed = episodes.episode_dataset(out, 2, 2, 64, seed=4, start=(last[0], last[1] + 1)).take(4)
    got = [key(e) for e in first] + [key(e) for e in resumed]
    assert all((a == b).all() for a, b in zip(full, got)) and len(got) == 9
    np.testing.assert_array_equal(
        first[-1]["frames"].numpy(),
        list(episodes.episode_dataset(out, 2, 2, 64, seed=4).take(5))[-1]["frames"].numpy())


def test_a_clip_that_decodes_only_partly_is_reported(tmp_path):
    """A truncated MJPG AVI opens and decodes its first half: the video is kept with the frames
    that decode, and the file is listed with how many sampled frames were lost."""
    import cv2

    from tfhead.face import landmarks, procedural
    frames, _ = procedural.procedural_clip(procedural.random_identity(2), 20, 192, seed=2)
    path = tmp_path / "person" / "video" / "clip.avi"
    path.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (192, 192))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data_bytes = path.read_bytes()
    path.write_bytes(data_bytes[:len(data_bytes) // 2])
    spec = preprocess.VideoSpec("person/video", "person", ("person/video/clip.avi",))
    options = preprocess.PreprocessOptions(resolution=64, frames_per_video=8, max_missing_fraction=0.9)
    result = preprocess.landmarks_for_video(spec, str(tmp_path), options, landmarks.LandmarkDetector())
    assert [f["path"] for f in result["bad_files"]] == ["person/video/clip.avi"]
    reason = result["bad_files"][0]["reason"]
    assert reason.startswith("Corrupt video (only ") and "of 8 sampled frames decode" in reason
    assert 0 < result["sampled"] < 8 and "skip" not in result


def test_records_are_written_as_tensorflow_writes_them(tmp_path):
    """The Example encoder and the record writer need no TensorFlow; their bytes are TF's own."""
    rng = np.random.default_rng(0)
    jpegs = [tf.io.encode_jpeg(rng.integers(0, 255, (8, 8, 3), np.uint8)).numpy() for _ in range(3)]
    landmarks = rng.normal(0, 50, (3, 68, 2)).astype(np.float32)
    args = (jpegs, landmarks, ["a/c1.mp4", "a/c1.mp4", "a/c2.mp4"], [0, 7, 300],
            [(10.5, -3.25, 99.0)] * 3, 123456789, 0, "a/v", "personné", 256)
    encoded = records.video_example(*args)

    def feature(kind, values):
        return tf.train.Feature(**{kind: {"bytes_list": tf.train.BytesList,
                                          "float_list": tf.train.FloatList,
                                          "int64_list": tf.train.Int64List}[kind](value=values)})

    expected = tf.train.Example(features=tf.train.Features(feature={
        "frames": feature("bytes_list", jpegs),
        "landmarks": feature("float_list", landmarks.reshape(-1)),
        "num_frames": feature("int64_list", [3]),
        "video_index": feature("int64_list", [123456789]),
        "person_index": feature("int64_list", [0]),
        "video_key": feature("bytes_list", [b"a/v"]),
        "person_id": feature("bytes_list", ["personné".encode()]),
        "clip": feature("bytes_list", [b"a/c1.mp4", b"a/c1.mp4", b"a/c2.mp4"]),
        "source_frame": feature("int64_list", [0, 7, 300]),
        "crop_box": feature("float_list", [10.5, -3.25, 99.0] * 3),
        "resolution": feature("int64_list", [256]),
        "landmark_image_version": feature("int64_list", [landmark_image.LANDMARK_IMAGE_VERSION]),
    }))
    assert encoded == expected.SerializeToString(deterministic=True)
    # Negative and empty lists are encoded as protobuf does.
    assert records._int64_list([-1, 2**40]) == feature("int64_list", [-1, 2**40]).SerializeToString()
    assert records._float_list(np.zeros(0)) == feature("float_list", []).SerializeToString()

    ours, theirs = str(tmp_path / "ours.tfrecord"), str(tmp_path / "theirs.tfrecord")
    with records.RecordWriter(ours) as writer:
        writer.write(encoded)
        writer.write(b"")
    with tf.io.TFRecordWriter(theirs) as writer:
        writer.write(encoded)
        writer.write(b"")
    assert open(ours, "rb").read() == open(theirs, "rb").read()
    read = list(tf.data.TFRecordDataset(ours).as_numpy_iterator())
    assert read == [encoded, b""]


def _tiny_shards(directory, persons, videos_per_person, members):
    """Shards of 2-frame 16² videos, `persons` × `videos_per_person` in key (person) order, each
    shard holding the videos `members` lists."""
    jpeg = tf.io.encode_jpeg(tf.zeros((16, 16, 3), tf.uint8)).numpy()
    landmarks = np.tile(np.linspace(2, 14, 68)[:, None], (2, 1, 2)).astype(np.float32)
    for shard, indices in enumerate(members):
        path = os.path.join(directory, records.shard_name(shard, len(members)))
        with records.RecordWriter(path) as writer:
            for i in indices:
                person = i // videos_per_person
                writer.write(records.video_example(
                    [jpeg, jpeg], landmarks, ["c", "c"], [0, 1], [(8, 8, 16)] * 2, i, person,
                    f"p{person:03d}/v{i}", f"p{person:03d}", 16))


def _distinct_persons_per_batch(directory, videos_per_person, batch, buffer, batches=40):
    ds = episodes.episode_dataset(str(directory), 1, batch, 16, seed=3, shuffle_buffer=buffer)
    counts = [len(set((b["video_index"].numpy() // videos_per_person).tolist()))
              for b in ds.take(batches)]
    return float(np.mean(counts))


def test_batches_mix_persons_as_uniform_sampling_would(tmp_path):
    """A batch of 8 from 48 persons × 8 videos, with a shuffle buffer of two shards' worth (as
    1024 videos is at VoxCeleb2 scale): round-robin shards give as many distinct persons per batch
    as uniform sampling; contiguous shards (the old layout: two persons per shard) do not."""
    persons, per_person, per_shard, batch, buffer = 48, 8, 16, 8, 32
    count = persons * per_person
    members = preprocess.shard_members(count, per_shard)
    assert sorted(i for m in members for i in m) == list(range(count))
    assert max(len(m) for m in members) <= per_shard
    assert np.mean([len({i // per_person for i in m}) for m in members]) > 0.8 * per_shard
    assert preprocess.shard_members(count, per_shard) == members  # the same on a rerun
    # Uniform: 8 videos drawn without replacement from 384; expected distinct persons.
    rng = np.random.default_rng(0)
    uniform = np.mean([len(set(rng.choice(count, batch, replace=False) // per_person))
                       for _ in range(4000)])
    mixed, contiguous = tmp_path / "mixed", tmp_path / "contiguous"
    mixed.mkdir()
    contiguous.mkdir()
    _tiny_shards(mixed, persons, per_person, members)
    _tiny_shards(contiguous, persons, per_person,
                 [list(range(i, i + per_shard)) for i in range(0, count, per_shard)])
    assert _distinct_persons_per_batch(mixed, per_person, batch, buffer) >= 0.97 * uniform
    assert _distinct_persons_per_batch(contiguous, per_person, batch, buffer) < 0.9 * uniform
