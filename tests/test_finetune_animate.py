"""Fine-tuning, person checkpoints, feed-forward models, retargeting and animation."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from tfhead.animation import driving, reenact
from tfhead.evaluation import viewer
from tfhead.face import landmark_image, landmarks, motion, procedural, retarget, shots
from tfhead.io import video as video_lib
from tfhead.models.person import PersonCheckpointError, PersonModel
from tfhead.training import finetune, meta_learning

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# Retargeting (NumPy only).

def face(identity_seed, **motion):
    return procedural.procedural_landmarks(procedural.random_identity(identity_seed), 256, **motion)


def test_the_reference_frame_maps_to_the_source_exactly():
    source, driver = face(1), face(2)
    np.testing.assert_allclose(retarget.Retargeter(source, driver)(driver), source, atol=1e-3)


def test_relative_motion_keeps_the_source_geometry_not_the_drivers():
    source, driver_neutral = face(1), face(7)
    src, drv = retarget.face_proportions(source), retarget.face_proportions(driver_neutral)
    assert abs(src["jaw_width"] - drv["jaw_width"]) > 0.05  # the two faces differ
    retargeter = retarget.Retargeter(source, driver_neutral)
    for change in (dict(mouth_open=0.6), dict(yaw=0.2), dict(roll=0.15, scale=1.1)):
        driven = face(7, **change)
        out = retarget.face_proportions(retargeter(driven))
        for key in ("jaw_width", "eye_distance"):
            assert abs(out[key] - src[key]) < 0.35 * abs(drv[key] - src[key]) + 0.01, (change, key)


def test_relative_motion_carries_expression_and_pose():
    source, driver = face(1), face(7)
    retargeter = retarget.Retargeter(source, driver)

    def mouth_gap(p):
        return np.linalg.norm(p[66] - p[62])

    opened = retargeter(face(7, mouth_open=0.8))
    assert mouth_gap(opened) > mouth_gap(source) + 3
    # A 0.2 rad roll of the driver rolls the source's rigid points by the same angle.
    rolled = retargeter(face(7, roll=0.2))
    scale, rotation, _ = retarget.fit_similarity(source[retarget.RIGID_POINTS],
                                                 rolled[retarget.RIGID_POINTS])
    driver_rotation = retarget.fit_similarity(driver[retarget.RIGID_POINTS],
                                              face(7, roll=0.2)[retarget.RIGID_POINTS])[1]
    assert np.arctan2(rotation[1, 0], rotation[0, 0]) == pytest.approx(
        np.arctan2(driver_rotation[1, 0], driver_rotation[0, 0]), abs=0.01)


def test_motion_mapper_holds_the_last_landmarks_when_the_face_is_lost():
    source, driver = face(1), face(7)
    mapper = driving.MotionMapper("relative", source, 256)
    np.testing.assert_array_equal(mapper.landmarks(None), source)  # before any face: at rest
    first = mapper.landmarks(driver)
    np.testing.assert_array_equal(mapper.landmarks(None), first)
    assert (mapper.at_rest, mapper.held) == (1, 1)
    absolute = driving.MotionMapper("absolute", source, 256)
    np.testing.assert_allclose(absolute.landmarks(driver), driver)


# ---------------------------------------------------------------------------------------------
# A tiny meta-learned model on generated records (`meta_dir`, tests/conftest.py).

@pytest.fixture(scope="module")
def person_frames(astronaut):
    return shots.person_frames(astronaut, 64, landmarks.LandmarkDetector())


def variables(model):
    return [v.numpy().copy() for v in model.variables]


def test_a_finetuning_step_changes_g_and_psi_and_never_e_or_p(meta_dir, person_frames):
    meta = meta_learning.load_meta_model(meta_dir)
    embedder_before = variables(meta.embedder)
    projection_before = variables(meta.generator.projection)
    person = finetune.finetune(meta, person_frames, "astronaut", steps=0)
    start = variables(person.generator)
    psi_start = person.generator.psi.numpy().copy()
    person = finetune.finetune(meta, person_frames, "astronaut", steps=2)
    after = variables(person.generator)
    trainable = {id(v) for v in person.generator.trainable_variables}
    moved = [not np.array_equal(a, b) for a, b, v in zip(start, after, person.generator.variables)
             if id(v) in trainable]
    assert all(moved), f"{moved.count(False)} trainable variables did not move"
    assert not np.array_equal(psi_start, person.generator.psi.numpy())
    for a, b in zip(embedder_before, variables(meta.embedder)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(projection_before, variables(meta.generator.projection)):
        np.testing.assert_array_equal(a, b)
    assert not hasattr(person.generator.generator, "projection") or \
        person.generator.generator.projection is None
    assert person.record["steps"] == 2 and person.record["history"]


def test_one_finetuning_serves_person_after_person_as_fresh_runs_would(meta_dir, person_frames,
                                                                      astronaut):
    """`FineTuning` traces its step once and re-initialises everything per person: the third
    call equals a fresh `finetune`, and a returned model is not overwritten by later calls."""
    meta = meta_learning.load_meta_model(meta_dir)
    fresh = variables(finetune.finetune(meta, person_frames, "astronaut", steps=2).generator)
    tuning = finetune.FineTuning(meta)
    first = tuning(person_frames, "astronaut", steps=2)
    mirrored = shots.person_frames([("mirrored.png", astronaut[0][1][:, ::-1].copy())], 64,
                                   landmarks.LandmarkDetector())
    other = variables(tuning(mirrored, "mirrored", steps=2).generator)
    third = tuning(person_frames, "astronaut", steps=2)
    assert tuning.tuner.step.experimental_get_tracing_count() == 1
    assert len(fresh) > 30
    assert any(not np.allclose(a, b) for a, b in zip(fresh, other))
    for a, b, c in zip(fresh, variables(first.generator), variables(third.generator)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)
    assert first.generator is not third.generator


def test_feed_forward_psi_is_p_of_the_mean_embedding(meta_dir, person_frames):
    meta = meta_learning.load_meta_model(meta_dir)
    model = finetune.feed_forward(meta, person_frames, "astronaut")
    expected = meta.generator.project(finetune.embed(meta, person_frames)[None])[0]
    np.testing.assert_allclose(model.generator.psi.numpy(), expected, rtol=1e-5, atol=1e-6)
    drawn = landmark_image.to_model_range(person_frames.landmark_images)
    np.testing.assert_allclose(  # the person generator renders as the meta G with that ψ
        model.generator(drawn), meta.generator.render(drawn, expected[None]), atol=1e-5)


def test_person_checkpoint_loads_alone_and_is_far_smaller(meta_dir, person_frames, tmp_path):
    meta = meta_learning.load_meta_model(meta_dir)
    tuned = finetune.finetune(meta, person_frames, "astronaut", steps=2)
    ff = finetune.feed_forward(meta, person_frames, "astronaut")
    path = tuned.save(str(tmp_path / "person"))
    points = person_frames.landmarks
    # Loads in a fresh process that never sees the meta checkpoint.
    code = ("import sys, numpy as np; from tfhead.models.person import PersonModel; "
            "m = PersonModel.load(sys.argv[1]); print(m.name, m.mode, m.resolution)")
    result = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.stdout.split() == ["astronaut", "fine-tuned", "64"], result.stderr[-2000:]
    loaded = PersonModel.load(path)
    np.testing.assert_array_equal(loaded.render(points), tuned.render(points))
    np.testing.assert_allclose(loaded.reference_landmarks, person_frames.landmarks[0], atol=1e-3)
    # The source photo comes back as it was (PNG, lossless), with its landmarks.
    np.testing.assert_array_equal(loaded.source.photo, person_frames.source.photo)
    np.testing.assert_allclose(loaded.source.photo_landmarks,
                               person_frames.source.photo_landmarks, atol=1e-3)
    # The generator does not carry E, P, D or W (the photo aside, which is the user's own).
    weights = os.path.getsize(os.path.join(path, "generator.weights.h5"))
    meta_size = sum(os.path.getsize(p) for p in tf.io.gfile.glob(meta.checkpoint + ".*"))
    assert weights * 4 < meta_size, (weights, meta_size)
    # Fine-tuning changed the output.
    assert np.abs(ff.render(points).astype(int) - tuned.render(points).astype(int)).mean() > 0.5


def test_broken_or_missing_checkpoints_fail_clearly(tmp_path, meta_dir):
    with pytest.raises(PersonCheckpointError, match="No person checkpoint"):
        PersonModel.load(str(tmp_path / "nope"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "person.json").write_text("{}")
    with pytest.raises(PersonCheckpointError, match="generator.weights.h5 is missing"):
        PersonModel.load(str(tmp_path / "half"))
    with pytest.raises(meta_learning.MetaCheckpointError, match="No meta-learning checkpoint"):
        meta_learning.load_meta_model(str(tmp_path))


def test_a_photo_without_a_face_is_named(meta_dir):
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(shots.PersonInputError, match="wall.png: No face found"):
        shots.person_frames([("wall.png", blank)], 64, landmarks.LandmarkDetector())


# ---------------------------------------------------------------------------------------------
# Animation.

@pytest.fixture(scope="module")
def person_model(meta_dir, person_frames):
    return finetune.feed_forward(meta_learning.load_meta_model(meta_dir), person_frames, "astronaut")


def test_animation_writes_a_readable_h264_with_audio_and_side_by_side(person_model, driver,
                                                                      tmp_path):
    out, side = str(tmp_path / "out.mp4"), str(tmp_path / "sbs.mp4")
    report = reenact.reenact(person_model, driver["audio"], out,
                             reenact.ReenactOptions(side_by_side=side, batch_size=4))
    assert report.frames == 30 and report.audio
    assert report.frames_held >= 3  # the blank frames held the last landmarks
    info = video_lib.probe(out)
    # Pasted back into the 512² photo; the side-by-side is driver (scaled) | result.
    assert (info.frame_count, info.width, info.height) == (30, 512, 512)
    assert report.frame_size == (512, 512)
    assert info.fps == pytest.approx(25.0)
    assert video_lib.has_audio(out)
    assert (video_lib.probe(side).width, video_lib.probe(side).height) == (1024, 512)
    codec = subprocess.run([video_lib.ffmpeg_executable(), "-hide_banner", "-i", out],
                           capture_output=True, text=True).stderr
    assert "Video: h264" in codec
    assert set(report.median_ms) == set(reenact.STAGES)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_a_silent_driver_gives_a_silent_video_in_absolute_mode(person_model, driver, tmp_path):
    out = str(tmp_path / "out.mp4")
    report = reenact.reenact(person_model, driver["silent"], out,
                             reenact.ReenactOptions(motion="absolute", max_frames=10))
    assert report.frames == 10 and not report.audio and not video_lib.has_audio(out)


def test_without_paste_back_the_crop_is_written(person_model, driver, tmp_path):
    out, side = str(tmp_path / "out.mp4"), str(tmp_path / "sbs.mp4")
    report = reenact.reenact(person_model, driver["silent"], out, reenact.ReenactOptions(
        max_frames=4, paste_back=False, side_by_side=side))
    assert report.frame_size == (64, 64)
    assert (video_lib.probe(out).width, video_lib.probe(out).height) == (64, 64)
    assert (video_lib.probe(side).width, video_lib.probe(side).height) == (192, 64)


def test_a_warp_guided_person_finetunes_renders_and_reloads(guided_meta_dir, person_frames,
                                                            tmp_path):
    meta = meta_learning.load_meta_model(guided_meta_dir)
    assert meta.generator.warp_guidance
    model = finetune.finetune(meta, person_frames, "astronaut", steps=2)
    assert model.warp_guidance and model.record["augment"]
    track = motion.motion_track(person_frames.landmarks[0], 3, seed=1)
    drawn, warps = model.model_inputs(track)
    np.testing.assert_array_equal(warps, person_frames.source.warp(track))
    frames = model.render(track)
    assert frames.shape == (3, 64, 64, 3) and frames.dtype == np.uint8
    loaded = PersonModel.load(model.save(str(tmp_path / "person")))
    assert loaded.warp_guidance
    np.testing.assert_array_equal(loaded.render(track), frames)


def test_augmented_pairs_draw_fresh_poses_and_warp_from_another(person_frames):
    pairs = finetune.TrainingPairs(person_frames, 64, warp_guidance=True, augment=True, seed=0)
    batches = [pairs.batch(4) for _ in range(3)]
    targets = np.concatenate([b[0].numpy() for b in batches])
    warps = np.concatenate([b[2].numpy() for b in batches])
    shot = landmark_image.to_model_range(person_frames.frames[0])
    moved = [not np.allclose(t, shot) for t in targets]
    assert 0 < sum(moved) < len(moved)   # some targets are the photo, some a moved pose
    assert all(not np.allclose(w, t) for w, t in zip(warps, targets))  # never the target itself
    plain = finetune.TrainingPairs(person_frames, 64, warp_guidance=True, augment=False).batch(1)
    np.testing.assert_array_equal(plain[0].numpy()[0], shot)


def test_the_pairs_turn_as_far_as_max_yaw(person_frames):
    """`train.finetune_max_yaw` reaches the pairs' motion tracks: the nose's widest sideways
    offset from the eyes' middle (the turn) grows with it and is zero without turns."""
    def widest_turn(max_yaw):
        track = finetune.TrainingPairs(person_frames, 64, warp_guidance=True, augment=True,
                                       max_yaw=max_yaw).tracks[0]
        return np.abs([viewer.turn_ratio(p) - viewer.turn_ratio(track[0]) for p in track]).max()

    none, default, wide = widest_turn(0.0), widest_turn(motion.MAX_YAW), widest_turn(0.5)
    assert none < 0.02 < default < wide


def test_a_corrupt_driving_video_fails_clearly_and_writes_nothing(person_model, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(driving.DrivingError, match="Unreadable video"):
        reenact.reenact(person_model, str(bad), str(tmp_path / "out.mp4"))
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_cli_finetune_then_animate(meta_dir, driver, tmp_path):
    """train/finetune.py → person checkpoint → tfhead-animate; and their one-line errors."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    photo = str(tmp_path / "astronaut.png")
    cv2.imwrite(photo, cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    person = str(tmp_path / "person")
    run = subprocess.run([sys.executable, os.path.join(REPO, "train/finetune.py"),
                          f"--meta={meta_dir}", f"--photos={photo}", f"--out={person}",
                          "--steps=3"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fine-tuned person model 'astronaut'" in run.stdout
    animate_cli = [sys.executable, "-m", "tfhead_cli.animate"]
    out = str(tmp_path / "out.mp4")
    run = subprocess.run(animate_cli + [f"--person={person}", f"--driver={driver['audio']}",
                                        f"--out={out}", "--max_frames=8"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "8 frames" in run.stdout and video_lib.probe(out).frame_count == 8
    # Errors: a photo without a face, a corrupt driver, a missing checkpoint.
    wall = str(tmp_path / "wall.png")
    cv2.imwrite(wall, np.full((200, 200, 3), 90, np.uint8))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 1000)
    for command, message in (
            ([sys.executable, os.path.join(REPO, "train/finetune.py"), f"--meta={meta_dir}",
              f"--photos={wall}", f"--out={tmp_path / 'p2'}", "--steps=1"], "No face found"),
            (animate_cli + [f"--person={person}", f"--driver={bad}", f"--out={out}"],
             "Unreadable video"),
            (animate_cli + [f"--person={tmp_path / 'missing'}", f"--driver={driver['audio']}",
                            f"--out={out}"], "No person checkpoint")):
        run = subprocess.run(command, capture_output=True, text=True, env=env)
        assert run.returncode != 0 and message in run.stderr, run.stderr[-2000:]
        assert "Traceback" not in run.stderr
