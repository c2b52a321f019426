r"""tfhead-demo: the main job on built-in data, no files of your own needed (`make demo`).

Makes a procedural training corpus, meta-learns briefly on it (a warp-guided generator), fine-tunes
on a real portrait (scikit-image's astronaut photo), animates it with a generated driving clip
(relative motion, audio carried over, the face pasted back into the 512² photo), exports the
person to TFLite in every quantization mode and runs the int8 file on LiteRT (the next smallest if
int8 failed its parity check). Writes to --out_dir: astronaut.mp4, astronaut_side_by_side.mp4
(driver | result), driver.mp4, astronaut_person/ (the person checkpoint), models/astronaut.<mode>.tflite,
astronaut_edge_<mode>.mp4 (the on-device path) and work/.
Rerunning continues an interrupted demo; delete --out_dir to start over.

Example:
  tfhead-demo --out_dir=demo_out
  tfhead-demo --out_dir=demo_long --meta_steps=3000 --finetune_steps=400   # better, slower
"""

import json
import logging
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

_OUT = flags.DEFINE_string("out_dir", "demo_out", "Where everything is written.")
_PERSONS = flags.DEFINE_integer("persons", 24, "Procedural identities in the training corpus.")
_META_STEPS = flags.DEFINE_integer("meta_steps", 600, "Meta-learning steps.")
_FT_STEPS = flags.DEFINE_integer("finetune_steps", 150, "Fine-tuning steps on the portrait.")
_FRAMES = flags.DEFINE_integer("driver_frames", 100, "Frames of the driving clip (25 fps).")


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # the TFLite converter's INFO chatter
    from tfhead import demo

    try:
        summary = demo.run(demo.DemoOptions(
            out_dir=_OUT.value, persons=_PERSONS.value, meta_steps=_META_STEPS.value,
            finetune_steps=_FT_STEPS.value, driver_frames=_FRAMES.value))
    except errors.TfheadError as e:
        sys.exit(f"tfhead-demo: {e}")
    print(json.dumps(summary, indent=1))
    print(f"tfhead-demo: open {summary['side_by_side']} (driver | result) and "
          f"{summary['result']}.")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
