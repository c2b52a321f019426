"""Paste-back of generated crops into the source photo (tfhead.face.paste)."""

import os

import cv2
import numpy as np
import pytest

from tfhead.face import crop as crop_lib
from tfhead.face import motion as motion_lib
from tfhead.face import paste, shots

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def portrait():
    """(astronaut RGB uint8 [512, 512, 3], its dlib landmarks [68, 2] in photo pixels)."""
    import skimage.data

    from tfhead.face import landmarks

    image = skimage.data.astronaut()
    return image, landmarks.LandmarkDetector().detect(image).landmarks


def _moved(points, degrees=0.0, scale=1.0, shift=(0.0, 0.0)):
    """`points` moved by a similarity about their rigid centre (crop pixels), and its 2×3."""
    centre = points[paste.retarget.RIGID_POINTS].mean(0).astype(np.float64)
    theta = np.deg2rad(degrees)
    rotation = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    translation = centre + np.asarray(shift) - rotation @ centre
    matrix = np.hstack([rotation, translation[:, None]])
    return (points.astype(np.float64) @ rotation.T + translation).astype(np.float32), matrix


def test_the_crop_is_the_person_crop(portrait):
    image, points = portrait
    back = paste.PasteBack(image, points, 128)
    crop_image, local, _, _ = shots._crop_one(image, points, 128)
    np.testing.assert_array_equal(back.transform.crop_image(image), crop_image)
    np.testing.assert_array_equal(back.reference_landmarks, local)


@pytest.mark.parametrize("resolution", [128, 256])
@pytest.mark.parametrize("background,background_motion",
                         [("warp", 1.0), ("rigid", 1.0), ("rigid", 0.0)])
def test_zero_motion_leaves_the_photo_exact_outside_the_mask(portrait, resolution, background,
                                                             background_motion):
    image, points = portrait
    back = paste.PasteBack(image, points, resolution, background=background,
                           background_motion=background_motion)
    own = back.transform.crop_image(image)
    grey = np.full((resolution, resolution, 3), 128, np.uint8)
    for generated in (own, grey):
        frame, mask = back.compose(generated, back.reference_landmarks, return_mask=True)
        outside = mask == 0
        assert outside.mean() > 0.8
        np.testing.assert_array_equal(frame[outside], image[outside])
    # The grey square really is pasted inside.
    assert np.abs(frame[mask > 0.99].astype(int) - 128).mean() < 40
    # An expression-only change (rigid points fixed: mouth opened) moves nothing but the face:
    # exactly so with the rigid background, and the warp moves no pixel far from the face.
    target = back.reference_landmarks.copy()
    target[57:60, 1] += 4
    target[8, 1] += 4
    frame, mask = back.compose(own, target, return_mask=True)
    if background == "rigid":
        np.testing.assert_array_equal(frame[mask == 0], image[mask == 0])
    else:  # the warp is local (anchored on a ring around the face): a few pixels move
        changed = np.any(frame[mask == 0] != image[mask == 0], axis=-1)
        assert 0 < changed.mean() < 0.02, changed.mean()


def test_the_warp_background_is_the_photo_warped_to_the_target(portrait):
    image, points = portrait
    back = paste.PasteBack(image, points, 128)
    target, _ = _moved(back.reference_landmarks, degrees=5.0, shift=(4.0, -2.0))
    target[57:60, 1] += 3   # and an expression change
    frame, mask = back.compose(np.full((128, 128, 3), 128, np.uint8), target, return_mask=True)
    expected = motion_lib.PhotoWarper(image, points).warp(back.transform.from_crop(target))
    outside = mask == 0
    np.testing.assert_array_equal(frame[outside], expected[outside])
    assert np.abs(expected[outside].astype(int) - image[outside].astype(int)).mean() > 1.0


def _find(needle, haystack, near, radius=12):
    """Top-left of the best match of `needle` in `haystack` around `near` (x, y)."""
    x, y = int(round(near[0])), int(round(near[1]))
    h, w = needle.shape[:2]
    window = haystack[y - radius:y + radius + h, x - radius:x + radius + w]
    score = cv2.matchTemplate(window, needle, cv2.TM_SQDIFF)
    dy, dx = np.unravel_index(np.argmin(score), score.shape)
    return np.array([x - radius + dx, y - radius + dy], np.float64)


@pytest.mark.parametrize("motion", [dict(shift=(6.0, -4.0)), dict(degrees=6.0, shift=(2.0, 3.0))])
def test_head_motion_moves_the_background_by_the_same_similarity(portrait, motion):
    image, points = portrait
    back = paste.PasteBack(image, points, 128, background="rigid")
    target, crop_matrix = _moved(back.reference_landmarks, **motion)
    grey = np.full((128, 128, 3), 128, np.uint8)
    frame, mask = back.compose(grey, target, return_mask=True)
    # Where a background point p lands: photo → crop, the head's crop motion, crop → photo.
    transform = back.transform
    half = 8
    # Textured points far from the face: flag (2), shuttle, badge, zipper.
    for p in ([40.0, 60.0], [60.0, 300.0], [420.0, 150.0], [150.0, 420.0], [200.0, 380.0]):
        q = transform.from_crop(_apply(crop_matrix, transform.to_crop(np.array([p]))))[0]
        assert mask[int(q[1]), int(q[0])] == 0
        patch = image[int(p[1]) - half:int(p[1]) + half, int(p[0]) - half:int(p[0]) + half]
        assert patch.std() > 10  # textured enough to be found
        found = _find(patch, frame, q - half)
        np.testing.assert_allclose(found, np.round(q - half), atol=1.0)
    np.testing.assert_allclose(back.head_motion(target)[:, :2],
                               crop_matrix[:, :2], atol=1e-6)  # same scale and rotation


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_static_background_keeps_far_pixels_and_moves_the_head(portrait):
    image, points = portrait
    back = paste.PasteBack(image, points, 128, background="rigid", background_motion=0.0)
    target, _ = _moved(back.reference_landmarks, shift=(5.0, 0.0))
    frame, mask = back.compose(back.transform.crop_image(image), target, return_mask=True)
    np.testing.assert_array_equal(frame[400:, :], image[400:, :])  # the lower part stays
    np.testing.assert_array_equal(frame[:, 450:], image[:, 450:])
    # Hair above the forehead (outside the mask) moved right by 5 crop px in photo pixels.
    shift = 5.0 * back.transform.box.size / 128
    p = np.array([226.0, 40.0])
    assert mask[int(p[1]), int(p[0])] == 0
    patch = image[int(p[1]) - 8:int(p[1]) + 8, int(p[0]) - 8:int(p[0]) + 8]
    found = _find(patch, frame, p - 8 + [shift, 0])
    np.testing.assert_allclose(found, np.round(p - 8 + [shift, 0]), atol=1.0)


@pytest.mark.parametrize("resolution", [128, 256])
def test_mask_covers_the_face_and_is_zero_far_from_it(portrait, resolution):
    image, points = portrait
    back = paste.PasteBack(image, points, resolution)
    _, mask = back.compose(back.transform.crop_image(image), back.reference_landmarks,
                           return_mask=True)
    at = lambda xy: mask[int(round(xy[1])), int(round(xy[0]))]  # noqa: E731
    assert min(at(p) for p in points) >= 0.4          # jaw and brows sit on the soft border
    assert min(at(p) for p in points[27:68]) > 0.99    # nose, eyes, mouth fully generated
    brows, chin = points[17:27].mean(0), points[8]
    forehead = brows + 0.15 * (brows - chin)
    assert at(forehead) > 0.9
    low, high = points.min(0), points.max(0)
    size = (high - low).max()
    ys, xs = np.nonzero(mask > 0)
    assert xs.min() > low[0] - 0.25 * size and xs.max() < high[0] + 0.25 * size
    assert ys.min() > low[1] - 0.6 * size and ys.max() < high[1] + 0.25 * size
    assert mask[:, :int(low[0] - 0.25 * size)].max() == 0 and mask[400:].max() == 0
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    # The mask follows the target: moved down, its lowest point moves down too.
    target, _ = _moved(back.reference_landmarks, shift=(0.0, 0.1 * resolution))
    crop_alpha, _ = back.crop_mask(target)
    ref_alpha, _ = back.crop_mask(back.reference_landmarks)
    assert np.nonzero(crop_alpha.max(1))[0].max() > np.nonzero(ref_alpha.max(1))[0].max()


def test_colour_matching_removes_a_colour_cast_at_the_seam(portrait):
    image, points = portrait
    cast = np.array([1.3, 0.95, 0.7])
    diffs = {}
    for mode in ("lab", "none"):
        back = paste.PasteBack(image, points, 256, colour_match=mode)
        own = back.transform.crop_image(image)
        tinted = np.clip(own * cast, 0, 255).astype(np.uint8)
        frame, mask = back.compose(tinted, back.reference_landmarks, return_mask=True)
        ring = (mask >= 0.5) & (mask < 1.0)  # just inside the mask border
        assert ring.sum() > 500
        diffs[mode] = np.abs(frame[ring].astype(float).mean(0) - image[ring].astype(float).mean(0))
    assert diffs["none"].max() > 15
    assert diffs["lab"].max() < 3, diffs


def test_colour_matching_leaves_a_matching_crop_nearly_unchanged(portrait):
    image, points = portrait
    back = paste.PasteBack(image, points, 256)
    frame, mask = back.compose(back.transform.crop_image(image), back.reference_landmarks,
                               return_mask=True)
    inside = mask > 0.99
    difference = frame[inside].astype(float).mean(0) - image[inside].astype(float).mean(0)
    assert np.abs(difference).max() < 2


def _moved_target(back):
    target, _ = _moved(back.reference_landmarks, degrees=5.0, shift=(4.0, -3.0))
    target[57:60, 1] += 3.0  # and the mouth opens a little
    return target


@pytest.mark.parametrize("zero_motion", [True, False])
def test_detail_gives_a_faithful_crop_the_photo_resolution_back(portrait, zero_motion):
    """A model that renders exactly the photo's crop (what its warp input shows) is pasted back
    as the full-resolution photo itself, not as an upscaled 128² face."""
    image, points = portrait
    errors = {}
    for detail in (0.0, 1.0):
        back = paste.PasteBack(image, points, 128, detail=detail)
        target = back.reference_landmarks if zero_motion else _moved_target(back)
        background = back.warped_photo(target)
        faithful = back.transform.crop_image(background)
        frame, mask = back.compose(faithful, target, return_mask=True)
        inside = mask > 0.99
        assert inside.sum() > 5000
        errors[detail] = np.abs(frame[inside].astype(float) - background[inside]).mean()
    assert errors[0.0] > 2.0, errors  # the upscaled crop is visibly softer than the photo
    assert errors[1.0] < 0.25 * errors[0.0], errors


def test_detail_stays_out_where_the_model_shows_something_else(portrait):
    """Where the generated face differs from the photo (an opened mouth's interior, a closed
    lid), the photo's detail must not print through: there the face is the model's."""
    image, points = portrait
    frames = {}
    for detail in (0.0, 1.0):
        back = paste.PasteBack(image, points, 128, detail=detail)
        target = _moved_target(back)
        generated = back.transform.crop_image(back.warped_photo(target))
        mouth = np.round(target[48:60]).astype(np.int32)
        inside = np.zeros((128, 128), np.uint8)
        cv2.fillConvexPoly(inside, cv2.convexHull(mouth), 1)
        generated[inside.astype(bool)] = (60, 20, 30)  # a dark mouth interior
        frames[detail] = back.compose(generated, target).astype(float)
        core = cv2.erode(inside, np.ones((5, 5), np.uint8))  # away from the painted edge
        in_photo = cv2.warpAffine(core, back.transform.inverse_matrix, image.shape[1::-1],
                                  flags=cv2.INTER_NEAREST).astype(bool)
    assert in_photo.sum() > 100
    np.testing.assert_allclose(frames[1.0][in_photo], frames[0.0][in_photo], atol=1.0)
    # ... while elsewhere in the face the detail does change the frame.
    face = (np.abs(frames[1.0] - frames[0.0]).max(-1) > 2)
    assert face.sum() > 2000


def test_output_has_the_photo_shape_also_when_the_box_leaves_the_photo(portrait):
    image, points = portrait
    for top, left, bottom, right in ((0, 0, 512, 512), (70, 150, 400, 512), (0, 0, 300, 290)):
        photo = np.ascontiguousarray(image[top:bottom, left:right])
        local = points - [left, top]
        box = crop_lib.crop_box(local)
        back = paste.PasteBack(photo, local, 128)
        target, _ = _moved(back.reference_landmarks, degrees=4.0, shift=(3.0, 2.0))
        for background, background_motion in (("warp", 1.0), ("rigid", 1.0), ("rigid", 0.5)):
            back.background, back.background_motion = background, background_motion
            frame = back.compose(back.transform.crop_image(photo), target)
            assert frame.shape == photo.shape and frame.dtype == np.uint8
        if (top, left) == (70, 150):  # the box really extends past the photo's top-left corner
            assert box.cx - box.size / 2 < 0 and box.cy - box.size / 2 < 0
            frame, mask = back.compose(back.transform.crop_image(photo), back.reference_landmarks,
                                       return_mask=True)
            np.testing.assert_array_equal(frame[mask == 0], photo[mask == 0])


def test_bad_input_is_refused(portrait):
    image, points = portrait
    with pytest.raises(ValueError, match="RGB uint8"):
        paste.PasteBack(image.astype(np.float32), points, 128)
    with pytest.raises(ValueError, match="background_motion"):
        paste.PasteBack(image, points, 128, background_motion=1.5)
    with pytest.raises(ValueError, match="background"):
        paste.PasteBack(image, points, 128, background="blur")
    with pytest.raises(ValueError, match="detail"):
        paste.PasteBack(image, points, 128, detail=-0.5)
    back = paste.PasteBack(image, points, 128)
    with pytest.raises(ValueError, match="generated crop"):
        back.compose(np.zeros((64, 64, 3), np.uint8), back.reference_landmarks)
