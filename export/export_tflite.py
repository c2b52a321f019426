r"""Export a person model to TFLite files for phones and boards (docs/design.md §7).

The person's ψ' is folded into the generator (AdaIN → instance normalization with a constant
affine; P, E, D and W are gone). Each file maps one landmark image [1, R, R, 3] in [-1, 1] — and
for a warp-guided model the source photo warped to the same landmarks, a second input "warp" — to
one frame in [-1, 1], and carries metadata (tfhead version, preset, resolution, landmark-image
version, the inputs and value range, person, reference landmarks, parity numbers) that
`tfhead-edge` checks, and the source photo (JPEG) with its landmarks, from which `tfhead-edge`
computes the warp and pastes the frames back. Every file is run against the Keras model before it
is written; a mode outside its thresholds fails with the numbers measured and writes nothing.

The model is a person checkpoint (train/finetune.py), or a meta-learning workdir plus photos of
the person (the feed-forward model, made here).

Quantization: fp32, fp16 (half the size), dynamic (int8 weights), int8 (int8 convolutions
calibrated on the inputs of the person's motion; --driver calibrates on a driving video instead of
generated tracks), or all.

Examples:
  python export/export_tflite.py --person=people/astronaut --quantization=all --out=models/
  python export/export_tflite.py --person=people/astronaut --quantization=fp16 \
      --out=astronaut.tflite
  python export/export_tflite.py --meta=runs/small128 --photos=mona_lisa.jpg --name=mona_lisa \
      --quantization=int8 --driver=talk.mp4 --out=models/
"""

import logging
import os
import re
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

from tfhead_cli import common  # noqa: E402

_SOURCE = common.PersonFlags()
_QUANTIZATION = flags.DEFINE_enum("quantization", "all",
                                  ["fp32", "fp16", "dynamic", "int8", "all"], "Quantization mode.")
_OUT = flags.DEFINE_string("out", None, "A .tflite path (one mode), or a folder: files are named "
                           "<name>.<mode>.tflite.", required=True)
_DRIVER = flags.DEFINE_string("driver", None, "A driving video: int8 calibration and parity images "
                              "from it (retargeted onto the person) instead of generated tracks.")
_CALIBRATION = flags.DEFINE_integer("calibration_images", 64, "Frames (landmark images, and "
                                   "warps for a warp-guided model) for int8 calibration.")
_PARITY = flags.DEFINE_integer("parity_images", 8, "Images per parity set (noise, faces, person).")
_THREADS = flags.DEFINE_integer("num_threads", 2, "LiteRT threads for the parity runs.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the generated tracks and random images.")


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "person"


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # the converter's INFO chatter
    from tfhead import export
    from tfhead.animation import driving
    from tfhead.face import landmarks
    from tfhead.io import outputs

    _SOURCE.check_usage()
    if _CALIBRATION.value < 1 or _PARITY.value < 1 or _THREADS.value < 1:
        raise app.UsageError("--calibration_images, --parity_images and --num_threads must be >= 1.")
    modes = export.QUANTIZATIONS if _QUANTIZATION.value == "all" else (_QUANTIZATION.value,)
    single_file = _OUT.value.lower().endswith(".tflite")
    if single_file and len(modes) > 1:
        raise app.UsageError("--quantization=all writes several files: give a folder as --out.")
    sources = {**_SOURCE.inputs(), "--driver": _DRIVER.value}
    try:
        # The output paths first: a refused path costs a second, not a conversion.
        if single_file:
            export.check_output(_OUT.value, inputs=sources)
        elif os.path.lexists(_OUT.value) and not os.path.isdir(_OUT.value):
            raise outputs.OutputPathError(
                f"--out={_OUT.value} is {outputs.describe(_OUT.value)}, not a folder: give a "
                "folder for the files, or a path ending in .tflite for one mode.")
        else:
            outputs.check_location(os.path.join(_OUT.value, "x.tflite"), "--out")
        if _DRIVER.value:
            driving.check_source(_DRIVER.value)
        detector = landmarks.LandmarkDetector()
        model = _SOURCE.load(detector, "export_tflite")
        paths = {mode: (_OUT.value if single_file else
                        os.path.join(_OUT.value, f"{_file_name(model.name)}.{mode}.tflite"))
                 for mode in modes}
        for path in paths.values():
            export.check_output(path, inputs=sources)
        inputs = export.export_inputs(model, _DRIVER.value, _CALIBRATION.value, _PARITY.value,
                                      _SEED.value, detector)
    except errors.TfheadError as e:
        sys.exit(f"export_tflite: {e}")

    failed = []
    print(f"export_tflite: {model.mode} model '{model.name}', {model.config.preset} at "
          f"{model.resolution}²; person images from {inputs.source}.")
    for mode in modes:
        path = paths[mode]
        logging.info("Exporting %s …", mode)
        try:
            result = export.export(model, mode, path, inputs, num_threads=_THREADS.value)
        except errors.TfheadError as e:
            print(f"  {mode:8s} FAILED: {e}")
            failed.append(mode)
            continue
        print(f"  {mode:8s} {result.size_bytes / 2**20:7.2f} MiB  {result.path}  "
              f"({result.seconds:.1f} s)")
        print(f"           parity vs Keras: {export.format_parity(result.parity)}")
        print(f"           XNNPACK: {result.partitions} partition(s); ops outside the delegate: "
              f"{', '.join(result.undelegated) if result.undelegated else 'none'}")
    if failed:
        sys.exit(f"export_tflite: {len(failed)} of {len(modes)} mode(s) failed: {', '.join(failed)} "
                 "(nothing was written for them).")


if __name__ == "__main__":
    app.run(main)
