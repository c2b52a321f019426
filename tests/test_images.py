"""Reading photos (`tfhead.io.images`): every kind of file a user may give, and damaged ones."""

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from tfhead.face import landmarks, shots
from tfhead.io import images


@pytest.fixture(scope="module")
def rgb():
    return skimage.data.astronaut()


def _write(path, rgb, *params):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
    return str(path)


def test_jpeg_and_png_read_as_rgb(rgb, tmp_path):
    np.testing.assert_array_equal(images.read_image(_write(tmp_path / "a.png", rgb)), rgb)
    got = images.read_image(_write(tmp_path / "a.jpg", rgb, cv2.IMWRITE_JPEG_QUALITY, 98))
    assert got.shape == rgb.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - rgb).mean() < 3   # RGB, not BGR: swapped, it would be ~60


def test_grey_16_bit_and_exif_rotated_photos_become_upright_8_bit_rgb(rgb, tmp_path):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    got = images.read_image(str(tmp_path / "grey.png"))
    assert got.shape == rgb.shape
    np.testing.assert_array_equal(got, np.repeat(grey[..., None], 3, axis=2))

    deep = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(images.read_image(str(tmp_path / "deep.png")), rgb)

    # A phone's photo: stored turned, with the EXIF orientation that turns it upright.
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, -1)))
    exif = stored.getexif()
    exif[0x0112] = 8   # the EXIF orientation of a photo stored turned 90° clockwise
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=98)
    got = images.read_image(str(tmp_path / "phone.jpg"))
    assert got.shape == rgb.shape and np.abs(got.astype(int) - rgb).mean() < 4


def test_transparent_pixels_are_shown_on_white(rgb, tmp_path):
    bgra = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA)
    bgra[:, :100, :3] = 0          # a cut-out's hidden colour: black
    bgra[:, :100, 3] = 0           # transparent
    bgra[:, 100:110, 3] = 128      # half
    cv2.imwrite(str(tmp_path / "cut.png"), bgra)
    got = images.read_image(str(tmp_path / "cut.png"))
    assert (got[:, :100] == 255).all()
    np.testing.assert_array_equal(got[:, 110:], rgb[:, 110:])
    expected = np.round(rgb[:, 100:110] * (128 / 255) + 255 * (1 - 128 / 255))
    assert np.abs(got[:, 100:110] - expected).max() <= 1


@pytest.mark.parametrize("params", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
                                    [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]],
                         ids=["baseline", "progressive", "restart-markers"])
def test_a_jpeg_cut_anywhere_is_refused_and_a_whole_one_is_not(rgb, params, tmp_path):
    data = cv2.imencode(".jpg", rgb, params)[1].tobytes()
    assert images.jpeg_complete(data)
    assert images.jpeg_complete(data + b"\x00" * 7)                    # padding after the end
    assert images.jpeg_complete(data + b"\xff\xda\x00\x08 motion")     # a video after the end
    assert not any(images.jpeg_complete(data[:n]) for n in range(3, len(data) - 1, 211))
    assert not images.jpeg_complete(data[:-2])
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    # cv2.imread gives this file with its missing part grey (or, progressive, coarse) and only a
    # line on stderr.
    assert cv2.imread(str(tmp_path / "cut.jpg")) is not None
    with pytest.raises(images.ImageReadError, match="ends before its image does"):
        images.read_image(str(tmp_path / "cut.jpg"))


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"not an image\n", "not a readable image"),
    (None, "No such photo"),
    ("folder", "is a folder"),
    ("half png", "not a readable image"),
])
def test_files_that_are_not_photos_are_one_clear_error(rgb, tmp_path, content, match):
    path = tmp_path / "photo.png"
    if content == "folder":
        path.mkdir()
    elif content == "half png":
        data = cv2.imencode(".png", rgb)[1].tobytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(images.ImageReadError, match=match):
        images.read_image(str(path))


def test_a_cut_photo_of_the_person_is_refused_with_the_reason(rgb, tmp_path):
    data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    (tmp_path / "me.jpg").write_bytes(data[: len(data) // 2])   # the face is in the upper half
    with pytest.raises(shots.PersonInputError, match="me.jpg: the JPEG file ends before"):
        shots.load_person([str(tmp_path / "me.jpg")], 64, landmarks.LandmarkDetector())
