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


def chief_checkpoint_directory(workdir: str) -> str:
    """The chief's checkpoints, `<workdir>/checkpoints`: where every worker resumes from."""
    return os.path.join(workdir, "checkpoints")


def checkpoint_directory(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this worker saves: the workdir's `checkpoints/` on the chief, a scratch folder on the
    others (every worker must take part in a save; only the chief's copy is kept, and every worker
    resumes from it: `chief_checkpoint_directory`)."""
    if is_chief(strategy):
        return chief_checkpoint_directory(workdir)
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, ".worker-scratch", f"{resolver.task_type}-{resolver.task_id}")


def _training_tasks(strategy: tf.distribute.Strategy) -> list[tuple[str, int]]:
    """The (task type, task id) of every worker taking part in training, chief first; empty when
    the strategy has no cluster (one machine)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return []
    cluster = resolver.cluster_spec().as_dict()
    return [(kind, index) for kind in ("chief", "worker")
            for index in range(len(cluster.get(kind, [])))]


def check_same_step(strategy: tf.distribute.Strategy, step: int) -> None:
    """Stops every worker, before anything is trained or saved, unless all restored the same step.

    Each worker resumes from `checkpoints/` in its own --workdir; one that cannot see the chief's
    files would otherwise start from step 0 (or from an older copy) and train out of step with the
    others. A collective all-gather of (worker, step), so every worker raises the same error. A
    no-op on one machine.

    Raises:
      TrainingError: the workers restored different steps; says which restored which.
    """
    tasks = _training_tasks(strategy)
    resolver = getattr(strategy, "cluster_resolver", None)
    if len(tasks) < 2 or (resolver.task_type, resolver.task_id) not in tasks:
        return
    me = tasks.index((resolver.task_type, resolver.task_id))
    mine = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([[me, step]], tf.int64))
    steps = {tasks[int(index)]: int(restored)
             for index, restored in strategy.gather(mine, axis=0).numpy()}
    if len(set(steps.values())) > 1:
        raise TrainingError(different_steps_message(steps, _chief_task(tasks)))


def _chief_task(tasks: list[tuple[str, int]]) -> tuple[str, int]:
    return ("chief", 0) if ("chief", 0) in tasks else ("worker", 0)


def different_steps_message(steps: dict[tuple[str, int], int], chief: tuple[str, int]) -> str:
    """The error of `check_same_step`: {(task type, task id): restored step} → what to do."""
    def describe(task, step):
        who = f"{task[0]} {task[1]}" + (" (the chief)" if task == chief else "")
        return f"{who} step {step}" + (" (no checkpoint in its --workdir)" if step == 0 else "")

    restored = ", ".join(describe(task, steps[task]) for task in sorted(steps))
    return (f"The workers resumed from different checkpoints: {restored}. Every worker restores "
            "from checkpoints/ in its own --workdir, so give all workers the same --workdir on a "
            "shared filesystem, or copy the chief's <workdir>/checkpoints/ into each worker's "
            "--workdir before resuming. Nothing was trained or saved.")


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
