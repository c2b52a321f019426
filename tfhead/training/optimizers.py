"""Adam with a lazy (sparse) update for embedding tables (docs/design.md §5; W at VoxCeleb2 scale).

The meta-learning discriminator keeps one row of W per training video (~145k rows × 512 for
VoxCeleb2). A batch reads only the rows of its videos, so the gradient of W is a `tf.IndexedSlices`
with those rows. Keras' Adam turns such a gradient into a dense one and rewrites every row of W and of
both moment slots on every step; `LazyAdam` gathers, updates and scatters back only the rows in the
gradient — the moments of a row not in the batch are not decayed, as in tensorflow-addons' LazyAdam.
Dense gradients (every other variable) get the ordinary Adam update.

Works under `tf.distribute` strategies: Keras all-reduces the `IndexedSlices` across replicas and
calls `update_step` per device on that device's copy of the variable.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfhead")
class LazyAdam(keras.optimizers.Adam):
    """Adam that updates only the rows named by an `IndexedSlices` gradient (no amsgrad)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdam does not support amsgrad.")

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        # Duplicate indices (the same video twice in a batch, or all-reduced replicas) are summed.
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position,
                                            tf.shape(rows)[0])
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = (tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step))
                 / (1 - tf.pow(beta_1, step)))

        index = self._get_variable_index(variable)
        m_var, v_var = self._momentums[index], self._velocities[index]
        m = beta_1 * tf.gather(_tf_variable(m_var), rows) + (1 - beta_1) * grad
        v = beta_2 * tf.gather(_tf_variable(v_var), rows) + (1 - beta_2) * tf.square(grad)
        update = alpha * m / (tf.sqrt(v) + tf.cast(self.epsilon, dtype))
        self.assign(m_var, tf.IndexedSlices(m, rows))
        self.assign(v_var, tf.IndexedSlices(v, rows))
        self.assign_sub(variable, tf.IndexedSlices(update, rows))


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable
