"""What every training loop shares (meta-learning, fine-tuning, distillation): the per-step
bookkeeping (`StepLog`: metrics read back, NaN/Inf checks, running means, progress lines with
rates and ETA, history), the run file that refuses a rerun with other settings, preview grids,
and the errors a run stops with.

Nothing here reads flags; entry points pass plain values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Callable, Mapping

import numpy as np

from tfhead import errors
from tfhead.io import fileio
from tfhead.runtime import format_duration

log = logging.getLogger("tfhead")


class TrainingError(errors.TfheadError, RuntimeError):
    """A run that cannot start or continue, with a message that says what to do."""


class TrainingDivergedError(TrainingError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


class Progress:
    """Periodic log lines: step, steps/s and images/s over the last interval, ETA, loss values."""

    def __init__(self, name: str, start_step: int, total_steps: int, images_per_step: int):
        self.name, self.total = name, total_steps
        self.images_per_step = images_per_step
        self._last_step, self._last_time = start_step, time.monotonic()

    def rates(self, step: int) -> tuple[float, float]:
        """(steps/s, images/s) since the previous call, and restarts the interval."""
        now = time.monotonic()
        steps_per_second = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        return steps_per_second, steps_per_second * self.images_per_step

    def line(self, step: int, steps_per_second: float, images_per_second: float,
             metrics: Mapping[str, float], keys: tuple[str, ...]) -> str:
        eta = (self.total - step) / steps_per_second if steps_per_second > 0 else math.inf
        values = " ".join(f"{k.split('/', 1)[-1]}={metrics[k]:.4g}" for k in keys if k in metrics)
        return (f"{self.name} step {step}/{self.total} ({100.0 * step / self.total:.1f}%) | "
                f"{steps_per_second:.3g} steps/s, {images_per_second:.3g} images/s | "
                f"ETA {format_duration(eta)} | {values}")


def check_finite(metrics: Mapping[str, float], step: int, last_checkpoint: int | None) -> None:
    """Raises `TrainingDivergedError` naming the non-finite losses (docs/design.md §9: NaN)."""
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    if bad:
        kept = (f"the last good checkpoint (step {last_checkpoint}) is kept"
                if last_checkpoint is not None else "no checkpoint had been written yet")
        raise TrainingDivergedError(
            f"Training diverged at step {step}: {', '.join(bad)} became NaN/Inf; stopped without "
            f"saving, {kept}. Lower the learning rates (train.lr_generator / "
            "train.lr_discriminator) or check the data, then rerun to resume.")


class MeanAccumulator:
    """Means of named scalars over a logging interval."""

    def __init__(self):
        self._sums, self._count = {}, 0

    def add(self, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
        self._count += 1

    def result(self) -> dict[str, float]:
        means = {k: v / max(self._count, 1) for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        return means


@dataclasses.dataclass
class Interval:
    """What a logging interval reports: its last step, the metric means, and the speed."""

    step: int
    means: dict[str, float]
    steps_per_second: float
    images_per_second: float


class StepLog:
    """The per-step bookkeeping the training loops share.

    Each step's metrics are read back as floats, checked for NaN/Inf (`check_finite`, naming the
    last checkpoint written — `saved` records it), handed to `on_step`, and averaged; every
    `log_every` steps (and at the last) a progress line is logged with steps/s, images/s, the ETA
    and the `keys` means, the interval is appended to `history` (rounded) and returned.

    Args:
      name: The loop's name in progress lines ("meta-train", "fine-tune", "distill").
      start_step, total_steps: Where the run starts (a resumed one later than 0) and ends.
      images_per_step: For the images/s rate.
      log_every: Steps per logging interval (0: only the last step).
      keys: Metrics shown in the progress line.
      on_step: Called with (step, metrics) after every step (progress bars, tests).
      last_saved: The step of the checkpoint the run resumed from (None: none).
    """

    def __init__(self, name: str, start_step: int, total_steps: int, images_per_step: int,
                 log_every: int, keys: tuple[str, ...],
                 on_step: Callable[[int, dict], None] | None = None,
                 last_saved: int | None = None):
        self.total, self.log_every, self.keys, self.on_step = total_steps, log_every, keys, on_step
        self.progress = Progress(name, start_step, max(total_steps, 1), images_per_step)
        self.means = MeanAccumulator()
        self.history: list[dict] = []
        self.last_saved = last_saved

    def saved(self, step: int) -> None:
        self.last_saved = step

    def record(self, step: int, metrics: Mapping) -> tuple[dict[str, float], Interval | None]:
        """(the step's metrics as floats, the finished interval or None).

        Raises:
          TrainingDivergedError: a metric is NaN/Inf (nothing is saved by the caller).
        """
        values = {k: float(v) for k, v in metrics.items()}
        check_finite(values, step, self.last_saved)
        self.means.add(values)
        if self.on_step is not None:
            self.on_step(step, values)
        if not (step == self.total or (self.log_every and step % self.log_every == 0)):
            return values, None
        means = self.means.result()
        steps_per_second, images_per_second = self.progress.rates(step)
        self.history.append({"step": step, **{k: round(v, 5) for k, v in means.items()}})
        log.info(self.progress.line(step, steps_per_second, images_per_second, means, self.keys))
        return values, Interval(step, means, steps_per_second, images_per_second)


def image_grid(columns) -> np.ndarray:
    """Tiles equally shaped image batches `[n, h, w, 3]` in [-1, 1] as columns of one image
    `[1, n*h, len(columns)*w, 3]` in [0, 1] (one row per example)."""
    columns = [np.clip((np.asarray(c, np.float32) + 1.0) / 2.0, 0.0, 1.0) for c in columns]
    rows = [np.concatenate([c[i] for c in columns], axis=1) for i in range(columns[0].shape[0])]
    return np.concatenate(rows, axis=0)[None]


def check_run_file(path: str, expected: Mapping, what: str) -> None:
    """Writes `expected` to `path` on a new run; on a rerun refuses to mix different settings."""
    if os.path.isfile(path):
        with open(path) as f:
            previous = json.load(f)
        current = json.loads(json.dumps(expected))
        if previous != current:
            changed = sorted(_diff_keys(previous, current))
            raise TrainingError(
                f"{os.path.dirname(path)} holds a run with another {what} (differs in: "
                f"{', '.join(changed)}). Use a new --workdir, or the same settings to resume.")
        return
    fileio.write_json_atomic(path, expected)


def _diff_keys(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            yield from _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")
