"""Adam with a lazy (sparse) update for embedding tables that moves rows as dense Adam would
(docs/design.md §5 and §15; W at VoxCeleb2 scale).

The meta-learning discriminator keeps one row of W per training video (~145k rows × 512 for
VoxCeleb2). A batch reads only the rows of its videos, so the gradient of W is a `tf.IndexedSlices`
with those rows. Keras' Adam turns such a gradient into a dense one and rewrites every row of W and
of both moment slots on every step; `LazyAdam` gathers, updates and scatters back only the rows in
the gradient. Dense gradients (every other variable) get the ordinary Adam update.

**Why not tensorflow-addons' LazyAdam.** It skips the moment decay of rows not in the batch. At
VoxCeleb2 scale a row is visited about once per epoch, so its second moment v never decays between
visits: it accumulates (1 − β2) · g² per visit, and with the global step's bias correction the
row's step shrinks like 1/√visits. Simulated for 150 visits one per ~1200 steps (75 epochs of
VoxCeleb2 at batch 8, two D steps per iteration; lr 2e-4, β2 = 0.999), a row moved 0.13 per
element (β1 = 0, the default; 0.11 at β1 = 0.9) against 0.70 under dense Adam, which is what the
PyTorch ports use (every row's moments decay every step). Giving each row its own step count for
the bias correction does not fix it: every visit becomes a fresh bias-corrected first step of size
≈ lr, and the row moved 0.027. This optimizer moves it 0.70 (`tests/test_optimizers.py` checks
all of this).

**What this one does: dense Adam's trajectory, computed lazily.** Between two visits of a row at
steps s < t its gradient is zero, so dense Adam's moments decay geometrically (m ← β1^Δ m,
v ← β2^Δ v, Δ = t − s) and its update at step s + j is α · β1^j m_s / (β2^(j/2) √v_s): a geometric
series in r = β1 / √β2 < 1. Each row keeps the step of its last visit. A visit at step t

  1. refunds the part of the previous visit's prepaid momentum tail that lies at or after step t:
     α_s · m_s / (√v_s + ε) · r^Δ / (1 − r);
  2. decays the moments over the gap and adds the gradient: m = β1^Δ m_s + (1 − β1) g,
     v = β2^Δ v_s + (1 − β2) g²;
  3. applies this step's update and prepays its momentum tail until the next visit:
     α_t · m / (√v + ε) · (1 + r / (1 − r)).

A row then ends each visit where dense Adam would be once its momentum has run out, and rows in
every batch follow dense Adam up to one tail ahead. Approximations: ε and the bias-correction factor
are taken as constant over a tail (a tail lasts ~1 / (1 − r) steps, 10 at β1 = 0.9; exact once
both are ≈ 1 after a few thousand steps), and a learning-rate schedule is read at the visit.

Works under `tf.distribute` strategies: Keras all-reduces the `IndexedSlices` across replicas and
calls `update_step` per device on that device's copy of the variable.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfhead")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows named by an `IndexedSlices` gradient, along dense Adam's
    trajectory (module docstring); no amsgrad. Needs β1 < √β2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdam does not support amsgrad.")
        if not self.beta_1 < self.beta_2 ** 0.5:
            raise ValueError(f"LazyAdam needs beta_1 < sqrt(beta_2), got {self.beta_1} and "
                             f"{self.beta_2}.")

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # Per row (the first axis), the step of its last sparse update (0: never).
        self._last_visits = [
            self.add_variable(shape=(int(v.shape[0]) if len(v.shape) else 1,), dtype="int64",
                              name="last_visit")
            for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        # Duplicate indices (the same video twice in a batch, or all-reduced replicas) are summed.
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position,
                                            tf.shape(rows)[0])
        shape = tf.concat([tf.shape(rows), tf.ones([tf.rank(grad) - 1], tf.int32)], 0)

        index = self._get_variable_index(variable)
        m_var, v_var = self._momentums[index], self._velocities[index]
        last_var = self._last_visits[index]
        step = self.iterations + 1
        last = tf.gather(_tf_variable(last_var), rows)
        gap = tf.reshape(tf.cast(tf.cast(step, tf.int64) - last, dtype), shape)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        epsilon, lr = tf.cast(self.epsilon, dtype), tf.cast(learning_rate, dtype)
        ratio = beta_1 / tf.sqrt(beta_2)

        def alpha(at):  # Adam's bias-corrected step size at step `at` (≥ 1)
            at = tf.maximum(tf.cast(at, dtype), 1.0)
            return lr * tf.sqrt(1 - tf.pow(beta_2, at)) / (1 - tf.pow(beta_1, at))

        m_old = tf.gather(_tf_variable(m_var), rows)
        v_old = tf.gather(_tf_variable(v_var), rows)
        refund = (tf.reshape(alpha(last), shape) * m_old / (tf.sqrt(v_old) + epsilon)
                  * tf.pow(ratio, gap) / (1 - ratio))
        m = tf.pow(beta_1, gap) * m_old + (1 - beta_1) * grad
        v = tf.pow(beta_2, gap) * v_old + (1 - beta_2) * tf.square(grad)
        update = alpha(step) * m / (tf.sqrt(v) + epsilon) / (1 - ratio) - refund
        self.assign(m_var, tf.IndexedSlices(m, rows))
        self.assign(v_var, tf.IndexedSlices(v, rows))
        self.assign(last_var, tf.IndexedSlices(
            tf.fill(tf.shape(rows), tf.cast(step, tf.int64)), rows))
        self.assign_sub(variable, tf.IndexedSlices(update, rows))


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable
