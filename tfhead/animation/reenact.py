"""The reenactment loop shared by `tfhead-animate` (Keras) and `tfhead-edge` (LiteRT); no TensorFlow.

    report = reenact(renderer, "driver.mp4", "out.mp4", ReenactOptions(side_by_side="sbs.mp4"))

Per frame: decode → landmarks (tracked) → motion mapping (relative / absolute) → render
(rasterize, warp the source for a warp-guided model, generator; batched) → paste-back into the
source photo → encode (H.264 with the driver's audio when an ffmpeg exists, else mp4v) and/or show
in a window. The report gives frames per second and median milliseconds per stage.

A renderer is anything with `resolution` (int), `reference_landmarks` (`[68, 2]` crop pixels of
the source), `source` (a `tfhead.face.source.PersonSource` or None) and `render(landmarks)`:
target landmarks `[N, 68, 2]` (crop pixels) → frames `[N, R, R, 3]` uint8 RGB.

**Paste-back** (`ReenactOptions.paste_back`, on by default): when the renderer has a source photo,
every generated crop is put back into that photo, which follows the head
(`tfhead.face.paste.PasteBack`), so the video has the photo's size (trimmed to even sides for
H.264) instead of R × R. The side-by-side video then shows the driver's crop (scaled to the photo's
height) beside the result.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from typing import Protocol

import cv2
import numpy as np

from tfhead import errors
from tfhead.animation import driving
from tfhead.face import landmark_image, landmarks, paste, retarget
from tfhead.io import outputs
from tfhead.io import video as video_lib
from tfhead.runtime import Interrupts, format_duration

log = logging.getLogger("tfhead")

STAGES = ("decode", "landmarks", "motion", "render", "paste", "encode")
WINDOW = "tfhead"
# A driver must show a face in at least half of its frames (README, "What bad input gets").
DEFAULT_MIN_FACE_FRACTION = 0.5


class Renderer(Protocol):
    resolution: int
    reference_landmarks: np.ndarray
    source: object  # a tfhead.face.source.PersonSource, or None

    def render(self, landmarks: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class ReenactOptions:
    """How to reenact.

    Attributes:
      motion: "relative" (the driver's motion on the source's geometry) or "absolute".
      neutral_frame: Driver frame whose face is the reference of relative motion (None: the first
        frame with a face).
      side_by_side: Also write driver crop | landmark image | result to this path (None: no).
      max_frames: Stop after this many driver frames (None: all; required for webcams to end).
      batch_size: Frames per generator call.
      redetect_every: Face detection every N driver frames (1, the default: every frame, the
        most robust — on generated faces the tracker alone drifted; 0 = track, detect on loss).
      display: Show driver crop | landmark image | result in a window (`q` or Esc stops).
      codec: "auto" (H.264 when an ffmpeg exists, else mp4v), "h264" or "mp4v".
      min_face_fraction: The share of driver frames that must show a face. A driver below it is
        refused with `driving.DrivingError` and nothing is written; the loop stops as soon as the
        share can no longer be reached (for a file, from its frame count). At least one face is
        always needed, so 0 only turns the share off.
      paste_back: Paste each generated crop back into the renderer's source photo (the output
        has the photo's size); without a source photo, or False, the R × R crop is written.
      background: How the photo around the face moves when pasting back: "warp" (warped
        piecewise-affinely with the landmarks, the default) or "rigid" (the head's similarity;
        see `tfhead.face.paste`).
      background_motion: With `background="rigid"`: how much of the photo follows the head:
        1 = all of it; 0 = only the head region.
      paste_detail: How much of the photo's own fine detail is added to the pasted face where
        the face agrees with the photo (0 = off: the face as the model rendered it, upscaled;
        1 = all; `tfhead.face.paste`, step 4).
    """

    motion: str = "relative"
    neutral_frame: int | None = None
    side_by_side: str | None = None
    max_frames: int | None = None
    batch_size: int = 4
    redetect_every: int = 1
    display: bool = False
    codec: str = "auto"
    min_face_fraction: float = DEFAULT_MIN_FACE_FRACTION
    paste_back: bool = True
    background: str = "warp"
    background_motion: float = 1.0
    paste_detail: float = 1.0

    def __post_init__(self):
        if self.motion not in retarget.MOTION_MODES:
            raise ValueError(f"Unknown motion {self.motion!r}; valid: {list(retarget.MOTION_MODES)}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if not 0.0 <= self.min_face_fraction <= 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1], got {self.min_face_fraction}.")
        if self.neutral_frame is not None and self.neutral_frame < 0:
            raise ValueError(f"neutral_frame must be >= 0, got {self.neutral_frame}.")
        if self.background not in paste.BACKGROUND_MODES:
            raise ValueError(f"Unknown background {self.background!r}; valid: "
                             f"{list(paste.BACKGROUND_MODES)}.")
        if not 0.0 <= self.background_motion <= 1.0:
            raise ValueError(f"background_motion must be in [0, 1], got {self.background_motion}.")
        if not 0.0 <= self.paste_detail <= 1.0:
            raise ValueError(f"paste_detail must be in [0, 1], got {self.paste_detail}.")


@dataclasses.dataclass
class ReenactReport:
    output: str | None
    side_by_side: str | None
    frames: int
    fps: float                 # the driver's frame rate (the output's)
    size: int                  # the model's crop side R
    frame_size: tuple[int, int]  # (width, height) of the output video: the photo's, or (R, R)
    audio: bool
    frames_held: int           # no face: the previous landmarks were used
    frames_at_rest: int        # before the first face: the source's own landmarks were used
    median_ms: dict[str, float]
    seconds: float

    @property
    def frames_per_second(self) -> float:
        """Throughput of the whole loop (all stages), frames per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


class DisplayError(errors.TfheadError, RuntimeError):
    """No window can be shown (a headless OpenCV build or no display)."""


class _Window:
    def __init__(self):
        import cv2

        self._cv2 = cv2
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise DisplayError(
                "Cannot open a window: this OpenCV has no GUI (opencv-python-headless is what "
                "tfhead installs) or there is no display. `pip install opencv-python` on a "
                "machine with a screen, or write a file with --out.") from None

    def show(self, rgb: np.ndarray) -> bool:
        """Shows a frame; False when the user pressed q or Esc."""
        self._cv2.imshow(WINDOW, self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2BGR))
        return (self._cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self):
        self._cv2.destroyWindow(WINDOW)


VIDEO_OUTPUT_EXTENSIONS = (".mp4",)


def check_outputs(driver: str | int, output: str | None, side_by_side: str | None,
                  inputs: outputs.Inputs | None = None) -> None:
    """Refuses output videos that would overwrite an input (the driver above all), each other, a
    folder or a file of another kind, or that cannot be written — before any model is loaded.

    Raises:
      outputs.OutputPathError: what is wrong, in one line.
    """
    named = {"--driver": str(driver), **(inputs or {})}
    for flag, path in (("--out", output), ("--side_by_side", side_by_side)):
        if path is not None:
            outputs.file_output(path, flag=flag, kind="mp4 video",
                                extensions=VIDEO_OUTPUT_EXTENSIONS, inputs=named)
    outputs.distinct({"--out": output, "--side_by_side": side_by_side})


class _FaceCount:
    """Counts driver frames with a face and enforces `ReenactOptions.min_face_fraction`."""

    def __init__(self, fraction: float, total: int, driver):
        self.fraction, self.total, self.driver = fraction, total, driver
        self.seen = self.with_face = 0

    def _needed(self, frames: int) -> int:
        return max(1, math.ceil(self.fraction * frames - 1e-9))

    def add(self, has_face: bool) -> None:
        self.seen += 1
        self.with_face += has_face
        if (self.fraction > 0 and self.total
            and self.seen - self.with_face > self.total - self._needed(self.total)):
            raise driving.DrivingError(
                f"The driver {self.driver} shows no face in {self.seen - self.with_face} of its "
                f"first {self.seen} frames, so fewer than {self._needed(self.total)} of its "
                f"{self.total} frames ({self.fraction:.0%}, --min_face_fraction) can show one. "
                "Stopped; nothing was written. Use a video where the face is visible.")

    def check_final(self) -> None:
        if self.with_face == 0:
            raise driving.DrivingError(
                f"The driver {self.driver} shows no face in any of its {self.seen} frames. "
                "Nothing was written. Use a video where the face is visible.")
        if self.with_face < self._needed(self.seen):
            raise driving.DrivingError(
                f"The driver {self.driver} shows a face in {self.with_face} of {self.seen} "
                f"frames; at least {self._needed(self.seen)} ({self.fraction:.0%}, "
                "--min_face_fraction) are needed. Nothing was written. Use a video where the "
                "face is visible.")


class _Outputs:
    """Where rendered frames go — the output video, the side-by-side video, the window — with the
    per-stage times and the progress log. Frames are rendered in batches of `batch_size` and
    pasted back into the source photo when there is one (`ReenactOptions.paste_back`)."""

    def __init__(self, renderer: Renderer, output: str | None, options: ReenactOptions,
                 fps: float, audio_from: str | None, total: int):
        self.renderer, self.options, self.total = renderer, options, total
        r = renderer.resolution
        source = getattr(renderer, "source", None)
        self.paster = (source.paste_back(background=options.background,
                                         background_motion=options.background_motion,
                                         detail=options.paste_detail)
                       if options.paste_back and source is not None else None)
        if self.paster is not None:
            height, width = source.photo.shape[:2]
            self.size = (width - width % 2, height - height % 2)  # even sides for H.264
            side_size = (self.size[0] + self.size[1], self.size[1])
        else:
            self.size, side_size = (r, r), (3 * r, r)
        self.times: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.count = 0
        self.window_closed = False
        self.window = self.video = self.side = None
        try:  # the window first: a missing display fails before any file is created
            self.window = _Window() if options.display else None
            if output is not None:
                self.video = video_lib.open_writer(output, fps, *self.size, audio_from,
                                                   options.codec)
            if options.side_by_side:
                self.side = video_lib.open_writer(options.side_by_side, fps, *side_size,
                                                  audio_from, options.codec)
        except BaseException:
            self.abort()
            raise
        self.start = time.monotonic()

    @property
    def writers(self) -> list:
        return [w for w in (self.video, self.side) if w is not None]

    def add(self, item: driving.DrivingFrame, points: np.ndarray, motion_seconds: float):
        self.times["decode"].append(item.decode_seconds)
        self.times["landmarks"].append(item.landmark_seconds)
        self.times["motion"].append(motion_seconds)
        self.pending.append((item.crop, points))
        if len(self.pending) == self.options.batch_size:
            self.flush()

    def _panels(self, crop: np.ndarray, points: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """The side-by-side picture: driver crop | landmark image | result, or with paste-back
        driver crop (scaled to the photo's height) | result."""
        if self.paster is None:
            drawn = landmark_image.draw_landmarks(points, self.renderer.resolution)
            return np.concatenate([crop, drawn, frame], axis=1)
        height = frame.shape[0]
        scaled = cv2.resize(crop, (height, height), interpolation=cv2.INTER_LINEAR)
        return np.concatenate([scaled, frame], axis=1)

    def flush(self) -> None:
        """Renders the pending frames, pastes them back, and writes or shows them."""
        if not self.pending:
            return
        n = len(self.pending)
        t0 = time.perf_counter()
        rendered = self.renderer.render(np.stack([points for _, points in self.pending]))
        t1 = time.perf_counter()
        if self.paster is not None:
            width, height = self.size
            rendered = [self.paster.compose(frame, points)[:height, :width]
                        for (_, points), frame in zip(self.pending, rendered)]
        t2 = time.perf_counter()
        for (crop, points), frame in zip(self.pending, rendered):
            if self.video is not None:
                self.video.write(frame)
            if self.side is not None or self.window is not None:
                panels = self._panels(crop, points, frame)
                if self.side is not None:
                    self.side.write(panels)
                if self.window is not None and not self.window.show(panels):
                    self.window_closed = True
        t3 = time.perf_counter()
        self.times["render"] += [(t1 - t0) / n] * n
        self.times["paste"] += [(t2 - t1) / n] * n
        self.times["encode"] += [(t3 - t2) / n] * n
        self.count += n
        self.pending.clear()
        self._log_progress()

    def _log_progress(self) -> None:
        batch = self.options.batch_size
        if self.count % (25 * batch) < batch or self.count == self.total:
            rate = self.count / max(time.monotonic() - self.start, 1e-9)
            eta = (self.total - self.count) / rate if self.total and rate > 0 else float("nan")
            log.info("reenact: %d%s frames, %.2f frames/s%s", self.count,
                     f"/{self.total}" if self.total else "", rate,
                     f", ETA {format_duration(eta)}" if self.total else "")

    def close(self) -> float:
        """Finishes the files (renamed into place); returns the seconds since the start."""
        for writer in self.writers:
            writer.close()
        return time.monotonic() - self.start

    def abort(self) -> None:
        """Discards the partial files (nothing appears under the output names)."""
        for writer in self.writers:
            writer.abort()

    def close_window(self) -> None:
        if self.window is not None:
            self.window.close()


def reenact(renderer: Renderer, driver: str | int, output: str | None,
            options: ReenactOptions = ReenactOptions(),
            detector: landmarks.LandmarkDetector | None = None,
            interrupts: Interrupts | None = None) -> ReenactReport:
    """Renders `renderer`'s person driven by `driver` into `output` (mp4) and/or a window.

    Raises:
      ValueError: neither an output file nor a window.
      outputs.OutputPathError: an output path is refused (`check_outputs`); nothing was done.
      driving.DrivingError: the driving video or camera cannot be read, or shows a face in too
        few frames (`ReenactOptions.min_face_fraction`; nothing is left under `output`).
      video_lib.VideoWriteError: the encoder failed (nothing is left under `output`).
      DisplayError: a window was asked for and cannot be opened.
    """
    if output is None and not options.display:
        raise ValueError("Nothing to write to: give an output file, a window, or both.")
    check_outputs(driver, output, options.side_by_side)
    detector = detector or landmarks.LandmarkDetector()
    r = renderer.resolution
    reference = None
    if options.motion == "relative" and options.neutral_frame is not None:
        reference = driving.neutral_landmarks(driver, options.neutral_frame, r, detector)
    source = driving.DrivingSource(driver, r, detector, options.redetect_every, options.max_frames)
    mapper = driving.MotionMapper(options.motion, renderer.reference_landmarks, r, reference)
    faces = _FaceCount(options.min_face_fraction, len(source), driver)
    sink = _Outputs(renderer, output, options, source.fps, None if source.is_camera else driver,
                    len(source))
    try:
        for item in source:
            faces.add(item.landmarks is not None)
            t0 = time.perf_counter()
            points = mapper.landmarks(item.landmarks)
            sink.add(item, points, time.perf_counter() - t0)
            if sink.window_closed:
                log.info("Window closed: finishing with the %d frames rendered.", sink.count)
                break
            if interrupts is not None and interrupts.requested is not None:
                log.warning("Interrupted: finishing the video with the %d frames rendered.",
                            sink.count + len(sink.pending))
                break
        sink.flush()
        faces.check_final()
        seconds = sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        sink.close_window()
    writers = sink.writers
    return ReenactReport(
        output=output, side_by_side=options.side_by_side, frames=sink.count, fps=source.fps,
        size=r, frame_size=sink.size, audio=bool(writers) and writers[0].audio, frames_held=mapper.held,
        frames_at_rest=mapper.at_rest,
        median_ms={k: 1000 * statistics.median(v) for k, v in sink.times.items() if v},
        seconds=seconds)
