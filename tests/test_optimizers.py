"""LazyAdam (tfhead.training.optimizers): sparse rows follow dense Adam's trajectory.

The reference is dense Adam written out in NumPy (checked against Keras' Adam below): every row's
moments decay on every step, which is what the PyTorch ports of the paper run on W.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfhead.training.optimizers import LazyAdam

LR, BETA_2, EPS = 2e-4, 0.999, 1e-7  # D's rate, β2 and Keras' default ε
BETA_1 = 0.0  # the project's default (train.adam_beta1); 0.9 is tested too


def dense_adam(start, gradients_at, steps, per_row_counts=False, lazy_addons=False,
               beta_1=BETA_1):
    """NumPy Adam on `start` [rows, dim] for `steps` steps; `gradients_at(t)` gives
    {row: gradient} at step t (other rows: zero). `lazy_addons`: tensorflow-addons' LazyAdam
    (only visited rows and their moments change, global bias correction); `per_row_counts`: the
    same with each row's own visit count in the bias correction."""
    x, m, v = start.astype(np.float64), np.zeros(start.shape), np.zeros(start.shape)
    counts = np.zeros(start.shape[0])
    for t in range(1, steps + 1):
        gradient = gradients_at(t)
        if lazy_addons or per_row_counts:
            for row, g in gradient.items():
                counts[row] += 1
                n = counts[row] if per_row_counts else t
                m[row] = beta_1 * m[row] + (1 - beta_1) * g
                v[row] = BETA_2 * v[row] + (1 - BETA_2) * g * g
                alpha = LR * np.sqrt(1 - BETA_2 ** n) / (1 - beta_1 ** n)
                x[row] -= alpha * m[row] / (np.sqrt(v[row]) + EPS)
            continue
        g = np.zeros(start.shape)
        for row, value in gradient.items():
            g[row] = value
        m = beta_1 * m + (1 - beta_1) * g
        v = BETA_2 * v + (1 - BETA_2) * g * g
        alpha = LR * np.sqrt(1 - BETA_2 ** t) / (1 - beta_1 ** t)
        x -= alpha * m / (np.sqrt(v) + EPS)
    return x


def lazy_adam(start, gradients_at, steps, beta_1=BETA_1):
    """tfhead's LazyAdam on the same problem; steps without a visit are skipped by advancing the
    optimizer's step counter (the update only reads it)."""
    table = keras.Variable(start.astype(np.float32))
    optimizer = LazyAdam(LR, beta_1=beta_1, beta_2=BETA_2, epsilon=EPS)
    optimizer.build([table])
    apply = tf.function(lambda values, rows: optimizer.apply_gradients(
        [(tf.IndexedSlices(values, rows, tf.constant(start.shape, tf.int64)), table)]))
    for t in range(1, steps + 1):
        gradient = gradients_at(t)
        if not gradient:
            continue
        optimizer.iterations.assign(t - 1)
        rows = sorted(gradient)
        apply(tf.constant(np.stack([gradient[r] for r in rows]), tf.float32),
              tf.constant(rows, tf.int32))
    return np.asarray(table, np.float64)


def visits(rows, dim, gap, steps, seed):
    """Each row visited about every `gap` steps (random phase and jitter), with a gradient of a
    fixed sign pattern per row plus noise — L_MCH's sign gradient pulling W_i towards ê_i."""
    rng = np.random.default_rng(seed)
    schedule = {}
    for row in range(rows):
        t = int(rng.integers(1, gap + 1))
        while t <= steps:
            schedule.setdefault(t, []).append(row)
            t += max(1, int(gap + rng.integers(-gap // 4, gap // 4 + 1)))
    direction = rng.choice([-1.0, 1.0], size=(rows, dim)) * 0.02
    noise = {t: rng.normal(0.0, 0.01, size=(len(r), dim)) for t, r in schedule.items()}
    return lambda t: {row: direction[row] + noise[t][i]
                      for i, row in enumerate(schedule.get(t, ()))}


@pytest.mark.parametrize("beta_1", [0.0, 0.9])
def test_numpy_reference_is_keras_adam(beta_1):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(20)]
    variable = keras.Variable(start.astype(np.float32))
    optimizer = keras.optimizers.Adam(LR, beta_1=beta_1, beta_2=BETA_2, epsilon=EPS)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g, tf.float32), variable)])
    reference = dense_adam(start, lambda t: dict(enumerate(grads[t - 1])), 20, beta_1=beta_1)
    np.testing.assert_allclose(np.asarray(variable), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("beta_1", [0.0, 0.9])
@pytest.mark.parametrize("gap,steps", [
    (1200, 150 * 1200),  # VoxCeleb2-like: each row about once per 1200 steps, 150 visits
    (25, 2000),          # a small corpus: rows visited every few steps
    (1, 300),            # every row in every batch: dense
])
def test_sparse_rows_move_as_far_as_under_dense_adam(gap, steps, beta_1):
    rows, dim = 6, 8
    start = np.random.default_rng(1).normal(0.0, 0.02, size=(rows, dim))
    gradients_at = visits(rows, dim, gap, steps, seed=gap)
    dense = np.abs(dense_adam(start, gradients_at, steps, beta_1=beta_1) - start).sum(1)
    lazy = np.abs(lazy_adam(start, gradients_at, steps, beta_1=beta_1) - start).sum(1)
    np.testing.assert_allclose(lazy, dense, rtol=0.2)


def test_what_the_alternatives_would_do_at_voxceleb_scale():
    """Why neither tensorflow-addons' LazyAdam nor per-row bias correction is used (the numbers
    quoted in the optimizer's docstring): both move a rarely visited row far less than dense
    Adam."""
    rows, dim, gap, steps = 4, 8, 1200, 150 * 1200
    start = np.zeros((rows, dim))
    gradients_at = visits(rows, dim, gap, steps, seed=7)
    movement = lambda x: np.abs(x - start).sum(1).mean()
    dense = movement(dense_adam(start, gradients_at, steps))
    addons = movement(dense_adam(start, gradients_at, steps, lazy_addons=True))
    per_row = movement(dense_adam(start, gradients_at, steps, per_row_counts=True))
    assert addons < 0.35 * dense and per_row < 0.1 * dense
    assert movement(lazy_adam(start, gradients_at, steps)) == pytest.approx(dense, rel=0.05)


def test_rows_outside_the_gradient_and_their_moments_stay_put():
    start = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    table = keras.Variable(start.astype(np.float32))
    optimizer = LazyAdam(LR)
    optimizer.build([table])
    for _ in range(3):
        optimizer.apply_gradients([(tf.IndexedSlices(tf.ones((2, 3)), tf.constant([1, 3]),
                                                     tf.constant([5, 3], tf.int64)), table)])
    moved = np.flatnonzero(np.abs(np.asarray(table) - start).sum(1))
    assert moved.tolist() == [1, 3]
    velocity = np.asarray(optimizer._velocities[0])
    assert np.flatnonzero(np.abs(velocity).sum(1)).tolist() == [1, 3]


def test_beta_1_must_be_below_the_root_of_beta_2():
    with pytest.raises(ValueError, match="beta_1 < sqrt"):
        LazyAdam(1e-3, beta_1=0.99, beta_2=0.9)
