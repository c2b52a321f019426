"""The objectives of the three loops (tfhead.training.objectives): each weight multiplies its own term,
and the totals are the sums of the weighted terms — checked against terms computed here."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfhead import config as config_lib
from tfhead.training import feature_networks, losses, objectives

TRAIN = config_lib.get_preset("tiny").train


@pytest.fixture(scope="module")
def content():
    return feature_networks.build_content_networks("random_vgg", 32)


def images(seed, n=2, size=32):
    return tf.random.stateless_uniform([n, size, size, 3], [seed, 0], -1.0, 1.0)


def by_hand(network, real, fake):
    return losses.content_loss(network(real), network(fake))


def test_each_content_weight_scales_only_its_network(content):
    real, fake = images(1), images(2)
    one = objectives.content_terms(
        content, dataclasses.replace(TRAIN, weight_vgg19=1.0, weight_vggface=1.0), real, fake)
    three = objectives.content_terms(
        content, dataclasses.replace(TRAIN, weight_vgg19=3.0, weight_vggface=0.5), real, fake)
    vgg19, vggface = (by_hand(network, real, fake) for network in content)
    np.testing.assert_allclose(one["loss/g/vgg19"], vgg19, rtol=1e-5)
    np.testing.assert_allclose(one["loss/g/vggface"], vggface, rtol=1e-5)
    np.testing.assert_allclose(three["loss/g/vgg19"], 3.0 * vgg19, rtol=1e-5)
    np.testing.assert_allclose(three["loss/g/vggface"], 0.5 * vggface, rtol=1e-5)


def test_pixel_l1_stands_in_for_the_content_networks_when_none_are_given():
    real, fake = images(1), images(2)
    terms = objectives.content_terms(None, dataclasses.replace(TRAIN, weight_pixel_l1=4.0),
                                     real, fake)
    assert list(terms) == ["loss/g/pixel_l1"]
    np.testing.assert_allclose(terms["loss/g/pixel_l1"],
                               4.0 * tf.reduce_mean(tf.abs(real - fake), [1, 2, 3]), rtol=1e-6)


@pytest.mark.parametrize("with_match", [False, True])
def test_generator_total_is_its_weighted_terms(content, with_match):
    real, fake = images(1), images(2)
    scores = tf.constant([0.5, -2.0])
    real_features = [images(3, size=8), images(4, size=4)]
    fake_features = [images(5, size=8), images(6, size=4)]
    match = tf.constant([0.25, 1.5]) if with_match else None
    train = dataclasses.replace(TRAIN, weight_vgg19=2.0, weight_vggface=0.5,
                                weight_feature_matching=3.0)
    terms = objectives.generator_terms(train, content, real, fake, scores, real_features,
                                       fake_features, match)
    content_sum = 2.0 * by_hand(content[0], real, fake) + 0.5 * by_hand(content[1], real, fake)
    fm = 3.0 * sum(tf.reduce_mean(tf.abs(r - f), [1, 2, 3])
                   for r, f in zip(real_features, fake_features))
    np.testing.assert_allclose(terms["loss/g/content"], content_sum, rtol=1e-5)
    np.testing.assert_allclose(terms["loss/g/adv"], [-0.5, 2.0])
    np.testing.assert_allclose(terms["loss/g/feature_matching"], fm, rtol=1e-5)
    expected = content_sum + np.array([-0.5, 2.0]) + fm + (match if with_match else 0.0)
    np.testing.assert_allclose(terms["loss/g/total"], expected, rtol=1e-5)
    assert ("loss/g/match" in terms) == with_match


def test_discriminator_terms_are_the_hinge_plus_the_match():
    terms = objectives.discriminator_terms(tf.constant([2.0, 0.5]), tf.constant([-3.0, 0.25]),
                                           tf.constant([0.1, 0.2]))
    np.testing.assert_allclose(terms["loss/d/real"], [0.0, 0.5])
    np.testing.assert_allclose(terms["loss/d/fake"], [0.0, 1.25])
    np.testing.assert_allclose(terms["loss/d/total"], [0.1, 1.95], rtol=1e-6)
