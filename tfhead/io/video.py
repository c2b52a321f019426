"""Reading video files with OpenCV, with errors that say what is wrong with the file.

Frames are returned as RGB uint8 (OpenCV decodes BGR; the conversion happens here, once).
Imports only NumPy and OpenCV.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Iterable, Iterator

import cv2
import numpy as np

from tfhead import errors
from tfhead.io import fileio

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class VideoReadError(errors.TfheadError, IOError):
    """A video file that cannot be opened or decoded."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frame_count: int   # as reported by the container; may exceed what decodes in a damaged file
    fps: float
    width: int
    height: int


def is_image_file(path: str) -> bool:
    """Whether OpenCV reads `path` as a still image (by its content, not its name)."""
    try:
        return os.path.isfile(path) and cv2.haveImageReader(path)
    except cv2.error:
        return False


def _open(path: str) -> cv2.VideoCapture:
    if os.path.isdir(path):
        raise VideoReadError(f"{path} is a folder, not a video file.")
    if not os.path.isfile(path):
        raise VideoReadError(f"No such video file: {path}")
    if is_image_file(path):
        raise VideoReadError(f"{path} is a still image, not a video.")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"Unreadable video (OpenCV cannot open it; not a video or damaged): {path}")
    return capture


def probe(path: str) -> VideoInfo:
    """Frame count, fps and size of a video, checking that its first frame decodes."""
    capture = _open(path)
    try:
        info = VideoInfo(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS)),
                         int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok or info.frame_count <= 0:
        raise VideoReadError(f"Corrupt video (no decodable frames): {path}")
    return info


def iter_frames(path: str) -> Iterator[np.ndarray]:
    """Every decodable frame of a video, RGB uint8, in order."""
    capture = _open(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def read_frames(path: str, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` (RGB uint8), reading sequentially (exact in any container).

    Frames past the end of what decodes are missing from the result; the caller reports them.
    """
    wanted = sorted(set(int(i) for i in indices))
    frames: dict[int, np.ndarray] = {}
    if not wanted:
        return frames
    capture = _open(path)
    try:
        position = 0
        for index in wanted:
            while position < index:
                if not capture.grab():
                    return frames
                position += 1
            ok, frame = capture.read()
            if not ok:
                return frames
            position += 1
            frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    return frames


# ------------------------------------------------------------------------------------------------
# Writing H.264 with ffmpeg.

class VideoWriteError(errors.TfheadError, IOError):
    """The encoder is missing or failed."""


def ffmpeg_executable() -> str:
    """The ffmpeg binary shipped by the `imageio-ffmpeg` package (libx264 and AAC inside), else an
    `ffmpeg` on PATH."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise VideoWriteError("Writing H.264 needs ffmpeg: pip install imageio-ffmpeg (in the "
                          "[train] and [edge] extras) or put an ffmpeg on PATH.")


def has_ffmpeg() -> bool:
    try:
        ffmpeg_executable()
    except VideoWriteError:
        return False
    return True


def has_audio(path: str) -> bool:
    """Whether a media file has an audio stream (asks ffmpeg; False for unreadable files)."""
    import subprocess

    result = subprocess.run([ffmpeg_executable(), "-hide_banner", "-i", path],
                            capture_output=True, text=True)
    return any("Audio:" in line for line in result.stderr.splitlines()
               if line.strip().startswith("Stream #"))


def add_tone(video_path: str, out_path: str, frequency: float = 220.0) -> None:
    """Copies a video's picture and adds a sine tone as its audio track (test and demo drivers)."""
    import subprocess

    tmp = fileio.tmp_name(os.path.abspath(out_path))
    subprocess.run([ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-y",
                    "-i", video_path, "-f", "lavfi", "-i",
                    f"sine=frequency={frequency:g}:sample_rate=44100", "-map", "0:v", "-map", "1:a",
                    "-c:v", "copy", "-c:a", "aac", "-shortest", "-f", "mp4", tmp], check=True)
    os.replace(tmp, out_path)


class _VideoFile:
    """What both writers share: a temporary file beside `path` (renamed on close) and checks."""

    def __init__(self, path: str, fps: float, width: int, height: int):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}.")
        self.path, self.width, self.height = path, width, height
        self.frames = 0
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._tmp = fileio.tmp_name(os.path.join(directory, os.path.basename(path)))

    def _checked(self, frame: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"Frame {frame.shape} does not match the video's "
                             f"{(self.height, self.width, 3)}.")
        return frame


class H264Writer(_VideoFile):
    """Streams RGB frames into an H.264 MP4 (yuv420p, `crf` quality), optionally carrying the
    audio of another file (cut to the video's length). Written under a temporary name and renamed
    on `close()`, so an interrupted run never leaves a broken file under the real name.

    Frame width and height must be even (yuv420p). Use as a context manager; an exception inside
    the block discards the partial file.
    """

    def __init__(self, path: str, fps: float, width: int, height: int,
                 audio_from: str | None = None, crf: int = 18):
        import subprocess

        if width % 2 or height % 2:
            raise ValueError(f"H.264 (yuv420p) needs even sizes, got {width}×{height}.")
        super().__init__(path, fps, width, height)
        command = [ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-y",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                   "-r", f"{fps:.6g}", "-i", "-"]
        self.audio = bool(audio_from) and has_audio(audio_from)
        if self.audio:
            # apad + shortest: the picture sets the length (audio is cut or padded with silence).
            command += ["-i", audio_from, "-map", "0:v:0", "-map", "1:a:0", "-af", "apad",
                        "-c:a", "aac", "-b:a", "128k", "-shortest"]
        command += ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt",
                    "yuv420p", "-movflags", "+faststart", "-f", "mp4", self._tmp]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                         stderr=subprocess.PIPE)

    def write(self, frame: np.ndarray) -> None:
        frame = self._checked(frame)
        try:
            self._process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            raise VideoWriteError(f"ffmpeg stopped while writing {self.path}: "
                                  f"{self._process.stderr.read().decode(errors='replace')}") from None
        self.frames += 1

    def close(self) -> None:
        self._process.stdin.close()
        error = self._process.stderr.read().decode(errors="replace")
        if self._process.wait() != 0 or self.frames == 0:
            self.abort()
            raise VideoWriteError(f"ffmpeg could not write {self.path} ({self.frames} frames): "
                                  f"{error.strip() or 'no frames'}")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stops the encoder and deletes the partial file (nothing appears under `path`)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class OpenCVWriter(_VideoFile):
    """MPEG-4 Part 2 ('mp4v') through OpenCV: the fallback where no ffmpeg exists (no audio, larger
    files). Same interface and the same temporary-name-then-rename rule as `H264Writer`."""

    audio = False

    def __init__(self, path: str, fps: float, width: int, height: int):
        super().__init__(path, fps, width, height)
        self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                       (width, height))
        if not self._writer.isOpened():
            raise VideoWriteError(f"OpenCV cannot write {path} with the mp4v codec.")

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(self._checked(frame), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()
        if self.frames == 0:
            self.abort()
            raise VideoWriteError(f"No frames to write to {self.path}.")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.release()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


def open_writer(path: str, fps: float, width: int, height: int, audio_from: str | None = None,
                codec: str = "auto"):
    """A video writer: `codec` "h264" (ffmpeg; carries `audio_from`'s audio), "mp4v" (OpenCV, no
    audio) or "auto" (H.264 when an ffmpeg exists, else mp4v)."""
    if codec not in ("auto", "h264", "mp4v"):
        raise ValueError(f"Unknown codec {codec!r}; valid: auto, h264, mp4v.")
    if codec == "h264" or (codec == "auto" and has_ffmpeg()):
        return H264Writer(path, fps, width, height, audio_from)
    return OpenCVWriter(path, fps, width, height)


def write_video(path: str, frames_rgb: np.ndarray, fps: float = 25.0) -> None:
    """Writes RGB frames `[T, H, W, 3]` uint8 to an mp4v MP4 with OpenCV, atomically (test and
    benchmark clips; any size, no ffmpeg needed)."""
    frames_rgb = np.asarray(frames_rgb)
    if frames_rgb.ndim != 4 or frames_rgb.shape[-1] != 3 or len(frames_rgb) == 0:
        raise ValueError(f"Expected frames [T, H, W, 3], got {frames_rgb.shape}.")
    writer = OpenCVWriter(path, fps, frames_rgb.shape[2], frames_rgb.shape[1])
    try:
        for frame in frames_rgb:
            writer.write(frame)
    except BaseException:
        writer.abort()
        raise
    writer.close()
