r"""tfhead-edge: run an exported person model on a device — LiteRT, NumPy, OpenCV and dlib only.

Input: a driving video file or a webcam; landmarks with tracking, the same crop and rasterization
as training, the same relative/absolute motion as tfhead-animate; for a warp-guided model the
source photo carried in the model file is warped to every frame's landmarks. Output: the frames
pasted back into that source photo, at its size (--nopaste_back, or a file exported without a
photo, gives the model's R × R crop), as a video file (H.264 with the driver's audio when an
ffmpeg exists, else mp4v), a window (--display; needs an OpenCV with GUI), or both. Installed by
`pip install .[edge]`; never imports TensorFlow.

The model file's metadata (from export/export_tflite.py) is checked first: format version,
landmark-image version, the inputs it declares against the graph's, resolution against the graph's
inputs and output, value range, the source photo.

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
from tfhead_cli import common

_MODEL = flags.DEFINE_string("model", None, "Exported .tflite person model.", required=True)
_DRIVING = common.DrivingFlags()
_THREADS = flags.DEFINE_integer("num_threads", min(4, os.cpu_count() or 1),
                                "LiteRT interpreter threads.", lower_bound=1)
_BENCHMARK = flags.DEFINE_bool("benchmark", False, "Print frames per second and the median ms of "
                               "each stage (decode, landmarks, motion, render — rasterize, warp "
                               "and generator —, paste, encode).")


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead.animation import driving, reenact
    from tfhead.edge import EdgeModel, undelegated_ops
    from tfhead.face import landmarks
    from tfhead.runtime import Interrupts

    _DRIVING.check_usage()
    try:
        reenact.check_outputs(_DRIVING.driver.value, _DRIVING.out.value,
                              _DRIVING.side_by_side.value, inputs={"--model": _MODEL.value})
        driving.check_source(_DRIVING.driver.value)
        model = EdgeModel.load(_MODEL.value, _THREADS.value)
        with Interrupts() as interrupts:
            report = reenact.reenact(model, _DRIVING.driver.value, _DRIVING.out.value,
                                     _DRIVING.options(batch_size=1), landmarks.LandmarkDetector(),
                                     interrupts)
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
