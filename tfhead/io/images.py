"""Reading photos with OpenCV, with errors that say what is wrong with the file.

`read_image` returns RGB uint8 `[H, W, 3]` whatever the file holds: greyscale is repeated to three
channels, 16-bit samples are scaled to 8 bits, the EXIF orientation is applied (as a phone's
gallery shows the photo), and transparent pixels are composited on white (a cut-out portrait's
hidden colour is often black or noise). A JPEG that ends before its end-of-image marker — a
download or copy that stopped — is refused with that reason (`cv2.imread` decodes such a file
with the missing part grey and says nothing more than a line on stderr).

Imports only NumPy and OpenCV.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from tfhead import errors


class ImageReadError(errors.TfheadError, IOError):
    """A photo file that is missing, damaged or not an image."""


_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def read_image(path: str) -> np.ndarray:
    """The photo at `path` as RGB uint8 `[H, W, 3]`; raises ImageReadError saying what is wrong."""
    if os.path.isdir(path):
        raise ImageReadError(f"{path} is a folder, not a photo.")
    if not os.path.isfile(path):
        raise ImageReadError(f"No such photo: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ImageReadError(f"{path} is empty (0 bytes); copy or download it again.")
    if data.startswith(_JPEG) and not jpeg_complete(data):
        raise ImageReadError(f"{path}: the JPEG file ends before its image does (a copy or "
                             "download that stopped part-way). Copy or download it again.")
    buffer = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # applies the EXIF orientation
    if image is None:
        raise ImageReadError(f"{path}: not a readable image (damaged, or not a format OpenCV "
                             "reads; use JPEG or PNG).")
    if _may_have_alpha(data):
        image = _on_white(image, cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG's marker structure reaches its end-of-image marker (EOI) — False for a file
    cut short. Walks the segments and the entropy-coded scans (where 0xFF is stuffed as FF 00 and
    restart markers FF D0–D7 may appear), so bytes appended after EOI (a phone's motion-photo
    video) and progressive files with many scans are handled. A structure it cannot follow is not
    called incomplete: the decoder has already accepted the file."""
    size, p = len(data), 2
    while p < size:
        if data[p] != 0xFF:
            return True   # not a structure this walk follows; leave it to the decoder
        while p < size and data[p] == 0xFF:   # fill bytes before a marker
            p += 1
        if p >= size:
            return False
        marker = data[p]
        p += 1
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue   # markers without a length
        if p + 2 > size:
            return False
        end = p + int.from_bytes(data[p:p + 2], "big")
        if end > size:
            return False
        p = end
        if marker == 0xDA:   # a scan: skip its entropy-coded data up to the next real marker
            while True:
                p = data.find(b"\xff", p)
                if p < 0 or p + 1 >= size:
                    return False
                following = data[p + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    p += 2
                elif following == 0xFF:
                    p += 1
                else:
                    break
    return False


def _may_have_alpha(data: bytes) -> bool:
    return (data.startswith(_PNG) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
            or data[:4] in (b"II*\x00", b"MM\x00*"))


def _on_white(image: np.ndarray, unchanged: np.ndarray | None) -> np.ndarray:
    """`image` (BGR uint8) with the pixels that `unchanged`'s alpha channel marks transparent
    composited on white. Without an alpha channel, or when the two differ (an EXIF orientation,
    which IMREAD_UNCHANGED does not apply), `image` is returned as it is."""
    if (unchanged is None or unchanged.ndim != 3 or unchanged.shape[2] != 4
            or unchanged.shape[:2] != image.shape[:2]):
        return image
    scale = 255.0 / np.iinfo(unchanged.dtype).max
    colour = unchanged[..., :3].astype(np.float32) * scale
    if np.abs(colour - image).max() > 1.0:   # an orientation was applied to `image` only
        return image
    alpha = unchanged[..., 3:].astype(np.float32) * (scale / 255.0)
    if alpha.min() >= 1.0:
        return image
    return np.round(image * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
