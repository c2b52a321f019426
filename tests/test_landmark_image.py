
import numpy as np
import pytest

from tfhead.face import landmark_image, procedural


def _frontal_landmarks(size):
    return procedural.procedural_landmarks(procedural.random_identity(3), size, mouth_open=0.6)


@pytest.mark.parametrize("size", [64, 256])
def test_each_part_has_its_colour(size):
    points = _frontal_landmarks(size)
    image = landmark_image.draw_landmarks(points, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    for name, indices, _, colour in landmark_image.PARTS:
        a, b = points[indices[1]], points[indices[2]]
        x, y = np.round((a + b) / 2).astype(int)
        pixel = image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
        # The brightest pixel near the segment's middle has the part's colour (anti-aliasing may
        # dim it, never change its hue).
        best = pixel[np.argmax(pixel.sum(axis=1))].astype(float)
        expected = np.array(colour, float)
        assert np.allclose(best / best.max(), expected / 255.0, atol=0.25), name
    assert image[0, 0].tolist() == [0, 0, 0]


def test_thickness_scales_with_resolution():
    assert [landmark_image.line_thickness(s) for s in (64, 128, 256, 512)] == [1, 1, 2, 4]
    points = _frontal_landmarks(256)
    thin = landmark_image.draw_landmarks(points, 256, thickness=1)
    thick = landmark_image.draw_landmarks(points, 256)
    assert (thick > 0).sum() > 1.5 * (thin > 0).sum()


def test_bad_landmarks_are_rejected():
    with pytest.raises(ValueError, match="68, 2"):
        landmark_image.draw_landmarks(np.zeros((5, 2)), 64)
    with pytest.raises(ValueError, match="NaN"):
        landmark_image.draw_landmarks(np.full((68, 2), np.nan), 64)


def test_value_range_helpers_round_trip():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    as_float = landmark_image.to_model_range(image)
    assert as_float.min() == -1.0 and as_float.max() == 1.0
    np.testing.assert_array_equal(landmark_image.from_model_range(as_float), image)
