"""Making small talking-head corpora on disk from the synthetic sources (tests, benchmarks, demos).

    make_procedural_corpus("/tmp/corpus", persons=4, videos_per_person=2, clips_per_video=2)
    make_photo_warp_clip("/tmp/astronaut.mp4", image, seed=0)

Layout written: `<root>/<person>/<video>/<clip>.mp4` (VoxCeleb2 style) plus, next to each clip, a
`<clip>.landmarks.npy` with the exact landmarks `[T, 68, 2]` of every frame.
"""

from __future__ import annotations

import os

import numpy as np

from tfhead.face import motion, procedural
from tfhead.io import video as video_lib


def make_procedural_corpus(root: str, persons: int, videos_per_person: int = 1,
                           clips_per_video: int = 1, frames_per_clip: int = 12, size: int = 192,
                           first_identity: int = 0, fps: float = 25.0) -> list[str]:
    """Writes procedural talking heads; identities `first_identity + 0..persons-1`. Returns clip paths."""
    paths = []
    for p in range(persons):
        identity_seed = first_identity + p
        identity = procedural.random_identity(identity_seed)
        for v in range(videos_per_person):
            for c in range(clips_per_video):
                seed = (identity_seed * 1000 + v) * 100 + c
                frames, track = procedural.procedural_clip(identity, frames_per_clip, size, seed, fps)
                path = os.path.join(root, f"id{identity_seed:05d}", f"video{v:02d}", f"clip{c:02d}.mp4")
                video_lib.write_video(path, frames, fps)
                np.save(os.path.splitext(path)[0] + ".landmarks.npy", track)
                paths.append(path)
    return paths


def make_photo_warp_clip(path: str, image: np.ndarray, landmarks: np.ndarray, num_frames: int,
                         seed: int, fps: float = 25.0, amplitude: float = 1.0) -> np.ndarray:
    """Warps a real photo along a landmark track into `path`; returns the true track `[T, 68, 2]`."""
    track = motion.motion_track(landmarks, num_frames, seed, fps, amplitude)
    warper = motion.PhotoWarper(image, landmarks)
    video_lib.write_video(path, np.stack([warper.warp(t) for t in track]), fps)
    np.save(os.path.splitext(path)[0] + ".landmarks.npy", track)
    return track
