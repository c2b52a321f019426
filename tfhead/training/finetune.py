"""Few-shot fine-tuning and feed-forward person models (paper §3.3, docs/design.md §6).

From a meta-learned checkpoint (`meta_learning.load_meta_model`) and 1…32 photos (or a video) of a
new person:

1. crop + landmarks with the training crop rule and rasterizer (`tfhead.face.shots`);
2. ê_NEW = mean of E over the frames (`embed`);
3. feed-forward: ψ = P ê_NEW, no training (`feed_forward`);
   fine-tuned: ψ' = P ê_NEW becomes a trainable weight, the rest of G is trained too, D starts from
   the meta D with w' = w0 + ê_NEW; losses L_CNT + L_ADV for G, hinge for D (`finetune`).

The result is a `PersonModel` (G without P, ψ', reference landmarks, the source photo): E, P, D
and W stay behind.

**Training pairs** (`TrainingPairs`). Without augmentation every step draws a batch of the
person's shots as they are: target = a shot, landmark image = its own, warp (a warp-guided G) =
a shot warped to its landmarks — for one photo, the target itself. With `augment` (the default)
each example is drawn fresh from the shots moved along plausible motion (`motion.motion_track`:
mouth opening, blinks, turns, roll, scale, drift): the target is a shot, in half of the examples
warped to a random pose of that track (a mouth opened beyond the shot's painted dark inside and
closing eyes covered, `motion.paint_openings`), and a warp-guided G's warp comes from *another* random
pose of a shot, warped on to the target's landmarks (and painted the same way, as
`PersonSource.warp` does at run time) — a twice-warped image with the blur and the moved eyelids
a warp really has, from which G must restore the target.
docs/design.md §14 has the measurements that chose it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tfhead.config import Config
from tfhead.face import landmark_image, motion
from tfhead.face.shots import PersonFrames
from tfhead.models import networks
from tfhead.models.person import PersonGenerator, PersonModel
from tfhead.training import loop, objectives
from tfhead.training.meta_learning import MetaModel

log = logging.getLogger("tfhead")

# The fine-tuning progress line shows these.
_LOG_KEYS = ("loss/g/total", "loss/g/content", "loss/g/adv", "loss/d/total")







# ------------------------------------------------------------------------------------------------
# The feed-forward model.

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
                       _record(meta, person), source=person.source)


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
        self._fresh_optimizers = [(v, v.numpy()) for optimizer in (self.generator_optimizer,
                                                                   self.discriminator_optimizer)
                                  for v in optimizer.variables]
        self.step = tf.function(self._step, autograph=False)  # no tensor-dependent Python flow

    def reset_optimizers(self) -> None:
        """Both optimizers back to their state before the first step (step count and moments
        zero), in place: the traced step stays valid."""
        for variable, value in self._fresh_optimizers:
            variable.assign(value)

    def _step(self, frames, landmark_images, warps=None):
        """One G update and `d_steps` D updates on a batch of the person's (frame, landmarks),
        with the warps of a warp-guided G."""
        n = tf.shape(frames)[0]
        inputs = landmark_images if warps is None else (landmark_images, warps)

        def discriminate(fake, training):
            if not training:  # G's update: real apart, so D's backward covers the fake half only
                real_scores, real_features = self.discriminator((frames, landmark_images),
                                                                 training=False)
                fake_scores, fake_features = self.discriminator((fake, landmark_images),
                                                                 training=False)
                return (tf.stop_gradient(real_scores), fake_scores,
                        [tf.stop_gradient(f) for f in real_features], fake_features)
            scores, features = self.discriminator(  # D's update: one spectral-norm update
                (tf.concat([frames, fake], 0), tf.concat([landmark_images] * 2, 0)),
                training=training)
            return scores[:n], scores[n:], [f[:n] for f in features], [f[n:] for f in features]

        with tf.GradientTape() as tape:
            fake = tf.cast(self.generator(inputs, training=True), tf.float32)
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


class TrainingPairs:
    """Fine-tuning batches from a person's shots (see the module docstring).

    Args:
      person: The shots.
      resolution: R.
      warp_guidance: Also give each example its warp (a warp-guided G).
      augment: Draw the examples from the shots moved along plausible motion.
      seed: Seed of the draws and of the motion tracks.
      track_frames: Poses per shot in the motion track the augmented examples are drawn from.
      max_yaw: The track's largest head turn, radians (`motion.motion_track`).
    """

    def __init__(self, person: PersonFrames, resolution: int, warp_guidance: bool, augment: bool,
                 seed: int = 0, track_frames: int = 256, max_yaw: float = motion.MAX_YAW):
        self.person, self.resolution = person, resolution
        self.warp_guidance, self.augment = warp_guidance, augment
        self.rng = np.random.default_rng(seed)
        self.warpers = [motion.PhotoWarper(frame, points)
                        for frame, points in zip(person.frames, person.landmarks)]
        self.tracks = [motion.motion_track(points, track_frames, seed=seed + i, max_yaw=max_yaw)
                       for i, points in enumerate(person.landmarks)] if augment else None
        self._fixed_warps: dict[tuple[int, int], np.ndarray] = {}  # (source, target) shots

    def _warp(self, target_points: np.ndarray, target_shot: int | None) -> np.ndarray:
        """A warp-guided G's warp for one example, as `PersonSource.warp` makes it: a shot (a
        random pose of it with augmentation) warped to the target's landmarks and painted.
        Between fixed shots (`target_shot`) it is computed once."""
        source = int(self.rng.integers(len(self.person)))
        key = (source, target_shot)
        if target_shot is not None and not self.augment and key in self._fixed_warps:
            return self._fixed_warps[key]
        source_image, source_points = self._pose(source)
        warped = motion.paint_openings(
            motion.PhotoWarper(source_image, source_points).warp(target_points), target_points,
            self.person.landmarks[source])
        if target_shot is not None and not self.augment:
            self._fixed_warps[key] = warped
        return warped

    def _pose(self, shot: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, landmarks) of a random pose of `shot` (the shot itself without augmentation):
        the shot warped to it, with a mouth opened beyond the shot's painted dark inside and
        closing eyes painted as closed lids (`motion.paint_openings`: a warp alone would stretch
        the lips over the gap and squeeze the eye into a slit)."""
        if not self.augment:
            return self.person.frames[shot], self.person.landmarks[shot]
        points = self.tracks[shot][self.rng.integers(len(self.tracks[shot]))]
        return (motion.paint_openings(self.warpers[shot].warp(points), points,
                                      self.person.landmarks[shot]), points)

    def batch(self, size: int) -> tuple[np.ndarray, ...]:
        """(targets, landmark images[, warps]) `[size, R, R, 3]` each, in [-1, 1]."""
        k = len(self.person)
        shots = (self.rng.choice(k, size=size, replace=False) if size <= k
                 else self.rng.integers(k, size=size))
        targets, drawn, warps = [], [], []
        for shot in shots:
            if self.augment and self.rng.random() < 0.5:
                image, target_points = self._pose(shot)
                drawn.append(landmark_image.draw_landmarks(target_points, self.resolution))
                target_shot = None
            else:  # the shot itself, whose landmark image the shots carry
                image, target_points = self.person.frames[shot], self.person.landmarks[shot]
                drawn.append(self.person.landmark_images[shot])
                target_shot = int(shot)
            targets.append(image)
            if self.warp_guidance:
                warps.append(self._warp(target_points, target_shot))
        arrays = [np.stack(targets), np.stack(drawn)] + (
            [np.stack(warps)] if self.warp_guidance else [])
        return tuple(tf.constant(landmark_image.to_model_range(a)) for a in arrays)


def finetune(meta: MetaModel, person: PersonFrames, name: str, steps: int | None = None,
             config: Config | None = None, content_networks=None, seed: int = 0,
             log_every: int = 25, augment: bool = True,
             on_step: Callable[[int, dict], None] | None = None) -> PersonModel:
    """Fine-tunes a person model on `person`'s frames (see the module docstring).

    Args:
      meta: The meta-learned model (not modified).
      person: The new person's frames.
      name: The person's name, stored in the model.
      steps: G updates (default `config.train.finetune_steps`); each takes a batch of
        `batch_size` examples (`TrainingPairs`; without `augment` min(batch_size, K) of the
        person's frames).
      config: Fine-tuning losses and optimisation (default: the meta config); its model section
        must equal the meta model's.
      content_networks: The networks of `config.train.content_loss`
        (`feature_networks.build_content_networks`); None for pixel_l1.
      augment: Train on the shots moved along plausible motion (`TrainingPairs`).
      on_step: Called with (step, metrics) after every step (progress bars, tests).
    Raises:
      loop.TrainingDivergedError: a loss became NaN/Inf.

    To fine-tune many persons on one meta model, use one `FineTuning` (one traced step).
    """
    keras.utils.set_random_seed(seed)
    return FineTuning(meta, config, content_networks)(person, name, steps, seed, log_every,
                                                      augment, on_step, copy=False)


class FineTuning:
    """Fine-tunes one person after another on one meta-learned model with one traced step.

    The person networks, optimizers and `FineTuner` are made once; each call re-initialises them
    in place (G's weights from the meta G, ψ' = P ê_NEW, D's from the meta D with
    w' = w0 + ê_NEW, optimizer step and moments zero) and returns the same model a fresh
    `finetune` would. A protocol over many videos (`tfhead.evaluation.evaluate`) so traces the
    step once per batch shape instead of once per video: ~10 s per trace for the tiny preset on
    2 cores, more for larger ones.

    Args:
      meta: The meta-learned model (not modified).
      config: Fine-tuning losses and optimisation (default: the meta config); its model section
        must equal the meta model's.
      content_networks: The networks of `config.train.content_loss`; None for pixel_l1.
    """

    def __init__(self, meta: MetaModel, config: Config | None = None, content_networks=None):
        self.meta = meta
        self.config = config or meta.config
        if self.config.model != meta.config.model:
            raise ValueError("Fine-tuning cannot change the model architecture (config.model).")
        self.generator = PersonGenerator(meta.generator.get_config(), name="person_generator")
        self.discriminator = networks.PersonDiscriminator.from_discriminator(
            meta.discriminator, np.zeros(meta.config.model.embedding_dim, np.float32))
        self.tuner = FineTuner(self.config, self.generator, self.discriminator, content_networks)

    def __call__(self, person: PersonFrames, name: str, steps: int | None = None, seed: int = 0,
                 log_every: int = 25, augment: bool = True,
                 on_step: Callable[[int, dict], None] | None = None,
                 copy: bool = True) -> PersonModel:
        """Fine-tunes `person` (arguments as `finetune`). With `copy` (the default) the returned
        model has its own generator; without it, the generator is this object's and the next
        call overwrites it."""
        meta, config = self.meta, self.config
        if steps is not None and steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}.")
        if person.source is None:
            raise ValueError("The person's shots carry no source photo (PersonFrames.source).")
        steps = config.train.finetune_steps if steps is None else steps
        # No keras.utils.set_random_seed here: tf.random.set_seed clears TensorFlow's kernel
        # caches, and the traced step then spent ~8 s (demo size) being set up again for every
        # person. The step draws no TensorFlow random numbers; the pairs have their own seeded
        # generator (tested: a later person equals a fresh `finetune`).
        embedding = embed(meta, person)
        psi = meta.generator.project(embedding[None])[0]
        self.generator.load_meta_generator(meta.generator, psi)
        self.discriminator.load_discriminator(meta.discriminator, embedding)
        self.tuner.reset_optimizers()

        batch = config.train.batch_size if augment else min(config.train.batch_size, len(person))
        pairs = TrainingPairs(person, config.model.resolution, self.generator.warp_guidance,
                              augment, seed, max_yaw=config.train.finetune_max_yaw)
        steplog = loop.StepLog("fine-tune", 0, steps, batch, log_every, _LOG_KEYS, on_step)
        start = time.monotonic()
        for step in range(1, steps + 1):
            steplog.record(step, self.tuner.step(*pairs.batch(batch)))
        loop.check_finite_weights(self.generator.trainable_variables, steps, None)
        record = _record(meta, person, steps=steps, batch=batch, augment=augment,
                         seconds=round(time.monotonic() - start, 1),
                         content_loss=config.train.content_loss, history=steplog.history)
        generator = self.generator.copy() if copy else self.generator
        return PersonModel(meta.config, generator, name, person.landmarks[0], "fine-tuned",
                           record, source=person.source)
