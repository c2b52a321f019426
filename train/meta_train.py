r"""Meta-learning of E, G and D on preprocessed talking-head videos (paper §3.2).

Reads shards written by train/preprocess.py, trains for --steps (or --epochs), writes the resolved
config to <workdir>/config.json, checkpoints every --checkpoint_every steps and on SIGINT/SIGTERM,
and resumes by itself when run again with the same --workdir. TensorBoard logs (every loss term,
learning rates, steps/s, landmarks | target | generated grids) go to <workdir>/tensorboard.

Example (the paper's model on VoxCeleb2, one machine with several GPUs):
  python train/meta_train.py --preset=paper256 --data=/data/vox2_256 --workdir=runs/paper256 \
      --epochs=40 --batch_size=48 --k_shots=8 --strategy=mirrored \
      --vgg19_weights=weights/vgg19_notop.h5 --vggface_weights=weights/vggface_vgg16.h5

Example (a CPU smoke run without content-loss weights; never the real L_CNT):
  python train/meta_train.py --preset=tiny --data=/tmp/records --workdir=/tmp/run \
      --steps=20 --content_loss=pixel_l1

Several machines: set TF_CONFIG on each worker and pass --strategy=multi_worker (see README).
"""

import functools
import logging
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

from tfhead import config as config_lib  # noqa: E402
from tfhead.training import distribute, loop  # noqa: E402
from tfhead.training.meta_learning import MetaTrainOptions  # noqa: E402
from tfhead_cli.common import default  # noqa: E402

_D = functools.partial(default, MetaTrainOptions)  # flag defaults are the options' defaults

_PRESET = flags.DEFINE_enum("preset", "small128", sorted(config_lib.PRESETS), "Model preset.")
_SET = flags.DEFINE_multi_string(
    "set", [], "Config override, repeatable: --set=train.d_steps=1 --set=model.base_channels=32.")
_DATA = flags.DEFINE_string("data", None, "Folder written by train/preprocess.py (or a glob of "
                            "its shard files).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: config, checkpoints, TensorBoard. "
                               "Rerunning with the same folder resumes.")
_STEPS = flags.DEFINE_integer("steps", _D("steps"), "Train until this many E+G iterations.")
_EPOCHS = flags.DEFINE_float("epochs", _D("epochs"),
                             "Or: passes over the videos (used when --steps=0).")
_BATCH = flags.DEFINE_integer("batch_size", None, "Global batch size (overrides the preset).")
_K = flags.DEFINE_integer("k_shots", None, "K frames per episode for E (overrides the preset).")
_CONTENT = flags.DEFINE_enum(
    "content_loss", None, list(config_lib.CONTENT_LOSSES),
    "L_CNT: 'vgg' (needs both weight files), or for smoke tests only 'random_vgg' / 'pixel_l1'.")
_FEED_FORWARD = flags.DEFINE_bool("feed_forward", None, "Train the feed-forward variant (no L_MCH).")
_VGG19 = flags.DEFINE_string("vgg19_weights", None,
                             "Keras VGG19 no-top weights (.h5 / .weights.h5), ImageNet.")
_VGGFACE = flags.DEFINE_string("vggface_weights", None,
                               "VGGFace weights in the Keras VGG16 layout (.h5 / .weights.h5); "
                               "without it dlib's face network (installed) takes VGGFace's role.")
_STRATEGY = flags.DEFINE_enum("strategy", _D("strategy"), list(distribute.STRATEGIES),
                              "default (one device), mirrored (all GPUs of this machine), "
                              "multi_worker (TF_CONFIG).")
_PRECISION = flags.DEFINE_enum("precision", _D("precision"), list(distribute.PRECISIONS),
                               "Compute precision of the networks.")
_XLA = flags.DEFINE_bool("xla", _D("jit_compile"), "Compile the training step with XLA.")
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every", _D("checkpoint_every"),
                                   "Checkpoint every N steps.")
_KEEP = flags.DEFINE_integer("keep_checkpoints", _D("keep_checkpoints"), "Checkpoints kept.")
_LOG_EVERY = flags.DEFINE_integer("log_every", _D("log_every"),
                                  "Log and write scalars every N steps.")
_IMAGE_EVERY = flags.DEFINE_integer("image_every", _D("image_every"),
                                    "Image grid every N steps (0 = never).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the resolved config and plan, then exit.")


def _config() -> config_lib.Config:
    overrides = config_lib.parse_overrides(_SET.value)
    for key, flag in (("train.batch_size", _BATCH), ("train.k_shots", _K),
                      ("train.content_loss", _CONTENT), ("train.feed_forward", _FEED_FORWARD)):
        if flag.value is not None:
            overrides[key] = flag.value
    return config_lib.get_preset(_PRESET.value, overrides)


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    try:
        config = _config()
        if _DRY_RUN.value:
            print(config.to_json())
            print(f"# would train on {_DATA.value} into {_WORKDIR.value}: "
                  f"{f'{_STEPS.value} steps' if _STEPS.value else f'{_EPOCHS.value} epochs'}, "
                  f"strategy {_STRATEGY.value}, precision {_PRECISION.value}, xla {_XLA.value}")
            return
        if not _DATA.value or not _WORKDIR.value:
            raise loop.TrainingError("--data and --workdir are required (or pass --dry_run).")
        from tfhead.training import meta_learning

        options = meta_learning.MetaTrainOptions(
            data=_DATA.value, workdir=_WORKDIR.value, steps=_STEPS.value, epochs=_EPOCHS.value,
            strategy=_STRATEGY.value, vgg19_weights=_VGG19.value, vggface_weights=_VGGFACE.value,
            precision=_PRECISION.value, jit_compile=_XLA.value,
            checkpoint_every=_CKPT_EVERY.value, keep_checkpoints=_KEEP.value,
            log_every=_LOG_EVERY.value, image_every=_IMAGE_EVERY.value)
        result = meta_learning.train(config, options)
    except errors.TfheadError as e:
        sys.exit(f"meta_train: {e}")
    if result.interrupted_by is not None:
        sys.exit(128 + int(result.interrupted_by))
    print(f"meta_train: at step {result.step}; checkpoint {result.checkpoint}")


if __name__ == "__main__":
    app.run(main)
