"""Networks: shapes, pinned sizes, serialization, AdaIN layout, projection, feature matching outputs,
and the op set of an exported generator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfhead import config as cfg
from tfhead.models import layers, networks

# Trainable parameters (embedder, generator, discriminator with num_videos=1; W adds
# num_videos × embedding_dim). Listed in BUILD_NOTES.md; a change here is an architecture change.
PINNED_TRAINABLE = {
    "tiny": (39_017, 24_949, 57_578),
    "small128": (2_467_873, 1_956_518, 3_648_546),  # warp-guided G (paper G: 1_955_269)
    "paper256": (14_906_945, 37_966_469, 19_627_586),
}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _images(rng, batch, resolution):
    return rng.uniform(-1, 1, size=(batch, resolution, resolution, 3)).astype("float32")


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return networks.build_networks(cfg.get_preset("tiny").model, num_videos=5)


@pytest.mark.parametrize("resolution", [32, 64])
def test_output_shapes_at_two_resolutions(rng, resolution):
    model = cfg.get_preset("tiny", {"model.resolution": resolution}).model
    embedder, generator, discriminator = networks.build_networks(model, num_videos=3)
    frames, landmarks = _images(rng, 2, resolution), _images(rng, 2, resolution)
    embedding = embedder((frames, landmarks))
    assert tuple(embedding.shape) == (2, model.embedding_dim)
    fake = np.asarray(generator((landmarks, embedding)))
    assert fake.shape == (2, resolution, resolution, 3)
    assert fake.min() >= -1.0 and fake.max() <= 1.0
    score, features = discriminator((frames, landmarks, np.array([0, 2])))
    assert tuple(score.shape) == (2,)
    assert len(features) == model.embedder_blocks + 1


@pytest.mark.parametrize("preset", sorted(PINNED_TRAINABLE))
def test_parameter_counts_are_pinned(preset):
    embedder, generator, discriminator = networks.build_networks(
        cfg.get_preset(preset).model, num_videos=1)
    counts = tuple(_trainable(n) for n in (embedder, generator, discriminator))
    assert counts == PINNED_TRAINABLE[preset]


def test_every_conv_and_dense_is_spectrally_normalized(tiny):
    for network in tiny:
        everything = list(network._flatten_layers(include_self=False, recursive=True))
        plain = [l for l in everything if isinstance(
            l, (keras.layers.Conv2D, keras.layers.Dense, keras.layers.SpectralNormalization))]
        normalized = [l for l in everything
                      if isinstance(l, (layers.SpectralConv2D, layers.SpectralDense))]
        assert not plain and len(normalized) > 5


def test_embed_person_is_mean_over_k(rng, tiny):
    embedder = tiny[0]
    frames, landmarks = _images(rng, 6, 64), _images(rng, 6, 64)
    per_frame = np.asarray(embedder((frames, landmarks)))
    person = np.asarray(embedder.embed_person(frames.reshape(2, 3, 64, 64, 3),
                                              landmarks.reshape(2, 3, 64, 64, 3)))
    np.testing.assert_allclose(person, per_frame.reshape(2, 3, -1).mean(axis=1), rtol=1e-5, atol=1e-5)


def test_embedder_final_relu_is_a_switch_on_the_same_weights(rng, tiny):
    """`model.embedder_final_relu=False` drops only E's last ReLU: on the same weights its
    output is the unclipped pooled features (some negative) where the paper's E gives
    non-negative, different ones; the switch round-trips through the config and D has none."""
    model = cfg.get_preset("tiny", {"model.embedder_final_relu": False}).model
    linear, _, discriminator = networks.build_networks(model, num_videos=1)
    assert not linear.final_relu and tiny[0].final_relu
    linear.set_weights(tiny[0].get_weights())
    frames, landmarks = _images(rng, 4, 64), _images(rng, 4, 64)
    raw, _ = linear.body(frames, landmarks, final_relu=False)
    np.testing.assert_allclose(np.asarray(linear((frames, landmarks))), np.asarray(raw), atol=1e-6)
    assert np.asarray(raw).min() < 0  # not clipped
    relu_d = np.asarray(tiny[0]((frames, landmarks)))
    assert relu_d.min() >= 0
    assert not np.allclose(relu_d, np.asarray(raw), atol=1e-3)
    clone = networks.Embedder.from_config(linear.get_config())
    assert clone.final_relu is False
    assert "final_relu" not in discriminator.get_config()


def test_generator_psi_layout_and_render(rng, tiny):
    _, generator, _ = tiny
    assert generator.psi_dim == 2 * sum(generator.adain_channels)
    # One AdaIN pair per residual and up block, plus the final one.
    assert len(generator.adain_channels) == 2 * (generator.res_blocks + generator.up_blocks) + 1
    # P starts at γ = 1, β = 0 (its bias), whatever the embedding.
    bias = np.asarray(generator.projection.bias)
    for gamma, beta in generator.split_psi(bias):
        np.testing.assert_array_equal(gamma, 1.0)
        np.testing.assert_array_equal(beta, 0.0)
    landmarks = _images(rng, 2, 64)
    embedding = rng.normal(size=(2, generator.embedding_dim)).astype("float32")
    psi = generator.project(embedding)
    np.testing.assert_allclose(np.asarray(generator((landmarks, embedding))),
                               np.asarray(generator.render(landmarks, psi)), atol=1e-6)
    # ψ decides the output: another person's ψ renders another image.
    other = np.asarray(generator.render(landmarks, np.asarray(psi)[::-1]))
    assert np.abs(other - np.asarray(generator.render(landmarks, psi))).max() > 1e-4


def test_bilinear_upsampling_removes_the_block_pattern_of_nearest(rng):
    """The grid texture of a briefly trained G is nearest upsampling's: with the same weights, a
    G whose up blocks enlarge bilinearly renders no period-4 grid (tiny: two ×2 steps), one with
    nearest does. The option has no weights, round-trips through the config, and is validated."""
    from tfhead.evaluation import metrics

    renders, weights = {}, None
    for mode in ("nearest", "bilinear"):
        keras.utils.set_random_seed(3)
        model = cfg.get_preset("tiny", {"model.generator_upsampling": mode}).model
        generator = networks.Generator(**networks.generator_kwargs(model), name="generator")
        generator.build()
        if weights is not None:                                 # the nearest G's weights
            generator.set_weights(weights)
            assert generator.get_config()["upsampling"] == "bilinear"
            clone = networks.Generator.from_config(generator.get_config())
            clone.build()
            assert clone.upsampling == "bilinear"
        weights = generator.get_weights()
        # Smooth inputs, so that whatever grid the output has comes from G.
        coarse = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
        landmarks = np.asarray(tf.image.resize(coarse, (64, 64), "bicubic"))
        embedding = np.random.default_rng(1).normal(size=(4, generator.embedding_dim))
        out = np.asarray(generator((landmarks, embedding.astype("float32"))))
        renders[mode] = np.round((out + 1) * 127.5).astype(np.uint8)
    nearest = metrics.block_pattern(renders["nearest"], 4)
    bilinear = metrics.block_pattern(renders["bilinear"], 4)
    # Measured: nearest 1.53–1.72 per frame, bilinear 1.17–1.34.
    assert nearest.min() > 1.1 * bilinear.max(), (nearest, bilinear)
    assert nearest.mean() > 1.2 * bilinear.mean(), (nearest, bilinear)
    assert cfg.get_preset("tiny").model.generator_upsampling == "nearest"   # the paper's
    # The config (no TensorFlow) keeps its own copy of the modes the ops implement.
    from tfhead.models import ops as tfops
    assert cfg.UPSAMPLING_MODES == tfops.UPSAMPLING_MODES
    with pytest.raises(cfg.ConfigError, match="generator_upsampling"):
        cfg.get_preset("tiny", {"model.generator_upsampling": "cubic"})


def test_a_warp_guided_generator_takes_the_warp_and_blends_it_in(rng):
    keras.utils.set_random_seed(1)
    model = cfg.get_preset("tiny", {"model.warp_guidance": True}).model
    _, generator, _ = networks.build_networks(model, num_videos=2)
    paper = networks.Generator(**networks.generator_kwargs(cfg.get_preset("tiny").model))
    paper.build()
    # 6 input channels (landmark image + warp) and a fourth output channel (the mask's logit).
    assert generator.encoder_stages[0][0].weights[0].shape[-2] == 6
    assert paper.encoder_stages[0][0].weights[0].shape[-2] == 3
    assert generator.to_rgb.kernel.shape[-1] == 4 and paper.to_rgb.kernel.shape[-1] == 3
    landmarks, warp = _images(rng, 2, 64), _images(rng, 2, 64)
    embedding = rng.normal(size=(2, model.embedding_dim)).astype("float32")
    out = np.asarray(generator((landmarks, embedding, warp)))
    assert out.shape == (2, 64, 64, 3) and np.abs(out).max() <= 1.0
    # The warp reaches the output through the mask and through the encoder.
    other = np.asarray(generator((landmarks, embedding, -warp)))
    assert np.abs(other - out).max() > 1e-3
    # A mask logit pushed to +∞ passes the warp through unchanged, to −∞ leaves G's own image.
    bias = generator.to_rgb.bias
    saved = bias.numpy().copy()
    bias.assign(np.array([0, 0, 0, 60.0], "float32"))
    np.testing.assert_allclose(np.asarray(generator((landmarks, embedding, warp))), warp,
                               atol=1e-6)
    bias.assign(saved)
    with pytest.raises(ValueError, match="needs the warp input"):
        generator.render(landmarks, generator.project(embedding))
    with pytest.raises(ValueError, match="takes no warp"):
        paper.render(landmarks, paper.project(embedding), warp)


def test_projection_score_matches_hand_computation(rng, tiny):
    _, _, discriminator = tiny
    frames, landmarks = _images(rng, 2, 64), _images(rng, 2, 64)
    discriminator.w0.assign(rng.normal(size=discriminator.w0.shape).astype("float32"))
    discriminator.bias.assign(0.75)
    index = np.array([4, 1])
    score, _ = discriminator((frames, landmarks, index))
    v, _ = discriminator.body(frames, landmarks)
    table = np.asarray(discriminator.video_embeddings.embeddings)
    expected = [np.dot(np.asarray(v)[b], table[index[b]] + np.asarray(discriminator.w0)) + 0.75
                for b in range(2)]
    np.testing.assert_allclose(np.asarray(score), expected, rtol=1e-5)


def test_person_discriminator_uses_w0_plus_embedding(rng, tiny):
    _, _, discriminator = tiny
    frames, landmarks = _images(rng, 2, 64), _images(rng, 2, 64)
    embedding = rng.normal(size=(discriminator.embedding_dim,)).astype("float32")
    person = networks.PersonDiscriminator.from_discriminator(discriminator, embedding)
    assert not any("video_embeddings" in w.path for w in person.weights)
    # Meta D with W_3 = ê gives the same score as the person D with w' = w0 + ê.
    table = np.asarray(discriminator.video_embeddings.embeddings).copy()
    table[3] = embedding
    discriminator.video_embeddings.embeddings.assign(table)
    meta_score, meta_features = discriminator((frames, landmarks, np.array([3, 3])))
    person_score, person_features = person((frames, landmarks))
    np.testing.assert_allclose(np.asarray(person_score), np.asarray(meta_score), rtol=1e-5, atol=1e-5)
    for a, b in zip(meta_features, person_features):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_discriminator_features_count_and_shapes(rng, tiny):
    _, _, discriminator = tiny
    _, features = discriminator((_images(rng, 1, 64), _images(rng, 1, 64), np.array([0])))
    # One per residual block: 64→32→16→8→4 down blocks and one extra block at 4².
    assert [tuple(f.shape[1:]) for f in features] == discriminator.feature_shapes == [
        (32, 32, 8), (16, 16, 16), (8, 8, 32), (4, 4, 32), (4, 4, 32)]


def _inputs_for(network, rng):
    images = (_images(rng, 2, 64), _images(rng, 2, 64))
    if isinstance(network, networks.Generator):
        return (images[0], rng.normal(size=(2, network.embedding_dim)).astype("float32"))
    if isinstance(network, networks.Discriminator):
        return images + (np.array([1, 4]),)
    return images


def _first_output(outputs):
    return np.asarray(outputs[0] if isinstance(outputs, tuple) else outputs)


def test_get_config_from_config_round_trip(rng, tiny):
    for network in tiny:
        clone = type(network).from_config(network.get_config())
        clone.build()
        clone.set_weights(network.get_weights())
        inputs = _inputs_for(network, rng)
        np.testing.assert_array_equal(_first_output(clone(inputs)), _first_output(network(inputs)))


def test_keras_save_load_round_trip(rng, tiny, tmp_path):
    embedding = rng.normal(size=(tiny[2].embedding_dim,)).astype("float32")
    person = networks.PersonDiscriminator.from_discriminator(tiny[2], embedding)
    for network in tiny + (person,):
        path = tmp_path / f"{network.name}.keras"
        network.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(network)
        inputs = _inputs_for(network, rng)
        np.testing.assert_array_equal(_first_output(loaded(inputs)), _first_output(network(inputs)))


def test_tf_checkpoints_hold_every_weight(tmp_path):
    """tf.train.Checkpoint (used by training) sees the blocks kept in lists, not just direct
    attributes: every variable of every network is written under the network's name."""
    embedder, generator, discriminator = networks.build_networks(cfg.get_preset("tiny").model, 3)
    path = tf.train.Checkpoint(embedder=embedder, generator=generator,
                               discriminator=discriminator).write(str(tmp_path / "ckpt"))
    saved = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    for network in (embedder, generator, discriminator):
        count = sum(1 for name in saved if name.startswith(network.name + "/"))
        assert count == len(network.variables), network.name
