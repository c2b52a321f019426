r"""tfhead-animate: render a person driven by a video file or a webcam.

The source is a person checkpoint (train/finetune.py), or a meta-learning workdir plus photos of
the person (the feed-forward model, made on the fly). Output: an H.264 mp4 at the model's
resolution carrying the driver's audio, and optionally a side-by-side video
(driver crop | landmark image | result).

Motion: `relative` (default) moves the source's own face as the driver moves — pose and expression
changes from the driver's first (or --neutral_frame) face — so the source keeps its face shape;
`absolute` draws the driver's landmarks as they are (the driver's face shape leaks in).
Driver frames without a face hold the last landmarks; before the first face the source is shown at
rest.

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

_PERSON = flags.DEFINE_string("person", None, "Person checkpoint folder (from train/finetune.py).")
_META = flags.DEFINE_string("meta", None, "Or: a meta-learning workdir, with --photos (feed-forward).")
_PHOTOS = flags.DEFINE_list("photos", None, "Photos (or one video) of the person, with --meta.")
_FACE = flags.DEFINE_integer("face", None, "With --photos: which face of each photo, counted from "
                             "the left from 1 (default: the largest).", lower_bound=1)
_DRIVER = flags.DEFINE_string("driver", None, "Driving video file, or a webcam index (0, 1, ...).",
                              required=True)
_OUT = flags.DEFINE_string("out", None, "Output mp4. Optional with --display.")
_DISPLAY = flags.DEFINE_bool("display", False, "Show driver | landmarks | result in a window "
                             "(q or Esc stops; needs an OpenCV with GUI).")
_CODEC = flags.DEFINE_enum("codec", "auto", ["auto", "h264", "mp4v"],
                           "auto: H.264 when an ffmpeg exists, else mp4v.")
_SIDE = flags.DEFINE_string("side_by_side", None, "Also write driver | landmarks | result here.")
_MOTION = flags.DEFINE_enum("motion", "relative", ["relative", "absolute"], "Motion mode.")
_NEUTRAL = flags.DEFINE_integer("neutral_frame", None,
                                "Driver frame used as the neutral reference (relative motion).")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "Stop after N frames (webcams: needed).")
_BATCH = flags.DEFINE_integer("batch_size", 4, "Frames per generator call.")
_REDETECT = flags.DEFINE_integer("redetect_every", 1, "Detect the driver's face every N frames "
                                 "(1: every frame, most robust; 0: track, detect only on loss).",
                                 lower_bound=0)
_MIN_FACES = flags.DEFINE_float("min_face_fraction", 0.5, "Refuse a driver showing a face in fewer "
                                "than this share of its frames (nothing is written).",
                                lower_bound=0.0, upper_bound=1.0)


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)
    from tfhead import animate, driving, finetune, landmarks, person, reenact

    if not _OUT.value and not _DISPLAY.value:
        raise app.UsageError("Give --out, --display, or both.")
    if _BATCH.value < 1:
        raise app.UsageError("--batch_size must be >= 1.")
    if bool(_PERSON.value) == bool(_META.value):
        raise app.UsageError("Give either --person, or --meta with --photos.")
    if _META.value and not _PHOTOS.value:
        raise app.UsageError("--meta needs --photos of the person.")
    if _NEUTRAL.value is not None and _NEUTRAL.value < 0:
        raise app.UsageError("--neutral_frame must be >= 0.")
    try:
        # Everything that can be checked without the model is checked first.
        reenact.check_outputs(_DRIVER.value, _OUT.value, _SIDE.value,
                              inputs={"--person": _PERSON.value, "--photos": _PHOTOS.value})
        driving.check_source(_DRIVER.value)
        detector = landmarks.LandmarkDetector()
        if _PERSON.value:
            model = person.PersonModel.load(_PERSON.value)
        else:
            meta = finetune.load_meta_model(_META.value)
            frames = finetune.load_person(_PHOTOS.value, meta.config.model.resolution, detector,
                                          face=_FACE.value)
            print(f"tfhead-animate: {frames.report()}")
            model = finetune.feed_forward(meta, frames, name="feed-forward")
        options = animate.AnimateOptions(
            motion=_MOTION.value, neutral_frame=_NEUTRAL.value, side_by_side=_SIDE.value,
            max_frames=_MAX_FRAMES.value, batch_size=_BATCH.value,
            redetect_every=_REDETECT.value, display=_DISPLAY.value, codec=_CODEC.value,
            min_face_fraction=_MIN_FACES.value)
        with runtime.Interrupts() as interrupts:
            report = animate.animate(model, _DRIVER.value, _OUT.value, options, detector,
                                     interrupts)
    except errors.TfheadError as e:
        sys.exit(f"tfhead-animate: {e}")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in report.median_ms.items())
    print(f"tfhead-animate: {report.frames} frames ({report.size}², {report.fps:g} fps, "
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
