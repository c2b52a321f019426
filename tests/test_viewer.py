"""The viewer's measurements (tfhead.evaluation.viewer) on known geometry, and the one-shot benchmark's
talking schedule and warp baseline (benchmarks/one_shot.py)."""

import importlib.util
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tfhead.evaluation import viewer
from tfhead.face import procedural

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def meter():
    return viewer.ViewerMeter()


@pytest.fixture(scope="module")
def one_shot():
    spec = importlib.util.spec_from_file_location(
        "one_shot_benchmark", os.path.join(REPO, "benchmarks", "one_shot.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def talking_mouth():
    """A procedural face (128², so the meter upscales it) whose mouth opens and closes."""
    identity = procedural.random_identity(10_000)
    opening = np.array([0.0, 0.3, 0.8, 1.2, 0.6, 0.1, 1.0, 0.4])
    points = [procedural.procedural_landmarks(identity, 128, mouth_open=m) for m in opening]
    frames = np.stack([procedural.render_face(identity, p, 128, seed=i)
                       for i, p in enumerate(points)])
    return frames, opening


def test_geometry_of_the_three_series():
    identity = procedural.random_identity(3)
    closed = procedural.procedural_landmarks(identity, 256, mouth_open=0.0)
    wide = procedural.procedural_landmarks(identity, 256, mouth_open=1.0)
    shut = procedural.procedural_landmarks(identity, 256, eyes_open=0.0)
    tilted = procedural.procedural_landmarks(identity, 256, roll=np.deg2rad(10))
    assert viewer.mouth_ratio(wide) > viewer.mouth_ratio(closed) + 0.15
    assert viewer.eye_aspect_ratio(shut) < 0.3 * viewer.eye_aspect_ratio(closed)
    assert viewer.roll_degrees(closed) == pytest.approx(0.0, abs=1e-3)
    # Image y points down: a clockwise-looking tilt of 10° reads as +10.
    assert viewer.roll_degrees(tilted) == pytest.approx(10.0, abs=1e-3)
    square = np.zeros((68, 2))
    square[36:42] = [[0, 0], [1, -1], [2, -1], [3, 0], [2, 1], [1, 1]]
    square[42:48] = square[36:42] + [10, 0]
    assert viewer.eye_aspect_ratio(square) == pytest.approx(4 / 6)


def test_turn_is_signed_and_grows_with_the_head_turn():
    identity = procedural.random_identity(3)
    yaws = np.deg2rad([-30, -15, 0, 15, 30])
    turns = [viewer.turn_ratio(procedural.procedural_landmarks(identity, 256, yaw=y))
             for y in yaws]
    assert turns[2] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(turns) > 0.05)                         # the nose goes with the turn
    assert turns[-1] == pytest.approx(-turns[0], abs=1e-6) and 0.3 < turns[-1] < 0.8
    # Roll and size do not change it.
    rolled = procedural.procedural_landmarks(identity, 512, yaw=yaws[-1], roll=np.deg2rad(12))
    assert viewer.turn_ratio(rolled) == pytest.approx(turns[-1], abs=1e-6)


@pytest.mark.parametrize("seed", [1, 3, 7])
def test_a_turned_procedural_head_keeps_its_outline_outside_its_eyes(seed):
    """The jaw line is the turned head's silhouette (procedural._HEAD_DEPTH), not fixed points:
    the outline stays outside both eyes' outer corners up to a 35° turn (turning fixed points
    pulled the far side's outline inside the far eye from about 30°)."""
    identity = procedural.random_identity(seed)
    for degrees in (20, 30, 35):
        for sign in (-1, 1):
            p = procedural.procedural_landmarks(identity, 256, yaw=sign * np.deg2rad(degrees))
            left, right = p[0:2, 0].max(), p[15:17, 0].min()   # the outline at eye height
            assert left < p[36, 0] and right > p[45, 0]
    frontal = procedural.procedural_landmarks(identity, 256)
    np.testing.assert_allclose(frontal[:17, 0] - 128, -(frontal[16::-1, 0] - 128), atol=1e-3)


def test_pearson_is_nan_when_it_cannot_be_measured():
    assert viewer.pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert viewer.pearson([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(viewer.pearson([1, 2], [1, 2]))                      # fewer than 3 frames
    assert math.isnan(viewer.pearson([1, 2, np.nan, np.nan], [1, 2, 3, 4]))  # 2 paired frames
    assert math.isnan(viewer.pearson([5, 5, 5, 5], [1, 2, 3, 4]))          # zero variance


def test_upscale_only_small_frames():
    small, scale = viewer.upscale(np.zeros((128, 96, 3), np.uint8))
    assert scale == pytest.approx(256 / 96) and min(small.shape[:2]) >= 256
    big = np.zeros((512, 512, 3), np.uint8)
    same, scale = viewer.upscale(big)
    assert same is big and scale == 1.0


def test_identical_mouth_series_correlate_perfectly(meter, talking_mouth):
    frames, opening = talking_mouth
    measured = meter.measure(frames)
    assert measured.found.all() and (measured.scale == 2.0).all()
    # Landmarks come back in the 128² frame's pixels; the mouth series follows the opening.
    assert measured.landmarks.max() < 128
    assert viewer.pearson(measured.mouth, opening) > 0.95
    numbers = meter.compare(frames[0], frames, frames)
    assert numbers["face_found"] == 1.0 and numbers["same_person"] == 1.0
    assert numbers["mouth_r"] == pytest.approx(1.0)


def test_the_astronaut_is_found_and_is_herself(meter):
    import skimage.data

    photo = skimage.data.astronaut()
    still = np.repeat(photo[None], 3, axis=0)
    numbers = meter.compare(photo, still, still)
    assert numbers["face_found"] == 1.0 and numbers["same_person"] == 1.0
    # Identical frames have no variance: no correlation can be claimed.
    assert all(math.isnan(numbers[k]) for k in ("mouth_r", "eyes_r", "roll_r"))
    assert numbers["face_detail"] == pytest.approx(1.0)
    table = viewer.markdown_table([("still", numbers)])
    assert table.splitlines()[0] == ("| system | face found | same person | mouth r | eyes r | "
                                     "roll r | turn r | face detail |")
    assert table.splitlines()[2] == "| still | 1.00 | 1.00 | n/a | n/a | n/a | n/a | 1.00 |"


def test_face_detail_sees_a_face_rendered_small_and_shown_large(meter):
    import skimage.data

    photo = skimage.data.astronaut()
    details = {}
    for side in (512, 256, 128):  # the photo rendered at side², shown at 512²
        small = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
        shown = cv2.resize(small, (512, 512), interpolation=cv2.INTER_LINEAR)
        details[side] = meter.compare(photo, shown[None], shown[None])["face_detail"]
    assert details[512] == pytest.approx(1.0, abs=0.01)
    assert details[512] > details[256] + 0.1 > details[128] + 0.2, details
    # A grid texture (2-px blocks) on the face reads as more "detail" than the photo has.
    grid = photo.astype(np.int16) + 12 * ((np.indices((512, 512)).sum(0) // 2) % 2)[..., None]
    grid = np.clip(grid, 0, 255).astype(np.uint8)
    assert meter.compare(photo, grid[None], grid[None])["face_detail"] > 1.2


def test_noise_has_no_face_and_is_nobody(meter, talking_mouth):
    noise = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    measured = meter.measure(noise)
    assert not measured.found.any() and np.isnan(measured.mouth).all()
    frames, _ = talking_mouth
    numbers = meter.compare(frames[0], frames[:3], noise)
    assert numbers["face_found"] == 0.0 and numbers["same_person"] == 0.0
    assert math.isnan(numbers["mouth_r"])


def test_a_source_without_a_face_is_refused(meter):
    from tfhead.face import landmarks

    blank = np.full((256, 256, 3), 128, np.uint8)
    with pytest.raises(landmarks.FaceNotFoundError):
        meter.compare(blank, blank[None], blank[None])


def test_the_talking_schedule_talks_blinks_and_moves(one_shot):
    schedule = one_shot.talking_schedule(64, seed=0)
    summary = schedule.summary()
    assert summary["openings_per_second"] >= 2.5 and 2 <= summary["blinks"] <= 3
    assert np.ptp(schedule.roll) >= 14 and np.ptp(schedule.yaw) >= 1.5
    # It starts at rest: the first frame is a fair neutral reference for relative motion.
    assert schedule.mouth[0] == 0 and schedule.closure[0] == 0 and schedule.roll[0] == 0


def test_the_turning_driver_turns_further_than_the_others(meter, one_shot):
    schedule = one_shot.talking_schedule(16, seed=3)
    frames, truth = one_shot.procedural_driver(10_000, schedule, yaw_amount=one_shot.TURN_YAW)
    _, usual = one_shot.procedural_driver(10_000, schedule)
    turn = np.array([viewer.turn_ratio(p) for p in truth])
    assert np.ptp(turn) > 1.7 * np.ptp([viewer.turn_ratio(p) for p in usual])
    measured = meter.measure(frames)
    assert measured.found.mean() >= 0.75
    # dlib reads the turn the clip was made with, if roughly (r ≈ 0.85 over 64 frames: the
    # procedural nose is a line, and its tip is where dlib is least sure).
    assert viewer.pearson(np.where(measured.found, turn, np.nan), measured.turn) > 0.6


def test_the_warp_baseline_keeps_the_face(meter, one_shot):
    import skimage.data

    photo = skimage.data.astronaut()
    source = meter.measure([photo])
    schedule = one_shot.talking_schedule(8, seed=1)
    frames, truth = one_shot.warp_photo_clip(photo, source.landmarks[0], schedule)
    clip = one_shot.DriverClip("self:astronaut", "astronaut", "test", "", 25.0, frames, truth,
                               meter.measure(frames))
    output = one_shot.warp_system(photo, source.landmarks[0].astype(np.float32), clip)
    assert output.shape == (8,) + photo.shape
    # The first driver frame is the reference: the output starts as the photo itself.
    assert np.abs(output[0].astype(int) - photo).mean() < 1.0
    comparison = meter.compare_measures(source, clip.measures, meter.measure(output))
    assert comparison.face_found == 1.0 and comparison.same_person == 1.0


def test_the_viewer_needs_no_tensorflow():
    result = subprocess.run([sys.executable, os.path.join(REPO, "tests", "no_tensorflow.py"),
                             "--import", "tfhead.evaluation.viewer"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
