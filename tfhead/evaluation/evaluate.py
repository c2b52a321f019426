"""The paper's self-reenactment protocol on held-out videos (paper §4.1; docs/design.md §8).

    meta = meta_learning.load_meta_model("runs/p256")
    result = evaluate(meta, "/data/vox2_test_256", EvalOptions(shots=(1, 8, 32)))
    print(markdown_table(result))

For each held-out video (a preprocessed folder, the same records meta-learning reads): its last
`targets` frames are the targets; K shots are spread evenly over the frames before them (so shots
and targets never overlap — the paper takes the shots from one part of a video and the targets
from another). Each target is rendered from its own landmarks by the feed-forward model (ψ = P ê of
the K shots) and by the fine-tuned one, and compared with the real frame: SSIM, PSNR, CSIM (the
identity descriptor of the generated frame against the real one, both aligned on the target's
landmarks), landmark error (landmarks detected on the generated frame against the target's) and,
with InceptionV3 weights, FID between all generated and all real targets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import tensorflow as tf

from tfhead import errors
from tfhead.data import records
from tfhead.evaluation import metrics
from tfhead.face import landmark_image, landmarks
from tfhead.face import shots as shots_lib
from tfhead.face.source import PersonSource
from tfhead.runtime import format_duration
from tfhead.training import finetune, meta_learning

log = logging.getLogger("tfhead")

MODES = ("feed-forward", "fine-tuned")
METRICS = ("ssim", "psnr", "csim", "landmark_error")
# The paper's FID (Table 1 and §4.3) at 1 / 8 / 32 shots, for the same protocol on the same data.
PAPER_FID = {
    "voxceleb1": {"feed-forward": {}, "fine-tuned": {1: 43.0, 8: 38.0, 32: 29.5}},
    "voxceleb2": {"feed-forward": {}, "fine-tuned": {1: 48.5, 8: 42.2, 32: 30.6}},
}


class EvaluationError(errors.TfheadError, ValueError):
    """Held-out data that cannot be evaluated as asked."""


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """The protocol's choices.

    Attributes:
      shots: The K values to evaluate.
      targets: Target frames per video (its last frames).
      modes: Any of "feed-forward" (ψ = P ê, no training) and "fine-tuned".
      finetune_steps: Fine-tuning steps per video and K (default: the config's finetune_steps).
      max_videos: Evaluate at most this many videos (None: all).
      seed: Fine-tuning seed.
    """

    shots: tuple[int, ...] = (1, 8, 32)
    targets: int = 8
    modes: tuple[str, ...] = ("feed-forward", "fine-tuned")
    finetune_steps: int | None = None
    max_videos: int | None = None
    seed: int = 0

    def __post_init__(self):
        if not self.shots or min(self.shots) < 1 or max(self.shots) > shots_lib.MAX_SHOTS:
            raise ValueError(f"shots must be in 1…{shots_lib.MAX_SHOTS}, got {self.shots}.")
        if self.targets < 1:
            raise ValueError(f"targets must be >= 1, got {self.targets}.")
        unknown = set(self.modes) - set(MODES)
        if unknown or not self.modes:
            raise ValueError(f"Unknown modes {sorted(unknown)}; valid: {list(MODES)}.")


def split_video(num_frames: int, shots: int, targets: int) -> tuple[np.ndarray, np.ndarray]:
    """(shot indices, target indices): the last `targets` frames are targets; `shots` frames are
    spread evenly over the ones before them.

    Raises:
      EvaluationError: fewer than shots + targets frames.
    """
    if num_frames < shots + targets:
        raise EvaluationError(f"{num_frames} frames cannot give {shots} shots and {targets} "
                              f"targets; preprocess with --frames_per_video >= {shots + targets}.")
    first = num_frames - targets
    shot_indices = np.unique(np.linspace(0, first - 1, shots).round().astype(int))
    if len(shot_indices) < shots:  # only when first == shots, and then all of them
        shot_indices = np.arange(shots)
    return shot_indices, np.arange(first, num_frames)


def held_out_videos(data: str, resolution: int):
    """Yields each stored video: {"key", "frames" [N, R, R, 3] uint8, "landmarks" [N, 68, 2]}."""
    files = records.record_files(data)
    for serialized in tf.data.TFRecordDataset(files):
        video = records.parse_video(serialized)
        if int(video["resolution"]) != resolution:
            raise EvaluationError(f"{data} holds {int(video['resolution'])}² crops; the model "
                                  f"is {resolution}². Preprocess the held-out set at --resolution="
                                  f"{resolution}.")
        frames = np.stack([tf.io.decode_jpeg(j, channels=3).numpy()
                           for j in video["frames"].numpy()])
        yield {"key": video["video_key"].numpy().decode(), "frames": frames,
               "landmarks": video["landmarks"].numpy()}


@dataclasses.dataclass
class EvalResult:
    """Per (mode, K): the mean of each metric, FID, and how many frames had no face."""

    rows: list[dict]
    videos: int
    skipped: list[str]
    options: EvalOptions
    seconds: float

    def to_dict(self) -> dict:
        return {"rows": self.rows, "videos": self.videos, "skipped": self.skipped,
                "options": dataclasses.asdict(self.options), "seconds": round(self.seconds, 1)}


def _person(video: dict, indices: np.ndarray) -> shots_lib.PersonFrames:
    frames, points = video["frames"][indices], video["landmarks"][indices]
    drawn = landmark_image.draw_batch(points, frames.shape[1])
    return shots_lib.PersonFrames(frames, points.astype(np.float32), drawn,
                                  [f"{video['key']}#{i}" for i in indices],
                                  source=PersonSource(frames[0], points[0], frames.shape[1]))


def evaluate(meta: meta_learning.MetaModel, records: str, options: EvalOptions = EvalOptions(),
             content_networks=None, inception: metrics.InceptionFeatures | None = None,
             detector: landmarks.LandmarkDetector | None = None,
             finetune_config=None) -> EvalResult:
    """Runs the protocol (see the module docstring) on every video of `records`.

    Args:
      meta: The meta-learned model.
      records: A preprocessed held-out folder (train/preprocess.py) at the model's resolution.
      content_networks: For fine-tuning with content_loss vgg / random_vgg.
      inception: InceptionV3 features for FID (None: no FID).
      finetune_config: Config of fine-tuning (default: the meta config).
    """
    start = time.monotonic()
    detector = detector or landmarks.LandmarkDetector()
    identity = metrics.FaceIdentity(detector)
    r = meta.config.model.resolution
    per_frame: dict[tuple[str, int], dict[str, list[float]]] = {}
    features: dict[tuple[str, int], list[np.ndarray]] = {}
    real_features: list[np.ndarray] = []
    videos, skipped = 0, []
    tuning = None
    for video in held_out_videos(records, r):
        if options.max_videos is not None and videos >= options.max_videos:
            break
        n = len(video["frames"])
        if n < max(options.shots) + options.targets:
            skipped.append(f"{video['key']}: {n} frames < {max(options.shots)} shots + "
                           f"{options.targets} targets")
            continue
        videos += 1
        _, target_indices = split_video(n, 1, options.targets)
        targets = video["frames"][target_indices]
        target_points = video["landmarks"][target_indices]
        real_identity = identity.descriptors(targets, target_points)
        if inception is not None:
            real_features.append(inception(targets))
        for k in options.shots:
            shot_indices, _ = split_video(n, k, options.targets)
            person = _person(video, shot_indices)
            for mode in options.modes:
                if mode == "fine-tuned":
                    if tuning is None:  # one traced step for every video
                        tuning = finetune.FineTuning(meta, finetune_config, content_networks)
                    model = tuning(person, video["key"], options.finetune_steps, options.seed,
                                   log_every=10**9, copy=False)
                else:
                    model = finetune.feed_forward(meta, person, video["key"])
                generated = model.render(target_points)
                _score(per_frame.setdefault((mode, k), {m: [] for m in METRICS}), generated,
                       targets, target_points, real_identity, identity, detector)
                if inception is not None:
                    features.setdefault((mode, k), []).append(inception(generated))
        elapsed = time.monotonic() - start
        total = options.max_videos
        log.info("evaluate: %d video(s) done, %.1f s per video%s", videos, elapsed / videos,
                 f", ETA {format_duration(elapsed / videos * (total - videos))}" if total else "")
    if videos == 0:
        raise EvaluationError(f"No video of {records} has {max(options.shots)} + "
                              f"{options.targets} frames: {'; '.join(skipped[:3])}.")
    rows = _summarize(per_frame, features,
                      np.concatenate(real_features) if real_features else None)
    return EvalResult(rows, videos, skipped, options, time.monotonic() - start)


def _score(scores: dict[str, list[float]], generated: np.ndarray, targets: np.ndarray,
           target_points: np.ndarray, real_identity: np.ndarray, identity: metrics.FaceIdentity,
           detector: landmarks.LandmarkDetector) -> None:
    """Appends the per-frame metrics of `generated` against `targets` to `scores`."""
    scores["ssim"] += metrics.ssim(generated, targets).tolist()
    scores["psnr"] += metrics.psnr(generated, targets).tolist()
    scores["csim"] += metrics.csim(identity.descriptors(generated, target_points),
                                   real_identity).tolist()
    scores["landmark_error"] += metrics.landmark_error(generated, target_points,
                                                       detector).tolist()


def _summarize(per_frame: dict, features: dict, real: np.ndarray | None) -> list[dict]:
    """One row per (mode, K): each metric's mean over the frames where it is defined, the frames
    without a face, and FID when InceptionV3 features were collected."""
    rows = []
    for (mode, k), scores in per_frame.items():
        row = {"mode": mode, "shots": k, "frames": len(scores["ssim"])}
        for name in METRICS:
            values = np.asarray(scores[name], np.float64)
            finite = values[np.isfinite(values)]
            row[name] = float(finite.mean()) if len(finite) else None
            if name in ("csim", "landmark_error"):
                row[f"{name}_no_face"] = int(len(values) - len(finite))
        row["fid"] = (metrics.fid(np.concatenate(features[(mode, k)]), real)
                      if real is not None and len(real) >= 2 else None)
        rows.append(row)
    rows.sort(key=lambda row: (MODES.index(row["mode"]), row["shots"]))
    return rows


def markdown_table(result: EvalResult, paper: str | None = None) -> str:
    """The result as a markdown table; `paper` ("voxceleb1"/"voxceleb2") adds the paper's FID
    beside ours (only meaningful when the held-out set is that corpus's test split)."""
    def number(value, digits):
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else f"{value:.{digits}f}"

    header = ["mode", "K", "frames", "SSIM ↑", "PSNR dB ↑", "CSIM ↑", "landmark error ↓", "FID ↓"]
    if paper:
        header.append(f"paper FID ({paper})")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.rows:
        no_face = row["landmark_error_no_face"]
        cells = [row["mode"], str(row["shots"]), str(row["frames"]), number(row["ssim"], 3),
                 number(row["psnr"], 2), number(row["csim"], 3),
                 number(row["landmark_error"], 3) + (f" ({no_face} no face)" if no_face else ""),
                 number(row["fid"], 1)]
        if paper:
            cells.append(number(PAPER_FID[paper].get(row["mode"], {}).get(row["shots"]), 1))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
