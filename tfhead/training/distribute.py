"""Where training runs: `tf.distribute` strategies, the chief worker, and mixed precision.

Nothing here reads flags; entry points pass plain values.
"""

from __future__ import annotations

import contextlib
import os

import keras
import tensorflow as tf

from tfhead.training.loop import TrainingError

STRATEGIES = ("default", "mirrored", "multi_worker")
# float16 needs loss scaling, and Keras' LossScaleOptimizer densifies the sparse gradient of W;
# bfloat16 has float32's exponent range and needs none (Ampere+ GPUs, TPUs, recent x86 CPUs).
PRECISIONS = ("float32", "mixed_bfloat16")


def make_strategy(name: str, devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy called `name` (one of `STRATEGIES`).

    `mirrored` uses all visible GPUs of this machine (or `devices`); `multi_worker` reads the
    cluster from the `TF_CONFIG` environment variable (see README, "Several GPUs and machines").
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable describing the "
                "cluster and this worker's task (see README, 'Several GPUs and machines').")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(f"Unknown strategy {name!r}; valid: {list(STRATEGIES)}.")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and configs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def checkpoint_directory(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this worker saves: the workdir's `checkpoints/` on the chief, a scratch folder on the
    others (every worker must take part in a save; only the chief's copy is kept)."""
    if is_chief(strategy):
        return os.path.join(workdir, "checkpoints")
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, ".worker-scratch", f"{resolver.task_type}-{resolver.task_id}")


@contextlib.contextmanager
def precision_policy(name: str):
    """Sets the Keras dtype policy while the networks are built, then restores the previous one."""
    if name not in PRECISIONS:
        raise TrainingError(f"Unknown precision {name!r}; valid: {list(PRECISIONS)}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
