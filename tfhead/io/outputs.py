"""Where entry points write: output paths checked before any work, so no input destroys a file.

The rule every entry point follows (README, "What bad input gets"):

* An output that exists is replaced only when it is the same kind of artefact the command writes —
  a person checkpoint folder, a `.tflite` exported by tfhead, an mp4 that is not one of the
  command's inputs, a work directory of the same command — and then atomically. A folder or file of
  any other kind is never replaced, emptied or moved.
* An input is never an output (nor inside an output folder that would be replaced).
* The folder that will hold the output exists or can be created, and is writable; a file output
  has the right extension. All of this is checked before models or data are loaded, so a bad path
  costs a second, not the minutes of training or rendering before the write.

Each check raises `OutputPathError` with one line naming the flag, what is there and what to do.
The checks also remove temporaries (`.tmp-<pid>-*`) that killed runs left beside the output
(`fileio.remove_stale_temporaries`).

Imports only the standard library (the on-device runner uses it).
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping, Sequence

from tfhead import errors
from tfhead.io import fileio


class OutputPathError(errors.TfheadError, ValueError):
    """An output path that is refused before any work: nothing was written or changed."""


Inputs = Mapping[str, "str | Sequence[str] | None"]


def describe(path: str) -> str:
    """What is at `path`, in a few words ("a folder holding 3 entries (a.jpg, b.jpg, c.txt)")."""
    if os.path.isdir(path):
        try:
            names = sorted(n for n in os.listdir(path) if not fileio.is_temporary(n))
        except OSError:
            return "a folder"
        if not names:
            return "an empty folder"
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        return f"a folder holding {len(names)} entr{'y' if len(names) == 1 else 'ies'} ({shown})"
    if os.path.isfile(path):
        return f"a file of {_size(os.path.getsize(path))}"
    return "something that is neither a file nor a folder"


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"


def _article(kind: str) -> str:
    return "an" if kind[:1].lower() in "aeiou" or kind.lower().startswith("mp4") else "a"


def _paths(value) -> list[str]:
    if value is None:
        return []
    values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    # A camera index ("0") is not a path.
    return [os.fspath(v) for v in values if v and not str(v).isdigit()]


def same_path(a: str, b: str) -> bool:
    """Whether two paths name the same file or folder (symlinks and `..` resolved)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _check_inputs(path: str, flag: str, inputs: Inputs, folder: bool) -> None:
    for label, value in inputs.items():
        for source in _paths(value):
            if same_path(source, path):
                raise OutputPathError(
                    f"{flag}={path} is also the input {label}: an input is never overwritten. "
                    "Choose another output path.")
            if folder and os.path.exists(source) and _inside(source, path):
                raise OutputPathError(
                    f"{flag}={path} holds the input {label}={source}: an input is never inside "
                    "an output folder. Choose another output folder.")


def check_location(path: str, flag: str) -> None:
    """The folder that will hold `path` exists or can be created, and a file can be written in it.

    Writability is probed by creating and removing a temporary file in the nearest existing
    folder (permission bits alone mislead: root ignores them, a read-only mount does not).
    """
    parent = os.path.dirname(os.path.abspath(path))
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputPathError(
            f"{flag}={path}: its folder cannot be created because {existing} is a file. "
            "Choose another output path.")
    probe = os.path.join(existing, f"{fileio.TMP_PREFIX}{os.getpid()}-write-probe")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise OutputPathError(
            f"{flag}={path}: {existing} is not writable ({e.strerror}). Choose a folder you can "
            "write to.") from None
    fileio.remove_stale_temporaries(parent)


def file_output(path: str, *, flag: str, kind: str, extensions: Sequence[str],
                inputs: Inputs | None = None,
                replaceable: Callable[[str], bool] | None = None,
                not_replaceable_hint: str = "") -> str:
    """Checks a file output; returns its absolute path.

    Args:
      path: The output path as the user gave it.
      flag: The flag that named it ("--out"), for the message.
      kind: What the command writes there ("mp4 video", "tfhead .tflite model").
      extensions: Allowed extensions, lower case with the dot (".mp4").
      inputs: The command's inputs by flag ({"--driver": path}); none may be the output.
      replaceable: Whether an existing file at `path` may be replaced (default: any regular file
        that is not an input).
      not_replaceable_hint: Says what the existing file is when `replaceable` refuses it.

    Raises:
      OutputPathError: the path is refused (see the module docstring); nothing was changed.
    """
    if not path:
        raise OutputPathError(f"{flag} is empty: give the {kind} file to write.")
    extension = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        raise OutputPathError(
            f"{flag}={path} is {describe(path)}, not a file: give a file path such as "
            f"{os.path.join(path, 'out' + extensions[0])}.")
    if extension not in extensions:
        raise OutputPathError(
            f"{flag}={path}: {_article(kind)} {kind} is written, so the name must end in "
            f"{' or '.join(extensions)}.")
    _check_inputs(path, flag, inputs or {}, folder=False)
    if os.path.lexists(path):
        if not os.path.isfile(path):
            raise OutputPathError(f"{flag}={path} exists and is {describe(path)}; it is left "
                                  "untouched. Choose another output path.")
        if replaceable is not None and not replaceable(path):
            raise OutputPathError(
                f"{flag}={path} exists and is not {_article(kind)} {kind}"
                f"{not_replaceable_hint}; it is left untouched. Remove it yourself or choose "
                "another output path.")
    check_location(path, flag)
    return os.path.abspath(path)


def folder_output(path: str, *, flag: str, kind: str, is_ours: Callable[[str], bool],
                  inputs: Inputs | None = None) -> str:
    """Checks a folder output that is written (or replaced) as a whole; returns its absolute path.

    An existing folder is accepted when it is empty or `is_ours` says it is an artefact of this
    command (a person checkpoint, a work directory to resume); anything else — a file, a folder
    of other files, the working directory — is refused.

    Raises:
      OutputPathError: the path is refused; nothing was changed.
    """
    if not path:
        raise OutputPathError(f"{flag} is empty: give the {kind} folder to write.")
    _check_inputs(path, flag, inputs or {}, folder=True)
    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            raise OutputPathError(
                f"{flag}={path} exists and is {describe(path)}, not {_article(kind)} {kind}; it is left "
                "untouched. Choose another output path.")
        fileio.remove_stale_temporaries(path)
        if folder_entries(path) and not is_ours(path):
            raise OutputPathError(
                f"{flag}={path} is {describe(path)}, not {_article(kind)} {kind}; it is left "
                f"untouched. Give a new folder, e.g. {os.path.join(path, 'new_name')}.")
        check_location(os.path.join(path, "x"), flag)  # written inside
    check_location(path, flag)  # and beside it (atomic replacement)
    return os.path.abspath(path)


def distinct(outputs: Mapping[str, str | None]) -> None:
    """Refuses two outputs that are the same path (`{"--out": a, "--side_by_side": b}`)."""
    given = [(flag, path) for flag, path in outputs.items() if path]
    for i, (flag_a, a) in enumerate(given):
        for flag_b, b in given[i + 1:]:
            if same_path(a, b):
                raise OutputPathError(f"{flag_a} and {flag_b} are the same file {a}: give two "
                                      "different paths.")


def folder_entries(path: str) -> set[str]:
    """The entries of a folder, without this project's temporaries."""
    return {n for n in os.listdir(path) if not fileio.is_temporary(n)}


def holds_only(path: str, required: Iterable[str], allowed: Iterable[str] = ()) -> bool:
    """Whether a folder holds every `required` entry and nothing besides `required` + `allowed`."""
    entries, required = folder_entries(path), set(required)
    return required <= entries and entries <= required | set(allowed)


def workdir_output(path: str, run_file: str, *, flag: str, kind: str,
                   inputs: Inputs | None = None) -> str:
    """Checks a work directory that a command fills and resumes: new, empty, or one holding this
    command's `run_file` (relative path; then it is resumed, never emptied). Returns its absolute
    path; raises `OutputPathError`."""
    return folder_output(path, flag=flag, kind=kind, inputs=inputs,
                         is_ours=lambda p: os.path.isfile(os.path.join(p, run_file)))
