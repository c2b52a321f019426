"""The self-reenactment protocol: splits, the evaluation library and train/evaluate.py end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfhead import config as config_lib
from tfhead.data import corpora, preprocess
from tfhead.evaluation import evaluate
from tfhead.training import meta_learning

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_split_puts_targets_last_and_shots_before_them():
    shots, targets = evaluate.split_video(12, 3, 4)
    np.testing.assert_array_equal(targets, [8, 9, 10, 11])
    np.testing.assert_array_equal(shots, [0, 4, 7])
    shots, _ = evaluate.split_video(6, 2, 4)
    np.testing.assert_array_equal(shots, [0, 1])
    with pytest.raises(evaluate.EvaluationError, match="frames_per_video >= 9"):
        evaluate.split_video(8, 5, 4)


def _records(root, first_identity, persons, frames):
    clips = root / "clips"
    corpora.make_procedural_corpus(str(clips), persons=persons, frames_per_clip=frames + 2,
                                   size=160, first_identity=first_identity)
    out = str(root / "records")
    preprocess.run(str(clips), out, preprocess.PreprocessOptions(
        resolution=64, frames_per_video=frames, videos_per_shard=4), workers=1, progress_bar=False)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny meta run on identities 0–2 and a held-out set of identities 100–101."""
    train = _records(tmp_path_factory.mktemp("train"), 0, 3, 4)
    held_out = _records(tmp_path_factory.mktemp("heldout"), 100, 2, 6)
    workdir = str(tmp_path_factory.mktemp("meta"))
    config = config_lib.get_preset("tiny", {"train.content_loss": "pixel_l1"})
    meta_learning.train(config, meta_learning.MetaTrainOptions(
        data=train, workdir=workdir, steps=2, image_every=0, checkpoint_every=2))
    return {"meta": workdir, "held_out": held_out}


def test_evaluation_gives_every_metric_for_every_mode_and_k(setup):
    meta = meta_learning.load_meta_model(setup["meta"])
    options = evaluate.EvalOptions(shots=(1, 2), targets=3, finetune_steps=2)
    result = evaluate.evaluate(meta, setup["held_out"], options)
    assert result.videos == 2 and not result.skipped
    assert [(row["mode"], row["shots"]) for row in result.rows] == [
        ("feed-forward", 1), ("feed-forward", 2), ("fine-tuned", 1), ("fine-tuned", 2)]
    for row in result.rows:
        assert row["frames"] == 6
        assert -1 <= row["ssim"] <= 1 and row["psnr"] > 0
        assert row["fid"] is None  # no InceptionV3 given
        # CSIM is aligned on the target's landmarks, so it exists for every frame.
        assert row["csim_no_face"] == 0 and -1 <= row["csim"] <= 1
        assert row["landmark_error_no_face"] <= row["frames"]
    table = evaluate.markdown_table(result, "voxceleb2")
    assert "| fine-tuned | 2 |" in table and "paper FID (voxceleb2)" in table
    json.dumps(result.to_dict())


def test_videos_too_short_for_the_protocol_are_refused(setup):
    meta = meta_learning.load_meta_model(setup["meta"])
    with pytest.raises(evaluate.EvaluationError, match="No video"):
        evaluate.evaluate(meta, setup["held_out"], evaluate.EvalOptions(shots=(8,), targets=3,
                                                                        modes=("feed-forward",)))


@pytest.mark.slow
def test_cli_writes_json_and_markdown_and_names_missing_weights(setup, tmp_path):
    import keras

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    inception = str(tmp_path / "inception.weights.h5")
    keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                   input_shape=(299, 299, 3)).save_weights(inception)
    out = tmp_path / "eval" / "tiny.json"
    command = [sys.executable, os.path.join(REPO, "train", "evaluate.py"),
               f"--meta={setup['meta']}", f"--data={setup['held_out']}", f"--out={out}",
               "--shots=1,2", "--targets=2", "--finetune_steps=2"]
    run = subprocess.run(command + [f"--inception_weights={inception}"], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["videos"] == 2 and report["fid"] is True
    assert all(row["fid"] is not None and row["fid"] >= 0 for row in report["rows"])
    markdown = out.with_suffix(".md").read_text()
    assert "| feed-forward | 1 |" in markdown and "FID" in markdown
    # FID without weights: one line naming the flag, nothing written.
    out2 = tmp_path / "eval2.json"
    run = subprocess.run(command[:-4] + [f"--out={out2}", "--shots=1", "--targets=2"],
                         capture_output=True, text=True, env=env)
    assert run.returncode != 0 and "--inception_weights" in run.stderr
    assert "Traceback" not in run.stderr and not out2.exists()
