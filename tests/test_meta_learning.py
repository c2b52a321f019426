"""Meta-learning: which variables each step trains, sparse W, resumption, distribution, the CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfhead import config as config_lib
from tfhead.data import corpora
from tfhead.training import distribute, feature_networks, loop, losses, meta_learning

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_VIDEOS = 6


def tiny_config(**overrides):
    return config_lib.get_preset("tiny", {"train.content_loss": "pixel_l1", **overrides})


def random_batch(config, video_index=(1, 3), seed=0):
    rng = np.random.default_rng(seed)
    b, k, r = len(video_index), config.train.k_shots, config.model.resolution

    def images(*shape):
        return tf.constant(rng.uniform(-1, 1, shape).astype(np.float32))

    return {"frames": images(b, k, r, r, 3), "landmark_images": images(b, k, r, r, 3),
            "target_frame": images(b, r, r, 3), "target_landmark_image": images(b, r, r, 3),
            "video_index": tf.constant(video_index, tf.int32)}


def snapshot(*models):
    return {f"{m.name}/{v.path}": v.numpy().copy() for m in models for v in m.variables}


def changed(before, after):
    return {k for k in before if not np.array_equal(before[k], after[k])}


def test_generator_step_trains_e_g_and_p_and_leaves_d_alone():
    config = tiny_config()
    learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    before = snapshot(learner.embedder, learner.generator, learner.discriminator)
    metrics = learner.generator_step(random_batch(config))
    after = snapshot(learner.embedder, learner.generator, learner.discriminator)
    diff = changed(before, after)
    # The self-attention convolutions get no gradient while SAGAN's γ is still 0 (first step).
    trainable = {f"{m.name}/{v.path}" for m in (learner.embedder, learner.generator)
                 for v in m.trainable_variables
                 if "/attention" not in v.path or v.path.endswith("/gamma")}
    assert trainable <= diff, sorted(trainable - diff)
    assert any(k.startswith("generator/") and "projection" in k for k in trainable)  # P
    assert not {k for k in diff if k.startswith("discriminator/")}
    assert {"loss/g/adv", "loss/g/feature_matching", "loss/g/match", "loss/g/pixel_l1",
            "loss/g/total"} <= set(metrics)
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_a_warp_guided_generator_step_uses_the_target_warp():
    config = tiny_config(**{"model.warp_guidance": True})
    learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    batch = random_batch(config)
    with pytest.raises(ValueError, match="needs the warp input"):
        learner.generator_step(batch)
    batch["target_warp"] = tf.constant(np.random.default_rng(1).uniform(
        -1, 1, batch["target_frame"].shape).astype(np.float32))
    before = snapshot(learner.generator)
    metrics = learner.generator_step(batch)
    assert changed(before, snapshot(learner.generator))
    assert np.isfinite(float(metrics["loss/g/total"]))
    preview = learner.preview(batch).numpy()
    assert preview.shape == batch["target_frame"].shape


def test_discriminator_step_trains_d_and_only_the_sampled_rows_of_w():
    config = tiny_config()
    learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    table_before = learner.video_table.numpy().copy()
    before = snapshot(learner.embedder, learner.generator, learner.discriminator)
    metrics = learner.discriminator_step(random_batch(config, video_index=(1, 3)))
    after = snapshot(learner.embedder, learner.generator, learner.discriminator)
    diff = changed(before, after)
    assert not {k for k in diff if not k.startswith("discriminator/")}
    # b's hinge gradient is −1 (real inside the margin) + 1 (fake inside it) = 0 at the start,
    # and the attention's convolutions get none while its γ is 0 (SAGAN's start), so they are
    # the variables allowed to stay put here (spectral normalization no longer rewrites kernels).
    d_trainable = {f"discriminator/{v.path}" for v in learner.discriminator.trainable_variables
                   if v is not learner.discriminator.bias and "/attention" not in v.path
                   or v.path.endswith("/gamma")}
    assert d_trainable <= diff, sorted(d_trainable - diff)
    rows_changed = np.flatnonzero(np.abs(learner.video_table.numpy() - table_before).sum(1))
    np.testing.assert_array_equal(rows_changed, [1, 3])
    assert {"loss/d/real", "loss/d/fake", "loss/d/match", "score/real"} <= set(metrics)
    # What a GPU user watches: does W keep up with the embeddings?
    rows = learner.video_table.numpy()[[1, 3]]
    assert float(metrics["embeddings/w_rows_abs"]) == pytest.approx(np.abs(rows).mean(), rel=1e-4)
    assert float(metrics["embeddings/e_abs"]) > 0


def test_w_gradient_stays_sparse_and_lazy_adam_leaves_other_moments():
    config = tiny_config()
    learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    batch = random_batch(config, video_index=(2, 2))  # the same video twice: summed, one row
    learner.discriminator_step(batch)
    index = learner.discriminator_optimizer._get_variable_index(learner.video_table)
    moments = learner.discriminator_optimizer._velocities[index].numpy()
    assert np.flatnonzero(np.abs(moments).sum(1)).tolist() == [2]


def test_feed_forward_variant_has_no_match_term():
    config = tiny_config(**{"train.feed_forward": True})
    learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    table_before = learner.video_table.numpy().copy()
    g = learner.generator_step(random_batch(config))
    d = learner.discriminator_step(random_batch(config))
    assert "loss/g/match" not in g and "loss/d/match" not in d
    # Without L_MCH, W only moves through the hinge loss (still only the sampled rows).
    rows = np.flatnonzero(np.abs(learner.video_table.numpy() - table_before).sum(1))
    assert set(rows) <= {1, 3}


def test_the_loss_weights_multiply_their_terms_in_the_step():
    """The same first step (same seed, same batch) with weights 1 and 3: a term whose weight
    multiplication were lost would not triple."""
    def first_step(weight):
        config = tiny_config(**{"train.weight_feature_matching": weight,
                                "train.weight_match": 5.0 * weight})
        learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
        return {k: float(v) for k, v in learner.generator_step(random_batch(config)).items()}

    one, three = first_step(1.0), first_step(3.0)
    for key in ("loss/g/feature_matching", "loss/g/match"):
        assert one[key] > 0 and three[key] == pytest.approx(3.0 * one[key], rel=1e-4), key
    for key in ("loss/g/content", "loss/g/adv"):
        assert three[key] == pytest.approx(one[key], rel=1e-4), key
    expected = (three["loss/g/content"] + three["loss/g/adv"] + three["loss/g/feature_matching"]
                + three["loss/g/match"])
    assert three["loss/g/total"] == pytest.approx(expected, rel=1e-5)


def test_vgg_content_loss_path_runs_with_both_networks():
    config = tiny_config(**{"train.content_loss": "random_vgg"})
    content = feature_networks.build_content_networks("random_vgg", 64)
    learner = meta_learning.MetaLearner(config, NUM_VIDEOS, content_networks=content)
    m = learner.train_step(random_batch(config))
    assert float(m["loss/g/vgg19"]) > 0 and float(m["loss/g/vggface"]) > 0
    # (That each weight scales its own network is pinned in test_objectives.)


def test_mirrored_strategy_on_two_cpus_matches_one_device():
    config = tiny_config()
    batch = random_batch(config)
    single = meta_learning.MetaLearner(config, NUM_VIDEOS)
    single_metrics = single.train_step(batch)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    mirrored = meta_learning.MetaLearner(config, NUM_VIDEOS, strategy=strategy)
    dist_batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch))))
    mirrored_metrics = mirrored.train_step(dist_batch)
    for key, value in single_metrics.items():
        assert float(mirrored_metrics[key]) == pytest.approx(float(value), rel=1e-4, abs=1e-5), key
    for a, b in zip(single.generator.variables + single.discriminator.variables,
                    mirrored.generator.variables + mirrored.discriminator.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)
    # The power-iteration vectors are one value across replicas (ONLY_FIRST_REPLICA), not a
    # copy per replica updated separately.
    vectors = [v for v in mirrored.generator.variables + mirrored.discriminator.variables
               if v.path.rsplit("/", 1)[-1] in ("sn_u", "sn_v")]
    assert vectors and all(v.aggregation == "only_first_replica" for v in vectors)
    per_replica = strategy.run(lambda: [tf.identity(v.value) for v in vectors])
    for value in per_replica:
        first, second = strategy.experimental_local_results(value)
        np.testing.assert_array_equal(first.numpy(), second.numpy())


def test_batch_must_split_over_replicas():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with pytest.raises(loop.TrainingError, match="multiple of the 2 replicas"):
        meta_learning.MetaLearner(tiny_config(**{"train.batch_size": 3}), NUM_VIDEOS, strategy)


def test_bfloat16_and_xla_steps_run():
    config = tiny_config()
    with distribute.precision_policy("mixed_bfloat16"):
        learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    assert learner.generator.compute_dtype == "bfloat16"
    assert all(np.isfinite(float(v)) for v in learner.train_step(random_batch(config)).values())
    assert keras.config.dtype_policy().name == "float32"
    xla = meta_learning.MetaLearner(config, NUM_VIDEOS, jit_compile=True)
    assert all(np.isfinite(float(v)) for v in xla.train_step(random_batch(config)).values())


def test_bfloat16_steps_keep_float32_master_weights_and_w_lookups():
    """Under mixed_bfloat16 the spectrally normalized kernels stay float32 masters (a training call
    used to round every one to bfloat16), and D's W is gathered in float32: no op casts the whole
    [num_videos, dim] table."""
    config = tiny_config()
    with distribute.precision_policy("mixed_bfloat16"):
        learner = meta_learning.MetaLearner(config, NUM_VIDEOS)
    learner.train_step(random_batch(config))
    kernels = [v for v in learner.generator_variables + learner.discriminator_variables
               if v.path.endswith("/kernel")]
    assert len(kernels) > 20
    for kernel in kernels:
        bits = np.asarray(kernel, np.float32).view(np.uint32) & 0xFFFF
        assert np.count_nonzero(bits) > 0.5 * bits.size, kernel.path
    discriminator = learner.discriminator
    assert discriminator.video_embeddings.compute_dtype == "float32"
    batch = random_batch(config)
    graph = tf.function(lambda f, l, i: discriminator((f, l, i), training=True)).get_concrete_function(
        batch["target_frame"], batch["target_landmark_image"], batch["video_index"]).graph
    table_shape = list(learner.video_table.shape)
    casts = [op for op in graph.get_operations() if op.type == "Cast"
             and op.inputs[0].shape.as_list() == table_shape]
    assert not casts, [op.name for op in casts]


# ---------------------------------------------------------------------------------------------
# The loop on records made by train/preprocess.py.

def run_module(script, *args, check=True, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, os.path.join(REPO, script), *args], env=env,
                            capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    corpora.make_procedural_corpus(str(root), persons=3, videos_per_person=2, frames_per_clip=10,
                                   size=160)
    out = tmp_path_factory.mktemp("records")
    run_module("train/preprocess.py", f"--input={root}", f"--out={out}", "--resolution=64",
               "--frames_per_video=6", "--videos_per_shard=2", "--no_progress_bar")
    return str(out)


def options(records, workdir, steps, **kwargs):
    return meta_learning.MetaTrainOptions(
        data=records, workdir=str(workdir), steps=steps, log_every=kwargs.pop("log_every", 1),
        image_every=0,
        checkpoint_every=kwargs.pop("checkpoint_every", 2), **kwargs)


def all_variables(embedder, generator, discriminator):
    """Every variable of E, G and D (spectral-norm vectors included), in construction order."""
    return {f"{i:03d} {v.name}": v.numpy()
            for i, v in enumerate(v for n in (embedder, generator, discriminator)
                                  for v in n.variables)}


def model_variables(workdir):
    meta = meta_learning.load_meta_model(str(workdir))
    return all_variables(meta.embedder, meta.generator, meta.discriminator)


def test_two_steps_restart_two_steps_equals_four(records, tmp_path):
    config = tiny_config()
    straight = meta_learning.train(config, options(records, tmp_path / "a", 4))
    meta_learning.train(config, options(records, tmp_path / "b", 2))
    resumed = meta_learning.train(config, options(records, tmp_path / "b", 4))
    assert straight.step == resumed.step == 4
    a, b = model_variables(tmp_path / "a"), model_variables(tmp_path / "b")
    kernels = [name for name in a if name.endswith("kernel")]
    assert a.keys() == b.keys() and len(kernels) > 30
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-6, err_msg=name)
    # ...and they are trained weights, not the (seeded, equal) initial ones.
    num_videos = json.load(open(tmp_path / "a" / "data.json"))["num_videos"]
    fresh = meta_learning.MetaLearner(config, num_videos)
    initial = list(all_variables(fresh.embedder, fresh.generator, fresh.discriminator).values())
    moved = [k for i, k in enumerate(a) if k in kernels
             and np.abs(a[k] - initial[i]).max() > 1e-6]
    assert len(moved) > len(kernels) // 2, moved
    for key, value in straight.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_config_json_is_written_and_a_different_config_is_refused(records, tmp_path):
    meta_learning.train(tiny_config(), options(records, tmp_path, 1))
    saved = config_lib.Config.from_json(open(tmp_path / "config.json").read())
    assert saved == tiny_config() and saved.train.content_loss == "pixel_l1"
    with pytest.raises(loop.TrainingError, match="another config.*train.d_steps"):
        meta_learning.train(tiny_config(**{"train.d_steps": 2}), options(records, tmp_path, 2))


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(records, tmp_path, monkeypatch):
    meta_learning.train(tiny_config(), options(records, tmp_path, 2))
    monkeypatch.setattr(losses, "pixel_l1_loss", lambda real, fake: tf.fill(
        [tf.shape(real)[0]], float("nan")))
    with pytest.raises(loop.TrainingDivergedError, match="step 3.*loss/g/pixel_l1.*step 2"):
        meta_learning.train(tiny_config(), options(records, tmp_path, 5))
    assert tf.train.latest_checkpoint(tmp_path / "checkpoints").endswith("ckpt-2")


def test_missing_weights_name_the_flag(records, tmp_path):
    with pytest.raises(feature_networks.FeatureWeightsError, match="--vgg19_weights"):
        meta_learning.train(tiny_config(**{"train.content_loss": "vgg"}),
                            options(records, tmp_path, 1))


def test_data_at_another_resolution_is_refused(records, tmp_path):
    config = config_lib.get_preset("small128", {"train.content_loss": "pixel_l1"})
    with pytest.raises(loop.TrainingError, match="preprocessed at 64"):
        meta_learning.train(config, options(records, tmp_path, 1))


def test_cli_dry_run_prints_the_config_and_writes_nothing(tmp_path):
    result = run_module("train/meta_train.py", "--preset=tiny", "--dry_run",
                        "--set=train.d_steps=3", f"--workdir={tmp_path / 'w'}")
    assert config_lib.Config.from_json(result.stdout.split("\n#")[0]).train.d_steps == 3
    assert not (tmp_path / "w").exists()


def test_cli_reports_bad_input_in_one_line(tmp_path):
    result = run_module("train/meta_train.py", "--preset=tiny", f"--data={tmp_path}",
                        f"--workdir={tmp_path / 'w'}", "--steps=1", check=False)
    assert result.returncode != 0 and "run train/preprocess.py first" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_module("train/meta_train.py", "--preset=tiny", "--set=train.bogus=1",
                        "--steps=1", check=False)
    assert result.returncode != 0 and "Unknown field 'train.bogus'" in result.stderr


@pytest.mark.slow
def test_cli_killed_with_sigkill_resumes_from_its_latest_checkpoint(records, tmp_path):
    """End to end: train/meta_train.py on train/preprocess.py records; kill -9 mid-run leaves a
    loadable checkpoint, and the same command continues from it."""
    workdir = tmp_path / "run"
    args = ["--preset=tiny", f"--data={records}", f"--workdir={workdir}", "--content_loss=pixel_l1",
            "--checkpoint_every=1", "--log_every=1", "--image_every=2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "train/meta_train.py"), *args,
                                "--steps=100000"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            latest = tf.train.latest_checkpoint(workdir / "checkpoints")
            if latest and int(latest.rsplit("-", 1)[1]) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 240 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    latest = tf.train.latest_checkpoint(workdir / "checkpoints")
    step = int(latest.rsplit("-", 1)[1])
    reader = tf.train.load_checkpoint(latest)
    assert int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == step
    result = run_module("train/meta_train.py", *args, f"--steps={step + 2}")
    assert f"Resumed from {latest} (step {step})" in result.stderr
    assert f"at step {step + 2}" in result.stdout
    assert os.listdir(workdir / "tensorboard")


@pytest.mark.slow
def test_cli_sigterm_saves_and_exits(records, tmp_path):
    workdir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train/meta_train.py"), "--preset=tiny",
         f"--data={records}", f"--workdir={workdir}", "--content_loss=pixel_l1",
         "--steps=100000", "--checkpoint_every=1000", "--log_every=1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline and "step 2/" not in seen:
        seen += process.stderr.readline()
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert "Stopped at step" in rest
    assert tf.train.latest_checkpoint(workdir / "checkpoints") is not None


def _l1_with_a_nan_gradient(real, fake):
    zero = tf.abs(fake - tf.stop_gradient(fake))  # value 0, gradient of sqrt at 0: NaN
    return tf.reduce_mean(tf.abs(real - fake) + tf.sqrt(zero), axis=[1, 2, 3])


def test_nan_weights_after_an_update_stop_before_the_checkpoint(records, tmp_path, monkeypatch):
    """The step's losses are finite (computed before the update) but its gradient is NaN: the
    weights it writes must not reach a checkpoint."""
    monkeypatch.setattr(losses, "pixel_l1_loss", _l1_with_a_nan_gradient)
    with pytest.raises(loop.TrainingDivergedError,
                       match="by step 1: the updated weights .* no checkpoint had been written"):
        meta_learning.train(tiny_config(), options(records, tmp_path, 5, checkpoint_every=1,
                                                   log_every=5))
    assert tf.train.latest_checkpoint(tmp_path / "checkpoints") is None
