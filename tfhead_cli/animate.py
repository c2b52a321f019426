r"""tfhead-animate: render a person driven by a video file or a webcam.

The source is a person checkpoint (train/finetune.py), or a meta-learning workdir plus photos of
the person (the feed-forward model, made on the fly). Output: an H.264 mp4 carrying the driver's
audio, at the source photo's resolution — each generated face pasted back into the photo, which
moves with the landmarks (--background=warp) or rigidly with the head (--background=rigid) — or
the model's R × R crop with --nopaste_back; optionally a side-by-side video (driver | result).

Motion: `relative` (default) moves the source's own face as the driver moves — pose and expression
changes from the driver's first (or --neutral_frame) face — so the source keeps its face shape;
`absolute` draws the driver's landmarks as they are (the driver's face shape leaks in).
Driver frames without a face hold the last landmarks; before the first face the source is shown at
rest; a driver showing a face in fewer than --min_face_fraction of its frames is refused.

Examples:
  tfhead-animate --person=people/astronaut --driver=talk.mp4 --out=out.mp4 \
      --side_by_side=out_sbs.mp4
  tfhead-animate --meta=runs/small128 --photos=mona_lisa.jpg --driver=0 --max_frames=300 \
      --out=webcam.mp4
"""

import logging
import sys

from absl import app, flags

from tfhead import errors, runtime

runtime.quiet_tensorflow(sys.argv)  # before anything imports TensorFlow (--verbosity=1 shows all)

from tfhead_cli import common  # noqa: E402

_SOURCE = common.PersonFlags()
_DRIVING = common.DrivingFlags()
_BATCH = flags.DEFINE_integer("batch_size", _DRIVING.default("batch_size"),
                              "Frames per generator call.", lower_bound=1)


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead.animation import driving, reenact
    from tfhead.face import landmarks

    _DRIVING.check_usage()
    _SOURCE.check_usage()
    try:
        # Everything that can be checked without the model is checked first.
        reenact.check_outputs(_DRIVING.driver.value, _DRIVING.out.value,
                              _DRIVING.side_by_side.value, inputs=_SOURCE.inputs())
        driving.check_source(_DRIVING.driver.value)
        detector = landmarks.LandmarkDetector()
        model = _SOURCE.load(detector, "tfhead-animate")
        with runtime.Interrupts() as interrupts:
            report = reenact.reenact(model, _DRIVING.driver.value, _DRIVING.out.value,
                                     _DRIVING.options(_BATCH.value), detector, interrupts)
    except errors.TfheadError as e:
        sys.exit(f"tfhead-animate: {e}")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in report.median_ms.items())
    width, height = report.frame_size
    print(f"tfhead-animate: {report.frames} frames ({width}×{height}, model {report.size}², "
          f"{report.fps:g} fps, "
          f"audio {'yes' if report.audio else 'no'})"
          + (f" → {report.output}" if report.output else "")
          + (f" and {report.side_by_side}" if report.side_by_side else "") + ".")
    print(f"  no face: {report.frames_held} frame(s) held the last landmarks, "
          f"{report.frames_at_rest} before the first face showed the source at rest.")
    print(f"  median ms per frame: {stages}; total {report.seconds:.1f} s "
          f"({report.frames_per_second:.1f} frames/s).")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
