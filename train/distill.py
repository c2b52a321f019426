r"""Distils a person model into a real-time student generator → a student person checkpoint.

The teacher is a fine-tuned or feed-forward person checkpoint (train/finetune.py). It renders
landmark tracks around the person's own geometry, talking procedural heads retargeted onto the
person and, with --drivers, your driving videos; the student (the `edge` preset by default,
~1.6 GMAC at 256²) learns to reproduce those frames with a pixel L1 and VGG19 perceptual-feature
loss. The student checkpoint is a person model like any other: tfhead-animate, export_tflite.py and
tfhead-edge take it unchanged. Interrupt with Ctrl-C and rerun the same command to resume
(--workdir keeps the teacher's frames and the checkpoints).

Example:
  python train/distill.py --teacher=people/me --out=people/me_student \
      --vgg19_weights=weights/vgg19_notop.h5 --drivers=calls/monday.mp4 --steps=4000

Example (the demo's astronaut, no weight files: pixel loss only, a few minutes on 2 cores):
  python train/distill.py --teacher=demo_out/astronaut_person \
      --out=demo_out/astronaut_student --perceptual=none --steps=1500 --pool_size=2048
"""

import dataclasses
import functools
import json
import logging
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

from tfhead import config as config_lib  # noqa: E402
from tfhead.training.distill import DistillOptions  # noqa: E402
from tfhead_cli.common import default  # noqa: E402

_D = functools.partial(default, DistillOptions)  # flag defaults are the options' defaults

_TEACHER = flags.DEFINE_string("teacher", None, "Person checkpoint to distil (fine-tuned or "
                               "feed-forward).", required=True)
_OUT = flags.DEFINE_string("out", None, "Student person checkpoint folder to write.",
                           required=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Teacher frames and checkpoints (default: "
                               "<out>.work); rerun with the same one to resume.")
_PRESET = flags.DEFINE_enum("student_preset", "edge", sorted(config_lib.STUDENT_PRESETS),
                            "Student architecture preset.")
_SET = flags.DEFINE_multi_string("set", [], "Student field overrides, e.g. "
                                 "--set=channels=16,32,64,128,256 --set=bottleneck_blocks=2.")
_STEPS = flags.DEFINE_integer("steps", _D("steps"), "Student updates.")
_BATCH = flags.DEFINE_integer("batch_size", _D("batch_size"), "Landmark images per update.")
_LR = flags.DEFINE_float("learning_rate", _D("learning_rate"),
                         "Initial Adam rate (cosine decay to 1%).")
_POOL = flags.DEFINE_integer("pool_size", _D("pool_size"),
                             "Landmark sets the teacher renders for training.")
_HELDOUT = flags.DEFINE_integer("heldout_size", _D("heldout_size"),
                                "Held-out landmark sets (evaluation only).")
_MIX = flags.DEFINE_list("track_mix", [str(v) for v in _D("track_mix")], "Shares of own-motion, "
                         "relative-driver and absolute-driver tracks.")
_JITTER = flags.DEFINE_float("jitter", _D("jitter"),
                             "Largest per-frame landmark noise of a track, in "
                             "inter-ocular distances (a detector's jitter on real videos).")
_DRIVERS = flags.DEFINE_list("drivers", [], "Driving videos whose (retargeted) tracks join the "
                             "training set; their last fifth is held out.")
_PERCEPTUAL = flags.DEFINE_enum("perceptual", _D("perceptual"), ["vgg19", "random_vgg19", "none"],
                                "Perceptual-feature loss: VGG19 from --vgg19_weights, or a "
                                "smoke-test stand-in.")
_WEIGHT_PIXEL = flags.DEFINE_float("weight_pixel_l1", _D("weight_pixel_l1"),
                                   "Weight of the pixel L1.")
_WEIGHT_PERCEPTUAL = flags.DEFINE_float("weight_perceptual", _D("weight_perceptual"),
                                        "Weight of the VGG19 feature L1.")
_VGG19 = flags.DEFINE_string("vgg19_weights", None, "Keras VGG19 no-top weights (perceptual loss).")
_NAME = flags.DEFINE_string("name", None, "The person's name (default: the teacher's).")
_LOG_EVERY = flags.DEFINE_integer("log_every", _D("log_every"), "Steps between progress lines.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", _D("eval_every"),
                                   "Steps between held-out evaluations.")
_SEED = flags.DEFINE_integer("seed", _D("seed"), "Seed of tracks, initialisation and batch order.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the student config and options, then exit.")


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead.io import outputs
    from tfhead.models.person import PersonModel, check_output
    from tfhead.training import distill

    workdir = _WORKDIR.value or f"{_OUT.value.rstrip('/')}.work"
    try:
        # Where the student and the work go, first: a refused path costs a second, not the run.
        sources = {"--teacher": _TEACHER.value, "--drivers": _DRIVERS.value}
        check_output(_OUT.value, inputs=sources)
        outputs.workdir_output(workdir, "distill.json", flag="--workdir",
                               kind="distillation work directory",
                               inputs={**sources, "--out": _OUT.value})
        student = config_lib.get_student_preset(_PRESET.value,
                                                config_lib.parse_overrides(_SET.value))
        try:
            mix = tuple(float(v) for v in _MIX.value)
        except ValueError:
            raise distill.DistillError(f"--track_mix must be three numbers, got "
                                       f"{_MIX.value}.") from None
        options = distill.DistillOptions(
            student=student, steps=_STEPS.value, batch_size=_BATCH.value,
            learning_rate=_LR.value, weight_pixel_l1=_WEIGHT_PIXEL.value,
            weight_perceptual=_WEIGHT_PERCEPTUAL.value, perceptual=_PERCEPTUAL.value,
            vgg19_weights=_VGG19.value, pool_size=_POOL.value, heldout_size=_HELDOUT.value,
            track_mix=mix, jitter=_JITTER.value, drivers=tuple(_DRIVERS.value), log_every=_LOG_EVERY.value,
            eval_every=_EVAL_EVERY.value, seed=_SEED.value)
        teacher = PersonModel.load(_TEACHER.value)
        options = dataclasses.replace(
            options, student=distill.student_config_for(teacher, options.student))
        if _DRY_RUN.value:
            print(json.dumps(dataclasses.asdict(options), indent=2))
            return
        result = distill.distill(teacher, workdir, options)
        if result.model is None:
            sys.exit(f"distill: stopped at step {result.step}; rerun the same command to resume.")
        if _NAME.value:
            result.model.name = _NAME.value
        path = result.model.save(_OUT.value)
    except errors.TfheadError as e:
        sys.exit(f"distill: {e}")
    before, after = result.model.record["heldout_initial"], result.heldout
    print(f"distill: wrote the student of '{result.model.name}' ({student.preset}) to {path}; "
          f"held-out vs teacher: SSIM {before['ssim']:.3f} → {after['ssim']:.3f}, PSNR "
          f"{before['psnr']:.2f} → {after['psnr']:.2f} dB, mean |diff| "
          f"{before['mean_abs']:.2f} → {after['mean_abs']:.2f}/255")


if __name__ == "__main__":
    app.run(main)
