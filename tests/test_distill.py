"""The real-time student: its preset, distillation (tracks, pool, losses, resuming), export and
the on-device runner."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfhead import config as config_lib
from tfhead import export
from tfhead.animation import reenact
from tfhead.edge import EdgeModel, model_file
from tfhead.face import landmarks, retarget
from tfhead.models import flops
from tfhead.models.person import PersonModel, render_frames
from tfhead.models.student import StudentGenerator
from tfhead.training import distill, feature_networks, objectives

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
TINY = config_lib.get_student_preset("tiny")


def quick_options(**overrides):
    values = dict(student=TINY, steps=40, batch_size=4, pool_size=96, heldout_size=16,
                  clip_frames=16, perceptual="none", log_every=10, eval_every=0,
                  checkpoint_every=10, learning_rate=3e-3)
    values.update(overrides)
    return distill.DistillOptions(**values)


@pytest.fixture(scope="module")
def teacher(tiny_person):
    return tiny_person


@pytest.fixture(scope="module")
def distilled(teacher, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("distill") / "work")
    result = distill.distill(teacher, workdir, quick_options(steps=60))
    return result, workdir


# ------------------------------------------------------------------------------------------------
# The preset and the network.

def test_student_preset_parameter_counts_and_cost_are_pinned():
    edge = config_lib.get_student_preset("edge")
    assert edge.resolution == 256
    student = StudentGenerator(**edge.generator_kwargs())
    student.build()
    assert student.count_params() == 4_244_795
    macs = flops.count_macs(lambda x: student(x), [tf.TensorSpec([1, 256, 256, 3])])
    assert 1.55e9 < macs < 1.60e9, macs   # 1.577 GMAC: "a few GMACs" (paper256's G: ~33)
    tiny = StudentGenerator(**TINY.generator_kwargs())
    tiny.build()
    assert tiny.count_params() == 20_675


@pytest.mark.parametrize("resolution", [64, 128])
def test_student_maps_landmark_images_to_frames_in_range(resolution):
    config = TINY.override({"resolution": resolution})
    student = StudentGenerator(**config.generator_kwargs())
    x = tf.random.uniform([2, resolution, resolution, 3], -1, 1)
    y = student(x)
    assert y.shape == (2, resolution, resolution, 3)
    assert float(tf.reduce_max(tf.abs(y))) <= 1.0
    rebuilt = StudentGenerator.from_config(student.get_config())
    rebuilt.build()
    rebuilt.set_weights(student.get_weights())
    np.testing.assert_array_equal(rebuilt(x), y)


def test_student_config_validates_and_round_trips():
    with pytest.raises(config_lib.ConfigError, match="valid student presets"):
        config_lib.get_student_preset("nope")
    with pytest.raises(config_lib.ConfigError, match="one count"):
        config_lib.get_student_preset("tiny", {"encoder_blocks": "1,1"})
    with pytest.raises(config_lib.ConfigError, match=">= 4"):
        config_lib.get_student_preset("edge", {"resolution": 64})   # 5 levels: 64 → 2²
    with pytest.raises(config_lib.ConfigError, match="Unknown student field"):
        config_lib.get_student_preset("edge", {"width": 3})
    edge = config_lib.get_student_preset("edge", {"channels": "16,32,64,128,256"})
    assert edge.channels == (16, 32, 64, 128, 256)
    assert config_lib.StudentConfig.from_dict(json.loads(json.dumps(edge.to_dict()))) == edge


# ------------------------------------------------------------------------------------------------
# Tracks.

def test_tracks_mix_the_three_kinds_deterministically(teacher):
    reference = teacher.reference_landmarks
    points, kinds = distill.distillation_tracks(reference, 64, 200, seed=3, clip_frames=20,
                                                jitter=0.0)
    again, _ = distill.distillation_tracks(reference, 64, 200, seed=3, clip_frames=20, jitter=0.0)
    other, _ = distill.distillation_tracks(reference, 64, 200, seed=4, clip_frames=20, jitter=0.0)
    assert points.shape == (200, 68, 2) and points.dtype == np.float32
    np.testing.assert_array_equal(points, again)
    assert not np.allclose(points, other)
    assert [int((kinds == k).sum()) for k in range(3)] == [100, 70, 30]
    # Own motion stays around the person's geometry; relative clips start at the person's exact
    # reference (the retargeter maps the driver's first frame onto it); absolute clips do not.
    size = np.ptp(reference, axis=0).max()
    own = points[kinds == 0]
    assert np.abs(own - reference).max(axis=(1, 2)).mean() < 0.3 * size
    relative_starts = points[kinds == 1][::20]
    np.testing.assert_allclose(relative_starts, np.broadcast_to(reference, relative_starts.shape),
                               atol=1e-3)
    absolute_starts = points[kinds == 2][::20]
    assert np.abs(absolute_starts - reference).max() > 1.0
    # Detector-like jitter: per clip, per point and frame, at most `jitter` inter-ocular distances.
    noisy, _ = distill.distillation_tracks(reference, 64, 200, seed=3, clip_frames=20, jitter=0.05)
    # The random draws do not depend on `jitter`, so the two differ by the noise alone.
    ocular = np.linalg.norm(reference[36] - reference[45])
    per_clip = (noisy - points)[kinds == 0].reshape(5, 20, 68, 2).std(axis=(1, 2, 3))
    assert np.all(per_clip < 0.05 * ocular * 1.1) and per_clip.max() > 0.01 * ocular, per_clip
    assert len(np.unique(per_clip.round(6))) == 5           # a level of its own per clip


def test_driving_video_tracks_join_the_relative_share_and_their_end_is_held_out(teacher, driver):
    tracks = distill.video_tracks([driver["silent"]], 64, landmarks.LandmarkDetector())
    assert len(tracks) == 1 and len(tracks[0]) == 27        # 30 frames, 3 blank ones dropped
    train, held_out = distill.split_driver_tracks(tracks)
    assert len(train[0]) + len(held_out[0]) == 27 and len(held_out[0]) == 5
    reference = teacher.reference_landmarks
    points, kinds = distill.distillation_tracks(reference, 64, 100, seed=0, clip_frames=10,
                                                driver_tracks=train, jitter=0.0)
    # Shares 50/35/15: of the 35 relative sets, 17 come from the video in clips of 10 and 7, each
    # retargeted as the runner does: the clip's first frame is the driver's neutral pose.
    clip = points[kinds == 1][-17:-7]
    video = train[0]
    matches = [s for s in range(len(video) - 9)
               if np.allclose(clip, [retarget.Retargeter(reference, video[s])(p)
                                     for p in video[s:s + 10]], atol=1e-3)]
    assert matches, "the video clip is not a retargeted run of the video's landmarks"
    np.testing.assert_allclose(clip[0], reference, atol=1e-3)
    with pytest.raises(distill.DistillError, match="Unreadable video"):
        distill.video_tracks([os.path.join(REPO, "README.md")], 64, landmarks.LandmarkDetector())


# ------------------------------------------------------------------------------------------------
# Distillation.

def test_short_distillation_lowers_the_student_teacher_error(teacher, distilled):
    result, _ = distilled
    model = result.model
    assert model.mode == "student" and model.student.preset == "tiny"
    # Measured here on tracks neither the pool nor the held-out set contains, against the same
    # architecture at the same initialisation (the run's seed) without training.
    points, _ = distill.distillation_tracks(teacher.reference_landmarks, 64, 24, seed=99,
                                            clip_frames=8)
    target = teacher.render(points)
    keras.utils.set_random_seed(0)
    untrained = StudentGenerator(**model.student.generator_kwargs())
    untrained.build()
    before = distill.compare(render_frames(untrained, teacher.model_inputs(points)), target)
    after = distill.compare(model.render(points), target)
    # (The random-weight teacher renders with normalized kernels since spectral normalization
    # took the paper's form, a harder target: 60 steps take the error from 57 to 29 grey levels,
    # 80 steps to 28.7 — the bound was 0.5× for the old teacher.)
    assert after["mean_abs"] < 0.55 * before["mean_abs"], (before, after)
    assert after["psnr"] > before["psnr"] + 5, (before, after)
    assert after["ssim"] > before["ssim"], (before, after)
    # The record holds the same story on the held-out set.
    record = model.record
    assert record["heldout_final"]["mean_abs"] < 0.55 * record["heldout_initial"]["mean_abs"]
    assert set(record["heldout_by_kind"]) == set(distill.TRACK_KINDS)
    assert record["teacher"] == "astronaut" and record["steps"] == 60
    assert record["perceptual"] == "none"


def test_student_checkpoint_round_trips(distilled, tmp_path, driver):
    model = distilled[0].model
    path = model.save(str(tmp_path / "student"))
    loaded = PersonModel.load(path)
    assert loaded.mode == "student" and loaded.student == model.student
    assert loaded.preset == "tiny" and loaded.resolution == 64
    points = distill.distillation_tracks(model.reference_landmarks, 64, 4, 1)[0]
    np.testing.assert_array_equal(loaded.render(points), model.render(points))
    with pytest.raises(distill.DistillError, match="already a student"):
        distill.distill(loaded, str(tmp_path / "w"), quick_options())
    # tfhead-animate's library takes it like any person model.
    report = reenact.reenact(loaded, driver["silent"], str(tmp_path / "a.mp4"),
                             reenact.ReenactOptions(max_frames=6))
    assert report.frames == 6 and os.path.getsize(tmp_path / "a.mp4") > 0


def test_a_warp_guided_teacher_gets_a_warp_guided_student_that_keeps_its_source(
        tiny_guided_person, tmp_path):
    teacher = tiny_guided_person
    workdir = str(tmp_path / "work")
    result = distill.distill(teacher, workdir, quick_options(
        steps=6, pool_size=24, heldout_size=8, clip_frames=8, log_every=0, checkpoint_every=0))
    model = result.model
    assert model.mode == "student" and model.student.warp_guidance and model.warp_guidance
    assert model.generator.warp_guidance and model.source is teacher.source
    with open(os.path.join(workdir, "distill.json")) as f:
        assert json.load(f)["student"]["warp_guidance"] is True
    points = distill.distillation_tracks(teacher.reference_landmarks, 64, 4, seed=5)[0]
    frames = model.render(points)
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8
    # Its second input is the source warped to the same landmarks, as the teacher's.
    images, warps = teacher.model_inputs(points)
    np.testing.assert_array_equal(render_frames(model.generator, [images, warps]), frames)
    assert not np.array_equal(render_frames(model.generator, [images, warps[::-1]]), frames)
    # A person checkpoint like any other: the photo is saved with it.
    loaded = PersonModel.load(model.save(str(tmp_path / "student")))
    assert loaded.warp_guidance and loaded.source is not None
    np.testing.assert_array_equal(loaded.render(points), frames)
    # Its file has the teacher's two inputs; the runner warps the source carried in it.
    result = export.export(model, "fp32", None,
                           export.export_inputs(model, calibration_count=4, parity_count=2))
    runner = EdgeModel(result.content)
    assert runner.warp_guidance and runner.metadata["mode"] == "student"
    assert [tensor["name"] for tensor in runner.metadata["inputs"]] == ["landmark_image", "warp"]
    difference = np.abs(runner.render(points).astype(int) - frames.astype(int))
    assert difference.mean() < 2.0, difference.mean()   # the JPEG of the photo in the warp


def test_interrupted_distillation_resumes_where_it_stopped(teacher, distilled, tmp_path,
                                                           monkeypatch):
    workdir = str(tmp_path / "work")

    def interrupt(step, metrics):
        if step == 25:
            os.kill(os.getpid(), signal.SIGINT)

    stopped = distill.distill(teacher, workdir, quick_options(steps=60), on_step=interrupt)
    assert stopped.model is None and stopped.step == 25 and stopped.interrupted == signal.SIGINT

    def no_teacher(points):
        raise AssertionError("the pool was rendered again")

    monkeypatch.setattr(teacher, "render", no_teacher)
    steps = []
    resumed = distill.distill(teacher, workdir, quick_options(steps=60),
                              on_step=lambda step, m: steps.append(step))
    assert steps == list(range(26, 61))
    # Same batches, same optimizer state: the same student as the uninterrupted run.
    for a, b in zip(resumed.model.generator.get_weights(),
                    distilled[0].model.generator.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(distill.DistillError, match="another teacher or distillation settings"):
        distill.distill(teacher, workdir, quick_options(steps=70))


def test_pool_fill_resumes_at_the_first_missing_frame(teacher, tmp_path):
    points, kinds = distill.distillation_tracks(teacher.reference_landmarks, 64, 40, 0,
                                                clip_frames=10)
    calls = []

    def render(chunk):
        calls.append(len(chunk))
        if sum(calls) == 24:          # once, during the third chunk
            os.kill(os.getpid(), signal.SIGINT)
        return teacher.render(chunk)

    pool = distill.Pool(str(tmp_path / "pool"), points, kinds, 64)
    assert pool.fill(render, chunk=8) == signal.SIGINT
    assert pool.filled == 24
    again = distill.Pool(str(tmp_path / "pool"), points, kinds, 64)
    assert again.filled == 24
    assert again.fill(render, chunk=8) is None and again.filled == 40
    np.testing.assert_array_equal(again.frames, teacher.render(points))
    with pytest.raises(distill.DistillError, match="other tracks"):
        distill.Pool(str(tmp_path / "pool"), points + 5, kinds, 64)


def test_perceptual_loss_needs_the_vgg19_weights_flag(teacher, tmp_path):
    with pytest.raises(feature_networks.FeatureWeightsError, match="--vgg19_weights"):
        distill.distill(teacher, str(tmp_path / "w"), quick_options(perceptual="vgg19"))


def test_perceptual_term_is_computed_on_vgg19_features(teacher, tmp_path):
    features = distill.perceptual_network("random_vgg19", 64, None)
    options = quick_options(perceptual="random_vgg19", weight_perceptual=0.5)
    a = tf.random.uniform([2, 64, 64, 3], -1, 1)
    def terms_of(x, y):
        return objectives.distillation_terms(x, y, options.weight_pixel_l1,
                                             options.weight_perceptual, features)

    terms = terms_of(a, a)
    assert float(tf.reduce_max(terms["loss/perceptual"])) == 0.0
    b = tf.clip_by_value(a + 0.2, -1, 1)
    terms = terms_of(a, b)
    real, fake = features(a), features(b)
    expected = 0.5 * sum(tf.reduce_mean(tf.abs(r - f), axis=[1, 2, 3]) for r, f in zip(real, fake))
    np.testing.assert_allclose(terms["loss/perceptual"], expected, rtol=1e-5)
    np.testing.assert_allclose(terms["loss/pixel_l1"], tf.reduce_mean(tf.abs(a - b), [1, 2, 3]),
                               rtol=1e-6)
    np.testing.assert_allclose(terms["loss/total"], expected + terms["loss/pixel_l1"], rtol=1e-5)


def test_options_are_validated():
    with pytest.raises(distill.DistillError, match="perceptual"):
        quick_options(perceptual="lpips")
    with pytest.raises(distill.DistillError, match="track_mix"):
        quick_options(track_mix=(1.0, -1.0, 0.0))
    with pytest.raises(distill.DistillError, match="relative share"):
        quick_options(track_mix=(1.0, 0.0, 0.0), drivers=("a.mp4",))


# ------------------------------------------------------------------------------------------------
# Export and the runner.

@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_exported_student_passes_the_runner_metadata_check(distilled, tmp_path, mode):
    model = distilled[0].model
    inputs = export.export_inputs(model, calibration_count=16, parity_count=4)
    path = str(tmp_path / f"student.{mode}.tflite")
    result = export.export(model, mode, path, inputs)
    assert (result.undelegated, result.partitions) == ([], 1)
    runner = EdgeModel.load(path, num_threads=2)      # the runner's own metadata check
    meta = runner.metadata
    assert meta["mode"] == "student" and meta["preset"] == "tiny" and meta["resolution"] == 64
    assert meta["quantization"] == mode and meta["person"] == "astronaut"
    np.testing.assert_allclose(runner.reference_landmarks, model.reference_landmarks, atol=1e-3)
    points = distill.distillation_tracks(model.reference_landmarks, 64, 4, 7)[0]
    difference = np.abs(runner.render(points).astype(int) - model.render(points).astype(int))
    assert difference.mean() < (0.6 if mode == "fp32" else 4.0), difference.mean()
    # A student's metadata that disagrees with its graph is refused like any other.
    with open(path, "rb") as f:
        content = f.read()
    bad = model_file.with_metadata(content, dict(meta, resolution=128))
    with pytest.raises(model_file.ModelFileError, match="resolution 128"):
        EdgeModel(bad)


@pytest.mark.slow
def test_distill_export_and_edge_command_lines(teacher, tmp_path, driver):
    teacher_dir = teacher.save(str(tmp_path / "teacher"))
    student_dir = str(tmp_path / "student")
    vgg19 = keras.applications.VGG19(include_top=False, weights=None, input_shape=(64, 64, 3))
    weights = str(tmp_path / "vgg19.weights.h5")
    vgg19.save_weights(weights)
    command = [sys.executable, os.path.join(REPO, "train", "distill.py"), f"--teacher={teacher_dir}",
               f"--out={student_dir}", "--student_preset=tiny", "--steps=30", "--batch_size=4",
               "--pool_size=64", "--heldout_size=8", f"--vgg19_weights={weights}",
               f"--drivers={driver['silent']}", "--log_every=10"]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote the student of 'astronaut' (tiny)" in done.stdout
    assert "distill step 30/30" in done.stderr                     # progress lines
    record = PersonModel.load(student_dir).record
    assert record["perceptual"] == "vgg19" and record["drivers"] == [driver["silent"]]
    # Rerunning the finished command resumes at its end and writes the same student again.
    again = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0 and "Resumed from" in again.stderr
    wrong = subprocess.run(command[:-1] + ["--steps=31"], capture_output=True, text=True,
                           env=ENV, timeout=600)
    assert wrong.returncode != 0 and wrong.stderr.strip().splitlines()[-1].startswith("distill: ")
    assert "Traceback" not in wrong.stderr

    models = str(tmp_path / "models")
    exported = subprocess.run(
        [sys.executable, os.path.join(REPO, "export", "export_tflite.py"),
         f"--person={student_dir}", "--quantization=all", f"--out={models}",
         "--calibration_images=16", "--parity_images=4"],
        capture_output=True, text=True, env=ENV, timeout=600)
    assert exported.returncode == 0, exported.stderr[-3000:]
    files = sorted(os.listdir(models))
    assert files == [f"astronaut.{m}.tflite" for m in sorted(export.QUANTIZATIONS)], files
    out = str(tmp_path / "edge.mp4")
    edge = subprocess.run(
        [sys.executable, "-m", "tfhead_cli.edge", f"--model={os.path.join(models, 'astronaut.int8.tflite')}",
         f"--driver={driver['audio']}", f"--out={out}", "--num_threads=2", "--benchmark"],
        capture_output=True, text=True, env=ENV, timeout=600, cwd=REPO)
    assert edge.returncode == 0, edge.stderr[-3000:]
    assert "(student, int8, tiny 64²)" in edge.stdout and os.path.getsize(out) > 0
