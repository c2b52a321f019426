"""Person models (paper §3.3): one person's generator, fine-tuned, feed-forward or a student.

A person model is the generator without P, its AdaIN parameters ψ' as a weight of their own, and
what animation needs about the person: the reference landmarks of the source photo (the geometry
that relative motion keeps) and where the model came from. E, P, D and W are not part of it, so a
person checkpoint does not grow with the meta-learning corpus (docs/design.md §9).

A *student* person model (`tfhead.training.distill`) holds a `StudentGenerator` instead: the same
person, landmark image in and frame out, distilled into a network a CPU runs in real time. Every
tool that takes a person model (animation, export, the on-device runner) takes it unchanged.

A person model also keeps its source (`tfhead.face.source.PersonSource`: the first shot as a
whole photo with its landmarks). A warp-guided model needs it on every frame (its second input is
the source crop warped to the target landmarks); every model uses it to paste its frames back into
the photo.

On disk a person checkpoint is a folder, written atomically:

    person.json            config, name, mode (fine-tuned / feed-forward / student), reference
                           landmarks, the source photo's landmarks, tfhead and landmark-image
                           versions, the record of how it was made, and for a student its
                           architecture (`StudentConfig`)
    generator.weights.h5   the person generator (G without P, and ψ'; or the student)
    photo.png              the source photo (absent in checkpoints made without one)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import keras
import numpy as np

from tfhead import __version__, errors
from tfhead.config import Config, ConfigError, StudentConfig
from tfhead.edge.model_file import PERSON_MODES
from tfhead.face import landmark_image
from tfhead.face.source import PHOTO_FILE, PersonSource, model_inputs
from tfhead.io import fileio, outputs
from tfhead.models import networks
from tfhead.models.student import StudentGenerator

PERSON_FILE = "person.json"
WEIGHTS_FILE = "generator.weights.h5"
# 2: spectrally normalized layers hold the raw kernel and u, v (`tfhead.models.layers`); format 1
# teachers hold Keras' SpectralNormalization variables and cannot be read. Students (no spectral
# normalization) are the same in both.
FORMAT_VERSION = 2
_REQUIRED_KEYS = ("name", "mode", "config", "reference_landmarks")


class PersonCheckpointError(errors.TfheadError, ValueError):
    """A person checkpoint that is missing, incomplete or made for something else."""


def is_person_checkpoint(path: str) -> bool:
    """Whether `path` is a person checkpoint folder: its two files and nothing else."""
    return os.path.isdir(path) and outputs.holds_only(path, (PERSON_FILE, WEIGHTS_FILE),
                                                      (PHOTO_FILE,))


def check_output(path: str, flag: str = "--out", inputs: outputs.Inputs | None = None) -> str:
    """Checks that a person checkpoint may be written at `path` (see `tfhead.io.outputs`): a new
    folder, an empty one or an existing person checkpoint, never an input. Returns the absolute
    path; raises `outputs.OutputPathError`."""
    return outputs.folder_output(path, flag=flag, kind="person checkpoint",
                                 is_ours=is_person_checkpoint, inputs=inputs)


@keras.saving.register_keras_serializable(package="tfhead")
class PersonGenerator(keras.Model):
    """G(y; ψ'): the generator of one person, landmark image `[batch, R, R, 3]` → frame; a
    warp-guided one takes (landmark images, warps).

    Holds a `Generator` built without P and ψ' `[psi_dim]` as a trainable weight; fine-tuning
    trains both (paper §3.3), export folds ψ' in as constants.
    """

    def __init__(self, generator_config: dict, **kwargs):
        super().__init__(**kwargs)
        self.generator_config = dict(generator_config, with_projection=False)
        for key in ("name", "trainable", "dtype"):
            self.generator_config.pop(key, None)
        self.generator = networks.Generator(**self.generator_config, name="generator")
        self.generator.build()
        self.psi = self.add_weight(shape=(self.generator.psi_dim,), initializer="zeros",
                                   name="psi")
        self.built = True

    @classmethod
    def from_meta_generator(cls, meta_generator: networks.Generator, psi) -> "PersonGenerator":
        """Copies every weight of a meta-learned G except P, and sets ψ' = `psi` `[psi_dim]`."""
        person = cls(meta_generator.get_config(), name="person_generator")
        person.load_meta_generator(meta_generator, psi)
        return person

    def load_meta_generator(self, meta_generator: networks.Generator, psi) -> None:
        """Sets every weight of G from the meta-learned G (P aside) and ψ' = `psi` `[psi_dim]`,
        in place: a traced step that holds these variables stays valid."""
        projection = {id(v) for v in meta_generator.projection.variables}
        source = [v for v in meta_generator.variables if id(v) not in projection]
        target = self.generator.variables
        # Same constructor, same order: the variables pair up one to one (P aside).
        if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in target]:
            raise ValueError("The meta generator's layout does not match its person generator.")
        for variable, value in zip(target, source):
            variable.assign(value)
        self.psi.assign(keras.ops.reshape(keras.ops.cast(psi, "float32"), (-1,)))

    def copy(self) -> "PersonGenerator":
        """A new person generator with this one's weights (ψ' included)."""
        twin = PersonGenerator(self.generator_config, name=self.name)
        for variable, value in zip(twin.variables, self.variables):
            variable.assign(value)
        return twin

    @property
    def warp_guidance(self) -> bool:
        return self.generator.warp_guidance

    def call(self, inputs, training=False):
        landmark_images, warp = (inputs if self.warp_guidance else (inputs, None))
        return self.generator.render(landmark_images, keras.ops.expand_dims(self.psi, 0), warp,
                                     training=training)

    def get_config(self):
        return {**super().get_config(), "generator_config": self.generator_config}


def render_frames(generator, inputs: list[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """uint8 frames from a person generator's uint8 inputs (`source.model_inputs`: landmark
    images, and warps for a warp-guided one) with a `PersonGenerator` or a `StudentGenerator`, in
    batches, inference mode."""
    outputs = []
    for start in range(0, len(inputs[0]), batch_size):
        chunk = [landmark_image.to_model_range(x[start:start + batch_size]) for x in inputs]
        outputs.append(np.asarray(generator(chunk[0] if len(chunk) == 1 else tuple(chunk),
                                            training=False)))
    return landmark_image.from_model_range(np.concatenate(outputs))


@dataclasses.dataclass
class PersonModel:
    """A person generator with what animation and export need to know about it.

    Attributes:
      config: The meta-learning config the model comes from (architecture, resolution); for a
        student, its teacher's.
      generator: The `PersonGenerator`, or a `StudentGenerator` when `student` is set.
      name: The person's name (free text, e.g. a file stem).
      reference_landmarks: `[68, 2]` landmarks of the reference source photo in crop pixels.
      mode: "fine-tuned", "feed-forward" or "student".
      record: How it was made (shots, steps, losses, the meta checkpoint, the teacher), for
        provenance.
      student: The student's architecture; None for a fine-tuned or feed-forward model.
      source: The source photo (`PersonSource`); required by a warp-guided model.
    """

    config: Config
    generator: PersonGenerator | StudentGenerator
    name: str
    reference_landmarks: np.ndarray
    mode: str
    record: dict = dataclasses.field(default_factory=dict)
    student: StudentConfig | None = None
    source: PersonSource | None = None

    def __post_init__(self):
        if self.mode not in PERSON_MODES:
            raise ValueError(f"Unknown person-model mode {self.mode!r}; valid: {list(PERSON_MODES)}.")
        if (self.mode == "student") != (self.student is not None):
            raise ValueError("A student person model needs its StudentConfig, and only it has one.")
        if self.student is not None and self.student.resolution != self.config.model.resolution:
            raise ValueError(f"The student is {self.student.resolution}² but its teacher "
                             f"{self.config.model.resolution}².")
        if self.warp_guidance and self.source is None:
            raise ValueError("A warp-guided person model needs its source photo (PersonSource).")
        if self.source is not None and self.source.resolution != self.resolution:
            raise ValueError(f"The source is cropped at {self.source.resolution}², the model "
                             f"renders {self.resolution}².")

    @property
    def resolution(self) -> int:
        return self.config.model.resolution

    @property
    def preset(self) -> str:
        """The preset of the network that renders: the student's, or the meta model's."""
        return self.student.preset if self.student is not None else self.config.preset

    @property
    def warp_guidance(self) -> bool:
        """Whether the generator takes the source warped to the target as a second input."""
        return bool(self.generator.warp_guidance)

    def model_inputs(self, landmarks: np.ndarray) -> list[np.ndarray]:
        """The generator's uint8 inputs for target landmarks `[N, 68, 2]` (crop pixels)."""
        return model_inputs(landmarks, self.resolution,
                            self.source if self.warp_guidance else None)

    def render(self, landmarks: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Frames `[N, R, R, 3]` uint8 RGB for target landmarks `[N, 68, 2]` in crop pixels
        (rasterized, warped when warp-guided, generated)."""
        return render_frames(self.generator, self.model_inputs(landmarks), batch_size)

    def save(self, path: str) -> str:
        """Writes the checkpoint folder `path` atomically (a crash leaves the old one intact).

        An existing `path` is replaced only when it is a person checkpoint (or an empty folder);
        a file or a folder of anything else is refused with `outputs.OutputPathError` before
        anything is written (`check_output`).
        """
        path = check_output(path)
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        tmp = fileio.tmp_name(path)
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        self.generator.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        meta = {"format_version": FORMAT_VERSION, "tfhead_version": __version__,
                "landmark_image_version": landmark_image.LANDMARK_IMAGE_VERSION,
                "name": self.name, "mode": self.mode, "config": self.config.to_dict(),
                "reference_landmarks": np.asarray(self.reference_landmarks).round(3).tolist(),
                "record": self.record}
        if self.student is not None:
            meta["student"] = self.student.to_dict()
        if self.source is not None:
            meta["source"] = self.source.save(tmp)
        with open(os.path.join(tmp, PERSON_FILE), "w") as f:
            json.dump(meta, f, indent=1)
        if os.path.exists(path):
            old = f"{tmp}-old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str) -> "PersonModel":
        meta_path = os.path.join(path, PERSON_FILE)
        weights_path = os.path.join(path, WEIGHTS_FILE)
        if not os.path.isdir(path):
            raise PersonCheckpointError(
                f"No person checkpoint at {path}: make one with train/finetune.py (a folder "
                f"holding {PERSON_FILE} and {WEIGHTS_FILE}).")
        for required in (meta_path, weights_path):
            if not os.path.isfile(required):
                raise PersonCheckpointError(
                    f"{path} is not a complete person checkpoint: {os.path.basename(required)} "
                    "is missing.")
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except json.JSONDecodeError as e:
            raise PersonCheckpointError(f"{meta_path} is not valid JSON: {e}") from None
        if not isinstance(meta, dict):
            raise PersonCheckpointError(f"{meta_path} holds no person description (a JSON object "
                                        "is expected): write the person model again.")
        version = meta.get("format_version")
        if version == 1 and meta.get("mode") != "student":
            raise PersonCheckpointError(
                f"{path} has person-checkpoint format 1, written before tfhead's spectral "
                "normalization took the paper's form; its weights cannot be read. Fine-tune it "
                "again (train/finetune.py) from a meta-learning run of this version.")
        if version not in (1, FORMAT_VERSION):
            raise PersonCheckpointError(
                f"{path} has person-checkpoint format {version}; this tfhead reads format "
                f"{FORMAT_VERSION}.")
        if meta.get("landmark_image_version") != landmark_image.LANDMARK_IMAGE_VERSION:
            raise PersonCheckpointError(
                f"{path} was trained on landmark images v{meta.get('landmark_image_version')}, "
                f"this tfhead draws v{landmark_image.LANDMARK_IMAGE_VERSION}: fine-tune again.")
        missing = [k for k in _REQUIRED_KEYS + (("student",) if meta.get("mode") == "student"
                                                else ()) if k not in meta]
        if missing:
            raise PersonCheckpointError(
                f"{meta_path} lacks {', '.join(missing)}: it was damaged or edited. Write the "
                "person model again (train/finetune.py or train/distill.py).")
        if meta["mode"] not in PERSON_MODES:
            raise PersonCheckpointError(f"{meta_path}: unknown mode {meta['mode']!r}; "
                                        f"valid: {list(PERSON_MODES)}.")
        try:
            config = Config.from_dict(meta["config"])
            reference = np.asarray(meta["reference_landmarks"], np.float32)
            student = (StudentConfig.from_dict(meta["student"]) if meta["mode"] == "student"
                       else None)
        except (ConfigError, KeyError, TypeError, ValueError) as e:
            raise PersonCheckpointError(f"{meta_path} is damaged: {e}") from None
        if reference.shape != (68, 2):
            raise PersonCheckpointError(f"{meta_path}: reference_landmarks must be [68, 2], got "
                                        f"{list(reference.shape)}.")
        source = None
        if "source" in meta:
            try:
                source = PersonSource.load(path, meta["source"], config.model.resolution)
            except (ValueError, TypeError) as e:
                raise PersonCheckpointError(f"{path}: the source photo is damaged ({e}); "
                                            "write the person model again.") from None
        if student is not None:
            generator = StudentGenerator(**student.generator_kwargs(), name="student")
            generator.build()
        else:
            generator = PersonGenerator(networks.generator_kwargs(config.model),
                                        name="person_generator")
        try:
            generator.load_weights(weights_path)
        except (ValueError, KeyError, OSError) as e:
            raise PersonCheckpointError(f"{weights_path} does not fit its config: {e}") from None
        try:
            return cls(config, generator, str(meta["name"]), reference, meta["mode"],
                       meta.get("record", {}), student, source)
        except ValueError as e:
            raise PersonCheckpointError(f"{meta_path}: {e}") from None
