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
    """Means of named scalars over a logging interval.

    Values may be tensors: they are summed as they come (on the device, without waiting for the
    step) and read back once, in `result`.
    """

    def __init__(self):
        self._sums, self._count = {}, 0

    def add(self, metrics: Mapping) -> None:
        for key, value in metrics.items():
            self._sums[key] = value if key not in self._sums else self._sums[key] + value
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def sums(self) -> dict[str, float]:
        """The interval's sums so far, read back (the interval goes on)."""
        return {k: float(v) for k, v in self._sums.items()}

    def result(self) -> dict[str, float]:
        means = {k: float(v) / max(self._count, 1) for k, v in self._sums.items()}
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

    A step's metrics (tensors) are summed without reading them back: the host waits for the
    device only every `log_every` steps (docs/design.md §15), when the interval's means are read,
    checked for NaN/Inf (`check_finite`, naming the last checkpoint written — `saved` records
    it), logged as a progress line with steps/s, images/s, the ETA and the `keys` means, appended
    to `history` (rounded) and returned. A NaN anywhere in the interval makes its mean NaN, so it
    is caught there; callers call `check` before writing a checkpoint, so that nothing from a
    diverged interval is saved. With an `on_step` callback every step is read back (it asks for
    the values).

    Args:
      name: The loop's name in progress lines ("meta-train", "fine-tune", "distill").
      start_step, total_steps: Where the run starts (a resumed one later than 0) and ends.
      images_per_step: For the images/s rate.
      log_every: Steps per logging interval (0: only the last step).
      keys: Metrics shown in the progress line.
      on_step: Called with (step, metrics as floats) after every step (progress bars, tests).
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
        self.last_means: dict[str, float] = {}
        self._interval_start = start_step + 1

    def saved(self, step: int) -> None:
        self.last_saved = step

    def record(self, step: int, metrics: Mapping) -> Interval | None:
        """Adds a step's metrics; returns the finished interval (or None).

        Raises:
          TrainingDivergedError: a metric of the finished interval (or of this step, with
            `on_step`) is NaN/Inf (nothing is saved by the caller).
        """
        if self.on_step is not None:
            values = {k: float(v) for k, v in metrics.items()}
            check_finite(values, step, self.last_saved)
            self.on_step(step, values)
            metrics = values
        self.means.add(metrics)
        if not (step == self.total or (self.log_every and step % self.log_every == 0)):
            return None
        means = self._read(step)
        steps_per_second, images_per_second = self.progress.rates(step)
        self.history.append({"step": step, **{k: round(v, 5) for k, v in means.items()}})
        log.info(self.progress.line(step, steps_per_second, images_per_second, means, self.keys))
        return Interval(step, means, steps_per_second, images_per_second)

    def check(self, step: int) -> None:
        """Reads back the metrics of the unfinished interval (one host sync) and raises
        `TrainingDivergedError` if any is NaN/Inf; call before writing a checkpoint. The interval
        goes on (its means still include these steps)."""
        if not self.means.count:
            return
        self._check(self.means.sums(), step)

    def _read(self, step: int) -> dict[str, float]:
        means = self.means.result()
        self._check(means, step)
        self.last_means = means
        self._interval_start = step + 1
        return means

    def _check(self, values: Mapping[str, float], step: int) -> None:
        first = self._interval_start
        try:
            check_finite(values, step, self.last_saved)
        except TrainingDivergedError as e:
            if first < step:
                raise TrainingDivergedError(str(e).replace(
                    f"at step {step}", f"between steps {first} and {step}", 1)) from None
            raise


def check_finite_weights(variables, step: int, last_checkpoint: int | None) -> None:
    """Raises `TrainingDivergedError` naming the variables that hold a NaN/Inf (one host sync for
    all of them); called on the updated weights before a checkpoint is written."""
    import tensorflow as tf

    variables = list(variables)
    finite = tf.stack([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))
                       for v in variables]).numpy()
    bad = [getattr(v, "path", None) or v.name for v, ok in zip(variables, finite) if not ok]
    if bad:
        kept = (f"the last good checkpoint (step {last_checkpoint}) is kept"
                if last_checkpoint is not None else "no checkpoint had been written yet")
        raise TrainingDivergedError(
            f"Training diverged by step {step}: the updated weights {', '.join(bad[:5])}"
            f"{' and others' if len(bad) > 5 else ''} hold NaN/Inf; stopped without saving, "
            f"{kept}. Lower the learning rates (train.lr_generator / train.lr_discriminator) or "
            "check the data, then rerun to resume.")


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
