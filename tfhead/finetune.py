"""Few-shot fine-tuning and feed-forward person models (paper §3.3, docs/design.md §6).

From a meta-learned checkpoint and 1…32 photos (or a video) of a new person:

1. crop + landmarks with the training crop rule and rasterizer (`person_frames`);
2. ê_NEW = mean of E over the frames (`embed`);
3. feed-forward: ψ = P ê_NEW, no training (`feed_forward`);
   fine-tuned: ψ' = P ê_NEW becomes a trainable weight, the rest of G is trained too, D starts from
   the meta D with w' = w0 + ê_NEW; losses L_CNT + L_ADV for G, hinge for D (`finetune`).

The result is a `PersonModel` (G without P, ψ', reference landmarks): E, P, D and W stay behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Sequence

import cv2
import keras
import numpy as np
import tensorflow as tf

from tfhead import errors
from tfhead import crop as crop_lib
from tfhead import landmark_image, landmarks, networks, objectives, training
from tfhead import video as video_lib
from tfhead.config import Config
from tfhead.person import PersonGenerator, PersonModel

log = logging.getLogger("tfhead")

# The fine-tuning progress line shows these.
_LOG_KEYS = ("loss/g/total", "loss/g/content", "loss/g/adv", "loss/d/total")

MAX_SHOTS = 32
# A shot's crop box may lie outside its image by at most this fraction of its area (the outside is
# filled by replicating the border); landmarks may lie outside by at most _BORDER_TOLERANCE px.
MAX_CROP_PADDING = 0.5
_BORDER_TOLERANCE = 1.0


class MetaCheckpointError(errors.TfheadError, ValueError):
    """A meta-learning workdir or checkpoint that cannot be loaded."""


class PersonInputError(errors.TfheadError, ValueError):
    """Photos or a video of the new person that cannot be used (unreadable, no face, ...)."""


# ------------------------------------------------------------------------------------------------
# The person's frames.

@dataclasses.dataclass
class PersonFrames:
    """K crops of the new person with their landmarks (`R` = model resolution).

    Attributes:
      frames: `[K, R, R, 3]` uint8 RGB crops.
      landmarks: `[K, 68, 2]` float32 crop pixels.
      landmark_images: `[K, R, R, 3]` uint8, drawn by the training rasterizer.
      sources: Where each frame came from ("photo.jpg", "clip.mp4#120").
      dropped: Frames of a video that were not used, with the reason ("clip.mp4#96", "no face").
      notes: What the user should know about the choice made ("group.jpg: 3 faces found, used
        face 2 counted from the left").
    """

    frames: np.ndarray
    landmarks: np.ndarray
    landmark_images: np.ndarray
    sources: list[str]
    dropped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def report(self) -> str:
        """One line per fact: the frames used, those dropped and why, and any face choice."""
        lines = [f"used {len(self)} shot(s): {', '.join(self.sources)}"]
        lines += [f"dropped {source}: {reason}" for source, reason in self.dropped]
        return "\n".join(lines + self.notes)


def shot_problem(image_shape: Sequence[int], points: np.ndarray) -> str | None:
    """Why a detected face cannot be a shot, or None when it can.

    A shot's 68 landmarks must all lie inside the image (a face cut by the border gets landmarks
    guessed onto the background), and at most `MAX_CROP_PADDING` of its crop box may lie outside
    the image (the crop would be mostly replicated border).
    """
    h, w = image_shape[:2]
    points = np.asarray(points, np.float64)
    low, high = -_BORDER_TOLERANCE, np.array([w - 1, h - 1]) + _BORDER_TOLERANCE
    outside = int(np.sum(np.any((points < low) | (points > high), axis=1)))
    if outside:
        return (f"the face is cut by the image border ({outside} of 68 landmarks fall outside "
                "the image)")
    box = crop_lib.crop_box(points)
    half = box.size / 2
    inside_w = max(0.0, min(box.cx + half, w) - max(box.cx - half, 0.0))
    inside_h = max(0.0, min(box.cy + half, h) - max(box.cy - half, 0.0))
    padding = 1.0 - inside_w * inside_h / box.size ** 2
    if padding > MAX_CROP_PADDING:
        return (f"{padding:.0%} of the crop around the face lies outside the image (at most "
                f"{MAX_CROP_PADDING:.0%}); the face is too close to the border")
    return None


def _crop_one(image: np.ndarray, points: np.ndarray, resolution: int):
    transform = crop_lib.CropTransform(crop_lib.crop_box(points), resolution)
    local = transform.to_crop(points).astype(np.float32)
    return transform.crop_image(image), local, landmark_image.draw_landmarks(local, resolution)


def _shot(name: str, image: np.ndarray, resolution: int, detector: landmarks.LandmarkDetector,
          face: int | None):
    """((crop, landmarks, landmark image), note) of one image, or (None, reason)."""
    try:
        detection = detector.detect(image, face=face)
    except landmarks.LandmarkError as e:
        return None, str(e)
    problem = shot_problem(image.shape, detection.landmarks)
    if problem is not None:
        return None, problem
    choice = detection.describe_choice()
    note = (f"{name}: {choice}" + ("" if face else " (the largest; --face=N picks another)")
            if choice else "")
    return _crop_one(landmarks.to_rgb_uint8(image), detection.landmarks, resolution), note


def _collect(shots: list, names: list[str], dropped, notes) -> PersonFrames:
    crops, points, drawn = (np.stack(column) for column in zip(*shots))
    for note in dict.fromkeys(n for n in notes if n):  # once each, in order
        log.warning("%s", note)
    for source, reason in dropped:
        log.warning("Dropped %s: %s", source, reason)
    return PersonFrames(crops, points, drawn, names, list(dropped),
                        list(dict.fromkeys(n for n in notes if n)))


def person_frames(images: Sequence[tuple[str, np.ndarray]], resolution: int,
                  detector: landmarks.LandmarkDetector, face: int | None = None) -> PersonFrames:
    """Crops named RGB photos (each must show the whole face) → `PersonFrames`.

    Args:
      face: Which face of each photo, counted from the left from 1 (None: the largest).
    Raises:
      PersonInputError: a photo has no usable face (its name and the reason are in the message).
    """
    if not images:
        raise PersonInputError("No photos of the person were given.")
    if len(images) > MAX_SHOTS:
        raise PersonInputError(f"{len(images)} photos given; at most {MAX_SHOTS} are used (K ≤ 32).")
    shots, names, notes = [], [], []
    for name, image in images:
        shot, note = _shot(name, image, resolution, detector, face)
        if shot is None:
            raise PersonInputError(f"{name}: {note}")
        shots.append(shot), names.append(name), notes.append(note)
    return _collect(shots, names, [], notes)


def load_person(paths: Sequence[str], resolution: int, detector: landmarks.LandmarkDetector,
                video_shots: int = 8, face: int | None = None) -> PersonFrames:
    """Photos (any number of image files) or one video (`video_shots` frames spread over it).

    Frames of a video without a usable face are dropped and listed in `PersonFrames.dropped`; a
    photo without one is an error.
    """
    if not paths:
        raise PersonInputError("No photos or video of the person were given.")
    for path in paths:
        if os.path.isdir(path):
            raise PersonInputError(f"{path} is a folder; give photo files (or one video) of the "
                                   "person, comma-separated.")
        if not os.path.isfile(path):
            raise PersonInputError(f"No such photo or video: {path}")
    videos = [p for p in paths if os.path.splitext(p)[1].lower() in video_lib.VIDEO_EXTENSIONS]
    if videos:
        if len(paths) != 1:
            raise PersonInputError("Give either photos or one video of the person, not both.")
        return _person_from_video(videos[0], resolution, detector, video_shots, face)
    images = []
    for path in paths:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise PersonInputError(f"{path}: not a readable image (use JPEG or PNG).")
        images.append((os.path.basename(path), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
    return person_frames(images, resolution, detector, face)


def _person_from_video(path: str, resolution: int, detector, shots: int,
                       face: int | None) -> PersonFrames:
    if shots < 1:
        raise PersonInputError(f"shots must be >= 1, got {shots}.")
    try:
        info = video_lib.probe(path)
        wanted = np.unique(np.linspace(0, max(info.frame_count - 1, 0), shots).round().astype(int))
        decoded = video_lib.read_frames(path, wanted)
    except video_lib.VideoReadError as e:
        raise PersonInputError(str(e)) from None
    base = os.path.basename(path)
    kept, names, notes = [], [], []
    dropped = [(f"{base}#{i}", "the frame does not decode (damaged or shorter than its header "
                "says)") for i in wanted if i not in decoded]
    for index, image in sorted(decoded.items()):
        shot, note = _shot(f"{base}#{index}", image, resolution, detector, face)
        if shot is None:
            dropped.append((f"{base}#{index}", note))
        else:
            kept.append(shot), names.append(f"{base}#{index}"), notes.append(note)
    if not kept:
        reasons = "; ".join(f"{s}: {r}" for s, r in dropped[:3])
        raise PersonInputError(f"{path}: no usable face in the {len(wanted)} frames sampled "
                               f"({reasons}).")
    dropped.sort(key=lambda item: int(item[0].rsplit("#", 1)[1]))
    return _collect(kept, names, dropped, notes)


# ------------------------------------------------------------------------------------------------
# The meta-learned model.

@dataclasses.dataclass
class MetaModel:
    """E, G (with P) and D restored from a meta-learning run."""

    config: Config
    embedder: networks.Embedder
    generator: networks.Generator
    discriminator: networks.Discriminator
    checkpoint: str


def load_meta_model(path: str) -> MetaModel:
    """Loads a meta-learning workdir (its latest checkpoint) or a checkpoint prefix inside one."""
    if os.path.isdir(path):
        workdir, checkpoint = path, tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
    else:
        workdir, checkpoint = os.path.dirname(os.path.dirname(os.path.abspath(path))), path
        if not tf.io.gfile.exists(checkpoint + ".index"):
            checkpoint = None
    config_path, data_path = (os.path.join(workdir, "config.json"),
                              os.path.join(workdir, "data.json"))
    if checkpoint is None or not os.path.isfile(config_path) or not os.path.isfile(data_path):
        raise MetaCheckpointError(
            f"No meta-learning checkpoint at {path}: pass a --workdir of train/meta_train.py "
            "(holding config.json, data.json and checkpoints/) or a checkpoint prefix in it.")
    with open(config_path) as f:
        config = Config.from_json(f.read())
    with open(data_path) as f:
        num_videos = json.load(f)["num_videos"]
    embedder, generator, discriminator = networks.build_networks(config.model, num_videos)
    status = tf.train.Checkpoint(embedder=embedder, generator=generator,
                                 discriminator=discriminator).restore(checkpoint)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise MetaCheckpointError(f"{checkpoint} does not match its config: {e}") from None
    return MetaModel(config, embedder, generator, discriminator, checkpoint)


def embed(meta: MetaModel, person: PersonFrames) -> np.ndarray:
    """ê_NEW `[embedding_dim]`: the mean of E over the person's frames."""
    frames = landmark_image.to_model_range(person.frames)[None]
    drawn = landmark_image.to_model_range(person.landmark_images)[None]
    return np.asarray(meta.embedder.embed_person(frames, drawn))[0]


def _record(meta: MetaModel, person: PersonFrames, **extra) -> dict:
    return {"meta_checkpoint": os.path.abspath(meta.checkpoint), "shots": len(person),
            "sources": person.sources,
            "dropped": [{"source": s, "reason": r} for s, r in person.dropped], **extra}


def feed_forward(meta: MetaModel, person: PersonFrames, name: str) -> PersonModel:
    """The person model without fine-tuning: ψ = P ê_NEW (the paper's FF variant)."""
    psi = meta.generator.project(embed(meta, person)[None])[0]
    generator = PersonGenerator.from_meta_generator(meta.generator, psi)
    return PersonModel(meta.config, generator, name, person.landmarks[0], "feed-forward",
                       _record(meta, person))


# ------------------------------------------------------------------------------------------------
# Fine-tuning.

class FineTuner:
    """The fine-tuning steps: G (without P) and ψ' on L_CNT + L_ADV, then D on the hinge loss.

    Args:
      config: Losses, learning rates, `d_steps`.
      generator: The `PersonGenerator` (ψ' initialised to P ê_NEW).
      discriminator: The `PersonDiscriminator` (w' = w0 + ê_NEW).
      content_networks: (VGG19, VGGFace) or None for `content_loss="pixel_l1"`.
    """

    def __init__(self, config: Config, generator: PersonGenerator,
                 discriminator: networks.PersonDiscriminator, content_networks=None):
        self.config = config
        self.generator, self.discriminator = generator, discriminator
        self.content_networks = content_networks
        train = config.train
        self.generator_optimizer = keras.optimizers.Adam(
            train.lr_generator, beta_1=train.adam_beta1, beta_2=train.adam_beta2)
        self.discriminator_optimizer = keras.optimizers.Adam(
            train.lr_discriminator, beta_1=train.adam_beta1, beta_2=train.adam_beta2)
        # What each phase trains: G's weights and ψ'; D's body, b and w'.
        self.generator_variables = generator.trainable_variables
        self.discriminator_variables = discriminator.trainable_variables
        self.generator_optimizer.build(self.generator_variables)
        self.discriminator_optimizer.build(self.discriminator_variables)
        self.step = tf.function(self._step)

    def _step(self, frames, landmark_images):
        """One G update and `d_steps` D updates on a batch of the person's (frame, landmarks)."""
        n = tf.shape(frames)[0]

        def discriminate(fake, training):
            scores, features = self.discriminator(
                (tf.concat([frames, fake], 0), tf.concat([landmark_images] * 2, 0)),
                training=training)
            return scores[:n], scores[n:], [f[:n] for f in features], [f[n:] for f in features]

        with tf.GradientTape() as tape:
            fake = tf.cast(self.generator(landmark_images, training=True), tf.float32)
            _, fake_scores, real_features, fake_features = discriminate(fake, training=False)
            terms = objectives.generator_terms(self.config.train, self.content_networks, frames,
                                               fake, fake_scores, real_features, fake_features)
            loss = tf.reduce_mean(terms["loss/g/total"])
        gradients = tape.gradient(loss, self.generator_variables)
        self.generator_optimizer.apply_gradients(zip(gradients, self.generator_variables))
        for _ in range(self.config.train.d_steps):
            with tf.GradientTape() as tape:
                real_scores, fake_scores, _, _ = discriminate(fake, training=True)
                d_terms = objectives.discriminator_terms(real_scores, fake_scores)
                d_loss = tf.reduce_mean(d_terms["loss/d/total"])
            gradients = tape.gradient(d_loss, self.discriminator_variables)
            self.discriminator_optimizer.apply_gradients(
                zip(gradients, self.discriminator_variables))
        return {k: tf.reduce_mean(v) for k, v in {**terms, **d_terms}.items()}


def finetune(meta: MetaModel, person: PersonFrames, name: str, steps: int | None = None,
             config: Config | None = None, content_networks=None, seed: int = 0,
             log_every: int = 25,
             on_step: Callable[[int, dict], None] | None = None) -> PersonModel:
    """Fine-tunes a person model on `person`'s frames (see the module docstring).

    Args:
      meta: The meta-learned model (not modified).
      person: The new person's frames.
      name: The person's name, stored in the model.
      steps: G updates (default `config.train.finetune_steps`); each takes a batch of
        min(batch_size, K) of the person's frames, drawn at random.
      config: Fine-tuning losses and optimisation (default: the meta config); its model section
        must equal the meta model's.
      content_networks: (VGG19, VGGFace) for `content_loss` "vgg"/"random_vgg"; None for pixel_l1.
      on_step: Called with (step, metrics) after every step (progress bars, tests).
    Raises:
      training.TrainingDivergedError: a loss became NaN/Inf.
    """
    config = config or meta.config
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    if config.model != meta.config.model:
        raise ValueError("Fine-tuning cannot change the model architecture (config.model).")
    steps = config.train.finetune_steps if steps is None else steps
    keras.utils.set_random_seed(seed)
    embedding = embed(meta, person)
    psi = meta.generator.project(embedding[None])[0]
    generator = PersonGenerator.from_meta_generator(meta.generator, psi)
    discriminator = networks.PersonDiscriminator.from_discriminator(meta.discriminator, embedding)
    tuner = FineTuner(config, generator, discriminator, content_networks)

    frames = landmark_image.to_model_range(person.frames)
    drawn = landmark_image.to_model_range(person.landmark_images)
    batch = min(config.train.batch_size, len(person))
    rng = np.random.default_rng(seed)
    steplog = training.StepLog("fine-tune", 0, steps, batch, log_every, _LOG_KEYS, on_step)
    start = time.monotonic()
    for step in range(1, steps + 1):
        chosen = rng.choice(len(person), size=batch, replace=False)
        steplog.record(step, tuner.step(tf.constant(frames[chosen]), tf.constant(drawn[chosen])))
    record = _record(meta, person, steps=steps, batch=batch,
                     seconds=round(time.monotonic() - start, 1),
                     content_loss=config.train.content_loss, history=steplog.history)
    return PersonModel(meta.config, generator, name, person.landmarks[0], "fine-tuned", record)
