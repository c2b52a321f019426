"""Few-shot fine-tuning and feed-forward person models (paper §3.3, docs/design.md §6).

From a meta-learned checkpoint (`meta_learning.load_meta_model`) and 1…32 photos (or a video) of a
new person:

1. crop + landmarks with the training crop rule and rasterizer (`tfhead.face.shots`);
2. ê_NEW = mean of E over the frames (`embed`);
3. feed-forward: ψ = P ê_NEW, no training (`feed_forward`);
   fine-tuned: ψ' = P ê_NEW becomes a trainable weight, the rest of G is trained too, D starts from
   the meta D with w' = w0 + ê_NEW; losses L_CNT + L_ADV for G, hinge for D (`finetune`).

The result is a `PersonModel` (G without P, ψ', reference landmarks): E, P, D and W stay behind.
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
from tfhead.face import landmark_image
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
      loop.TrainingDivergedError: a loss became NaN/Inf.
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
    steplog = loop.StepLog("fine-tune", 0, steps, batch, log_every, _LOG_KEYS, on_step)
    start = time.monotonic()
    for step in range(1, steps + 1):
        chosen = rng.choice(len(person), size=batch, replace=False)
        steplog.record(step, tuner.step(tf.constant(frames[chosen]), tf.constant(drawn[chosen])))
    record = _record(meta, person, steps=steps, batch=batch,
                     seconds=round(time.monotonic() - start, 1),
                     content_loss=config.train.content_loss, history=steplog.history)
    return PersonModel(meta.config, generator, name, person.landmarks[0], "fine-tuned", record)
