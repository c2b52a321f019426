"""A new person's shots: photos or one video → face crops, landmarks and landmark images with the
training crop rule and rasterizer (paper §3.3, docs/design.md §6). NumPy/OpenCV/dlib only.

A photo must show the whole face (`shot_problem`); of a video, frames without a usable face are
dropped and listed (`PersonFrames.dropped`). With several faces in a picture the largest is used
and named, unless `face` picks one by its position from the left.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Sequence

import numpy as np

from tfhead import errors
from tfhead.face import crop as crop_lib
from tfhead.face import landmark_image, landmarks
from tfhead.face.source import PersonSource
from tfhead.io import images as images_lib
from tfhead.io import video as video_lib

log = logging.getLogger("tfhead")

MAX_SHOTS = 32
# A shot's crop box may lie outside its image by at most this fraction of its area (the outside is
# filled by replicating the border); landmarks may lie outside by at most _BORDER_TOLERANCE px.
MAX_CROP_PADDING = 0.5
_BORDER_TOLERANCE = 1.0


class PersonInputError(errors.TfheadError, ValueError):
    """Photos or a video of the new person that cannot be used (unreadable, no face, ...)."""


@dataclasses.dataclass
class PersonFrames:
    """K crops of the new person with their landmarks (`R` = model resolution).

    Attributes:
      frames: `[K, R, R, 3]` uint8 RGB crops.
      landmarks: `[K, 68, 2]` float32 crop pixels.
      landmark_images: `[K, R, R, 3]` uint8, drawn by the training rasterizer.
      sources: Where each frame came from ("photo.jpg", "clip.mp4#120").
      dropped: Frames of a video that were not used, with the reason ("clip.mp4#96", "no face").
      notes: What the user should know about the choice made ("group.jpg: 3 faces found, used
        face 2 counted from the left").
      source: The first shot as a whole photo with its landmarks (`tfhead.face.source`): what a
        person model warps (warp guidance) and pastes its frames back into.
    """

    frames: np.ndarray
    landmarks: np.ndarray
    landmark_images: np.ndarray
    sources: list[str]
    dropped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    source: PersonSource | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def report(self) -> str:
        """One line per fact: the frames used, those dropped and why, and any face choice."""
        lines = [f"used {len(self)} shot(s): {', '.join(self.sources)}"]
        lines += [f"dropped {source}: {reason}" for source, reason in self.dropped]
        return "\n".join(lines + self.notes)


def shot_problem(image_shape: Sequence[int], points: np.ndarray) -> str | None:
    """Why a detected face cannot be a shot, or None when it can.

    A shot's 68 landmarks must all lie inside the image (a face cut by the border gets landmarks
    guessed onto the background), and at most `MAX_CROP_PADDING` of its crop box may lie outside
    the image (the crop would be mostly replicated border).
    """
    h, w = image_shape[:2]
    points = np.asarray(points, np.float64)
    low, high = -_BORDER_TOLERANCE, np.array([w - 1, h - 1]) + _BORDER_TOLERANCE
    outside = int(np.sum(np.any((points < low) | (points > high), axis=1)))
    if outside:
        return (f"the face is cut by the image border ({outside} of 68 landmarks fall outside "
                "the image)")
    box = crop_lib.crop_box(points)
    half = box.size / 2
    inside_w = max(0.0, min(box.cx + half, w) - max(box.cx - half, 0.0))
    inside_h = max(0.0, min(box.cy + half, h) - max(box.cy - half, 0.0))
    padding = 1.0 - inside_w * inside_h / box.size ** 2
    if padding > MAX_CROP_PADDING:
        return (f"{padding:.0%} of the crop around the face lies outside the image (at most "
                f"{MAX_CROP_PADDING:.0%}); the face is too close to the border")
    return None


def _crop_one(image: np.ndarray, points: np.ndarray, resolution: int):
    """(crop, crop landmarks, landmark image, the whole shot as a `PersonSource`)."""
    source = PersonSource(image, points, resolution)
    local = source.landmarks
    return source.crop, local, landmark_image.draw_landmarks(local, resolution), source


def _shot(name: str, image: np.ndarray, resolution: int, detector: landmarks.LandmarkDetector,
          face: int | None):
    """((crop, landmarks, landmark image), note) of one image, or (None, reason)."""
    try:
        detection = detector.detect(image, face=face)
    except landmarks.LandmarkError as e:
        return None, str(e)
    problem = shot_problem(image.shape, detection.landmarks)
    if problem is not None:
        return None, problem
    choice = detection.describe_choice()
    note = (f"{name}: {choice}" + ("" if face else " (the largest; --face=N picks another)")
            if choice else "")
    return _crop_one(landmarks.to_rgb_uint8(image), detection.landmarks, resolution), note


def _collect(shots: list, names: list[str], dropped, notes) -> PersonFrames:
    crops, points, drawn = (np.stack(column) for column in list(zip(*shots))[:3])
    for note in dict.fromkeys(n for n in notes if n):  # once each, in order
        log.warning("%s", note)
    for source, reason in dropped:
        log.warning("Dropped %s: %s", source, reason)
    return PersonFrames(crops, points, drawn, names, list(dropped),
                        list(dict.fromkeys(n for n in notes if n)), shots[0][3])


def person_frames(images: Sequence[tuple[str, np.ndarray]], resolution: int,
                  detector: landmarks.LandmarkDetector, face: int | None = None) -> PersonFrames:
    """Crops named RGB photos (each must show the whole face) → `PersonFrames`.

    Args:
      face: Which face of each photo, counted from the left from 1 (None: the largest).
    Raises:
      PersonInputError: a photo has no usable face (its name and the reason are in the message).
    """
    if not images:
        raise PersonInputError("No photos of the person were given.")
    if len(images) > MAX_SHOTS:
        raise PersonInputError(f"{len(images)} photos given; at most {MAX_SHOTS} are used (K ≤ 32).")
    shots, names, notes = [], [], []
    for name, image in images:
        shot, note = _shot(name, image, resolution, detector, face)
        if shot is None:
            raise PersonInputError(f"{name}: {note}")
        shots.append(shot), names.append(name), notes.append(note)
    return _collect(shots, names, [], notes)


def load_person(paths: Sequence[str], resolution: int, detector: landmarks.LandmarkDetector,
                video_shots: int = 8, face: int | None = None) -> PersonFrames:
    """Photos (any number of image files) or one video (`video_shots` frames spread over it).

    Frames of a video without a usable face are dropped and listed in `PersonFrames.dropped`; a
    photo without one is an error.
    """
    if not paths:
        raise PersonInputError("No photos or video of the person were given.")
    for path in paths:
        if os.path.isdir(path):
            raise PersonInputError(f"{path} is a folder; give photo files (or one video) of the "
                                   "person, comma-separated.")
        if not os.path.isfile(path):
            raise PersonInputError(f"No such photo or video: {path}")
    videos = [p for p in paths if os.path.splitext(p)[1].lower() in video_lib.VIDEO_EXTENSIONS]
    if videos:
        if len(paths) != 1:
            raise PersonInputError("Give either photos or one video of the person, not both.")
        return _person_from_video(videos[0], resolution, detector, video_shots, face)
    images = []
    for path in paths:
        try:
            images.append((os.path.basename(path), images_lib.read_image(path)))
        except images_lib.ImageReadError as e:
            raise PersonInputError(str(e)) from None
    return person_frames(images, resolution, detector, face)


def _person_from_video(path: str, resolution: int, detector, shots: int,
                       face: int | None) -> PersonFrames:
    if shots < 1:
        raise PersonInputError(f"shots must be >= 1, got {shots}.")
    try:
        info = video_lib.probe(path)
        wanted = np.unique(np.linspace(0, max(info.frame_count - 1, 0), shots).round().astype(int))
        decoded = video_lib.read_frames(path, wanted)
    except video_lib.VideoReadError as e:
        raise PersonInputError(str(e)) from None
    base = os.path.basename(path)
    kept, names, notes = [], [], []
    dropped = [(f"{base}#{i}", "the frame does not decode (damaged or shorter than its header "
                "says)") for i in wanted if i not in decoded]
    for index, image in sorted(decoded.items()):
        shot, note = _shot(f"{base}#{index}", image, resolution, detector, face)
        if shot is None:
            dropped.append((f"{base}#{index}", note))
        else:
            kept.append(shot), names.append(f"{base}#{index}"), notes.append(note)
    if not kept:
        reasons = "; ".join(f"{s}: {r}" for s, r in dropped[:3])
        raise PersonInputError(f"{path}: no usable face in the {len(wanted)} frames sampled "
                               f"({reasons}).")
    dropped.sort(key=lambda item: int(item[0].rsplit("#", 1)[1]))
    return _collect(kept, names, dropped, notes)
