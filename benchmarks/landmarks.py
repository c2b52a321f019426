"""Landmark extraction speed (detect every frame vs track) and preprocessing throughput.

    python benchmarks/landmarks.py
    python benchmarks/landmarks.py --frames=200 --videos=128

Landmarks: a real-photo warp clip (skimage's astronaut, 512², warped along a landmark track) is
run through `LandmarkDetector.detect` on every frame and through `LandmarkTracker` (detect once,
then track); dlib runs on one core, so frames/s is per core. The error column is the mean
normalized error (inter-ocular) against the true warped landmarks.

Preprocessing: a procedural corpus (`--videos` videos × 2 clips × 16 frames at 256²) through
`tfhead.data.preprocess.run` with 1 and 2 worker processes, `--frames_per_video` frames per video at
256², both stages, wall time including worker start-up (each spawned worker imports TensorFlow).
"""

import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags

from tfhead.data import corpora, preprocess
from tfhead.face import landmarks, motion

_FRAMES = flags.DEFINE_integer("frames", 100, "Frames of the landmark clip.")
_VIDEOS = flags.DEFINE_integer("videos", 64, "Videos in the preprocessing corpus.")
_PER_VIDEO = flags.DEFINE_integer("frames_per_video", 24, "Frames sampled per video.")


def _nme(predicted, truth):
    interocular = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
    return float(np.linalg.norm(predicted - truth, axis=1).mean() / interocular)


def landmark_rates(num_frames: int):
    import skimage.data

    image = skimage.data.astronaut()
    detector = landmarks.LandmarkDetector()
    base = detector.detect(image).landmarks
    track = motion.motion_track(base, num_frames, seed=0)
    warper = motion.PhotoWarper(image, base)
    frames = [warper.warp(t) for t in track]
    rows = []
    start = time.perf_counter()
    detected = [detector.detect(f).landmarks for f in frames]
    rows.append(("detect every frame", num_frames / (time.perf_counter() - start),
                 np.mean([_nme(p, t) for p, t in zip(detected, track)]), num_frames))
    tracker = landmarks.LandmarkTracker(detector)
    start = time.perf_counter()
    results = [tracker.update(f) for f in frames]
    rows.append(("track (detect once)", num_frames / (time.perf_counter() - start),
                 np.mean([_nme(r.landmarks, t) for r, t in zip(results, track)]),
                 sum(r.detected for r in results)))
    return rows


def preprocess_rates(videos: int, per_video: int):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "corpus")
        corpora.make_procedural_corpus(root, persons=videos, videos_per_person=1,
                                       clips_per_video=2, frames_per_clip=16, size=256)
        options = preprocess.PreprocessOptions(resolution=256, frames_per_video=per_video,
                                               videos_per_shard=4)
        for workers in (1, 2):
            out = os.path.join(tmp, f"out{workers}")
            start = time.perf_counter()
            manifest = preprocess.run(root, out, options, workers=workers, progress_bar=False)
            seconds = time.perf_counter() - start
            rows.append((workers, seconds, videos / seconds, manifest["counts"]["frames"] / seconds))
            shutil.rmtree(out)
    return rows


def main(argv):
    del argv
    print("\n| landmarks (astronaut warp, 512², 1 core) | frames/s | mean NME | detector runs |")
    print("|---|---|---|---|")
    for name, fps, error, runs in landmark_rates(_FRAMES.value):
        print(f"| {name} | {fps:.1f} | {error:.3f} | {runs} |")
    print(f"\n| preprocessing ({_VIDEOS.value} videos, {_PER_VIDEO.value} frames each, 256²) "
          "| workers | wall s | videos/s | frames/s |")
    print("|---|---|---|---|---|")
    for workers, seconds, vps, fps in preprocess_rates(_VIDEOS.value, _PER_VIDEO.value):
        print(f"| | {workers} | {seconds:.1f} | {vps:.2f} | {fps:.1f} |")


if __name__ == "__main__":
    app.run(main)
