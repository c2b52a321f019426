"""Counting the multiply-accumulates of a network from its TensorFlow graph (docs/design.md §7).

`count` freezes the function's graph (variables → constants) and adds up, op by op, the MACs of
every **convolution and matrix product** whose inputs depend on the function's inputs:

  Conv2D                    N·Ho·Wo·Cout · kh·kw·Cin
  DepthwiseConv2dNative     N·Ho·Wo·Cin·multiplier · kh·kw
  MatMul                    M·N·K (transpose attributes honoured)
  BatchMatMul, V2, V3       batch·M·N·K (adjoint attributes honoured) — self-attention's
                            QKᵀ and softmax·V

(TensorFlow's graph profiler, used before, missed the attention's BatchMatMulV2 in these graphs:
for small128's G it reported 3.155 GFLOP, all under Conv2D, where the products are 3.110 GFLOP,
0.168 of them attention; on one 3×3 convolution it reports 2.7 % more than the exact count.)

**Left out, and reported** (`FlopCount.left_out`, op type → output elements): everything else —
elementwise arithmetic, normalization statistics, softmax, activations, resampling, reshapes.
They are memory-bound and small next to the products (a few % of the FLOPs) and their cost
depends on fusion, so a FLOP floor counts only products. Ops computed from constants alone
(spectral normalization's W/σ, ψ's projection once ψ is fixed) are not counted either: every
converter folds them into constants (`FlopCount.folded` lists them).

MACs are reported as FLOPs / 2 (the papers' convention).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

PRODUCTS = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMul", "BatchMatMulV2",
            "BatchMatMulV3")
_STRUCTURAL = {"Placeholder", "Const", "Identity", "NoOp", "IdentityN"}


@dataclasses.dataclass
class FlopCount:
    """MACs of one call, per product op type, and what was not counted."""

    macs_by_type: dict[str, int]
    left_out: dict[str, int]  # op type → output elements (input-dependent, not a product)
    folded: dict[str, int]  # op type → ops computed from constants only (folded at export)

    @property
    def macs(self) -> int:
        return sum(self.macs_by_type.values())

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _shape(tensor) -> list[int]:
    shape = tensor.shape.as_list()
    if any(d is None for d in shape):
        raise ValueError(f"{tensor.name} has an undefined shape {shape}; count with fully "
                         "defined input shapes.")
    return shape


def _product_macs(op) -> int:
    out = _shape(op.outputs[0])
    if op.type == "Conv2D":
        kernel = _shape(op.inputs[1])  # [kh, kw, cin, cout]
        return int(np.prod(out)) * kernel[0] * kernel[1] * kernel[2]
    if op.type == "DepthwiseConv2dNative":
        kernel = _shape(op.inputs[1])  # [kh, kw, cin, multiplier]
        return int(np.prod(out)) * kernel[0] * kernel[1]
    a = _shape(op.inputs[0])
    if op.type == "MatMul":
        inner = a[0] if op.get_attr("transpose_a") else a[1]
    else:
        inner = a[-2] if op.get_attr("adj_x") else a[-1]
    return int(np.prod(out)) * inner


def count(fn: Callable, input_specs: Sequence[tf.TensorSpec]) -> FlopCount:
    """The `FlopCount` of one call of `fn` on inputs of the given (fully defined) specs."""
    for spec in input_specs:
        if not spec.shape.is_fully_defined():
            raise ValueError(f"count needs fully defined input shapes, got {spec}.")
    concrete = tf.function(fn, input_signature=list(input_specs), autograph=False)
    graph = convert_variables_to_constants_v2(concrete.get_concrete_function()).graph
    dynamic = set()  # ops that depend on a placeholder (in topological order)
    macs, left_out, folded = (collections.Counter() for _ in range(3))
    for op in graph.get_operations():
        if op.type == "Placeholder":
            dynamic.add(op.name)
            continue
        if not any(t.op.name in dynamic for t in op.inputs):
            if op.type not in _STRUCTURAL:
                folded[op.type] += 1
            continue
        dynamic.add(op.name)
        if op.type in PRODUCTS:
            macs[op.type] += _product_macs(op)
        elif op.type not in _STRUCTURAL and op.outputs:
            left_out[op.type] += sum(int(np.prod(_shape(t))) for t in op.outputs)
    return FlopCount(dict(macs), dict(left_out), dict(folded))


def count_flops(fn: Callable, input_specs: Sequence[tf.TensorSpec]) -> int:
    """FLOPs (2 × MACs) of the products of one call of `fn` (see the module docstring)."""
    return count(fn, input_specs).flops


def count_macs(fn: Callable, input_specs: Sequence[tf.TensorSpec]) -> float:
    """Multiply-accumulates of the products of one call of `fn`."""
    return float(count(fn, input_specs).macs)
