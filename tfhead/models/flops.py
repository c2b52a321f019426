"""Counting multiply-accumulates of a network by TensorFlow's graph profiler.

The count comes from the op-level FLOP statistics TensorFlow registers for each op of the frozen
graph (Conv2D, MatMul, BatchMatMul, elementwise ops, ...), not from a formula written here.
MACs are reported as FLOPs / 2, the convention of papers and of docs/design.md §7.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)


def count_flops(fn: Callable, input_specs: Sequence[tf.TensorSpec]) -> int:
    """FLOPs of one call of `fn` on inputs of the given (fully defined) specs."""
    for spec in input_specs:
        if not spec.shape.is_fully_defined():
            raise ValueError(f"count_flops needs fully defined input shapes, got {spec}.")
    concrete = tf.function(fn, input_signature=list(input_specs), autograph=False)
    frozen = convert_variables_to_constants_v2(concrete.get_concrete_function())
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options)
    return int(profile.total_float_ops)


def count_macs(fn: Callable, input_specs: Sequence[tf.TensorSpec]) -> float:
    """Multiply-accumulates (FLOPs / 2) of one call of `fn`."""
    return count_flops(fn, input_specs) / 2.0
