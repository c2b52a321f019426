"""VGG19 / VGGFace feature networks on weight files built here (nothing is downloaded)."""

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from tfhead.training import feature_networks as fn


def _write_legacy_h5(model, path):
    """A Keras-2 layout weight file, like the published VGG no-top files."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(7)
    vgg19 = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    vgg16 = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    paths = {"vgg19": str(directory / "vgg19_notop.h5"), "vggface": str(directory / "vggface.h5"),
             "vggface_keras3": str(directory / "vggface.weights.h5")}
    _write_legacy_h5(vgg19, paths["vgg19"])
    _write_legacy_h5(vgg16, paths["vggface"])
    vgg16.save_weights(paths["vggface_keras3"])
    return paths, vgg19, vgg16


def test_caffe_input_convention():
    red = np.array([[[[1.0, -1.0, -1.0]]]], np.float32)  # RGB (255, 0, 0)
    out = np.asarray(fn.caffe_input(red, fn.IMAGENET_MEAN_BGR))[0, 0, 0]
    np.testing.assert_allclose(out, [0 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-6)


def test_loaded_networks_reproduce_the_source_activations(weight_files, rng):
    paths, vgg19, vgg16 = weight_files
    images = rng.uniform(-1, 1, size=(2, 32, 32, 3)).astype("float32")
    for kind, source, path in (("vgg19", vgg19, paths["vgg19"]), ("vggface", vgg16, paths["vggface"]),
                               ("vggface", vgg16, paths["vggface_keras3"])):
        network = fn.FeatureNetwork(kind, 32, path)
        activations = network(images)
        assert len(activations) == 5
        expected = keras.Model(source.input, source.get_layer("block3_conv1").output)(
            fn.caffe_input(images, network.mean_bgr))
        np.testing.assert_allclose(np.asarray(activations[2]), np.asarray(expected), rtol=1e-4, atol=1e-4)
        assert not network.model.trainable_weights


def test_missing_weights_name_the_flag(tmp_path):
    with pytest.raises(fn.FeatureWeightsError, match="--vgg19_weights"):
        fn.build_content_networks("vgg", 32, None, None)
    with pytest.raises(fn.FeatureWeightsError, match="--vggface_weights: no such file"):
        fn.FeatureNetwork("vggface", 32, str(tmp_path / "missing.h5"))


def test_a_file_of_the_wrong_network_is_rejected(weight_files):
    paths, _, _ = weight_files
    with pytest.raises(fn.FeatureWeightsError, match="does not fit the VGG19"):
        fn.FeatureNetwork("vgg19", 32, paths["vggface"])


def test_smoke_test_modes():
    assert fn.build_content_networks("pixel_l1", 32) is None
    vgg19, vggface = fn.build_content_networks("random_vgg", 32)
    assert vgg19.random_weights and vggface.random_weights


@pytest.mark.parametrize("resolution", [64, 128])
def test_face_chips_equal_crop_and_resize_and_compile_with_xla(resolution, rng):
    """The face chip is two constant products (XLA has no CropAndResize kernel): the same
    samples as `tf.image.crop_and_resize`, a box reaching outside the image included."""
    import tensorflow as tf

    features = fn.FaceNetFeatures()
    images = tf.constant(rng.uniform(-1, 1, (2, resolution, resolution, 3)).astype(np.float32))
    for box in (features.box, (-0.1, 0.05, 1.1, 0.9)):
        features.box = box
        expected = (tf.image.crop_and_resize(images, [box] * 2, [0, 1], (150, 150)) + 1) * 127.5
        np.testing.assert_allclose(features.chips(images), expected, atol=5e-3)  # of 255
        compiled = tf.function(features.chips, jit_compile=True)
        np.testing.assert_allclose(compiled(images), expected, atol=5e-3)  # of 255
