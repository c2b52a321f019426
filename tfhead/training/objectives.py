"""What each training loop minimises: the generator's weighted terms and their total, and D's.

One place for the objectives of the three loops (the pure terms are in `tfhead.training.losses`):

  meta-learning (paper §3.2)   G, E:  L_CNT + L_ADV (−D(x̂) + w_FM · L_FM) + w_MCH · L_MCH
                               D:     hinge + w_MCH · L_MCH (W's side)
  fine-tuning (paper §3.3)     G, ψ': L_CNT + L_ADV;  D: hinge (w' in place of W, no L_MCH)
  distillation (the student)   pixel L1 + VGG19 perceptual L1 against the teacher's frames

Every function returns a flat dict of named **per-example** terms `[batch]` (`loss/g/…`,
`loss/d/…`), weights applied from the config, the total under `…/total`; the caller reduces them
(`tf.nn.compute_average_loss` in a distributed step, a mean otherwise) and logs the dict as is.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfhead.training import losses


def content_terms(content_networks, train, real, fake) -> dict:
    """The weighted L_CNT terms, one per network by its `kind` ({"loss/g/vgg19": …,
    "loss/g/vggface": …}, "loss/g/face_net" with "loss/g/identity" for dlib's face network), plus
    {"loss/g/pixel_l1": …} when `content_networks` is None (smoke-test mode) or the content loss
    is "face_net" (pixel L1 + face network: the CPU default, no weight file).

    Args:
      content_networks: The networks of `feature_networks.build_content_networks`, or None.
      train: The `TrainConfig` (its content weights).
      real, fake: `[batch, R, R, 3]` in [-1, 1]; gradients flow into `fake` only.
    """
    terms = {}
    if content_networks is None or train.content_loss == "face_net":
        terms["loss/g/pixel_l1"] = train.weight_pixel_l1 * losses.pixel_l1_loss(real, fake)
    if content_networks is None:
        return terms
    weights = {"vgg19": train.weight_vgg19, "vggface": train.weight_vggface,
               "face_net": train.weight_face_net}
    n = tf.shape(real)[0]
    both = tf.concat([real, fake], 0)
    for network in content_networks:
        activations = network(both)
        if network.kind == "face_net":
            activations, descriptors = activations
            if train.weight_identity > 0:
                terms["loss/g/identity"] = train.weight_identity * losses.descriptor_distance(
                    tf.stop_gradient(descriptors[:n]), descriptors[n:])
        terms[f"loss/g/{network.kind}"] = weights[network.kind] * losses.content_loss(
            [tf.stop_gradient(a[:n]) for a in activations], [a[n:] for a in activations])
    return terms


def generator_terms(train, content_networks, real, fake, fake_scores,
                    real_features: Sequence, fake_features: Sequence, match=None) -> dict:
    """G's objective (meta-learning and fine-tuning): L_CNT + L_ADV (+ L_MCH when `match`).

    Args:
      train: The `TrainConfig` (weights).
      content_networks: As in `content_terms`.
      real, fake: Target and generated frames `[batch, R, R, 3]`.
      fake_scores: D's realism scores of `fake` `[batch]`.
      real_features, fake_features: D's block activations on the real and the generated input
        (the real side is held constant here).
      match: The weighted L_MCH term `[batch]` of meta-learning; None in fine-tuning and in the
        feed-forward variant.
    Returns:
      The content terms, `loss/g/content` (their sum), `loss/g/adv`, `loss/g/feature_matching`,
      `loss/g/match` (with `match`) and `loss/g/total`.
    """
    terms = content_terms(content_networks, train, real, fake)
    terms["loss/g/content"] = tf.add_n(list(terms.values()))
    terms["loss/g/adv"] = losses.generator_adversarial_loss(fake_scores)
    terms["loss/g/feature_matching"] = train.weight_feature_matching * (
        losses.feature_matching_loss([tf.stop_gradient(f) for f in real_features],
                                     fake_features))
    parts = ["loss/g/content", "loss/g/adv", "loss/g/feature_matching"]
    if match is not None:
        terms["loss/g/match"] = match
        parts.append("loss/g/match")
    terms["loss/g/total"] = tf.add_n([terms[k] for k in parts])
    return terms


def discriminator_terms(real_scores, fake_scores, match=None) -> dict:
    """D's objective: the hinge loss on real and generated scores (+ W's side of L_MCH)."""
    real, fake = losses.hinge_discriminator_loss(real_scores, fake_scores)
    terms = {"loss/d/real": real, "loss/d/fake": fake}
    if match is not None:
        terms["loss/d/match"] = match
    terms["loss/d/total"] = tf.add_n(list(terms.values()))
    return terms


def distillation_terms(teacher_frames, student_frames, weight_pixel_l1: float,
                       weight_perceptual: float, features=None) -> dict:
    """The student's objective: {"loss/pixel_l1", "loss/perceptual" (with `features`),
    "loss/total"}, per example; `features` is the VGG19 `FeatureNetwork` or None."""
    terms = {"loss/pixel_l1": weight_pixel_l1 * losses.pixel_l1_loss(teacher_frames,
                                                                     student_frames)}
    if features is not None:
        n = tf.shape(teacher_frames)[0]
        activations = features(tf.concat([teacher_frames, student_frames], 0))
        terms["loss/perceptual"] = weight_perceptual * losses.content_loss(
            [tf.stop_gradient(a[:n]) for a in activations], [a[n:] for a in activations])
    terms["loss/total"] = tf.add_n(list(terms.values()))
    return terms
