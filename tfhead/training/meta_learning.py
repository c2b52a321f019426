"""Meta-learning (paper §3.2, docs/design.md §4–§5): the E+G and D steps, and the training loop.

One iteration = one E+G step, then `train.d_steps` D steps on the same episodes:

* **E+G step** — trains E, G and P (`MetaLearner.generator_variables`):
  L = L_CNT(x, x̂) + L_ADV + L_MCH, with L_ADV = −D(x̂, y, i) + w_FM · L_FM and
  L_MCH = w_MCH · |ê_i − W_i|₁ (W_i held constant here; absent in the feed-forward variant).
  D is run in inference mode, so this step changes none of D's variables.
* **D step** — trains D (`MetaLearner.discriminator_variables`: V, w0, b and W):
  hinge loss on (x, x̂) plus, unless feed-forward, w_MCH · |ê_i − W_i|₁ with ê_i held constant —
  the other half of L_MCH(φ, W), which pulls W's rows towards the embeddings so that fine-tuning
  can start D from w0 + ê_NEW (paper §3.3).

W is a float32 `keras.layers.Embedding`: a batch reads only its videos' rows, their gradient is a
`tf.IndexedSlices`, and `LazyAdam` updates only those rows (along dense Adam's trajectory,
`tfhead.training.optimizers`). TensorBoard shows `embeddings/w_rows_abs` (mean |W_i| of the
batch's rows) against `embeddings/e_abs` (mean |ê_i|) and `loss/g/match`: if W lags the
embeddings, L_MCH (weight 80) holds ê small.

Losses are per example and reduced with `tf.nn.compute_average_loss` over the global batch, so the
steps are the same code under the default strategy, `MirroredStrategy` and
`MultiWorkerMirroredStrategy`; networks and optimizers are built inside the strategy's scope.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os

import keras
import tensorflow as tf

from tfhead import errors, runtime
from tfhead.config import Config
from tfhead.data import episodes as data_lib
from tfhead.data import records
from tfhead.io import outputs
from tfhead.models import networks
from tfhead.training import distribute, feature_networks, loop, losses, objectives
from tfhead.training.optimizers import LazyAdam

log = logging.getLogger("tfhead")

# The per-step log line shows these (TensorBoard gets every metric).
_LOG_KEYS = ("loss/g/total", "loss/g/content", "loss/g/adv", "loss/g/match", "loss/d/total",
             "score/real", "score/fake")


def generator_inputs(batch: dict, embeddings) -> tuple:
    """G's inputs for an episode batch: (target landmark image, ê), and the target warp when the
    episodes carry one (a warp-guided G, `data.episodes`)."""
    warp = (batch["target_warp"],) if "target_warp" in batch else ()
    return (batch["target_landmark_image"], embeddings) + warp


class MetaLearner:
    """Networks, optimizers and the tf.function steps of meta-learning.

    Args:
      config: The run's `Config`.
      num_videos: Rows of D's W (the preprocessed set's video count).
      strategy: A `tf.distribute` strategy (default: the current one).
      content_networks: (VGG19, VGGFace) `FeatureNetwork`s for L_CNT, or None when
        `config.train.content_loss == "pixel_l1"`. Built by the caller (inside `strategy.scope()`)
        so that weight files are checked before anything else is built.
      jit_compile: Compile each replica's step with XLA.
      run_eagerly: Run the steps as plain Python (debugging, and the eager benchmark).
    """

    def __init__(self, config: Config, num_videos: int,
                 strategy: tf.distribute.Strategy | None = None, content_networks=None,
                 jit_compile: bool = False, run_eagerly: bool = False):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch_size = config.train.batch_size
        replicas = self.strategy.num_replicas_in_sync
        if self.global_batch_size % replicas:
            raise loop.TrainingError(
                f"train.batch_size={self.global_batch_size} must be a multiple of the "
                f"{replicas} replicas of the strategy.")
        if (content_networks is None) != (config.train.content_loss == "pixel_l1"):
            raise ValueError("content_networks must be given exactly when the content loss uses them.")
        self.content_networks = content_networks
        train = config.train
        with self.strategy.scope():
            keras.utils.set_random_seed(train.seed)
            self.embedder, self.generator, self.discriminator = networks.build_networks(
                config.model, num_videos)
            self.generator_optimizer = keras.optimizers.Adam(
                train.lr_generator, beta_1=train.adam_beta1, beta_2=train.adam_beta2,
                name="generator_optimizer")
            self.discriminator_optimizer = LazyAdam(
                train.lr_discriminator, beta_1=train.adam_beta1, beta_2=train.adam_beta2,
                name="discriminator_optimizer")
            # Which variables each phase trains — declared here and nowhere else.
            self.generator_variables = (self.embedder.trainable_variables
                                        + self.generator.trainable_variables)
            self.discriminator_variables = self.discriminator.trainable_variables
            self.generator_optimizer.build(self.generator_variables)
            self.discriminator_optimizer.build(self.discriminator_variables)
        self.video_table = self.discriminator.video_embeddings.embeddings

        if run_eagerly and jit_compile:
            raise ValueError("XLA compilation needs graph mode; do not combine it with run_eagerly.")

        # autograph=False: the steps' Python control flow depends on the config only, never on a
        # tensor, so converting them would change nothing but cost ~2 s per trace.
        def compile_replica(fn):
            return fn if run_eagerly else tf.function(fn, jit_compile=jit_compile, autograph=False)

        def compile_step(fn):
            return fn if run_eagerly else tf.function(fn, autograph=False)

        replica_step = compile_replica(self._replica_train_step)
        replica_g = compile_replica(lambda batch: self._replica_generator_step(batch)[0])
        replica_d = compile_replica(self._replica_discriminator_only_step)
        self.train_step = compile_step(lambda batch: self._run(replica_step, batch))
        self.generator_step = compile_step(lambda batch: self._run(replica_g, batch))
        self.discriminator_step = compile_step(lambda batch: self._run(replica_d, batch))
        self.preview = compile_step(self._preview)

    # -- Checkpointed state ----------------------------------------------------------------------

    def trackables(self) -> dict:
        return {"embedder": self.embedder, "generator": self.generator,
                "discriminator": self.discriminator,
                "generator_optimizer": self.generator_optimizer,
                "discriminator_optimizer": self.discriminator_optimizer}

    # -- Steps -----------------------------------------------------------------------------------

    def _run(self, replica_fn, batch):
        per_replica = self.strategy.run(replica_fn, args=(batch,))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def _discriminate(self, batch, fake, training):
        """D's (real scores, fake scores, real features, fake features).

        Training D: one call on [real; fake] (one spectral-norm update per step, not two). In G's
        update (training=False) real and fake go through D separately, so that the backward pass
        runs over the fake half only: the real half does not depend on G, and inside one
        batched call its input gradients would be computed and thrown away (half of D's
        backward work in G's update).
        """
        fake = tf.cast(fake, batch["target_frame"].dtype)
        if not training:
            real_scores, real_features = self.discriminator(
                (batch["target_frame"], batch["target_landmark_image"], batch["video_index"]),
                training=False)
            fake_scores, fake_features = self.discriminator(
                (fake, batch["target_landmark_image"], batch["video_index"]), training=False)
            return (tf.stop_gradient(real_scores), fake_scores,
                    [tf.stop_gradient(f) for f in real_features], fake_features)
        n = tf.shape(fake)[0]
        scores, features = self.discriminator(
            (tf.concat([batch["target_frame"], fake], 0),
             tf.concat([batch["target_landmark_image"]] * 2, 0),
             tf.concat([batch["video_index"]] * 2, 0)), training=training)
        real_features = [f[:n] for f in features]
        fake_features = [f[n:] for f in features]
        return scores[:n], scores[n:], real_features, fake_features

    def _update(self, tape, loss, terms: dict, variables, optimizer) -> dict:
        """Applies the gradient of `loss` (recorded on `tape`) to `variables`; returns every term
        averaged over the global batch, for logging."""
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return {k: self._average(v) for k, v in terms.items()}

    def _match(self, embeddings, video_index, train_rows: bool):
        """w_MCH · |ê_i − W_i|₁ per example; the side not being trained is held constant."""
        rows = self.discriminator.video_embeddings(video_index)
        embeddings, rows = ((tf.stop_gradient(embeddings), rows) if train_rows
                            else (embeddings, tf.stop_gradient(rows)))
        return self.config.train.weight_match * losses.embedding_match_loss(
            tf.cast(embeddings, tf.float32), tf.cast(rows, tf.float32))

    def _replica_generator_step(self, batch):
        train = self.config.train
        with tf.GradientTape() as tape:
            embeddings = self.embedder.embed_person(batch["frames"], batch["landmark_images"],
                                                    training=True)
            fake = tf.cast(  # float32 from here on, whatever the compute dtype
                self.generator(generator_inputs(batch, embeddings), training=True), tf.float32)
            _, fake_scores, real_features, fake_features = self._discriminate(
                batch, fake, training=False)
            match = (None if train.feed_forward
                     else self._match(embeddings, batch["video_index"], train_rows=False))
            terms = objectives.generator_terms(train, self.content_networks,
                                               batch["target_frame"], fake, fake_scores,
                                               real_features, fake_features, match)
            loss = self._average(terms["loss/g/total"])
        metrics = self._update(tape, loss, terms, self.generator_variables,
                               self.generator_optimizer)
        return metrics, tf.stop_gradient(fake), tf.stop_gradient(embeddings)

    def _replica_discriminator_step(self, batch, fake, embeddings):
        train = self.config.train
        with tf.GradientTape() as tape:
            real_scores, fake_scores, _, _ = self._discriminate(batch, fake, training=True)
            match = (None if train.feed_forward
                     else self._match(embeddings, batch["video_index"], train_rows=True))
            terms = objectives.discriminator_terms(real_scores, fake_scores, match)
            loss = self._average(terms["loss/d/total"])
        metrics = self._update(tape, loss, terms, self.discriminator_variables,
                               self.discriminator_optimizer)
        metrics["score/real"] = self._average(tf.cast(real_scores, tf.float32))
        metrics["score/fake"] = self._average(tf.cast(fake_scores, tf.float32))
        if not train.feed_forward:  # does W keep up with the embeddings? (docs/design.md §15)
            rows = self.discriminator.video_embeddings(batch["video_index"])
            metrics["embeddings/w_rows_abs"] = self._average(
                tf.reduce_mean(tf.abs(rows), axis=-1))
            metrics["embeddings/e_abs"] = self._average(
                tf.reduce_mean(tf.abs(tf.cast(embeddings, tf.float32)), axis=-1))
        return metrics

    def _replica_train_step(self, batch):
        metrics, fake, embeddings = self._replica_generator_step(batch)
        for _ in range(self.config.train.d_steps):
            d_metrics = self._replica_discriminator_step(batch, fake, embeddings)
        return {**metrics, **d_metrics}

    def _replica_discriminator_only_step(self, batch):
        embeddings = self.embedder.embed_person(batch["frames"], batch["landmark_images"])
        fake = tf.cast(self.generator(generator_inputs(batch, embeddings)), tf.float32)
        return self._replica_discriminator_step(batch, fake, embeddings)

    def _preview(self, batch):
        embeddings = self.embedder.embed_person(batch["frames"], batch["landmark_images"])
        return self.generator(generator_inputs(batch, embeddings))

    def learning_rates(self) -> dict[str, float]:
        # convert_to_numpy: under a distribution strategy the rate is a MirroredVariable, which
        # float() refuses.
        return {f"learning_rate/{name}": float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                for name, optimizer in (("generator", self.generator_optimizer),
                                        ("discriminator", self.discriminator_optimizer))}


# ------------------------------------------------------------------------------------------------
# The loop.

@dataclasses.dataclass(frozen=True)
class MetaTrainOptions:
    """How to run meta-learning (everything that is not the model or the optimisation).

    Attributes:
      data: A preprocessed folder (from `train/preprocess.py`) or a glob of its shard files.
      workdir: Config, checkpoints and TensorBoard logs; a rerun resumes from it.
      steps: Train until this many E+G iterations (0: use `epochs`).
      epochs: Train for this many passes over the kept videos (used when `steps` is 0).
      strategy: "default", "mirrored" or "multi_worker" (see `distribute.make_strategy`).
      devices: Devices of the mirrored strategy (None: all GPUs, or the CPU).
      vgg19_weights, vggface_weights: Weight files of the content-loss networks.
      precision: "float32" or "mixed_bfloat16".
      jit_compile: Compile the steps with XLA.
      checkpoint_every: Save every this many steps (and on SIGINT/SIGTERM and at the end).
      keep_checkpoints: Checkpoints kept on disk.
      log_every: Log and write scalars every this many steps.
      image_every: Write a landmarks | target | generated grid every this many steps (0 = never).
      preview_images: Rows of that grid.
    """

    data: str
    workdir: str
    steps: int = 0
    epochs: float = 0.0
    strategy: str = "default"
    devices: tuple[str, ...] | None = None
    vgg19_weights: str | None = None
    vggface_weights: str | None = None
    precision: str = "float32"
    jit_compile: bool = False
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    image_every: int = 500
    preview_images: int = 4

    def __post_init__(self):
        if (self.steps > 0) == (self.epochs > 0):
            raise loop.TrainingError("Give exactly one of --steps and --epochs (> 0).")
        for name in ("checkpoint_every", "keep_checkpoints", "log_every", "preview_images"):
            if getattr(self, name) < 1:
                raise loop.TrainingError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.strategy not in distribute.STRATEGIES:
            raise loop.TrainingError(
                f"Unknown strategy {self.strategy!r}; valid: {list(distribute.STRATEGIES)}.")


@dataclasses.dataclass
class MetaTrainResult:
    step: int
    interrupted_by: int | None
    checkpoint: str | None
    metrics: dict  # means over the last logging interval


def train(config: Config, options: MetaTrainOptions) -> MetaTrainResult:
    """Runs (or resumes) meta-learning as `options` says; returns where it stopped.

    Raises:
      loop.TrainingError: bad data, workdir or weights, with what to do.
      loop.TrainingDivergedError: a loss became NaN/Inf (nothing saved after the last good
        checkpoint).
      outputs.OutputPathError: the workdir is a file or a folder of something else (checked
        first, before the data is read).
    """
    info, strategy = _start_run(config, options)
    steps_per_epoch = max(1, info["num_videos"] // config.train.batch_size)
    total_steps = options.steps or max(1, math.ceil(options.epochs * steps_per_epoch))
    with distribute.precision_policy(options.precision), strategy.scope():
        content = feature_networks.build_content_networks(
            config.train.content_loss, config.model.resolution, options.vgg19_weights,
            options.vggface_weights)
        learner = MetaLearner(config, info["num_videos"], strategy, content, options.jit_compile)
    state = _RunState(learner, distribute.checkpoint_directory(options.workdir, strategy),
                      options.keep_checkpoints,
                      restore_from=distribute.chief_checkpoint_directory(options.workdir))
    distribute.check_same_step(strategy, state.step)  # before anything is trained or saved
    if state.step >= total_steps:
        log.info("Already at step %d of %d: nothing to do.", state.step, total_steps)
        return MetaTrainResult(state.step, None, state.manager.latest_checkpoint, {})
    log.info("Meta-learning %s: %d videos, batch %d, K=%d, %d replicas, steps %d → %d "
             "(%d steps per epoch); workdir %s.", config.preset, info["num_videos"],
             config.train.batch_size, config.train.k_shots, strategy.num_replicas_in_sync,
             state.step, total_steps, steps_per_epoch, options.workdir)
    return _run_steps(learner, state, total_steps, config, options, strategy)


def _start_run(config: Config, options: MetaTrainOptions):
    """Checks the workdir and the data against the config, writes (or checks) the run files;
    returns (the data's `records.dataset_info`, the strategy)."""
    outputs.workdir_output(options.workdir, "config.json", flag="--workdir",
                           kind="meta-learning work directory", inputs={"--data": options.data})
    info = records.dataset_info(options.data)
    if info["resolution"] != config.model.resolution:
        raise loop.TrainingError(
            f"{options.data} was preprocessed at {info['resolution']}² but the model is "
            f"{config.model.resolution}²; preprocess with --resolution={config.model.resolution} "
            f"or choose a matching preset.")
    strategy = distribute.make_strategy(options.strategy, list(options.devices) if options.devices
                                        else None)
    os.makedirs(options.workdir, exist_ok=True)
    if distribute.is_chief(strategy):
        loop.check_run_file(os.path.join(options.workdir, "config.json"), config.to_dict(),
                            "config")
        loop.check_run_file(os.path.join(options.workdir, "data.json"),
                            {"num_videos": info["num_videos"],
                             "resolution": info["resolution"]}, "dataset")
    if config.train.content_loss == "face_net":
        log.info("content_loss=face_net: pixel L1 + dlib's face network + identity, the loss "
                 "without weight files — not the paper's VGG19 + VGGFace L_CNT.")
    elif config.train.content_loss != "vgg":
        log.warning("content_loss=%s: a smoke-test/benchmark loss, NOT the paper's L_CNT "
                    "(recorded in %s/config.json).", config.train.content_loss, options.workdir)
    return info, strategy


class _RunState:
    """What a checkpoint holds besides the networks and optimizers: the step and where the data
    stream is (epoch, position), so that a resumed run continues the same episodes."""

    def __init__(self, learner: MetaLearner, directory: str, keep: int,
                 restore_from: str | None = None):
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_epoch")
        self.next_position = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_position")
        checkpoint = tf.train.Checkpoint(step=self._step, data_epoch=self.next_epoch,
                                         data_position=self.next_position, **learner.trackables())
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=keep)
        # Saves go to `directory`; a non-chief worker's is a scratch folder, and it resumes from the
        # chief's checkpoints instead (`restore_from`; see `distribute.check_same_step`).
        latest = (tf.train.latest_checkpoint(restore_from) if restore_from
                  else self.manager.latest_checkpoint)
        if latest:
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except AssertionError as e:
                raise loop.TrainingError(
                    f"{latest} does not match this model ({str(e).splitlines()[0][:200]}). It "
                    "was written by another model or by a tfhead from before the paper-form "
                    "spectral normalization (docs/design.md §15); use a new --workdir.") from None
            log.info("Resumed from %s (step %d).", latest, self.step)
            own = self.manager.latest_checkpoint
            if own and own != latest:
                self._own_data_position(own)
        self.restored_step = self.step if latest else None

    def _own_data_position(self, own: str) -> None:
        """A non-chief worker reads its shard subset's stream position from its own checkpoint of
        the same step when it has one: the chief's position counts the chief's stream, whose
        epochs may be longer or shorter."""
        key = "{}/.ATTRIBUTES/VARIABLE_VALUE"
        if int(tf.train.load_variable(own, key.format("step"))) == self.step:
            self.next_epoch.assign(tf.train.load_variable(own, key.format("data_epoch")))
            self.next_position.assign(tf.train.load_variable(own, key.format("data_position")))
        else:
            log.warning("This worker's own checkpoint %s is not at step %d: resuming at the "
                        "chief's position in the data stream (exact only if every worker's shard "
                        "subset holds as many videos).", own, self.step)

    @property
    def step(self) -> int:
        return int(self._step)

    def advance(self, strategy, batch) -> int:
        """Counts a step and records where in the stream its batch ended."""
        self._step.assign_add(1)
        last = strategy.experimental_local_results(batch)[-1]
        self.next_epoch.assign(last["epoch"][-1])
        self.next_position.assign(last["position"][-1] + 1)
        return self.step

    def save(self) -> str:
        return self.manager.save(checkpoint_number=self.step)


def _run_steps(learner: MetaLearner, state: _RunState, total_steps: int, config: Config,
               options: MetaTrainOptions, strategy) -> MetaTrainResult:
    batch_size = config.train.batch_size
    start = (int(state.next_epoch), int(state.next_position))
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: data_lib.episode_dataset(
            options.data, config.train.k_shots, ctx.get_per_replica_batch_size(batch_size),
            config.model.resolution, seed=config.train.seed, start=start, input_context=ctx,
            warp_guidance=config.model.warp_guidance))
    iterator = iter(dataset)
    writer = (tf.summary.create_file_writer(os.path.join(options.workdir, "tensorboard"))
              if distribute.is_chief(strategy) else tf.summary.create_noop_writer())
    steplog = loop.StepLog("meta-train", state.step, total_steps, batch_size, options.log_every,
                           _LOG_KEYS, last_saved=state.restored_step)
    variables = learner.generator_variables + learner.discriminator_variables

    def save(current: int) -> str:
        # The interval's losses and the updated weights must be finite before anything is saved.
        steplog.check(current)
        loop.check_finite_weights(variables, current, steplog.last_saved)
        path = state.save()
        steplog.saved(current)
        return path

    with runtime.Interrupts() as interrupts, writer.as_default():
        while state.step < total_steps:
            batch = next(iterator)
            interval = steplog.record(state.step + 1, learner.train_step(batch))
            current = state.advance(strategy, batch)
            if interval is not None:
                _write_scalars(interval, learner)
            if options.image_every and (current % options.image_every == 0 or current == 1):
                _log_images(current, learner, strategy, batch, options.preview_images)
            if interrupts.requested is not None:
                path = save(current)
                log.warning("Stopped at step %d; saved %s. Run the same command to resume.",
                            current, path)
                writer.flush()
                return MetaTrainResult(current, interrupts.requested, path, steplog.last_means)
            if current % options.checkpoint_every == 0 or current == total_steps:
                save(current)
    writer.flush()
    log.info("Finished at step %d; checkpoint %s.", state.step, state.manager.latest_checkpoint)
    return MetaTrainResult(state.step, None, state.manager.latest_checkpoint, steplog.last_means)


def _write_scalars(interval: loop.Interval, learner: MetaLearner) -> None:
    """TensorBoard scalars of a logging interval: every metric's mean, rates and speed."""
    scalars = {**interval.means, **learner.learning_rates(),
               "speed/steps_per_second": interval.steps_per_second,
               "speed/images_per_second": interval.images_per_second}
    for key, value in scalars.items():
        tf.summary.scalar(key, value, step=interval.step)


def _log_images(step: int, learner: MetaLearner, strategy, batch, count: int) -> None:
    local = strategy.experimental_local_results(batch)[0]
    local = {k: v[:count] for k, v in local.items()}
    generated = learner.preview(local).numpy()
    columns = [local["target_landmark_image"].numpy(), local["target_frame"].numpy(), generated]
    name = "landmarks | target | generated"
    if "target_warp" in local:
        columns.insert(1, local["target_warp"].numpy())
        name = "landmarks | warp | target | generated"
    tf.summary.image(name, loop.image_grid(columns), step=step)


class MetaCheckpointError(errors.TfheadError, ValueError):
    """A meta-learning workdir or checkpoint that cannot be loaded."""


# ------------------------------------------------------------------------------------------------
# Loading a meta-learned model (fine-tuning, evaluation, feed-forward export and animation).

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
        raise MetaCheckpointError(
            f"{checkpoint} does not match its config ({str(e).splitlines()[0][:200]}); was it "
            "written by a tfhead from before the paper-form spectral normalization "
            "(docs/design.md §15)? Meta-learn again with this version.") from None
    return MetaModel(config, embedder, generator, discriminator, checkpoint)
