"""Distilling a person model into a real-time student generator.

A person model's G costs tens of GMACs per 256² frame (docs/design.md §7). For one person nothing
of G's generality is needed at inference, so a fine-tuned (or feed-forward) person model — the
*teacher* — is distilled into a `StudentGenerator` (the `edge` student preset, ~1.6 GMAC
at 256²) that learns to reproduce the teacher's frames from the same inputs: the landmark images,
and for a warp-guided teacher (`ModelConfig.warp_guidance`) the source crop warped to the same
landmarks (`PersonModel.model_inputs`), so its student is warp-guided too and keeps its source:

    teacher = PersonModel.load("people/astronaut")
    student = distill(teacher, "work/astronaut_student", DistillOptions(
        student=config.get_student_preset("edge"), steps=4000))
    student.save("people/astronaut_student")   # a person model like any other (mode "student")

**What the student sees.** Landmark tracks around the person's own geometry and the driving tracks
users give (`distillation_tracks`), mixed by `DistillOptions.track_mix`:

* *own*: the person's reference landmarks moving (`motion.motion_track`: mouth, blinks, yaw,
  roll, scale, drift) at amplitudes from 0.5× to 2× the defaults;
* *relative*: talking procedural heads — and the user's driving videos, if given — retargeted onto
  the person exactly as the runner's default relative motion does (`driving.MotionMapper`);
* *absolute*: the procedural heads' own geometry, as absolute motion draws it.

Every clip also gets landmark-detector-like jitter (`DistillOptions.jitter`). The teacher
renders each landmark set once into a pool in the work directory (`pool/`, filled in
chunks and resumed where it stopped); the held-out tracks (other seeds, other procedural heads, the
last fifth of each driving video) are rendered too and only ever evaluated. The pool keeps
landmarks and frames; the student's inputs are made from the landmarks for every batch
(rasterized, and warped for a warp-guided student: ~1 ms per 128² frame).

**Losses.** L1 between student and teacher pixels (`weight_pixel_l1`) plus the perceptual-feature
term of L_CNT: L1 between VGG19 activations at conv1_1 … conv5_1 (`weight_perceptual`), from the
user's VGG19 weight file (`perceptual="vgg19"`; nothing is downloaded). `"random_vgg19"` (the same
network with random weights) and `"none"` exist for smoke tests and CPU benchmarks and are named
in logs and in the student's record.

**Resuming.** Student, optimizer (its cosine learning-rate schedule included) and step are
checkpointed in the work directory; the batch of step s is drawn from a generator seeded by
(seed, s), so a resumed run continues the same sequence. Rerunning with other options in the same
work directory is refused (`loop.check_run_file`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfhead import errors, runtime
from tfhead.animation import driving
from tfhead.config import StudentConfig
from tfhead.evaluation import metrics
from tfhead.face import landmark_image, landmarks, motion, procedural
from tfhead.io import fileio, outputs
from tfhead.io.fileio import write_json_atomic
from tfhead.models.person import PersonModel, render_frames
from tfhead.models.student import StudentGenerator
from tfhead.training import feature_networks, loop, objectives

log = logging.getLogger("tfhead")

PERCEPTUAL_LOSSES = ("vgg19", "random_vgg19", "none")
TRACK_KINDS = ("own", "relative", "absolute")


class DistillError(errors.TfheadError, ValueError):
    """Bad distillation inputs (teacher, student config, driving videos, work directory)."""


@dataclasses.dataclass(frozen=True)
class DistillOptions:
    """How a student is distilled (see the module docstring).

    Attributes:
      student: The student's architecture; its resolution and warp guidance are set to the
        teacher's.
      steps: Student updates.
      batch_size: Landmark sets per update.
      learning_rate: Adam's initial rate; it decays along a cosine to 1% at `steps`.
      adam_beta1, adam_beta2: Adam's betas.
      weight_pixel_l1: Weight of the pixel L1.
      weight_perceptual: Weight of the VGG19 feature L1 (the VGG19 weight of L_CNT,
        docs/design.md §4).
      perceptual: "vgg19" (needs `vgg19_weights`), "random_vgg19" or "none" (smoke tests only).
      vgg19_weights: The VGG19 weight file (see `feature_networks`).
      pool_size: Training landmark sets rendered by the teacher.
      heldout_size: Held-out landmark sets (evaluation only).
      track_mix: Shares of the (own, relative, absolute) tracks.
      clip_frames: Frames per generated track (25 fps).
      jitter: Largest per-frame landmark noise of a clip, in inter-ocular distances.
      drivers: Driving videos whose (retargeted) tracks join the relative share.
      log_every, eval_every, checkpoint_every: In steps (0 = never, except at the end).
      seed: Seed of tracks, initialisation and batch order.
    """

    student: StudentConfig
    steps: int = 4000
    batch_size: int = 8
    learning_rate: float = 2e-3
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_pixel_l1: float = 1.0
    weight_perceptual: float = 1e-2
    perceptual: str = "vgg19"
    vgg19_weights: str | None = None
    pool_size: int = 4096
    heldout_size: int = 64
    track_mix: tuple[float, float, float] = (0.5, 0.35, 0.15)
    clip_frames: int = 50
    jitter: float = 0.02
    drivers: tuple[str, ...] = ()
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 250
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "pool_size", "heldout_size", "clip_frames"):
            if getattr(self, name) < 1:
                raise DistillError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise DistillError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not 0 <= self.jitter < 0.5:
            raise DistillError(f"jitter must be in [0, 0.5), got {self.jitter}.")
        if not self.learning_rate > 0:
            raise DistillError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.weight_pixel_l1 < 0 or self.weight_perceptual < 0:
            raise DistillError("Loss weights must be >= 0.")
        if self.perceptual not in PERCEPTUAL_LOSSES:
            raise DistillError(f"perceptual must be one of {PERCEPTUAL_LOSSES}, got "
                               f"{self.perceptual!r}.")
        if (len(self.track_mix) != len(TRACK_KINDS) or min(self.track_mix) < 0
            or not sum(self.track_mix) > 0):
            raise DistillError(f"track_mix must be {len(TRACK_KINDS)} non-negative shares of "
                               f"{TRACK_KINDS} with a positive sum, got {self.track_mix}.")
        if self.track_mix[1] == 0 and self.drivers:
            raise DistillError("Driving videos join the relative share of track_mix, which is 0.")


# ---------------------------------------------------------------------------------------------
# Landmark tracks.

def video_tracks(paths: Sequence[str], resolution: int,
                 detector: landmarks.LandmarkDetector) -> list[np.ndarray]:
    """Landmarks `[T, 68, 2]` of the face in each driving video, in its crop at `resolution`
    (frames without a face are dropped).

    Raises:
      DistillError: a video cannot be read or shows no face.
    """
    tracks = []
    for path in paths:
        try:
            source = driving.DrivingSource(path, resolution, detector, redetect_every=1)
            points = [item.landmarks for item in source if item.landmarks is not None]
        except driving.DrivingError as e:
            raise DistillError(str(e)) from None
        if len(points) < 2:
            raise DistillError(f"{path}: {len(points)} frame(s) with a face; a driving video for "
                               "distillation needs a visible face in most frames.")
        tracks.append(np.asarray(points, np.float32))
    return tracks


def _clips(total: int, clip_frames: int) -> list[int]:
    return [min(clip_frames, total - start) for start in range(0, total, clip_frames)]


def distillation_tracks(reference: np.ndarray, resolution: int, count: int, seed: int,
                        track_mix: Sequence[float] = (0.5, 0.35, 0.15), clip_frames: int = 50,
                        driver_tracks: Sequence[np.ndarray] = (),
                        jitter: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """`count` landmark sets for a person with reference landmarks `reference` `[68, 2]`.

    Every clip gets independent per-point, per-frame Gaussian noise with a standard deviation drawn
    from [0, `jitter`] × the reference's inter-ocular distance: the frame-to-frame noise of a
    landmark detector on a real driving video (dlib's is ~1–2% of it), which generated tracks lack.

    Returns:
      (points `[count, 68, 2]` float32 in crop pixels, kind `[count]` int: index in TRACK_KINDS).
      Different seeds give different tracks and different procedural heads.
    """
    rng = np.random.default_rng(seed)
    shares = np.asarray(track_mix, np.float64) / np.sum(track_mix)
    sizes = np.floor(shares * count).astype(int)
    sizes[int(np.argmax(shares))] += count - sizes.sum()
    points, kinds = [], []

    ocular = float(np.linalg.norm(reference[36] - reference[45]))

    def add(track, kind):
        sigma = rng.uniform(0.0, jitter) * ocular
        track = np.asarray(track, np.float64) + rng.normal(0.0, sigma, np.shape(track))
        points.append(track.astype(np.float32))
        kinds.append(np.full(len(track), kind))

    for frames in _clips(sizes[0], clip_frames) if sizes[0] else []:
        add(motion.motion_track(reference, frames, seed=int(rng.integers(1 << 31)),
                                amplitude=float(rng.uniform(0.5, 2.0))), 0)
    # Relative motion: procedural heads, and the user's driving videos when given (half the share).
    from_videos = sizes[1] // 2 if len(driver_tracks) else 0
    for frames in _clips(sizes[1] - from_videos, clip_frames) if sizes[1] > from_videos else []:
        identity = procedural.random_identity(int(rng.integers(1 << 31)))
        driver = procedural.procedural_track(identity, frames, resolution,
                                             seed=int(rng.integers(1 << 31)))
        add(_retargeted(reference, resolution, driver), 1)
    for frames in _clips(from_videos, clip_frames) if from_videos else []:
        track = driver_tracks[int(rng.integers(len(driver_tracks)))]
        start = int(rng.integers(max(1, len(track) - frames + 1)))
        clip = track[start:start + frames]
        add(_retargeted(reference, resolution, np.resize(clip, (frames, 68, 2))), 1)
    for frames in _clips(sizes[2], clip_frames) if sizes[2] else []:
        identity = procedural.random_identity(int(rng.integers(1 << 31)))
        add(procedural.procedural_track(identity, frames, resolution,
                                        seed=int(rng.integers(1 << 31))), 2)
    return np.concatenate(points), np.concatenate(kinds)


def _retargeted(reference: np.ndarray, resolution: int, driver: np.ndarray) -> np.ndarray:
    mapper = driving.MotionMapper("relative", reference, resolution)
    return np.stack([mapper.landmarks(p) for p in driver])


def split_driver_tracks(tracks: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training, held-out): the first four fifths and the last fifth of each driving track."""
    cut = [max(1, int(round(0.8 * len(t)))) for t in tracks]
    return ([t[:c] for t, c in zip(tracks, cut)],
            [t[c:] for t, c in zip(tracks, cut) if len(t) > c])


# ---------------------------------------------------------------------------------------------
# The teacher's pool.

class Pool:
    """Landmark sets and the teacher's frames for them, in `directory`, filled resumably.

    Files: `landmarks.npy` `[N, 68, 2]`, `kinds.npy` `[N]`, `frames.npy` `[N, R, R, 3]` uint8 (a
    memory map) and `filled.json` (how many frames are rendered; advanced only after they are
    flushed, so an interrupted fill restarts at the first missing frame).
    """

    def __init__(self, directory: str, points: np.ndarray, kinds: np.ndarray, resolution: int):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        landmarks_path = os.path.join(directory, "landmarks.npy")
        if os.path.isfile(landmarks_path):
            stored = np.load(landmarks_path)
            if stored.shape != points.shape or not np.allclose(stored, points, atol=1e-3):
                raise DistillError(f"{directory} holds the pool of other tracks; use a new work "
                                   "directory or the same options.")
        else:
            _save_npy(landmarks_path, points)
            _save_npy(os.path.join(directory, "kinds.npy"), kinds)
        self.points, self.kinds = points, kinds
        frames_path = os.path.join(directory, "frames.npy")
        shape = (len(points), resolution, resolution, 3)
        if os.path.isfile(frames_path):
            self.frames = np.load(frames_path, mmap_mode="r+")
            if self.frames.shape != shape:
                raise DistillError(f"{frames_path} is {self.frames.shape}, expected {shape}.")
        else:
            self.frames = np.lib.format.open_memmap(frames_path + ".partial", "w+", np.uint8, shape)
            del self.frames
            os.replace(frames_path + ".partial", frames_path)
            self.frames = np.load(frames_path, mmap_mode="r+")
        self._filled_path = os.path.join(directory, "filled.json")
        self.filled = 0
        if os.path.isfile(self._filled_path):
            with open(self._filled_path) as f:
                self.filled = int(json.load(f)["count"])

    def __len__(self) -> int:
        return len(self.points)

    def fill(self, render: Callable[[np.ndarray], np.ndarray], chunk: int = 16,
             what: str = "pool") -> int | None:
        """Renders the missing frames with `render` (landmarks `[n, 68, 2]` → frames uint8, as
        `PersonModel.render`).

        Returns None when the pool is complete, or the signal that stopped it (what was rendered
        is kept)."""
        if self.filled >= len(self):
            return None
        log.info("Teacher renders the %s: %d of %d frames to go.", what, len(self) - self.filled,
                 len(self))
        start, begun = self.filled, time.monotonic()
        with runtime.Interrupts() as interrupts:
            while self.filled < len(self):
                end = min(self.filled + chunk, len(self))
                self.frames[self.filled:end] = render(self.points[self.filled:end])
                self.frames.flush()
                self.filled = end
                write_json_atomic(self._filled_path, {"count": self.filled})
                done = self.filled - start
                if done % (chunk * 8) == 0 or self.filled == len(self):
                    rate = done / max(time.monotonic() - begun, 1e-9)
                    log.info("%s: %d/%d frames | %.3g frames/s | ETA %s", what, self.filled,
                             len(self), rate,
                             runtime.format_duration((len(self) - self.filled) / rate))
                if interrupts.requested is not None and self.filled < len(self):
                    log.warning("Stopped while rendering the %s (%d/%d frames kept); run the "
                                "same command to continue.", what, self.filled, len(self))
                    return interrupts.requested
        return None


def _save_npy(path: str, array: np.ndarray) -> None:
    tmp = fileio.tmp_name(path)  # ends in .npy, so np.save keeps the name
    np.save(tmp, array)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Training.

def perceptual_network(kind: str, resolution: int, weights: str | None):
    """The VGG19 feature network of the perceptual loss, or None for `kind="none"`."""
    if kind == "none":
        return None
    return feature_networks.FeatureNetwork("vgg19", resolution, weights,
                                           random_weights=kind == "random_vgg19")


class Distiller:
    """The student's update: one Adam step on the weighted losses against the teacher's frames."""

    def __init__(self, student: StudentGenerator, options: DistillOptions, features=None):
        self.student, self.options, self.features = student, options, features
        schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, options.steps,
                                                          alpha=0.01)
        self.optimizer = keras.optimizers.Adam(schedule, beta_1=options.adam_beta1,
                                               beta_2=options.adam_beta2)
        self.variables = student.trainable_variables
        self.optimizer.build(self.variables)
        self.step = tf.function(self._step, autograph=False)  # no tensor-dependent Python flow

    def _step(self, inputs, teacher_frames):
        """`inputs`: the student's input (landmark images, or for a warp-guided student the
        tuple (landmark images, warps)), in [-1, 1] like `teacher_frames`."""
        with tf.GradientTape() as tape:
            fake = self.student(inputs, training=True)
            terms = objectives.distillation_terms(
                teacher_frames, fake, self.options.weight_pixel_l1,
                self.options.weight_perceptual, self.features)
            loss = tf.reduce_mean(terms["loss/total"])
        gradients = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        return {k: tf.reduce_mean(v) for k, v in terms.items()}


def compare(student_frames: np.ndarray, teacher_frames: np.ndarray) -> dict[str, float]:
    """Student vs teacher on uint8 frames: mean |diff| (grey levels), SSIM and PSNR (dB)."""
    student_frames, teacher_frames = np.asarray(student_frames), np.asarray(teacher_frames)
    difference = np.abs(student_frames.astype(np.float32) - teacher_frames.astype(np.float32))
    psnr = metrics.psnr(student_frames, teacher_frames)
    return {"mean_abs": float(difference.mean()),
            "ssim": float(np.mean(metrics.ssim(student_frames, teacher_frames))),
            "psnr": float(np.mean(np.minimum(psnr, 100.0)))}


@dataclasses.dataclass
class DistillResult:
    """The distilled person model (None when interrupted) and where the run stopped."""

    model: PersonModel | None
    step: int
    heldout: dict[str, float]
    interrupted: int | None = None


def student_config_for(teacher: PersonModel, student: StudentConfig) -> StudentConfig:
    """The student's config at the teacher's resolution, warp-guided when the teacher is (it is
    fed the teacher's inputs)."""
    if teacher.student is not None:
        raise DistillError(f"{teacher.name} is already a student; distill the fine-tuned or "
                           "feed-forward model it came from.")
    try:
        return dataclasses.replace(student, resolution=teacher.resolution,
                                   warp_guidance=teacher.warp_guidance)
    except ValueError as e:
        raise DistillError(f"The {student.preset} student does not fit the teacher's "
                           f"{teacher.resolution}² resolution: {e}") from None


def distill(teacher: PersonModel, workdir: str, options: DistillOptions,
            detector: landmarks.LandmarkDetector | None = None,
            on_step: Callable[[int, dict], None] | None = None) -> DistillResult:
    """Distills (or resumes distilling) `teacher` into a student person model.

    Args:
      teacher: A fine-tuned or feed-forward person model.
      workdir: Pool, checkpoints and the run's settings; reuse it to resume.
      options: See `DistillOptions`.
      detector: Landmark detector for `options.drivers` (made when needed).
      on_step: Called with (step, metrics) after every update.
    Returns:
      The student (mode "student", its record holding the teacher, the settings and the held-out
      numbers before and after), or `model=None` if a signal stopped the run (checkpoint saved).
    Raises:
      DistillError: bad inputs or a work directory of another run.
      outputs.OutputPathError: `workdir` is a file or a folder of something else.
      feature_networks.FeatureWeightsError: `perceptual="vgg19"` without usable weights.
      loop.TrainingDivergedError: a loss became NaN/Inf.
    """
    student_config = student_config_for(teacher, options.student)
    _start_run(teacher, workdir, options, student_config)
    features = perceptual_network(options.perceptual, teacher.resolution, options.vgg19_weights)
    pool, heldout, stopped = _teacher_pools(teacher, workdir, options, detector)
    if stopped is not None:
        return DistillResult(None, 0, {}, stopped)
    run = _StudentRun(teacher, student_config, workdir, options, features, heldout)
    stopped = run.train(pool, on_step)
    if stopped is not None:
        return DistillResult(None, run.step, {}, stopped)
    return run.result(len(pool))


def _start_run(teacher: PersonModel, workdir: str, options: DistillOptions,
               student_config: StudentConfig) -> None:
    """Checks the work directory and records the run's settings (a rerun with others is refused)."""
    outputs.workdir_output(workdir, "distill.json", flag="--workdir",
                           kind="distillation work directory",
                           inputs={"--drivers": list(options.drivers)})
    os.makedirs(workdir, exist_ok=True)
    settings = {"teacher": {"name": teacher.name, "mode": teacher.mode, "preset": teacher.preset,
                            "resolution": teacher.resolution,
                            "record": {k: v for k, v in teacher.record.items()
                                       if isinstance(v, (str, int, float))}},
                "student": student_config.to_dict(),
                "options": {k: v for k, v in dataclasses.asdict(options).items()
                            if k not in ("student", "log_every", "eval_every",
                                         "checkpoint_every", "vgg19_weights")}}
    try:
        loop.check_run_file(os.path.join(workdir, "distill.json"), settings,
                            "teacher or distillation settings")
    except loop.TrainingError as e:
        raise DistillError(str(e)) from None
    if options.perceptual != "vgg19":
        log.warning("perceptual=%s: a smoke-test/benchmark loss, NOT the VGG19 perceptual loss "
                    "(recorded in the student's record).", options.perceptual)


def _teacher_pools(teacher: PersonModel, workdir: str, options: DistillOptions,
                   detector: landmarks.LandmarkDetector | None):
    """(training pool, held-out pool, None) with every frame rendered by the teacher, or
    (…, signal) when a signal stopped the rendering (what was rendered is kept)."""
    r = teacher.resolution
    train_drivers, heldout_drivers = [], []
    if options.drivers:
        tracks = video_tracks(options.drivers, r, detector or landmarks.LandmarkDetector())
        train_drivers, heldout_drivers = split_driver_tracks(tracks)
    reference = np.asarray(teacher.reference_landmarks, np.float32)
    points, kinds = distillation_tracks(reference, r, options.pool_size, options.seed,
                                        options.track_mix, options.clip_frames, train_drivers,
                                        options.jitter)
    heldout_points, heldout_kinds = distillation_tracks(
        reference, r, options.heldout_size, options.seed + 1_000_003, options.track_mix,
        min(options.clip_frames, max(1, options.heldout_size // 4)), heldout_drivers,
        options.jitter)
    pool = Pool(os.path.join(workdir, "pool"), points, kinds, r)
    heldout = Pool(os.path.join(workdir, "heldout"), heldout_points, heldout_kinds, r)
    for part, what in ((heldout, "held-out set"), (pool, "training pool")):
        stopped = part.fill(teacher.render, what=what)
        if stopped is not None:
            return pool, heldout, stopped
    return pool, heldout, None


class _StudentRun:
    """The student, its optimizer and checkpoint (restored when the workdir has one), and the
    held-out set it is measured on."""

    def __init__(self, teacher: PersonModel, student_config: StudentConfig, workdir: str,
                 options: DistillOptions, features, heldout: Pool):
        self.teacher, self.student_config, self.options = teacher, student_config, options
        self.workdir, self.heldout = workdir, heldout
        self.r = teacher.resolution
        self.heldout_inputs = teacher.model_inputs(heldout.points)
        self.heldout_frames = np.asarray(heldout.frames)
        keras.utils.set_random_seed(options.seed)
        self.student = StudentGenerator(**student_config.generator_kwargs(), name="student")
        self.student.build()
        self.distiller = Distiller(self.student, options, features)
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                    name="training_seconds")
        checkpoint = tf.train.Checkpoint(step=self._step, student=self.student,
                                         optimizer=self.distiller.optimizer,
                                         training_seconds=self._seconds)
        self.manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, "checkpoints"),
                                                  max_to_keep=2)
        if self.manager.latest_checkpoint:
            checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            log.info("Resumed from %s (step %d).", self.manager.latest_checkpoint, self.step)
        initial_path = os.path.join(workdir, "heldout_initial.json")
        if not os.path.isfile(initial_path):
            write_json_atomic(initial_path, self._heldout_numbers())
        with open(initial_path) as f:
            self.initial = json.load(f)
        self.steplog = loop.StepLog(
            "distill", self.step, options.steps, options.batch_size, options.log_every,
            ("loss/total", "loss/pixel_l1", "loss/perceptual"),
            last_saved=self.step if self.manager.latest_checkpoint else None)

    @property
    def step(self) -> int:
        return int(self._step)

    def _heldout_numbers(self) -> dict:
        return compare(render_frames(self.student, self.heldout_inputs), self.heldout_frames)

    def train(self, pool: Pool, on_step: Callable[[int, dict], None] | None = None) -> int | None:
        """Trains to `options.steps`; returns the signal that stopped it (checkpoint saved)."""
        options, r = self.options, self.r
        self.steplog.on_step = on_step
        log.info("Distilling %s (%s, %s) into a %s student (%d parameters) at %d²: pool %d, held "
                 "out %d, steps %d → %d, batch %d, perceptual %s; workdir %s.", self.teacher.name,
                 self.teacher.mode, self.teacher.preset, self.student_config.preset,
                 self.student.count_params(), r, len(pool), len(self.heldout), self.step,
                 options.steps, options.batch_size, options.perceptual, self.workdir)
        start_time, start_seconds = time.monotonic(), float(self._seconds)
        with runtime.Interrupts() as interrupts:
            while self.step < options.steps:
                current = self.step + 1
                rng = np.random.default_rng([options.seed, current])
                chosen = np.sort(rng.choice(len(pool), size=min(options.batch_size, len(pool)),
                                            replace=False))
                inputs = tuple(tf.constant(landmark_image.to_model_range(x))
                               for x in self.teacher.model_inputs(pool.points[chosen]))
                frames = landmark_image.to_model_range(np.asarray(pool.frames[chosen]))
                self.steplog.record(current, self.distiller.step(
                    inputs if self.student.warp_guidance else inputs[0], tf.constant(frames)))
                self._step.assign(current)
                self._seconds.assign(start_seconds + time.monotonic() - start_time)
                if (options.eval_every and current % options.eval_every == 0
                        and current < options.steps):
                    log.info("distill step %d held-out vs teacher: %s", current,
                             _format(self._heldout_numbers()))
                if interrupts.requested is not None:
                    path = self._save(current)
                    log.warning("Stopped at step %d; saved %s. Run the same command to resume.",
                                current, path)
                    return interrupts.requested
                if options.checkpoint_every and current % options.checkpoint_every == 0:
                    self._save(current)
        if self.manager.latest_checkpoint is None or self.step != self.steplog.last_saved:
            self._save(self.step)
        return None

    def _save(self, step: int) -> str:
        """Saves a checkpoint after checking the interval's losses and the weights are finite."""
        self.steplog.check(step)
        loop.check_finite_weights(self.student.trainable_variables, step, self.steplog.last_saved)
        path = self.manager.save(checkpoint_number=step)
        self.steplog.saved(step)
        return path

    def result(self, pool_size: int) -> DistillResult:
        """The student person model with its record: settings, held-out numbers, history."""
        student_frames = render_frames(self.student, self.heldout_inputs)
        final = compare(student_frames, self.heldout_frames)
        by_kind = {}
        for index, kind in enumerate(TRACK_KINDS):
            chosen = self.heldout.kinds == index
            if chosen.any():
                by_kind[kind] = compare(student_frames[chosen], self.heldout_frames[chosen])
        log.info("Held-out vs teacher: before %s; after %s.", _format(self.initial),
                 _format(final))
        teacher, options = self.teacher, self.options
        record = {
            "teacher": teacher.name, "teacher_mode": teacher.mode,
            "teacher_preset": teacher.preset, "student_preset": self.student_config.preset,
            "steps": self.step, "batch": options.batch_size, "pool": pool_size,
            "heldout": len(self.heldout), "perceptual": options.perceptual,
            "track_mix": list(options.track_mix), "drivers": list(options.drivers),
            "jitter": options.jitter, "seconds": round(float(self._seconds), 1),
            "heldout_initial": self.initial, "heldout_final": final,
            "heldout_by_kind": by_kind, "history": self.steplog.history}
        model = PersonModel(teacher.config, self.student, teacher.name,
                            np.asarray(teacher.reference_landmarks, np.float32), "student",
                            record, self.student_config, teacher.source)
        return DistillResult(model, self.step, final)


def _format(numbers: dict) -> str:
    return (f"mean |diff| {numbers['mean_abs']:.2f}/255, SSIM {numbers['ssim']:.4f}, "
            f"PSNR {numbers['psnr']:.2f} dB")
