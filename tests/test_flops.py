"""The FLOP counter (tfhead.models.flops): exact products, attention included, the rest listed."""

import keras
import pytest
import tensorflow as tf

from tfhead.models import blocks, flops, layers


def test_a_convolution_counts_exactly_and_its_normalization_is_folded():
    conv = layers.sn_conv2d(32, 3)
    conv(tf.zeros([1, 8, 8, 16]))
    result = flops.count(lambda x: keras.ops.relu(conv(x)), [tf.TensorSpec([1, 8, 8, 16])])
    assert result.macs_by_type == {"Conv2D": 8 * 8 * 32 * 3 * 3 * 16}
    assert result.flops == 2 * result.macs
    assert result.left_out["Relu"] == 8 * 8 * 32  # counted as output elements, not FLOPs
    assert result.folded.get("MatMul", 0) >= 1  # σ from constants: folded at export


def test_self_attention_counts_its_two_batched_products():
    channels, side = 16, 8
    attention = blocks.SelfAttention()
    attention(tf.zeros([1, side, side, channels]))
    result = flops.count(lambda x: attention(x), [tf.TensorSpec([1, side, side, channels])])
    positions, keys, values = side * side, channels // 8, channels // 2
    convs = positions * (2 * keys + values) * channels + positions * values * channels
    products = positions * positions * keys + positions * positions * values
    assert result.macs_by_type["Conv2D"] == convs
    assert result.macs_by_type["BatchMatMulV2"] == products
    assert "Softmax" in result.left_out


def test_a_dense_layer_on_an_input_counts_its_matmul():
    dense = layers.sn_dense(7)
    dense(tf.zeros([2, 5]))
    assert flops.count(lambda x: dense(x), [tf.TensorSpec([2, 5])]).macs_by_type == {
        "MatMul": 2 * 5 * 7}


def test_undefined_shapes_are_refused():
    with pytest.raises(ValueError, match="fully defined"):
        flops.count(lambda x: x * 2, [tf.TensorSpec([None, 3])])
