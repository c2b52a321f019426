import numpy as np
import pytest

from tfhead.face import crop, procedural


def _landmarks():
    return procedural.procedural_landmarks(procedural.random_identity(1), 400, shift=(0.05, -0.02))


def test_box_is_square_around_landmarks_with_margin():
    points = _landmarks()
    box = crop.crop_box(points)
    low, high = points.min(axis=0), points.max(axis=0)
    assert box.size == pytest.approx(crop.DEFAULT_SCALE * max(high - low))
    half = box.size / 2
    assert box.cx - half < low[0] and box.cx + half > high[0]
    assert box.cy - half < low[1] and box.cy + half > high[1]


def test_points_round_trip_and_land_on_the_same_pixels(rng):
    points = _landmarks()
    transform = crop.CropTransform(crop.crop_box(points), 128)
    inside = transform.to_crop(points)
    np.testing.assert_allclose(transform.from_crop(inside), points, atol=1e-3)
    assert inside.min() > 0 and inside.max() < 128
    # A bright dot at a landmark shows up at the mapped crop position.
    marked = np.zeros((400, 400, 3), np.uint8)
    x, y = np.round(points[30]).astype(int)
    marked[y - 3:y + 4, x - 3:x + 4] = 255
    cropped = transform.crop_image(marked)
    peak = np.unravel_index(np.argmax(cropped[..., 0]), cropped.shape[:2])
    np.testing.assert_allclose(peak[::-1], inside[30], atol=1.5)


def test_large_downscale_does_not_alias():
    checker = (np.indices((1000, 1000)).sum(axis=0) % 2 * 255).astype(np.uint8)
    transform = crop.CropTransform(crop.Box(500, 500, 800), 64)
    out = transform.crop_image(checker)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 5  # averaged, not sampled


def test_paste_puts_the_crop_back():
    frame = np.zeros((300, 300, 3), np.uint8)
    transform = crop.CropTransform(crop.Box(150, 140, 120), 64)
    crop_image = np.full((64, 64, 3), 200, np.uint8)
    pasted = transform.paste(crop_image, frame)
    assert pasted[140, 150].tolist() == [200, 200, 200]
    assert pasted[10, 10].tolist() == [0, 0, 0]


def test_stable_box_ignores_missing_frames():
    points = _landmarks()
    track = np.stack([points, points + 2.0, np.full_like(points, np.nan), points - 2.0])
    box = crop.stable_box(track)
    assert box.cx == pytest.approx(crop.crop_box(points).cx)
    with pytest.raises(ValueError):
        crop.stable_box(np.full((2, 68, 2), np.nan))
