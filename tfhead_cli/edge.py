r"""tfhead-edge: run an exported person model on a device — LiteRT, NumPy, OpenCV and dlib only.

Input: a driving video file or a webcam; landmarks with tracking, the same crop and rasterization
as training, the same relative/absolute motion as tfhead-animate. Output: a video file (H.264 with
the driver's audio when an ffmpeg exists, else mp4v), a window (--display; needs an OpenCV with
GUI), or both. Installed by `pip install .[edge]`; never imports TensorFlow.

The model file's metadata (from export/export_tflite.py) is checked first: format version,
landmark-image version, resolution against the graph's input and output, value range.

Examples:
  tfhead-edge --model=models/astronaut.fp16.tflite --driver=talk.mp4 --out=out.mp4 \
      --num_threads=2 --benchmark
  tfhead-edge --model=models/astronaut.int8.tflite --driver=0 --display --max_frames=600
"""

import logging
import os
import sys

from absl import app, flags

from tfhead import errors

_MODEL = flags.DEFINE_string("model", None, "Exported .tflite person model.", required=True)
_DRIVER = flags.DEFINE_string("driver", None, "Driving video file, or a webcam index (0, 1, ...).",
                              required=True)
_OUT = flags.DEFINE_string("out", None, "Output video (mp4). Optional with --display.")
_DISPLAY = flags.DEFINE_bool("display", False, "Show driver | landmarks | result in a window "
                             "(q or Esc stops).")
_SIDE = flags.DEFINE_string("side_by_side", None, "Also write driver | landmarks | result here.")
_MOTION = flags.DEFINE_enum("motion", "relative", ["relative", "absolute"], "Motion mode.")
_NEUTRAL = flags.DEFINE_integer("neutral_frame", None,
                                "Driver frame used as the neutral reference (relative motion).")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "Stop after N frames (webcams: needed "
                                   "unless --display, where q stops).")
_THREADS = flags.DEFINE_integer("num_threads", min(4, os.cpu_count() or 1),
                                "LiteRT interpreter threads.")
_REDETECT = flags.DEFINE_integer("redetect_every", 1, "Detect the driver's face every N frames "
                                 "(1: every frame, most robust; 0: track, detect only on loss).",
                                 lower_bound=0)
_MIN_FACES = flags.DEFINE_float("min_face_fraction", 0.5, "Refuse a driver showing a face in fewer "
                                "than this share of its frames (nothing is written).",
                                lower_bound=0.0, upper_bound=1.0)
_CODEC = flags.DEFINE_enum("codec", "auto", ["auto", "h264", "mp4v"],
                           "auto: H.264 when an ffmpeg exists, else mp4v.")
_BENCHMARK = flags.DEFINE_bool("benchmark", False, "Print frames per second and the median ms of "
                               "each stage (decode, landmarks, rasterize, generator, encode).")


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead import driving, landmarks, reenact
    from tfhead.edge import EdgeModel, undelegated_ops
    from tfhead.runtime import Interrupts

    if not _OUT.value and not _DISPLAY.value:
        raise app.UsageError("Give --out, --display, or both.")
    if _THREADS.value < 1:
        raise app.UsageError("--num_threads must be >= 1.")
    if _NEUTRAL.value is not None and _NEUTRAL.value < 0:
        raise app.UsageError("--neutral_frame must be >= 0.")
    try:
        reenact.check_outputs(_DRIVER.value, _OUT.value, _SIDE.value,
                              inputs={"--model": _MODEL.value})
        driving.check_source(_DRIVER.value)
        model = EdgeModel.load(_MODEL.value, _THREADS.value)
        options = reenact.ReenactOptions(
            motion=_MOTION.value, neutral_frame=_NEUTRAL.value, side_by_side=_SIDE.value,
            max_frames=_MAX_FRAMES.value, batch_size=1, redetect_every=_REDETECT.value,
            display=_DISPLAY.value, codec=_CODEC.value, min_face_fraction=_MIN_FACES.value)
        with Interrupts() as interrupts:
            report = reenact.reenact(model, _DRIVER.value, _OUT.value, options,
                                     landmarks.LandmarkDetector(), interrupts)
    except errors.TfheadError as e:
        sys.exit(f"tfhead-edge: {e}")
    meta = model.metadata
    print(f"tfhead-edge: {meta['person']} ({meta['mode']}, {meta['quantization']}, "
          f"{meta['preset']} {report.size}²) — {report.frames} frames"
          + (f" → {report.output}" if report.output else "")
          + (f" and {report.side_by_side}" if report.side_by_side else "")
          + f" (audio {'yes' if report.audio else 'no'}).")
    print(f"  no face: {report.frames_held} frame(s) held the last landmarks, "
          f"{report.frames_at_rest} before the first face showed the source at rest.")
    if _BENCHMARK.value:
        outside, partitions = undelegated_ops(model.invoker)
        print(f"  benchmark: {report.frames_per_second:.1f} frames/s over the whole loop "
              f"({report.frames} frames, {report.seconds:.2f} s, {_THREADS.value} thread(s)); "
              f"XNNPACK {partitions} partition(s), "
              f"ops outside it: {', '.join(outside) if outside else 'none'}")
        print("  median ms per frame: " + ", ".join(
            f"{stage} {report.median_ms[stage]:.2f}" for stage in reenact.STAGES
            if stage in report.median_ms))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
