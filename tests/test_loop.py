"""The training loops' shared bookkeeping (tfhead.training.loop)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfhead.training import loop


class Counted:
    """A metric value that counts how often it is read back to the host."""

    reads = 0

    def __init__(self, value):
        self.value = value

    def __add__(self, other):
        return Counted(self.value + other.value)

    def __float__(self):
        Counted.reads += 1
        return float(self.value)


def test_metrics_are_read_back_only_at_logging_steps():
    Counted.reads = 0
    steplog = loop.StepLog("test", 0, 20, 1, log_every=5, keys=("loss",))
    reads_after = []
    for step in range(1, 21):
        interval = steplog.record(step, {"loss": Counted(float(step)), "other": Counted(1.0)})
        reads_after.append(Counted.reads)
        assert (interval is not None) == (step % 5 == 0)
    # Two metrics read once per interval of five steps, nothing in between.
    assert reads_after == [0, 0, 0, 0, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 8]
    assert steplog.history[0]["loss"] == pytest.approx(3.0)  # mean of 1..5
    assert steplog.last_means["loss"] == pytest.approx(18.0)


def test_a_nan_inside_an_interval_is_caught_at_its_end_or_before_a_save():
    steplog = loop.StepLog("test", 0, 20, 1, log_every=5, keys=("loss",), last_saved=None)
    steplog.record(1, {"loss": tf.constant(1.0)})
    steplog.record(2, {"loss": tf.constant(math.nan)})
    with pytest.raises(loop.TrainingDivergedError, match="between steps 1 and 3"):
        steplog.check(3)
    steplog = loop.StepLog("test", 0, 20, 1, log_every=5, keys=("loss",), last_saved=None)
    for step in range(1, 5):
        steplog.record(step, {"loss": tf.constant(math.inf if step == 2 else 1.0)})
    with pytest.raises(loop.TrainingDivergedError, match="between steps 1 and 5.*loss"):
        steplog.record(5, {"loss": tf.constant(1.0)})


def test_on_step_gets_every_step_as_floats_and_checks_it():
    seen = []
    steplog = loop.StepLog("test", 0, 4, 1, log_every=2, keys=(),
                           on_step=lambda step, m: seen.append((step, m["loss"])))
    steplog.record(1, {"loss": tf.constant(0.5)})
    assert seen == [(1, 0.5)]
    with pytest.raises(loop.TrainingDivergedError, match="at step 2"):
        steplog.record(2, {"loss": tf.constant(math.nan)})


def test_weights_check_names_the_bad_variable():
    good = tf.Variable(np.ones(3, np.float32), name="good")
    bad = tf.Variable(np.array([1.0, np.nan], np.float32), name="bad")
    loop.check_finite_weights([good], 7, 5)
    with pytest.raises(loop.TrainingDivergedError, match="by step 7.*bad.*step 5"):
        loop.check_finite_weights([good, bad], 7, 5)
