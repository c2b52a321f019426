"""The three networks of paper §3.2 (docs/design.md §3): embedder E, generator G, discriminator D.

They only compose blocks from `tfhead.models.blocks`; `build_networks(config)` maps a `ModelConfig` to
their keyword arguments. All tensors are NHWC; images and landmark images are in [-1, 1].

Shapes, for a model of resolution R and embedding size E:
  Embedder       (frames [B, R, R, 3], landmarks [B, R, R, 3])           → ê [B, E]
  Generator      (landmarks [B, R, R, 3], ê [B, E])                      → frame [B, R, R, 3]
                 render(landmarks, ψ [B, psi_dim])                        → frame
  Discriminator  (frames, landmarks, video_index [B] int)                 → (score [B], features)
  PersonDiscriminator (frames, landmarks)                                 → (score [B], features)
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from tfhead.config import ModelConfig, channels_at
from tfhead.models import blocks, layers
from tfhead.models import ops as tfops

_PACKAGE = layers.SERIALIZATION_PACKAGE


def track_for_checkpoints(owner, stages) -> None:
    """Makes every layer of `stages` (a list of layers or of (layer, layer-or-None) tuples) also an
    attribute named after the layer. Keras 3 lists are invisible to `tf.train.Checkpoint`, which
    would otherwise save only the layers held directly (tested in test_networks)."""
    for stage in stages:
        for layer in (stage if isinstance(stage, tuple) else (stage,)):
            if layer is not None:
                setattr(owner, layer.name, layer)


class BuildOnZeros:
    """Mixin: builds every sublayer by running `call` once on zeros of the network's input shape.

    Keras calls `build(input_shape)` on first use and when a `.keras` file is loaded
    (`build_from_config`); one forward pass creates all weights so that loading can restore them.
    """

    def build(self, input_shape=None):
        if self.built:
            return
        self.call(self._dummy_inputs())
        self.built = True

    def _dummy_inputs(self):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualEncoder(keras.layers.Layer):
    """The down path shared by E and D: residual down blocks to `min_size`, self-attention.

    Args:
      resolution: Input size R.
      base_channels, max_channels: Channel rule of `ModelConfig.channels_at`.
      out_channels: Channels of the last block (the embedding size).
      min_size: Spatial size after the last down block.
      attention_sizes: Feature-map sizes after which self-attention runs.
      extra_blocks: Residual blocks without resampling at `min_size` (D has one).
      power_iterations: Spectral normalization power iterations.

    Call returns (x [B, min_size, min_size, out_channels], features): the output of every residual
    block, in order (used by feature matching).
    """

    def __init__(self, resolution: int, base_channels: int, max_channels: int, out_channels: int,
                 min_size: int = 4, attention_sizes: Sequence[int] = (32,), extra_blocks: int = 0,
                 power_iterations: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.base_channels = base_channels
        self.max_channels = max_channels
        self.out_channels = out_channels
        self.min_size = min_size
        self.attention_sizes = tuple(attention_sizes)
        self.extra_blocks = extra_blocks
        self.power_iterations = power_iterations

        self.stages = []  # (block, attention or None)
        size = resolution
        index = 0
        while size > min_size:
            size //= 2
            last = size == min_size
            filters = out_channels if last else channels_at(size, resolution, base_channels,
                                                            max_channels)
            block = blocks.ResidualBlock(filters, resample="down", norm="none",
                                         preactivation=index > 0,
                                         power_iterations=power_iterations, name=f"down{index}")
            attention = (blocks.SelfAttention(power_iterations, name=f"attention{size}")
                         if size in self.attention_sizes else None)
            self.stages.append((block, attention))
            index += 1
        for extra in range(extra_blocks):
            self.stages.append((blocks.ResidualBlock(out_channels, resample="none", norm="none",
                                                     power_iterations=power_iterations,
                                                     name=f"extra{extra}"), None))
        track_for_checkpoints(self, self.stages)

    def call(self, x, training=False):
        features = []
        for block, attention in self.stages:
            x = block(x, training=training)
            features.append(x)
            if attention is not None:
                x = attention(x, training=training)
        return x, features

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "base_channels": self.base_channels, "max_channels": self.max_channels,
                "out_channels": self.out_channels, "min_size": self.min_size,
                "attention_sizes": list(self.attention_sizes), "extra_blocks": self.extra_blocks,
                "power_iterations": self.power_iterations}


class _PairEncoderNetwork(BuildOnZeros, keras.Model):
    """What E and D share: the residual encoder on the 6-channel (frame, landmark image) input,
    then ReLU and global pooling. `_EXTRA_BLOCKS` is 0 for E and 1 for D (its extra 4² block)."""

    _EXTRA_BLOCKS = 0

    def __init__(self, resolution: int = 256, base_channels: int = 64, max_channels: int = 512,
                 embedding_dim: int = 512, min_size: int = 4, attention_sizes: Sequence[int] = (32,),
                 pooling: str = "sum", power_iterations: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.base_channels = base_channels
        self.max_channels = max_channels
        self.embedding_dim = embedding_dim
        self.min_size = min_size
        self.attention_sizes = tuple(attention_sizes)
        self.pooling = pooling
        self.power_iterations = power_iterations
        self.encoder = ResidualEncoder(resolution, base_channels, max_channels, embedding_dim,
                                       min_size, attention_sizes, extra_blocks=self._EXTRA_BLOCKS,
                                       power_iterations=power_iterations, name="encoder")

    def body(self, frames, landmarks, training=False, final_relu=True):
        """Pooled features `[batch, embedding_dim]` and the list of every block's output."""
        x, features = self.encoder(ops.concatenate([frames, landmarks], axis=-1),
                                   training=training)
        if final_relu:
            x = ops.relu(x)
        return tfops.global_pool(x, self.pooling), features

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "base_channels": self.base_channels, "max_channels": self.max_channels,
                "embedding_dim": self.embedding_dim, "min_size": self.min_size,
                "attention_sizes": list(self.attention_sizes), "pooling": self.pooling,
                "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Embedder(_PairEncoderNetwork):
    """E(x, y) → ê: the embedder of paper §3.2.

    The frame and its landmark image are concatenated on channels (6 channels), encoded by residual
    down blocks without normalization to `min_size`², then ReLU (unless `final_relu=False`,
    which a warp-guided G needs to keep E alive: `ModelConfig.embedder_final_relu`) and global
    pooling.

    Call arguments:
      inputs: (frames, landmarks), each `[batch, R, R, 3]` in [-1, 1].
    Returns:
      `[batch, embedding_dim]` per-frame embeddings. Use `embed_person` for the mean over K frames.
    """

    def __init__(self, final_relu: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.final_relu = bool(final_relu)

    def _dummy_inputs(self):
        image = ops.zeros((1, self.resolution, self.resolution, 3))
        return (image, image)

    def call(self, inputs, training=False):
        frames, landmarks = inputs
        return self.body(frames, landmarks, training=training, final_relu=self.final_relu)[0]

    def get_config(self):
        return {**super().get_config(), "final_relu": self.final_relu}

    def embed_person(self, frames, landmarks, training=False):
        """Mean embedding over K frames: `[batch, K, R, R, 3]` each → `[batch, embedding_dim]`."""
        k = frames.shape[1]
        flat_shape = (-1, self.resolution, self.resolution, 3)
        per_frame = self((ops.reshape(frames, flat_shape), ops.reshape(landmarks, flat_shape)),
                         training=training)
        return ops.mean(ops.reshape(per_frame, (-1, k, self.embedding_dim)), axis=1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Generator(keras.Model):
    """G(y, ê) → x̂: the generator of paper §3.2 with the AdaIN projection P.

    Encoder: residual down blocks with instance normalization (`down_blocks`), self-attention at
    `attention_down` sizes. Bottleneck: `res_blocks` AdaIN residual blocks. Decoder: `up_blocks`
    AdaIN residual up blocks, self-attention at `attention_up` sizes, then AdaIN → ReLU → conv3×3 →
    tanh.

    All AdaIN parameters form one vector ψ = P ê (`psi_dim` values). Its layout is `adain_channels`:
    for each AdaIN layer in network order, γ (C values) then β (C values). `render(landmarks, ψ)`
    runs G from given ψ: fine-tuning makes ψ' a trainable variable, export folds it in as a constant.
    With `with_projection=False` there is no P (the generator of a person model).

    With `warp_guidance` (docs/design.md §14) G also takes the *warp*: a source frame of the
    person warped piecewise-affinely to the target landmarks (`tfhead.face.motion.PhotoWarper`).
    It is concatenated to the landmark image at the input (6 channels), and the output
    convolution gives a fourth channel, a blend mask m = sigmoid(·): x̂ = m · warp + (1 − m) ·
    tanh(rgb). G then learns the residual a warp cannot give (mouth interior, closed eyelids,
    occlusions) and copies the sharp photo where the warp is right. Without it (the default and
    `paper256`) G is the paper's.

    Call arguments:
      inputs: (landmarks `[batch, R, R, 3]`, embedding `[batch, embedding_dim]`), and with
        `warp_guidance` a third element, the warp `[batch, R, R, 3]` in [-1, 1].
    Returns:
      `[batch, R, R, 3]` frames in [-1, 1].
    """

    def __init__(self, resolution: int = 256, base_channels: int = 64, max_channels: int = 512,
                 embedding_dim: int = 512, down_blocks: int = 4, res_blocks: int = 5,
                 up_blocks: int = 4, attention_down: Sequence[int] = (32,),
                 attention_up: Sequence[int] = (64,), epsilon: float = 1e-5,
                 power_iterations: int = 1, with_projection: bool = True,
                 warp_guidance: bool = False, upsampling: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if up_blocks != down_blocks:
            raise ValueError(f"up_blocks ({up_blocks}) must equal down_blocks ({down_blocks}).")
        self.resolution = resolution
        self.base_channels = base_channels
        self.max_channels = max_channels
        self.embedding_dim = embedding_dim
        self.down_blocks = down_blocks
        self.res_blocks = res_blocks
        self.up_blocks = up_blocks
        self.attention_down = tuple(attention_down)
        self.attention_up = tuple(attention_up)
        self.epsilon = epsilon
        self.power_iterations = power_iterations
        self.with_projection = with_projection
        self.warp_guidance = warp_guidance
        self.upsampling = upsampling

        def channels(size):
            return channels_at(size, resolution, base_channels, max_channels)

        self.encoder_stages = []
        size = resolution
        for i in range(down_blocks):
            size //= 2
            block = blocks.ResidualBlock(channels(size), resample="down", norm="instance",
                                         preactivation=i > 0, epsilon=epsilon,
                                         power_iterations=power_iterations, name=f"down{i}")
            attention = (blocks.SelfAttention(power_iterations, name=f"attention_down{size}")
                         if size in self.attention_down else None)
            self.encoder_stages.append((block, attention))

        adain_channels = []
        width = channels(size)
        self.res_stages = []
        for i in range(res_blocks):
            self.res_stages.append(blocks.ResidualBlock(
                width, resample="none", norm="adain", epsilon=epsilon,
                power_iterations=power_iterations, name=f"res{i}"))
            adain_channels += [width, width]

        self.decoder_stages = []
        for i in range(up_blocks):
            size *= 2
            filters = channels(size)
            block = blocks.ResidualBlock(filters, resample="up", norm="adain", epsilon=epsilon,
                                         power_iterations=power_iterations,
                                         upsampling=upsampling, name=f"up{i}")
            attention = (blocks.SelfAttention(power_iterations, name=f"attention_up{size}")
                         if size in self.attention_up else None)
            self.decoder_stages.append((block, attention))
            adain_channels += [width, filters]
            width = filters
        track_for_checkpoints(self, self.encoder_stages + self.res_stages + self.decoder_stages)
        adain_channels.append(width)  # the final AdaIN before the output convolution
        self.adain_channels = tuple(adain_channels)
        self.psi_dim = 2 * sum(adain_channels)

        self.projection = (layers.sn_dense(
            self.psi_dim, power_iterations,
            bias_initializer=layers.AdaINBiasInitializer(adain_channels), name="projection")
            if with_projection else None)
        # With warp guidance a fourth output channel: the logit of the warp's blend mask.
        self.to_rgb = layers.sn_conv2d(4 if warp_guidance else 3, 3, power_iterations,
                                       name="to_rgb")

    def build(self, input_shape=None):
        if self.built:
            return
        landmarks = ops.zeros((1, self.resolution, self.resolution, 3))
        warp = landmarks if self.warp_guidance else None
        if self.with_projection:
            self.call((landmarks, ops.zeros((1, self.embedding_dim)))
                      + ((warp,) if self.warp_guidance else ()))
        else:
            self.render(landmarks, ops.zeros((1, self.psi_dim)), warp)
        self.built = True

    def project(self, embedding, training=False):
        """ψ̂ = P ê: `[batch, embedding_dim]` → `[batch, psi_dim]`."""
        if self.projection is None:
            raise ValueError("This generator has no projection P (a person model's generator: "
                             "its ψ' is given to `render`).")
        return self.projection(embedding, training=training)

    def split_psi(self, psi):
        """Splits ψ `[batch, psi_dim]` (or `[psi_dim]`) into [(γ, β), ...] per AdaIN layer."""
        pieces, offset = [], 0
        for channels in self.adain_channels:
            gamma = psi[..., offset:offset + channels]
            beta = psi[..., offset + channels:offset + 2 * channels]
            pieces.append((gamma, beta))
            offset += 2 * channels
        return pieces

    def render(self, landmarks, psi, warp=None, training=False):
        """G from given AdaIN parameters: landmarks `[batch, R, R, 3]`, ψ `[batch or 1, psi_dim]`,
        and with `warp_guidance` the warp `[batch, R, R, 3]` (required then, refused otherwise)."""
        if (warp is not None) != self.warp_guidance:
            raise ValueError("A warp-guided generator needs the warp input, and only it takes one."
                             if self.warp_guidance else "This generator takes no warp input "
                             "(it was built without warp guidance).")
        params = self.split_psi(psi)
        x = landmarks if warp is None else ops.concatenate(
            [landmarks, ops.cast(warp, landmarks.dtype)], axis=-1)
        for block, attention in self.encoder_stages:
            x = block(x, training=training)
            if attention is not None:
                x = attention(x, training=training)
        layer = 0
        for block in self.res_stages:
            x = block(x, adain_params=params[layer] + params[layer + 1], training=training)
            layer += 2
        for block, attention in self.decoder_stages:
            x = block(x, adain_params=params[layer] + params[layer + 1], training=training)
            layer += 2
            if attention is not None:
                x = attention(x, training=training)
        gamma, beta = params[layer]
        x = ops.relu(tfops.adain(x, gamma, beta, self.epsilon))
        x = self.to_rgb(x, training=training)
        if warp is None:
            return ops.tanh(x)
        mask = ops.sigmoid(x[..., 3:])
        return mask * ops.cast(warp, x.dtype) + (1.0 - mask) * ops.tanh(x[..., :3])

    def call(self, inputs, training=False):
        landmarks, embedding, *warp = inputs
        return self.render(landmarks, self.project(embedding, training=training),
                           warp[0] if warp else None, training=training)

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "base_channels": self.base_channels, "max_channels": self.max_channels,
                "embedding_dim": self.embedding_dim, "down_blocks": self.down_blocks,
                "res_blocks": self.res_blocks, "up_blocks": self.up_blocks,
                "attention_down": list(self.attention_down),
                "attention_up": list(self.attention_up), "epsilon": self.epsilon,
                "power_iterations": self.power_iterations,
                "with_projection": self.with_projection, "warp_guidance": self.warp_guidance,
                "upsampling": self.upsampling}


class _DiscriminatorBase(_PairEncoderNetwork):
    """The body shared by the meta-learning and the person discriminator: V(x, y), features, b."""

    _EXTRA_BLOCKS = 1

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")

    @property
    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """(height, width, channels) of each feature returned for feature matching."""
        return [tuple(block.compute_output_shape((None, s, s, None))[1:])
                for block, s in zip((b for b, _ in self.encoder.stages), self._block_input_sizes())]

    def _block_input_sizes(self):
        sizes, size = [], self.resolution
        for block, _ in self.encoder.stages:
            sizes.append(size)
            if block.resample == "down":
                size //= 2
        return sizes


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Discriminator(_DiscriminatorBase):
    """D(x, y, i): the projection discriminator of paper §3.2 used in meta-learning.

    r = Vᵀ(W_i + w0) + b, where V = V(x, y) is the pooled output of the residual encoder (E's down
    path on the 6-channel input plus one extra block at `min_size`²), W is an embedding table with
    one row per training video (`num_videos` × `embedding_dim`; looked up, so its gradients stay
    sparse), and w0, b are shared.

    Call arguments:
      inputs: (frames, landmarks, video_index), images `[batch, R, R, 3]`, indices `[batch]` int.
    Returns:
      (score `[batch]`, features): features is the list of every residual block's output
      (`len(stages)` = log2(R / min_size) + 1 tensors, shapes in `feature_shapes`).
    """

    def __init__(self, num_videos: int = 1, **kwargs):
        super().__init__(**kwargs)
        if num_videos < 1:
            raise ValueError(f"num_videos must be >= 1, got {num_videos}.")
        self.num_videos = num_videos
        # float32 whatever the dtype policy: under mixed_bfloat16 a bfloat16 Embedding would cast
        # the whole [num_videos, dim] table on every lookup; this one gathers float32 rows and
        # casts only those (docs/design.md §15).
        self.video_embeddings = keras.layers.Embedding(
            num_videos, self.embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="video_embeddings", dtype="float32")
        self.w0 = self.add_weight(shape=(self.embedding_dim,), initializer="zeros", name="w0")

    def _dummy_inputs(self):
        image = ops.zeros((1, self.resolution, self.resolution, 3))
        return (image, image, ops.zeros((1,), dtype="int32"))

    def call(self, inputs, training=False):
        frames, landmarks, video_index = inputs
        v, features = self.body(frames, landmarks, training=training)
        w = ops.cast(self.video_embeddings(video_index), v.dtype) + ops.cast(self.w0, v.dtype)
        return projection_score(v, w, self.bias), features

    def get_config(self):
        return {**super().get_config(), "num_videos": self.num_videos}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PersonDiscriminator(_DiscriminatorBase):
    """D for fine-tuning (paper §3.3): W is replaced by one vector w' = w0 + ê_NEW.

    Call arguments:
      inputs: (frames, landmarks), each `[batch, R, R, 3]`.
    Returns:
      (score `[batch]`, features) as `Discriminator`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.person_vector = self.add_weight(shape=(self.embedding_dim,), initializer="zeros",
                                             name="person_vector")

    def _dummy_inputs(self):
        image = ops.zeros((1, self.resolution, self.resolution, 3))
        return (image, image)

    @classmethod
    def from_discriminator(cls, discriminator: Discriminator, embedding) -> "PersonDiscriminator":
        """Copies D's body and b and sets w' = w0 + ê_NEW (`embedding` `[embedding_dim]`)."""
        config = discriminator.get_config()
        config.pop("num_videos")
        for key in ("name", "trainable", "dtype"):
            config.pop(key, None)
        person = cls(**config, name="person_discriminator")
        person.build()
        person.load_discriminator(discriminator, embedding)
        return person

    def load_discriminator(self, discriminator: Discriminator, embedding) -> None:
        """In place (a traced step that holds these variables stays valid): D's body and b from
        the meta-learned D, and w' = w0 + ê_NEW."""
        self.encoder.set_weights(discriminator.encoder.get_weights())
        self.bias.assign(discriminator.bias)
        self.person_vector.assign(ops.reshape(embedding, (-1,)) + discriminator.w0)

    def call(self, inputs, training=False):
        frames, landmarks = inputs
        v, features = self.body(frames, landmarks, training=training)
        return projection_score(v, self.person_vector, self.bias), features



def projection_score(v, w, bias):
    """r = Σ_c v_c · w_c + b per sample: v `[batch, E]`, w `[batch, E]` or `[E]`, b scalar.

    Computed in float32 whatever the compute dtype (the score feeds the losses directly)."""
    v, w = ops.cast(v, "float32"), ops.cast(w, "float32")
    return ops.sum(v * w, axis=-1) + ops.cast(bias, "float32")


def _shared_kwargs(config: ModelConfig) -> dict:
    return dict(resolution=config.resolution, base_channels=config.base_channels,
                max_channels=config.max_channels, embedding_dim=config.embedding_dim,
                power_iterations=config.spectral_power_iterations)


def generator_kwargs(config: ModelConfig) -> dict:
    """`Generator` keyword arguments for a `ModelConfig` (also used to rebuild person models)."""
    return dict(_shared_kwargs(config), down_blocks=config.generator_down_blocks,
                res_blocks=config.generator_res_blocks, up_blocks=config.generator_up_blocks,
                attention_down=config.generator_attention_down,
                attention_up=config.generator_attention_up, epsilon=config.norm_epsilon,
                warp_guidance=config.warp_guidance, upsampling=config.generator_upsampling)


def build_networks(config: ModelConfig, num_videos: int = 1):
    """Builds (Embedder, Generator, Discriminator) for a `ModelConfig`, weights created."""
    shared = _shared_kwargs(config)
    embedder = Embedder(min_size=config.embedder_min_size, attention_sizes=config.embedder_attention,
                        pooling=config.embedder_pooling, final_relu=config.embedder_final_relu,
                        name="embedder", **shared)
    generator = Generator(name="generator", **generator_kwargs(config))
    discriminator = Discriminator(num_videos=num_videos, min_size=config.embedder_min_size,
                                  attention_sizes=config.embedder_attention,
                                  pooling=config.embedder_pooling, name="discriminator", **shared)
    for network in (embedder, generator, discriminator):
        network.build()
    return embedder, generator, discriminator
