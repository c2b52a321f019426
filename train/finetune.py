r"""Few-shot fine-tuning of a meta-learned model on a new person (paper §3.3) → a person checkpoint.

From 1…32 photos (or one video) of the person: crop + landmarks, ê = mean embedding, ψ' = P ê as a
trainable weight, D with w' = w0 + ê; G and ψ' trained on L_CNT + L_ADV. The person checkpoint
(G without P, ψ', the reference landmarks, the source photo, config) is written atomically to
--out. With --steps=0 the feed-forward model (ψ = P ê, no training) is written instead.

Training pairs: by default each step draws fresh examples from the shots moved along plausible
motion (and, for a warp-guided model, warps from other poses; docs/design.md §14); --noaugment
trains on the shots as they are (the paper's fine-tuning). The content loss is the meta-learning
run's (`train.content_loss`), e.g. "face_net" for the CPU presets: no weight file needed.

Example:
  python train/finetune.py --meta=runs/paper256 --photos=me1.jpg,me2.jpg,me3.jpg \
      --out=people/me --name=me --steps=300 \
      --vgg19_weights=weights/vgg19_notop.h5 --vggface_weights=weights/vggface_vgg16.h5

Example (one photo, a meta-learned small128 / demo model; no weight files needed):
  python train/finetune.py --meta=demo_out/work/meta --photos=portrait.jpg --out=people/p

Example (a video of the person, 8 frames sampled from it; smoke-test loss, no weight files):
  python train/finetune.py --meta=/tmp/run --photos=me.mp4 --shots=8 --out=/tmp/me \
      --steps=50 --set=train.content_loss=pixel_l1
"""

import logging
import os
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

from tfhead import config as config_lib  # noqa: E402

_META = flags.DEFINE_string("meta", None, "Meta-learning workdir (or a checkpoint prefix in it).",
                            required=True)
_PHOTOS = flags.DEFINE_list("photos", None, "Photos of the person (comma-separated), or one video.",
                            required=True)
_OUT = flags.DEFINE_string("out", None, "Person checkpoint folder to write.", required=True)
_NAME = flags.DEFINE_string("name", None, "The person's name (default: the first file's stem).")
_STEPS = flags.DEFINE_integer("steps", None, "G updates (default: the config's "
                              "train.finetune_steps); 0 = feed-forward model, no fine-tuning.",
                              lower_bound=0)
_D_STEPS = flags.DEFINE_integer("d_steps", None, "D updates per G update (default: the config's).")
_SHOTS = flags.DEFINE_integer("shots", 8, "Frames sampled when --photos is a video.", lower_bound=1)
_FACE = flags.DEFINE_integer("face", None, "Which face of each photo or frame, counted from the "
                             "left from 1 (default: the largest; a photo with several faces is "
                             "named in the output).", lower_bound=1)
_SET = flags.DEFINE_multi_string("set", [], "train.* overrides, e.g. --set=train.lr_generator=1e-4.")
_VGG19 = flags.DEFINE_string("vgg19_weights", None, "Keras VGG19 no-top weights (content loss).")
_VGGFACE = flags.DEFINE_string("vggface_weights", None, "VGGFace weights, Keras VGG16 layout (without "
                              "it dlib's face network takes VGGFace's role).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the frame draws.")
_AUGMENT = flags.DEFINE_bool("augment", True, "Draw the training examples from the shots moved "
                             "along plausible motion (--noaugment: the shots as they are, the "
                             "paper's fine-tuning).")


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead.face import landmarks, shots
    from tfhead.models import person as person_lib
    from tfhead.training import feature_networks, finetune, meta_learning

    try:
        # The output first: a refused path costs a second, not the fine-tuning.
        person_lib.check_output(_OUT.value,
                                inputs={"--meta": _META.value, "--photos": _PHOTOS.value})
        overrides = config_lib.parse_overrides(_SET.value)
        if any(not k.startswith("train.") for k in overrides):
            raise config_lib.ConfigError("Fine-tuning takes train.* overrides only (the model is "
                                         "the meta-learned one).")
        if _D_STEPS.value is not None:
            overrides["train.d_steps"] = _D_STEPS.value
        meta = meta_learning.load_meta_model(_META.value)
        config = meta.config.override(overrides)
        person = shots.load_person(_PHOTOS.value, config.model.resolution,
                                   landmarks.LandmarkDetector(), _SHOTS.value, _FACE.value)
        print(f"finetune: {person.report()}")
        name = _NAME.value or os.path.splitext(os.path.basename(_PHOTOS.value[0]))[0]
        steps = config.train.finetune_steps if _STEPS.value is None else _STEPS.value
        if steps == 0:
            model = finetune.feed_forward(meta, person, name)
        else:
            if config.train.content_loss not in ("vgg", "face_net"):
                logging.warning("content_loss=%s: smoke-test loss, not the paper's L_CNT.",
                                config.train.content_loss)
            content = feature_networks.build_content_networks(
                config.train.content_loss, config.model.resolution, _VGG19.value, _VGGFACE.value)
            model = finetune.finetune(meta, person, name, steps, config, content, _SEED.value,
                                      augment=_AUGMENT.value)
        path = model.save(_OUT.value)  # checked again: nothing may have appeared there meanwhile
    except errors.TfheadError as e:
        sys.exit(f"finetune: {e}")
    print(f"finetune: wrote the {model.mode} person model '{model.name}' "
          f"({len(person)} shot(s)) to {path}")


if __name__ == "__main__":
    app.run(main)
