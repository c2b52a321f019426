"""Animating a person model from a driving video or webcam (paper §3; DESIGN.md §9).

    model = PersonModel.load("people/astronaut")
    report = animate(model, "driver.mp4", "out.mp4", AnimateOptions(side_by_side="sbs.mp4"))

Per frame: decode → landmarks (tracked) → motion mapping (relative / absolute) → rasterize →
generator (batched) → encode (H.264, with the driver's audio when it has any). The report gives
median milliseconds per stage.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time

import numpy as np

from tfhead import driving, landmarks, retarget, training
from tfhead import video as video_lib
from tfhead.person import PersonModel

log = logging.getLogger("tfhead")

STAGES = ("decode", "landmarks", "rasterize", "generator", "encode")


@dataclasses.dataclass(frozen=True)
class AnimateOptions:
    """How to animate.

    Attributes:
      motion: "relative" (the driver's motion on the source's geometry) or "absolute".
      neutral_frame: Driver frame whose face is the reference of relative motion (None: the first
        frame with a face).
      side_by_side: Also write driver crop | landmark image | result to this path (None: no).
      max_frames: Stop after this many driver frames (None: all; required for webcams to end).
      batch_size: Frames per generator call.
      redetect_every: Face detection every N driver frames (1, the default: every frame, the
        most robust — on generated faces the tracker alone drifted; 0 = track, detect on loss).
    """

    motion: str = "relative"
    neutral_frame: int | None = None
    side_by_side: str | None = None
    max_frames: int | None = None
    batch_size: int = 4
    redetect_every: int = 1

    def __post_init__(self):
        if self.motion not in retarget.MOTION_MODES:
            raise ValueError(f"Unknown motion {self.motion!r}; valid: {list(retarget.MOTION_MODES)}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")


@dataclasses.dataclass
class AnimateReport:
    output: str
    side_by_side: str | None
    frames: int
    fps: float
    size: int
    audio: bool
    frames_held: int       # no face: the previous landmarks were used
    frames_at_rest: int    # before the first face: the source's own landmarks were used
    median_ms: dict[str, float]
    seconds: float


def animate(model: PersonModel, driver: str | int, output: str,
            options: AnimateOptions = AnimateOptions(),
            detector: landmarks.LandmarkDetector | None = None,
            interrupts: training.Interrupts | None = None) -> AnimateReport:
    """Renders `model` driven by `driver` into `output` (mp4); see the module docstring.

    Raises:
      driving.DrivingError: the driving video or camera cannot be read.
      video_lib.VideoWriteError: the encoder failed (nothing is left under `output`).
    """
    detector = detector or landmarks.LandmarkDetector()
    r = model.resolution
    reference = None
    if options.motion == "relative" and options.neutral_frame is not None:
        reference = driving.neutral_landmarks(driver, options.neutral_frame, r, detector)
    source = driving.DrivingSource(driver, r, detector, options.redetect_every, options.max_frames)
    mapper = driving.MotionMapper(options.motion, model.reference_landmarks, r, reference)
    audio_from = None if source.is_camera else driver
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    start = time.monotonic()
    total = len(source)
    writers = [video_lib.H264Writer(output, source.fps, r, r, audio_from)]
    if options.side_by_side:
        writers.append(video_lib.H264Writer(options.side_by_side, source.fps, 3 * r, r, audio_from))
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    count = 0

    def flush():
        nonlocal count
        t0 = time.perf_counter()
        rendered = model.render(np.stack([d for _, d in pending]), options.batch_size)
        t1 = time.perf_counter()
        for (crop, drawn), frame in zip(pending, rendered):
            writers[0].write(frame)
            if len(writers) > 1:
                writers[1].write(np.concatenate([crop, drawn, frame], axis=1))
        t2 = time.perf_counter()
        times["generator"] += [(t1 - t0) / len(pending)] * len(pending)
        times["encode"] += [(t2 - t1) / len(pending)] * len(pending)
        count += len(pending)
        pending.clear()
        if count % (25 * options.batch_size) < options.batch_size or count == total:
            elapsed = time.monotonic() - start
            rate = count / max(elapsed, 1e-9)
            eta = (total - count) / rate if total and rate > 0 else float("nan")
            log.info("animate: %d%s frames, %.2f frames/s%s", count,
                     f"/{total}" if total else "", rate,
                     f", ETA {training.format_duration(eta)}" if total else "")

    try:
        for item in source:
            t0 = time.perf_counter()
            drawn = mapper.landmark_image(item.landmarks)
            times["decode"].append(item.decode_seconds)
            times["landmarks"].append(item.landmark_seconds)
            times["rasterize"].append(time.perf_counter() - t0)
            pending.append((item.crop, drawn))
            if len(pending) == options.batch_size:
                flush()
            if interrupts is not None and interrupts.requested is not None:
                log.warning("Interrupted: finishing the video with the %d frames rendered.",
                            count + len(pending))
                break
        if pending:
            flush()
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return AnimateReport(
        output=output, side_by_side=options.side_by_side, frames=count, fps=source.fps, size=r,
        audio=writers[0].audio, frames_held=mapper.held, frames_at_rest=mapper.at_rest,
        median_ms={k: 1000 * statistics.median(v) for k, v in times.items() if v},
        seconds=time.monotonic() - start)
