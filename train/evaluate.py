r"""Evaluate a meta-learned model with the paper's self-reenactment protocol (paper §4.1).

On a held-out preprocessed set (train/preprocess.py on videos of people never used in
meta-learning, at the model's resolution): for each video, K shots from its first part and targets
from its last frames; each target rendered from its own landmarks by the feed-forward model and by
the model fine-tuned on the K shots; SSIM, PSNR, CSIM (dlib face recognition ResNet), landmark error
(normalized by the inter-ocular distance) and FID (InceptionV3 weights from --inception_weights; or
--nofid). Writes --out (JSON) and the same numbers as a markdown table beside it (.md); with
--paper the paper's FID for that corpus stands beside ours.

Examples:
  python train/evaluate.py --meta=runs/p256 --data=/data/vox2_test_256 --out=eval/p256.json \
      --shots=1,8,32 --inception_weights=weights/inception_v3_notop.h5 \
      --vgg19_weights=weights/vgg19_notop.h5 --vggface_weights=weights/vggface_vgg16.h5 \
      --paper=voxceleb2
  python train/evaluate.py --meta=/tmp/run --data=/tmp/heldout --out=/tmp/eval.json --shots=1,2 \
      --targets=2 --finetune_steps=5 --nofid     # a quick look, no weight files
"""

import functools
import json
import logging
import os
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

from tfhead.evaluation.evaluate import EvalOptions  # noqa: E402
from tfhead_cli.common import default  # noqa: E402

_D = functools.partial(default, EvalOptions)  # flag defaults are the options' defaults
REPORT_HEADING = "Self-reenactment on "  # the markdown table's first words

_META = flags.DEFINE_string("meta", None, "Meta-learning workdir (or a checkpoint prefix in it).",
                            required=True)
_DATA = flags.DEFINE_string("data", None, "Held-out preprocessed folder (train/preprocess.py).",
                            required=True)
_OUT = flags.DEFINE_string("out", None, "JSON results; the markdown table goes beside it (.md).",
                           required=True)
_SHOTS = flags.DEFINE_list("shots", [str(k) for k in _D("shots")], "K values.")
_TARGETS = flags.DEFINE_integer("targets", _D("targets"),
                                "Target frames per video (its last frames).")
_MODES = flags.DEFINE_list("modes", list(_D("modes")), "feed-forward, fine-tuned.")
_FT_STEPS = flags.DEFINE_integer("finetune_steps", None,
                                 "Fine-tuning steps per video and K (default: the config's).")
_MAX_VIDEOS = flags.DEFINE_integer("max_videos", None, "Evaluate at most this many videos.")
_FID = flags.DEFINE_bool("fid", True, "Compute FID (needs --inception_weights).")
_INCEPTION = flags.DEFINE_string("inception_weights", None,
                                 "Keras InceptionV3 no-top weights (.h5 / .weights.h5) for FID.")
_VGG19 = flags.DEFINE_string("vgg19_weights", None, "VGG19 weights (fine-tuning content loss).")
_VGGFACE = flags.DEFINE_string("vggface_weights", None, "VGGFace weights (fine-tuning content loss; "
                              "without it dlib's face network takes VGGFace's role).")
_SET = flags.DEFINE_multi_string("set", [], "train.* overrides for fine-tuning.")
_PAPER = flags.DEFINE_enum("paper", None, ["voxceleb1", "voxceleb2"],
                           "Put the paper's FID for this corpus beside ours (only when --data is "
                           "that corpus's test split, preprocessed the same way).")
_SEED = flags.DEFINE_integer("seed", _D("seed"), "Fine-tuning seed.")


def _is_report(path: str) -> bool:
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and {"meta", "data", "preset"} <= report.keys()


def _is_table(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read(len(REPORT_HEADING)) == REPORT_HEADING
    except (OSError, UnicodeDecodeError):
        return False


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead import config as config_lib
    from tfhead.evaluation import evaluate, metrics
    from tfhead.io import fileio, outputs
    from tfhead.training import feature_networks, meta_learning

    markdown = os.path.splitext(_OUT.value)[0] + ".md"
    try:  # the outputs first: a refused path costs a second, not the evaluation
        sources = {"--meta": _META.value, "--data": _DATA.value}
        outputs.file_output(_OUT.value, flag="--out", kind="tfhead evaluation report",
                            extensions=(".json",), inputs=sources, replaceable=_is_report,
                            not_replaceable_hint=" (not JSON written by train/evaluate.py)")
        outputs.file_output(markdown, flag="--out (its .md table)",
                            kind="tfhead evaluation table", extensions=(".md",), inputs=sources,
                            replaceable=_is_table)
    except errors.TfheadError as e:
        sys.exit(f"evaluate: {e}")

    try:
        shots = tuple(int(k) for k in _SHOTS.value)
    except ValueError:
        raise app.UsageError(f"--shots must be integers, got {_SHOTS.value}.") from None
    try:
        options = evaluate.EvalOptions(shots=shots, targets=_TARGETS.value,
                                       modes=tuple(_MODES.value), finetune_steps=_FT_STEPS.value,
                                       max_videos=_MAX_VIDEOS.value, seed=_SEED.value)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    try:
        inception = metrics.InceptionFeatures(_INCEPTION.value) if _FID.value else None
        meta = meta_learning.load_meta_model(_META.value)
        overrides = config_lib.parse_overrides(_SET.value)
        if any(not k.startswith("train.") for k in overrides):
            raise config_lib.ConfigError("--set takes train.* overrides only.")
        config = meta.config.override(overrides)
        content = None
        if "fine-tuned" in options.modes:
            content = feature_networks.build_content_networks(
                config.train.content_loss, config.model.resolution, _VGG19.value, _VGGFACE.value)
        result = evaluate.evaluate(meta, _DATA.value, options, content, inception,
                                   finetune_config=config)
    except errors.TfheadError as e:
        sys.exit(f"evaluate: {e}")
    report = {**result.to_dict(), "meta": os.path.abspath(meta.checkpoint), "data": _DATA.value,
              "preset": meta.config.preset, "resolution": meta.config.model.resolution,
              "content_loss": config.train.content_loss, "fid": bool(inception)}
    table = evaluate.markdown_table(result, _PAPER.value)
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    fileio.write_json_atomic(_OUT.value, report)
    fileio.write_text_atomic(markdown, (
        f"{REPORT_HEADING}{result.videos} held-out video(s) of {_DATA.value} "
        f"({meta.config.preset}, {meta.config.model.resolution}², {options.targets} targets "
        f"per video; fine-tuning content loss {config.train.content_loss}).\n\n{table}\n"))
    print(table)
    if result.skipped:
        print(f"evaluate: skipped {len(result.skipped)} video(s) with too few frames.")
    print(f"evaluate: wrote {_OUT.value} and {markdown} ({result.seconds:.0f} s).")


if __name__ == "__main__":
    app.run(main)
