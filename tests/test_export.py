"""TFLite export (every mode, parity, metadata, ops) of landmark-only and warp-guided person
models, and the on-device runner without TensorFlow."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfhead import export
from tfhead.animation import reenact
from tfhead.edge import EdgeModel, Invoker, ModelFileError, model_file, undelegated_ops
from tfhead.face import landmark_image
from tfhead.models import blocks
from tfhead.io import video as video_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def person_model(tiny_person):
    return tiny_person


@pytest.fixture(scope="module")
def inputs(person_model):
    return export.export_inputs(person_model, calibration_count=32, parity_count=4)


@pytest.fixture(scope="module")
def exported(person_model, inputs, tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return {mode: export.export(person_model, mode, str(directory / f"astronaut.{mode}.tflite"),
                                inputs)
            for mode in export.QUANTIZATIONS}


@pytest.fixture(scope="module")
def guided_inputs(tiny_guided_person):
    return export.export_inputs(tiny_guided_person, calibration_count=32, parity_count=4)


@pytest.fixture(scope="module")
def guided_exported(tiny_guided_person, guided_inputs, tmp_path_factory):
    directory = tmp_path_factory.mktemp("guided")
    return {mode: export.export(tiny_guided_person, mode,
                                str(directory / f"astronaut_guided.{mode}.tflite"), guided_inputs)
            for mode in ("fp32", "int8")}


@pytest.mark.parametrize("mode", export.QUANTIZATIONS)
def test_every_mode_converts_within_its_thresholds_with_builtins_only(exported, mode,
                                                                    person_model):
    result = exported[mode]
    assert os.path.isfile(result.path) and os.path.getsize(result.path) == result.size_bytes
    thresholds = export.THRESHOLDS[mode]
    assert set(result.parity) == set(export.PARITY_SETS)
    for name in thresholds.sets:
        assert thresholds.violations(result.parity[name]) == [], (name, result.parity[name])
    with open(result.path, "rb") as f:
        content = f.read()
    operators = model_file.operator_names(content)
    assert all(name.isupper() and not name.startswith("FLEX") for name in operators), operators
    assert "CUSTOM" not in operators
    # ψ' is folded in: P (a FULLY_CONNECTED on ê) is gone; the graph is one landmark image in.
    assert "FULLY_CONNECTED" not in operators
    # W / σ(W) is folded into constant kernels: no op computes σ (a sum, a division, matmuls
    # beyond the attention's two per block).
    assert not {"SUM", "DIV", "L2_NORMALIZATION"} & set(operators), operators
    matmuls = [op for op in Invoker(content).interpreter._get_ops_details()
               if op["op_name"] == "BATCH_MATMUL"]
    attention = [layer for layer in person_model.generator._flatten_layers()
                 if isinstance(layer, blocks.SelfAttention)]
    assert len(matmuls) == 2 * len(attention) > 0
    assert len(Invoker(content).inputs) == 1
    # Every node runs inside the XNNPACK delegate, as one partition.
    assert (result.undelegated, result.partitions) == ([], 1)
    meta = model_file.read_metadata(content)
    assert meta["quantization"] == mode and meta["resolution"] == 64
    assert meta["preset"] == "tiny" and meta["person"] == "astronaut"
    assert meta["format_version"] == model_file.FORMAT_VERSION
    assert meta["landmark_image_version"] == landmark_image.LANDMARK_IMAGE_VERSION
    assert [tensor["name"] for tensor in meta["inputs"]] == ["landmark_image"]
    assert meta["inputs"][0]["range"] == meta["output"]["range"] == [-1.0, 1.0]
    assert meta["warp_guidance"] is False
    assert meta["parity"] == result.parity


def test_file_sizes_shrink_with_quantization(exported):
    # tiny has ~25k weights, so the graph and metadata are a large share of the file; at small128
    # fp16 is 0.53× and dynamic/int8 0.30× of fp32 (benchmarks/export.py). The source photo (a
    # JPEG of the same size in every mode) is left out.
    sizes = {mode: r.size_bytes - len(model_file.read_entry(r.content,
                                                            model_file.SOURCE_PHOTO_NAME))
             for mode, r in exported.items()}
    assert sizes["fp16"] < 0.8 * sizes["fp32"]
    assert max(sizes["dynamic"], sizes["int8"]) < 0.7 * sizes["fp32"]


def test_int8_runs_integer_convolutions_and_float_normalization(exported):
    invoker = Invoker(exported["int8"].content)
    types = {(op["op_name"], op["operand_types"][0].__name__)
             for op in invoker.interpreter._get_ops_details() if op["operand_types"]}
    assert ("CONV_2D", "int8") in types
    assert ("MEAN", "float32") in types and ("CONV_2D", "float32") not in types
    assert invoker.inputs[0]["dtype"] == np.int8


def test_the_edge_model_renders_what_the_keras_model_renders(person_model, exported, inputs):
    points = inputs.points["person"]
    edge = EdgeModel.load(exported["fp32"].path, num_threads=2)
    assert not edge.warp_guidance
    difference = np.abs(edge.render(points).astype(int) - person_model.render(points).astype(int))
    assert difference.max() <= 1
    np.testing.assert_allclose(edge.reference_landmarks, person_model.reference_landmarks, atol=1e-3)
    # The file carries the source photo: the runner pastes back like tfhead-animate.
    assert edge.source.photo.shape == person_model.source.photo.shape


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_a_warp_guided_model_exports_with_two_named_inputs_within_its_thresholds(
        guided_exported, mode):
    result = guided_exported[mode]
    thresholds = export.THRESHOLDS[mode]
    for name in thresholds.sets:
        assert thresholds.violations(result.parity[name]) == [], (name, result.parity[name])
    # Its up blocks enlarge bilinearly (small128's G), inside the delegate too.
    assert "RESIZE_BILINEAR" in model_file.operator_names(result.content)
    assert (result.undelegated, result.partitions) == ([], 1)
    meta = model_file.read_metadata(result.content)
    assert meta["warp_guidance"] is True and meta["format_version"] == model_file.FORMAT_VERSION
    assert [tensor["name"] for tensor in meta["inputs"]] == ["landmark_image", "warp"]
    dtype = "int8" if mode == "int8" else "float32"
    assert [tensor["dtype"] for tensor in meta["inputs"]] == [dtype, dtype]
    assert all(tensor["range"] == [-1.0, 1.0] and tensor["shape"] == [1, 64, 64, 3]
               for tensor in meta["inputs"])
    invoker = Invoker(result.content, input_names=("landmark_image", "warp"))
    assert [details["name"] for details in invoker.inputs] == [
        "serving_default_landmark_image:0", "serving_default_warp:0"]


def test_the_edge_model_of_a_warp_guided_model_renders_from_landmarks_with_its_source(
        tiny_guided_person, guided_exported, guided_inputs):
    person = tiny_guided_person
    edge = EdgeModel(guided_exported["fp32"].content, num_threads=2)
    assert edge.warp_guidance
    # The photo travels as JPEG (quality 95): the checkpoint's up to JPEG error; same landmarks.
    assert edge.source.photo.shape == person.source.photo.shape
    assert np.abs(edge.source.photo.astype(int) - person.source.photo.astype(int)).mean() < 3
    np.testing.assert_allclose(edge.source.photo_landmarks, person.source.photo_landmarks,
                               atol=1e-3)
    np.testing.assert_allclose(edge.source.landmarks, person.reference_landmarks, atol=0.01)
    points = guided_inputs.points["person"]
    frames = edge.render(points)
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8
    # It warps the source itself: fed the checkpoint's inputs the graph gives Keras's frames, and
    # from landmarks alone it is off only by the JPEG in its warp.
    inputs = person.model_inputs(points)
    fed = landmark_image.from_model_range(np.concatenate(
        [edge.invoker(*(landmark_image.to_model_range(x[i:i + 1]) for x in inputs))
         for i in range(len(points))]))
    expected = person.render(points)
    assert np.abs(fed.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(frames.astype(int) - expected.astype(int)).mean() < 2.0


def test_a_format_1_file_still_loads_and_renders(exported, inputs):
    """Files exported before warp guidance: one input declared as "input", no source."""
    meta = model_file.read_metadata(exported["fp32"].content)
    old = {key: value for key, value in meta.items()
           if key not in ("inputs", "warp_guidance", "source")}
    old.update(format_version=1, input=meta["inputs"][0])
    edge = EdgeModel(model_file.with_metadata(exported["fp32"].content, old))
    assert edge.source is None and not edge.warp_guidance
    points = inputs.points["person"]
    current = EdgeModel(exported["fp32"].content)
    np.testing.assert_array_equal(edge.render(points), current.render(points))


def test_export_inputs_of_another_model_are_refused_before_conversion(tiny_guided_person, inputs):
    with pytest.raises(export.ExportError, match=r"1 input\(s\).*takes 2 \(landmark_image, warp\)"):
        export.export(tiny_guided_person, "fp32", None, inputs)


def test_a_model_outside_its_thresholds_fails_with_the_numbers_and_writes_nothing(
        person_model, inputs, tmp_path):
    path = tmp_path / "strict.tflite"
    strict = export.Thresholds(max_abs=0.0, mean_abs=0.0, min_ssim=1.0)
    with pytest.raises(export.ExportParityError, match=r"dynamic.*max \|diff\|.*Measured: noise"):
        export.export(person_model, "dynamic", str(path), inputs, strict)
    assert not path.exists() and not os.listdir(tmp_path)


def test_a_graph_needing_flex_ops_fails_at_conversion():
    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def determinant(x):
        return tf.linalg.det(tf.reshape(x[:, :4, :4, 0], [1, 4, 4]))

    with pytest.raises(export.ExportError, match="MatrixDeterminant.*Flex"):
        export.convert(determinant.get_concrete_function(), "fp32")


def test_ops_outside_the_cpu_delegate_are_listed():
    """The delegation check can fail: nearest resizing is a builtin XNNPACK does not take."""
    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
    def resize_then_conv(x):
        y = tf.image.resize(x, (32, 32), method="nearest")
        return tf.nn.conv2d(y, tf.ones([3, 3, 3, 4]), 1, "SAME")

    invoker = Invoker(export.convert(resize_then_conv.get_concrete_function(), "fp32"))
    outside, partitions = undelegated_ops(invoker)
    assert outside == ["RESIZE_NEAREST_NEIGHBOR"] and partitions == 1


@pytest.mark.parametrize("mode", export.QUANTIZATIONS)
def test_downsampling_stays_in_the_delegate_at_paper_widths(mode, rng):
    """At 512 channels: an int8 AVERAGE_POOL_2D, or a 2×2 depthwise convolution whose kernel the
    dynamic-range quantizer turns int8, each fell out of XNNPACK; `downsample_avg_2x` does not."""
    from tfhead.models import ops as tfops

    w1 = tf.constant(rng.normal(size=(3, 3, 3, 512)).astype("float32") * 0.1)
    w2 = tf.constant(rng.normal(size=(3, 3, 512, 8)).astype("float32") * 0.05)

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def conv_down_conv(x):
        h = tf.nn.relu(tf.nn.conv2d(x, w1, 1, "SAME"))
        return tf.nn.conv2d(tfops.downsample_avg_2x(h), w2, 1, "SAME")

    calibration = rng.integers(0, 256, size=(8, 32, 32, 3)).astype(np.uint8)
    invoker = Invoker(export.convert(conv_down_conv.get_concrete_function(), mode, [calibration]))
    assert undelegated_ops(invoker) == ([], 1)


def _rewrite_metadata(content, **changes):
    meta = model_file.read_metadata(content)
    for key, value in changes.items():
        meta[key] = value
    return model_file.with_metadata(content, meta)


def test_mismatched_or_missing_metadata_is_a_clear_error(exported, guided_exported,
                                                         person_model):
    content = exported["fp16"].content
    guided = guided_exported["fp32"].content
    EdgeModel(content)  # the real files load
    EdgeModel(guided)
    meta = model_file.read_metadata(guided)
    cases = [
        (_rewrite_metadata(content, resolution=128), "metadata says resolution 128"),
        (_rewrite_metadata(content, landmark_image_version=99), "landmark images v99"),
        (_rewrite_metadata(content, format_version=99), "format 99"),
        (_rewrite_metadata(content, reference_landmarks=[[0, 0]]), "reference_landmarks"),
        (_rewrite_metadata(content, warp_guidance=True), "declares the inputs"),
        (_rewrite_metadata(guided, inputs=meta["inputs"][::-1]), "declares the inputs"),
        (_rewrite_metadata(guided, source=None), "without its source photo"),
        (model_file.with_metadata(content, model_file.read_metadata(content),
                                  {model_file.SOURCE_PHOTO_NAME: b"not a JPEG"}),
         "source photo .* not a readable JPEG"),
        (_rewrite_metadata(content, warp_guidance=True, inputs=meta["inputs"]),
         r"Expected the inputs \['landmark_image', 'warp'\]"),
        (export.convert(export.serving_function(person_model), "fp32"), "no tfhead metadata"),
        (b"\0" * 64, "not a TFLite model"),
    ]
    for bad, message in cases:
        with pytest.raises(ModelFileError, match=message):
            EdgeModel(bad)


def test_metadata_round_trips_and_replaces_itself(exported):
    content = model_file.with_metadata(exported["fp32"].content, {"a": 1})
    content = model_file.with_metadata(content, {"b": [1, 2]})
    assert model_file.read_metadata(content) == {"b": [1, 2]}
    # The graph is untouched.
    x = np.zeros((1, 64, 64, 3), np.float32)
    np.testing.assert_array_equal(Invoker(content)(x), Invoker(exported["fp32"].content)(x))


def test_calibration_from_a_driving_video_holds_out_the_parity_images(person_model, driver):
    inputs = export.export_inputs(person_model, driver["silent"], calibration_count=16,
                                  parity_count=4)
    assert "driving video" in inputs.source
    assert len(inputs.calibration[0]) >= 12 and len(inputs.parity["person"][0]) == 4
    assert len(inputs.points["person"]) == 4
    person = landmark_image.from_model_range(inputs.parity["person"][0])
    for image in person:  # held out: no parity image is also a calibration image
        assert not any(np.array_equal(image, c) for c in inputs.calibration[0])


def test_a_headless_opencv_gives_a_clear_window_error(exported, driver, tmp_path):
    import cv2

    if "GTK" in cv2.getBuildInformation() and os.environ.get("DISPLAY"):
        pytest.skip("this OpenCV has GTK and a display: a window opens, so there is no "
                    "headless error to check (CI's opencv-python-headless has none)")
    with pytest.raises(reenact.DisplayError, match="no GUI"):
        reenact.reenact(EdgeModel.load(exported["fp16"].path), driver["silent"], None,
                        reenact.ReenactOptions(display=True, max_frames=2))


def test_the_mp4v_fallback_writes_a_readable_silent_video(exported, driver, tmp_path):
    """Where no ffmpeg exists the loop writes OpenCV's mp4v (no audio), same frames, pasted back
    into the source photo (512² for the astronaut)."""
    out = str(tmp_path / "out.mp4")
    report = reenact.reenact(EdgeModel.load(exported["fp16"].path), driver["audio"], out,
                             reenact.ReenactOptions(codec="mp4v", max_frames=6))
    info = video_lib.probe(out)
    assert (report.frames, report.audio, report.frame_size) == (6, False, (512, 512))
    assert (info.frame_count, info.width, info.height) == (6, 512, 512)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def _edge(*flags):
    """tfhead-edge in a subprocess where `import tensorflow` raises ImportError."""
    return subprocess.run([sys.executable, os.path.join(REPO, "tests", "no_tensorflow.py"),
                           "tfhead_cli.edge", *flags], capture_output=True, text=True, env=ENV,
                          cwd=REPO)


@pytest.mark.parametrize("kind, mode", [("paper", "fp32"), ("paper", "int8"), ("guided", "int8")])
def test_the_runner_works_where_tensorflow_cannot_be_imported(exported, guided_exported, driver,
                                                              tmp_path, kind, mode):
    model = (exported if kind == "paper" else guided_exported)[mode].path
    out, side = str(tmp_path / "out.mp4"), str(tmp_path / "sbs.mp4")
    run = _edge(f"--model={model}", f"--driver={driver['audio']}", f"--out={out}",
                f"--side_by_side={side}", "--num_threads=2", "--benchmark")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "blocked modules imported: []" in run.stderr
    assert "30 frames" in run.stdout and "audio yes" in run.stdout
    assert "frames/s over the whole loop" in run.stdout
    for stage in reenact.STAGES:
        assert f"{stage} " in run.stdout.split("median ms per frame:")[1]
    assert "ops outside it: none" in run.stdout
    # Pasted back into the source photo from the file: the astronaut's 512², and the driver's crop
    # scaled to 512² beside it.
    info = video_lib.probe(out)
    assert (info.frame_count, info.width, info.height) == (30, 512, 512)
    assert video_lib.probe(side).width == 1024 and video_lib.has_audio(out)


def test_the_runner_refuses_a_mismatched_model_in_one_line(exported, driver, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_rewrite_metadata(exported["fp32"].content, resolution=256))
    out = tmp_path / "out.mp4"
    for model, message in ((bad, "metadata says resolution 256"),
                           (tmp_path / "missing.tflite", "No model file")):
        run = _edge(f"--model={model}", f"--driver={driver['silent']}", f"--out={out}")
        assert run.returncode != 0 and message in run.stderr, run.stderr[-2000:]
        assert "Traceback" not in run.stderr
    assert not out.exists()


@pytest.mark.slow
def test_export_cli_writes_every_mode_and_prints_sizes_and_parity(person_model, tmp_path):
    person = person_model.save(str(tmp_path / "person"))
    out = tmp_path / "models"
    run = subprocess.run([sys.executable, os.path.join(REPO, "export", "export_tflite.py"),
                          f"--person={person}", "--quantization=all", f"--out={out}",
                          "--calibration_images=16", "--parity_images=2"],
                         capture_output=True, text=True, env=ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    for mode in export.QUANTIZATIONS:
        path = out / f"astronaut.{mode}.tflite"
        assert path.is_file()
        assert f"{mode}" in run.stdout and str(path) in run.stdout
        meta = model_file.read_metadata(path.read_bytes())
        assert set(meta["parity"]) == set(export.PARITY_SETS)  # the printed numbers, stored
    assert run.stdout.count("parity vs Keras: noise max") == 4
    assert run.stdout.count("ops outside the delegate: none") == 4
    # One mode into one file; and `all` into a file is refused in one line.
    single = tmp_path / "one.tflite"
    run = subprocess.run([sys.executable, os.path.join(REPO, "export", "export_tflite.py"),
                          f"--person={person}", "--quantization=fp16", f"--out={single}",
                          "--parity_images=2"], capture_output=True, text=True, env=ENV)
    assert run.returncode == 0 and single.is_file(), run.stderr[-2000:]
    run = subprocess.run([sys.executable, os.path.join(REPO, "export", "export_tflite.py"),
                          f"--person={tmp_path / 'nobody'}", f"--out={out}"],
                         capture_output=True, text=True, env=ENV)
    assert run.returncode != 0 and "No person checkpoint" in run.stderr
    assert "Traceback" not in run.stderr
