"""Golden values for each loss term, computed by hand in the comments."""

import numpy as np
import pytest

from tfhead.training import losses


def test_hinge_discriminator_loss():
    real, fake = losses.hinge_discriminator_loss(np.array([2.0, 0.5, -1.0]), np.array([-3.0, 0.0, 0.25]))
    # real: max(0, 1 − [2, 0.5, −1]) = [0, 0.5, 2]; fake: max(0, 1 + [−3, 0, 0.25]) = [0, 1, 1.25]
    np.testing.assert_allclose(np.asarray(real), [0.0, 0.5, 2.0])
    np.testing.assert_allclose(np.asarray(fake), [0.0, 1.0, 1.25])


def test_generator_adversarial_loss():
    np.testing.assert_allclose(np.asarray(losses.generator_adversarial_loss(np.array([1.5, -2.0]))),
                               [-1.5, 2.0])


def test_feature_matching_loss():
    real = [np.zeros((2, 2, 2, 1)), np.ones((2, 1, 1, 3))]
    fake = [np.full((2, 2, 2, 1), 0.5), np.array([[[[1.0, 2.0, 4.0]]], [[[1.0, 1.0, 1.0]]]])]
    # layer 1: |0 − 0.5| averaged = 0.5 for both; layer 2: mean(|0, −1, −3|) = 4/3, then 0.
    np.testing.assert_allclose(np.asarray(losses.feature_matching_loss(real, fake)),
                               [0.5 + 4.0 / 3.0, 0.5], rtol=1e-6)
    with pytest.raises(ValueError):
        losses.feature_matching_loss(real, fake[:1])


def test_embedding_match_loss():
    e = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    w = np.array([[1.0, 1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, 1.0]])
    # |[0, 1, 2, 3]| / 4 = 1.5; |[1, −1, 1, −1]| / 4 = 1
    np.testing.assert_allclose(np.asarray(losses.embedding_match_loss(e, w)), [1.5, 1.0])


def test_content_loss_sums_layer_means():
    real = [np.ones((1, 4, 4, 2)), np.zeros((1, 2, 2, 4))]
    fake = [np.full((1, 4, 4, 2), 3.0), np.full((1, 2, 2, 4), -0.5)]
    # 2 + 0.5
    np.testing.assert_allclose(np.asarray(losses.content_loss(real, fake)), [2.5])


def test_pixel_l1_loss():
    real = np.zeros((2, 2, 2, 3))
    fake = np.concatenate([np.full((1, 2, 2, 3), 0.25), np.full((1, 2, 2, 3), -1.0)])
    np.testing.assert_allclose(np.asarray(losses.pixel_l1_loss(real, fake)), [0.25, 1.0])
