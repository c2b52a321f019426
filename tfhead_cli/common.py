"""Flag blocks that several entry points share, each flag defined and documented once.

* `PersonFlags` — the person to render: `--person` (a person checkpoint), or `--meta` with
  `--photos` (a feed-forward model made on the fly), `--face`, `--name`. Used by `tfhead-animate`
  and `export/export_tflite.py`.
* `DrivingFlags` — driving and output: `--driver`, `--out`, `--side_by_side`, `--display`, `--codec`,
  `--motion`, `--neutral_frame`, `--max_frames`, `--redetect_every`, `--min_face_fraction`,
  `--paste_back`, `--background`, `--background_motion`. Used by
  `tfhead-animate` and `tfhead-edge`; the defaults are `tfhead.animation.reenact.ReenactOptions`'.
* `default(options_class, field)` — a flag's default read from the options dataclass it fills, so
  a default lives in one place.

Only entry points import this module; the library never reads flags.
"""

from __future__ import annotations

import dataclasses
import os

from absl import app, flags


def default(options_class, field: str):
    """The default of `field` in the dataclass `options_class`."""
    for f in dataclasses.fields(options_class):
        if f.name == field:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise ValueError(f"{options_class.__name__}.{field} has no default.")


class PersonFlags:
    """--person, or --meta with --photos (and --face, --name): the person model to use."""

    def __init__(self):
        self.person = flags.DEFINE_string(
            "person", None, "Person checkpoint folder (from train/finetune.py or train/distill.py).")
        self.meta = flags.DEFINE_string(
            "meta", None, "Or: a meta-learning workdir, with --photos (a feed-forward model).")
        self.photos = flags.DEFINE_list("photos", None,
                                        "Photos (or one video) of the person, with --meta.")
        self.face = flags.DEFINE_integer(
            "face", None, "With --photos: which face of each photo, counted from the left from 1 "
            "(default: the largest).", lower_bound=1)
        self.name = flags.DEFINE_string("name", None, "The person's name with --meta (default: "
                                        "the first photo's file name).")

    def check_usage(self) -> None:
        if bool(self.person.value) == bool(self.meta.value):
            raise app.UsageError("Give either --person, or --meta with --photos.")
        if self.meta.value and not self.photos.value:
            raise app.UsageError("--meta needs --photos of the person.")

    def inputs(self) -> dict:
        """The files this block reads, by flag (none of them may be an output)."""
        return {"--person": self.person.value, "--meta": self.meta.value,
                "--photos": self.photos.value}

    def load(self, detector, program: str):
        """The person model: loaded from --person, or made feed-forward from --meta + --photos
        (the shots used and dropped are printed, prefixed with `program`)."""
        from tfhead.face import shots
        from tfhead.models.person import PersonModel
        from tfhead.training import finetune, meta_learning

        if self.person.value:
            return PersonModel.load(self.person.value)
        meta = meta_learning.load_meta_model(self.meta.value)
        frames = shots.load_person(self.photos.value, meta.config.model.resolution, detector,
                                   face=self.face.value)
        print(f"{program}: {frames.report()}")
        name = self.name.value or os.path.splitext(os.path.basename(self.photos.value[0]))[0]
        return finetune.feed_forward(meta, frames, name)


class DrivingFlags:
    """The driver, the outputs and how motion is mapped (the options of `tfhead.animation.reenact`)."""

    def __init__(self):
        from tfhead.animation import reenact

        self._options_class = reenact.ReenactOptions
        d = reenact.ReenactOptions()
        self.driver = flags.DEFINE_string(
            "driver", None, "Driving video file, or a webcam index (0, 1, ...).", required=True)
        self.out = flags.DEFINE_string("out", None, "Output video (.mp4). Optional with --display.")
        self.side_by_side = flags.DEFINE_string(
            "side_by_side", None, "Also write driver | result here (.mp4; driver | landmarks | "
            "result with --nopaste_back).")
        self.display = flags.DEFINE_bool(
            "display", d.display, "Show the side-by-side picture in a window (q or Esc stops; "
            "needs an OpenCV with GUI).")
        self.paste_back = flags.DEFINE_bool(
            "paste_back", d.paste_back, "Paste each generated face back into the person's source "
            "photo, which follows the head: the video has the photo's size. --nopaste_back "
            "writes the model's R × R crop.")
        self.background = flags.DEFINE_enum(
            "background", d.background, ["warp", "rigid"], "With paste-back, how the photo "
            "around the face moves: warp (with the landmarks, piecewise affinely; seamless with "
            "the face) or rigid (the head's similarity).")
        self.background_motion = flags.DEFINE_float(
            "background_motion", d.background_motion, "With --background=rigid: how much of the "
            "photo follows the head (1: all of it; 0: only the head region, the background "
            "stays).", lower_bound=0.0, upper_bound=1.0)
        self.paste_detail = flags.DEFINE_float(
            "paste_detail", d.paste_detail, "With paste-back, how much of the photo's own fine "
            "detail (pores, lashes, hair) is added to the face where the face agrees with the "
            "photo: 1 = all, 0 = the model's face as rendered, upscaled.", lower_bound=0.0,
            upper_bound=1.0)
        self.codec = flags.DEFINE_enum("codec", d.codec, ["auto", "h264", "mp4v"],
                                       "auto: H.264 when an ffmpeg exists, else mp4v.")
        self.motion = flags.DEFINE_enum(
            "motion", d.motion, ["relative", "absolute"], "relative: the driver's motion on the "
            "source's own face; absolute: the driver's landmarks as they are.")
        self.neutral_frame = flags.DEFINE_integer(
            "neutral_frame", d.neutral_frame, "Driver frame used as the neutral reference "
            "(relative motion; default: the first frame with a face).", lower_bound=0)
        self.max_frames = flags.DEFINE_integer(
            "max_frames", d.max_frames, "Stop after N frames (webcams: needed unless --display, "
            "where q stops).", lower_bound=1)
        self.redetect_every = flags.DEFINE_integer(
            "redetect_every", d.redetect_every, "Detect the driver's face every N frames (1: every "
            "frame, most robust; 0: track, detect only on loss).", lower_bound=0)
        self.min_face_fraction = flags.DEFINE_float(
            "min_face_fraction", d.min_face_fraction, "Refuse a driver showing a face in fewer "
            "than this share of its frames (nothing is written).", lower_bound=0.0,
            upper_bound=1.0)

    def default(self, field: str):
        """A default of `reenact.ReenactOptions` (for a flag the entry point defines itself)."""
        return default(self._options_class, field)

    def check_usage(self) -> None:
        if not self.out.value and not self.display.value:
            raise app.UsageError("Give --out, --display, or both.")

    def options(self, batch_size: int):
        """The `reenact.ReenactOptions` these flags describe."""
        return self._options_class(
            motion=self.motion.value, neutral_frame=self.neutral_frame.value,
            side_by_side=self.side_by_side.value, max_frames=self.max_frames.value,
            batch_size=batch_size, redetect_every=self.redetect_every.value,
            display=self.display.value, codec=self.codec.value,
            min_face_fraction=self.min_face_fraction.value, paste_back=self.paste_back.value,
            background=self.background.value, background_motion=self.background_motion.value,
            paste_detail=self.paste_detail.value)
