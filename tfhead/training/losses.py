"""The loss terms of paper §3.2 / docs/design.md §4 as pure functions.

Every function returns **per-example** values `[batch]`; the training step reduces them with
`tf.nn.compute_average_loss(..., global_batch_size=...)` so that replicas of a distributed step
scale correctly, and applies the weights of the config. Nothing here has weights or state.

  L_ADV  = generator_adversarial_loss + weight_fm · feature_matching_loss
  L_MCH  = embedding_match_loss (weighted by 80 in the paper)
  L_CNT  = content_loss over VGG19 and VGGFace activations (weights per network)
  L_D    = hinge_discriminator_loss
"""

from __future__ import annotations

from typing import Sequence

from keras import ops


def _mean_per_example(x):
    """Mean over every axis but the first: `[batch, ...]` → `[batch]`."""
    return ops.mean(ops.reshape(ops.cast(x, "float32"), (ops.shape(x)[0], -1)), axis=1)


def hinge_discriminator_loss(real_scores, fake_scores):
    """D's hinge loss: max(0, 1 − D(x)) + max(0, 1 + D(x̂)), per example.

    Returns:
      (real_term `[batch]`, fake_term `[batch]`); their sum is the loss.
    """
    real = ops.relu(1.0 - ops.cast(real_scores, "float32"))
    fake = ops.relu(1.0 + ops.cast(fake_scores, "float32"))
    return real, fake


def generator_adversarial_loss(fake_scores):
    """The realism term of L_ADV: −D(x̂), per example."""
    return -ops.cast(fake_scores, "float32")


def feature_matching_loss(real_features: Sequence, fake_features: Sequence):
    """L_FM: Σ over D's blocks of the mean absolute difference of activations, per example.

    Args:
      real_features, fake_features: D's block outputs on the real and on the generated input, in
        the same order (`Discriminator` returns them), each `[batch, h, w, c]`.
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError("feature_matching_loss needs two equally long, non-empty feature lists.")
    return sum(_mean_per_example(ops.abs(r - f)) for r, f in zip(real_features, fake_features))


def embedding_match_loss(embeddings, video_vectors):
    """L_MCH without its weight: mean |ê_i − W_i| over the embedding's dimensions, per example."""
    return _mean_per_example(ops.abs(embeddings - video_vectors))


def content_loss(real_activations: Sequence, fake_activations: Sequence):
    """One network's part of L_CNT: Σ over its layers of mean |φ(x) − φ(x̂)|, per example.

    The caller weights each network's part (VGG19: 1e-2, VGGFace: 2e-3 by default).
    """
    if len(real_activations) != len(fake_activations) or not real_activations:
        raise ValueError("content_loss needs two equally long, non-empty activation lists.")
    return sum(_mean_per_example(ops.abs(r - f)) for r, f in zip(real_activations, fake_activations))


def descriptor_distance(real_descriptors, fake_descriptors):
    """Euclidean distance between face descriptors `[batch, D]`, per example (the identity term:
    dlib's face descriptors put one person within 0.6)."""
    squared = ops.sum(ops.square(ops.cast(real_descriptors, "float32")
                                 - ops.cast(fake_descriptors, "float32")), axis=-1)
    return ops.sqrt(squared + 1e-8)


def pixel_l1_loss(real, fake):
    """Mean absolute pixel difference per example: the CPU smoke-test stand-in for L_CNT."""
    return _mean_per_example(ops.abs(real - fake))
