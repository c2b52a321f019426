"""The person's source photo (`tfhead.face.source`): crop, warp, paste-back, on disk."""

import cv2
import numpy as np
import pytest

from tfhead.face import crop, landmarks, motion, shots
from tfhead.face.source import MAX_PHOTO_SIDE, PersonSource, model_inputs


@pytest.fixture(scope="module")
def portrait(astronaut):
    image = astronaut[0][1]
    return image, landmarks.LandmarkDetector().detect(image).landmarks


def test_the_source_crop_is_the_fine_tuning_crop(portrait, astronaut):
    image, points = portrait
    source = PersonSource(image, points, 64)
    frames = shots.person_frames(astronaut, 64, landmarks.LandmarkDetector())
    np.testing.assert_array_equal(source.crop, frames.frames[0])
    np.testing.assert_allclose(source.landmarks, frames.landmarks[0], atol=1e-4)
    np.testing.assert_array_equal(frames.source.photo, image)


def test_the_warp_moves_the_landmarks_and_is_the_crop_at_rest(portrait):
    image, points = portrait
    source = PersonSource(image, points, 128)
    np.testing.assert_array_equal(source.warp(source.landmarks), source.crop)
    track = motion.motion_track(source.landmarks, 5, seed=2)
    warped = source.warp(track)
    assert warped.shape == (5, 128, 128, 3) and warped.dtype == np.uint8
    # The warped crop shows the face where the target puts it: the mouth corner's pixel moved.
    target = track[3]
    moved = np.linalg.norm(target - source.landmarks, axis=1)
    assert moved.max() > 1.0
    drawn, warps = model_inputs(track, 128, source)
    np.testing.assert_array_equal(warps, warped)
    assert len(model_inputs(track, 128, None)) == 1 and drawn.shape == warps.shape


def test_large_photos_are_kept_downscaled_with_their_landmarks(portrait):
    image, points = portrait
    big = cv2.resize(image, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    source = PersonSource(big, points * (3000 / 512), 64)
    assert max(source.photo.shape[:2]) == MAX_PHOTO_SIDE
    np.testing.assert_allclose(source.photo_landmarks, points * (MAX_PHOTO_SIDE / 512), rtol=1e-5)
    box = crop.crop_box(source.photo_landmarks)
    assert box.size == pytest.approx(crop.crop_box(points).size * MAX_PHOTO_SIDE / 512, rel=1e-5)


def test_save_and_load_round_trip_and_damage_is_named(portrait, tmp_path):
    image, points = portrait
    source = PersonSource(image, points, 64)
    record = source.save(str(tmp_path))
    loaded = PersonSource.load(str(tmp_path), record, 64)
    np.testing.assert_array_equal(loaded.photo, source.photo)
    np.testing.assert_allclose(loaded.photo_landmarks, source.photo_landmarks, atol=1e-3)
    (tmp_path / "photo.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="photo.png is missing or not a readable image"):
        PersonSource.load(str(tmp_path), record, 64)
    with pytest.raises(ValueError, match="landmarks"):
        PersonSource.load(str(tmp_path), {"file": "photo.png"}, 64)
    with pytest.raises(ValueError, match="RGB uint8"):
        PersonSource(image.astype(np.float32), points, 64)


def test_openings_a_warp_cannot_show_are_painted_in(portrait):
    image, points = portrait
    source = PersonSource(image, points, 128)
    crop, rest = source.crop, source.landmarks
    # At rest nothing is painted.
    np.testing.assert_array_equal(motion.paint_openings(crop, rest, rest), crop)
    # Mouth opened: the gap below the photo's inner lips turns dark; the rest of the face stays.
    opened = rest.copy()
    opened[[65, 66, 67], 1] += 6
    painted = motion.paint_mouth_gap(source.warp(rest), opened, rest)
    gap = np.round(opened[[65, 66, 67]].mean(0) - [0, 3]).astype(int)
    assert painted[gap[1], gap[0]].mean() < crop[gap[1], gap[0]].mean() - 20
    np.testing.assert_array_equal(painted[:40], crop[:40])
    # Eyes shut: where the open eye was (iris, white, lashes) is lid skin now, with a dark lash
    # line where the lids meet.
    shut = rest.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        shut[upper] = shut[lower] - [0, 0.3]
    warped = PersonSource(image, points, 128)._warper.warp(shut)
    covered = motion.paint_closing_eyes(warped, shut, rest)
    for eye in (slice(36, 42), slice(42, 48)):
        width = np.linalg.norm(rest[eye][3] - rest[eye][0])
        brow = np.round(rest[eye][1:3].mean(0) - [0, 0.6 * width]).astype(int)
        skin = covered[brow[1] - 1:brow[1] + 2, brow[0] - 1:brow[0] + 2].reshape(-1, 3).mean(0)
        # The upper lid's rest position, half-way to the margin: the open eye showed there.
        lid = np.round((rest[eye][1:3].mean(0) + shut[eye][4:6].mean(0)) / 2).astype(int)
        before = warped[lid[1], lid[0]].astype(float)
        after = covered[lid[1], lid[0]].astype(float)
        assert np.abs(after - skin).mean() < 0.5 * np.abs(before - skin).mean()
        # The lash line, at the middle of the shut lids, is darker than the lid above it.
        margin = np.round(shut[eye][[1, 2, 4, 5]].mean(0)).astype(int)
        assert covered[margin[1], margin[0]].mean() < after.mean() - 30
    assert np.array_equal(covered[100:], warped[100:])  # nothing below the eyes changed
    # A half-closed eye gets part of the painting; an eye at rest none.
    half = rest.copy()
    for upper, lower in ((43, 47), (44, 46)):
        half[upper] += 0.5 * (half[lower] - half[upper])
    partly = motion.paint_closing_eyes(warped, half, rest)
    right = slice(int(rest[42:48, 1].min()) - 4, int(rest[42:48, 1].max()) + 4)
    left_eye = slice(int(rest[36:42, 0].min()) - 6, int(rest[36:42, 0].max()) + 6)
    assert np.array_equal(partly[:, left_eye], warped[:, left_eye])
    assert not np.array_equal(partly[right], warped[right])


def test_the_opening_mask_marks_what_the_warp_cannot_show(portrait):
    image, points = portrait
    source = PersonSource(image, points, 128)
    rest = source.landmarks
    assert not motion.opening_mask((128, 128), rest, rest).any()  # at rest: nothing
    moved = rest.copy()
    moved[[65, 66, 67], 1] += 6                                   # the mouth opens
    for upper, lower in ((43, 47), (44, 46)):                     # one eye closes
        moved[upper] = moved[lower] - [0, 0.3]
    mask = motion.opening_mask((128, 128), moved, rest)
    assert mask.dtype == np.float32 and 0.0 <= mask.min() and mask.max() <= 1.0
    gap = np.round(moved[[65, 66, 67]].mean(0) - [0, 3]).astype(int)
    assert mask[gap[1], gap[0]] > 0.9
    shut = np.round(rest[42:48].mean(0)).astype(int)
    assert mask[shut[1], shut[0]] > 0.9
    lip = np.round(moved[57]).astype(int)                         # the lower lip, stretched
    assert mask[lip[1], lip[0]] > 0.9
    still = np.round(rest[36:42].mean(0)).astype(int)             # the other eye stays open
    assert mask[still[1], still[0]] == 0.0
    assert mask[:int(rest[17:27, 1].min()) - 4].max() == 0.0       # nothing above the brows
