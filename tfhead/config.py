"""Configuration: frozen dataclasses, named presets, overrides and JSON round-trips.

A `Config` is the whole description of a run: the network architecture (`ModelConfig`) and the
optimisation (`TrainConfig`). Presets are named factories; overrides are dotted keys
(`"model.base_channels"`) so that a typo fails loudly instead of silently becoming a new key.

    cfg = get_preset("small128", {"train.batch_size": 4, "model.generator_res_blocks": 3})
    cfg.to_json()  # written to the work directory before a run starts
    Config.from_json(text) == cfg

This module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, Callable, Mapping

from tfhead import errors

POOLING_MODES = ("sum", "max")
UPSAMPLING_MODES = ("nearest", "bilinear")   # tfhead.models.ops.UPSAMPLING_MODES


def channels_at(size: int, resolution: int, base_channels: int, max_channels: int) -> int:
    """The channel rule of every network: a feature map of spatial size `size` in a network of
    input size `resolution` has `base_channels` doubled per halving, capped at `max_channels`."""
    return min(max_channels, base_channels * max(1, resolution // (2 * size)))
CONTENT_LOSSES = ("vgg", "random_vgg", "face_net", "pixel_l1")


class ConfigError(errors.TfheadError, ValueError):
    """A preset, field or value that does not exist or is not allowed."""


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the embedder E, generator G and discriminator D (docs/design.md §3).

    Channel widths follow one rule everywhere: a feature map of spatial size `s` in a network of
    input size `resolution` has `min(max_channels, base_channels * max(1, resolution // (2 * s)))`
    channels, i.e. `base_channels` at the first down level, doubling per level, capped.

    Attributes:
      resolution: Input and output size (square), a power of two >= 32.
      base_channels: Channels at the first down level (64 in the paper).
      max_channels: Cap on channels (512 in the paper).
      embedding_dim: Size of the person embedding ê and of D's projection vectors (512).
      generator_down_blocks: Residual down blocks (instance norm) encoding the landmark image.
      generator_res_blocks: AdaIN residual blocks at the bottleneck.
      generator_up_blocks: AdaIN residual up blocks; must equal `generator_down_blocks`.
      generator_attention_down: Feature-map sizes after which G's encoder applies self-attention.
      generator_attention_up: Feature-map sizes after which G's decoder applies self-attention.
      embedder_attention: Feature-map sizes after which E and D apply self-attention.
      embedder_min_size: E and D go down to this spatial size (4 in the paper).
      embedder_pooling: Global pooling of E and D: "sum" (default) or "max" (some public ports).
      embedder_final_relu: E applies a ReLU before its global pooling (the paper's E). A
        warp-guided G lets a ReLU'd E die: every feature goes to zero within ~100 meta-learning
        steps and ê is the same for every person (docs/design.md §14). Without the ReLU, ê stays
        alive and person-specific. D keeps its ReLU either way.
      norm_epsilon: Epsilon of instance normalization and AdaIN.
      spectral_power_iterations: Power iterations of spectral normalization per training call.
      warp_guidance: G also takes a source frame warped piecewise-affinely to the target's
        landmarks and blends it into its output through a learned mask (docs/design.md §14).
        Off is the paper's G (`paper256`); on is what the CPU presets and the demo use.
      generator_upsampling: How G's up blocks enlarge: "nearest" (BigGAN's, the paper's) or
        "bilinear". Nearest leaves a 2/4/8-px block pattern in a briefly trained G
        (docs/design.md §3); bilinear does not.
    """

    resolution: int = 256
    base_channels: int = 64
    max_channels: int = 512
    embedding_dim: int = 512
    generator_down_blocks: int = 4
    generator_res_blocks: int = 5
    generator_up_blocks: int = 4
    generator_attention_down: tuple[int, ...] = (32,)
    generator_attention_up: tuple[int, ...] = (64,)
    embedder_attention: tuple[int, ...] = (32,)
    embedder_min_size: int = 4
    embedder_pooling: str = "sum"
    embedder_final_relu: bool = True
    norm_epsilon: float = 1e-5
    spectral_power_iterations: int = 1
    warp_guidance: bool = False
    generator_upsampling: str = "nearest"

    def __post_init__(self):
        if not _is_power_of_two(self.resolution) or self.resolution < 32:
            raise ConfigError(f"model.resolution must be a power of two >= 32, got {self.resolution}.")
        for name in ("base_channels", "max_channels", "embedding_dim", "spectral_power_iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_channels < self.base_channels:
            raise ConfigError(
                f"model.max_channels ({self.max_channels}) must be >= model.base_channels "
                f"({self.base_channels}).")
        if self.generator_down_blocks < 1 or self.generator_res_blocks < 0:
            raise ConfigError("model.generator_down_blocks must be >= 1 and generator_res_blocks >= 0.")
        if self.generator_up_blocks != self.generator_down_blocks:
            raise ConfigError(
                f"model.generator_up_blocks ({self.generator_up_blocks}) must equal "
                f"model.generator_down_blocks ({self.generator_down_blocks}) so that G returns to "
                "full resolution.")
        if self.generator_bottleneck_size < 4:
            raise ConfigError(
                f"{self.generator_down_blocks} generator down blocks take {self.resolution}² below "
                "4²; use fewer blocks.")
        if not _is_power_of_two(self.embedder_min_size) or not (
                4 <= self.embedder_min_size < self.resolution):
            raise ConfigError(
                f"model.embedder_min_size must be a power of two in [4, resolution), got "
                f"{self.embedder_min_size}.")
        down_sizes = [self.resolution >> (i + 1) for i in range(self.generator_down_blocks)]
        up_sizes = [self.generator_bottleneck_size << (i + 1) for i in range(self.generator_up_blocks)]
        embedder_sizes = [self.resolution >> (i + 1) for i in range(self.embedder_blocks)]
        for name, allowed in (("generator_attention_down", down_sizes),
                              ("generator_attention_up", up_sizes),
                              ("embedder_attention", embedder_sizes)):
            for size in getattr(self, name):
                if size not in allowed:
                    raise ConfigError(
                        f"model.{name} contains {size}, which is not a feature-map size of that "
                        f"path; allowed: {allowed}.")
        if self.embedder_pooling not in POOLING_MODES:
            raise ConfigError(
                f"model.embedder_pooling must be one of {POOLING_MODES}, got {self.embedder_pooling!r}.")
        if self.generator_upsampling not in UPSAMPLING_MODES:
            raise ConfigError(f"model.generator_upsampling must be one of {UPSAMPLING_MODES}, "
                              f"got {self.generator_upsampling!r}.")
        if not 0 < self.norm_epsilon < 1:
            raise ConfigError(f"model.norm_epsilon must be in (0, 1), got {self.norm_epsilon}.")

    @property
    def generator_bottleneck_size(self) -> int:
        return self.resolution >> self.generator_down_blocks

    @property
    def embedder_blocks(self) -> int:
        return int(math.log2(self.resolution // self.embedder_min_size))

    def channels_at(self, size: int) -> int:
        """Channels of a feature map of spatial size `size` (see the class docstring)."""
        return channels_at(size, self.resolution, self.base_channels, self.max_channels)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and loss weights (docs/design.md §4–§6).

    Attributes:
      batch_size: Global batch size (episodes per step, summed over replicas).
      k_shots: Frames per episode that feed the embedder (K).
      lr_generator: Adam learning rate of E, G and P (5e-5 in the paper).
      lr_discriminator: Adam learning rate of D (2e-4; two time-scale update rule).
      adam_beta1: Adam β1; the paper is silent, public ports use 0.9 or 0.0.
      adam_beta2: Adam β2.
      d_steps: Discriminator updates per E+G update (public ports: 2).
      weight_vgg19: Weight of the VGG19 part of L_CNT (1e-2; some ports use 1.5e-1).
      weight_vggface: Weight of the VGGFace part of L_CNT (2e-3; some ports use 2.5e-2).
      weight_feature_matching: Weight of L_FM inside L_ADV (10).
      weight_match: Weight of L_MCH (80); ignored when `feed_forward`.
      weight_pixel_l1: Weight of the pixel L1 that replaces L_CNT when `content_loss="pixel_l1"`
        and joins the face network with `content_loss="face_net"`.
      weight_face_net: Weight of dlib's face-network activations in L_CNT (the VGGFace role when
        no VGGFace file is given, and `content_loss="face_net"`).
      weight_identity: Weight of the identity term: the distance between dlib face descriptors
        of the generated and the real frame (only where the face network is used).
      feed_forward: Train the feed-forward variant (no L_MCH).
      content_loss: "vgg" (the real L_CNT from user-supplied weights; dlib's face network takes
        VGGFace's place when its file is not given), "face_net" (pixel L1 + dlib's face network +
        identity: no weight file, what CPU runs use), "random_vgg" (the VGGs with random weights)
        or "pixel_l1"; the last two exist only for smoke tests and benchmarks and are named in
        logs and saved configs.
      finetune_steps: Fine-tuning steps on a new person (0 = feed-forward only).
      finetune_max_yaw: Largest head turn of the augmented fine-tuning pairs, radians
        (`finetune.TrainingPairs`, `motion.motion_track`; 0.3 = 17°).
      seed: Seed of initialisation and data order.
    """

    batch_size: int = 8
    k_shots: int = 8
    lr_generator: float = 5e-5
    lr_discriminator: float = 2e-4
    adam_beta1: float = 0.0
    adam_beta2: float = 0.999
    d_steps: int = 2
    weight_vgg19: float = 1e-2
    weight_vggface: float = 2e-3
    weight_feature_matching: float = 10.0
    weight_match: float = 80.0
    weight_pixel_l1: float = 1.0
    weight_face_net: float = 0.5
    weight_identity: float = 1.0
    feed_forward: bool = False
    content_loss: str = "vgg"
    finetune_steps: int = 300
    finetune_max_yaw: float = 0.3
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "k_shots", "d_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("lr_generator", "lr_discriminator"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be > 0, got {getattr(self, name)}.")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be in [0, 1), got {getattr(self, name)}.")
        for name in ("weight_vgg19", "weight_vggface", "weight_feature_matching", "weight_match",
                     "weight_pixel_l1", "weight_face_net", "weight_identity"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}.")
        if self.content_loss not in CONTENT_LOSSES:
            raise ConfigError(
                f"train.content_loss must be one of {CONTENT_LOSSES}, got {self.content_loss!r}.")
        if self.finetune_steps < 0:
            raise ConfigError(f"train.finetune_steps must be >= 0, got {self.finetune_steps}.")
        if not 0 <= self.finetune_max_yaw <= 1.0:
            raise ConfigError("train.finetune_max_yaw must be in [0, 1] radians, got "
                              f"{self.finetune_max_yaw}.")


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """Architecture of the real-time student generator (`networks.StudentGenerator`).

    Not part of the paper: a per-person U-Net of inverted residual blocks that a person model is
    distilled into (`tfhead.training.distill`). Level i works at R/2^(i+1) with `channels[i]` channels.

    Attributes:
      preset: The student preset it was made from.
      resolution: Input and output size; equals the teacher's (distillation sets it).
      channels: Width per level, from R/2 down to the bottleneck at R/2^len(channels).
      encoder_blocks: Inverted residual blocks per encoder level.
      bottleneck_blocks: Inverted residual blocks at the bottleneck.
      expansion: Hidden-layer multiplier of the inverted residuals.
      head_channels: Width of the two full-resolution convolutions.
      warp_guidance: Takes the source warped to the target as a second input, like its
        warp-guided teacher (distillation sets it from the teacher).
    """

    preset: str = "custom"
    resolution: int = 256
    channels: tuple[int, ...] = (24, 48, 96, 192, 256)
    encoder_blocks: tuple[int, ...] = (1, 1, 2, 2, 1)
    bottleneck_blocks: int = 3
    expansion: int = 4
    head_channels: int = 16
    warp_guidance: bool = False
    generator_upsampling: str = "nearest"

    def __post_init__(self):
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"student.channels must be positive widths, got {self.channels}.")
        if len(self.encoder_blocks) != len(self.channels) or any(
                b < 0 for b in self.encoder_blocks):
            raise ConfigError(
                f"student.encoder_blocks {self.encoder_blocks} needs one count >= 0 per level of "
                f"student.channels {self.channels}.")
        if not _is_power_of_two(self.resolution) or self.resolution >> len(self.channels) < 4:
            raise ConfigError(
                f"student.resolution must be a power of two that {len(self.channels)} levels "
                f"leave at >= 4², got {self.resolution}.")
        if self.bottleneck_blocks < 0:
            raise ConfigError(f"student.bottleneck_blocks must be >= 0, got "
                              f"{self.bottleneck_blocks}.")
        for name in ("expansion", "head_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"student.{name} must be >= 1, got {getattr(self, name)}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StudentConfig":
        return _from_dict(cls, data, prefix="student.")

    def override(self, overrides: Mapping[str, Any]) -> "StudentConfig":
        """A copy with field overrides, e.g. {"resolution": 128, "channels": "16,32,64"}."""
        fields = _fields(StudentConfig)
        values = {}
        for key, value in overrides.items():
            if key not in fields:
                raise ConfigError(f"Unknown student field {key!r}; valid: {sorted(fields)}.")
            values[key] = _coerce(f"student.{key}", value, _field_type(StudentConfig, key))
        return dataclasses.replace(self, **values)

    def generator_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `networks.StudentGenerator`."""
        return {name: getattr(self, name) for name in (
            "resolution", "channels", "encoder_blocks", "bottleneck_blocks", "expansion",
            "head_channels", "warp_guidance")}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run: architecture + optimisation, and the preset it was made from."""

    preset: str = "custom"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Config":
        return _from_dict(cls, data, prefix="")

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"Config is not valid JSON: {e}") from None
        return cls.from_dict(data)

    def override(self, overrides: Mapping[str, Any]) -> "Config":
        """Returns a copy with dotted-key overrides applied, e.g. {"train.batch_size": 4}.

        Values may be given as strings (from command-line flags); they are parsed by the field's type.
        """
        sections: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            if not name:
                if key != "preset":
                    raise ConfigError(
                        f"Override {key!r} must be 'model.<field>' or 'train.<field>'.")
                top[key] = str(value)
                continue
            if section not in ("model", "train"):
                raise ConfigError(
                    f"Unknown config section {section!r} in {key!r}; valid: ['model', 'train'].")
            target = getattr(self, section)
            field = _fields(type(target)).get(name)
            if field is None:
                raise ConfigError(
                    f"Unknown field {key!r}; valid {section} fields: "
                    f"{sorted(_fields(type(target)))}.")
            sections.setdefault(section, {})[name] = _coerce(
                key, value, _field_type(type(target), name))
        replaced = {s: dataclasses.replace(getattr(self, s), **v) for s, v in sections.items()}
        return dataclasses.replace(self, **top, **replaced)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parses ["model.base_channels=32", ...] (e.g. a flag's list) into a dict."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Override {item!r} must look like 'train.batch_size=4'.")
        parsed[key.strip()] = value.strip()
    return parsed


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _field_type(cls, name: str):
    return typing.get_type_hints(cls)[name]


def _coerce(key: str, value: Any, field_type) -> Any:
    """Converts `value` (possibly a string from a flag or a list from JSON) to `field_type`."""
    origin = typing.get_origin(field_type)
    try:
        if origin is tuple:
            (item_type, _) = typing.get_args(field_type)
            if isinstance(value, str):
                value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
            return tuple(item_type(v) for v in value)
        if field_type is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return lowered in ("true", "1")
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if field_type is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if field_type is float:
            return float(value)
        if field_type is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError):
        raise ConfigError(
            f"Value {value!r} for {key!r} is not a valid {getattr(field_type, '__name__', field_type)}."
        ) from None
    raise ConfigError(f"Field {key!r} has an unsupported type {field_type}.")


# Fields that configs written by earlier versions may hold, with the only value they ever had:
# dropped on reading (ModelConfig.upsampling: ×2 upsampling is always depth-to-space, ops.py).
_RETIRED_FIELDS = {"model.upsampling": "depth_to_space"}


def _from_dict(cls, data: Mapping[str, Any], prefix: str):
    if not isinstance(data, Mapping):
        raise ConfigError(f"Expected a mapping for {prefix or 'config'}, got {type(data).__name__}.")
    data = {k: v for k, v in data.items() if _RETIRED_FIELDS.get(prefix + k, object()) != v}
    fields = _fields(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown field(s) {[prefix + u for u in unknown]}; valid: {sorted(fields)}.")
    kwargs = {}
    for name, value in data.items():
        field_type = _field_type(cls, name)
        if dataclasses.is_dataclass(field_type):
            kwargs[name] = _from_dict(field_type, value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(prefix + name, value, field_type)
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Presets.

def _paper256() -> Config:
    """docs/design.md §3 at 256²: 64→512 channels, G 4 down / 5 AdaIN res / 4 up, 512-d ê."""
    return Config(preset="paper256", model=ModelConfig(), train=TrainConfig())


def _small128() -> Config:
    """A model that trains on a CPU: 128², 32→256 channels, attention at 32² only, warp-guided,
    bilinear upsampling in G (no grid texture after a short training), E without its final ReLU
    (with the warp carrying the identity, a ReLU'd E dies: docs/design.md §14)."""
    return Config(
        preset="small128",
        model=ModelConfig(
            resolution=128, base_channels=32, max_channels=256, embedding_dim=256,
            generator_down_blocks=3, generator_res_blocks=3, generator_up_blocks=3,
            generator_attention_down=(32,), generator_attention_up=(32,),
            embedder_attention=(32,), warp_guidance=True, generator_upsampling="bilinear",
            embedder_final_relu=False),
        train=TrainConfig(batch_size=4, k_shots=4),
    )


def _tiny() -> Config:
    """For tests: 64², 8→32 channels, every code path (attention, AdaIN, projection) present."""
    return Config(
        preset="tiny",
        model=ModelConfig(
            resolution=64, base_channels=8, max_channels=32, embedding_dim=32,
            generator_down_blocks=2, generator_res_blocks=2, generator_up_blocks=2,
            generator_attention_down=(16,), generator_attention_up=(32,),
            embedder_attention=(16,)),
        train=TrainConfig(batch_size=2, k_shots=2, d_steps=1, finetune_steps=10),
    )


PRESETS: dict[str, Callable[[], Config]] = {
    "paper256": _paper256,
    "small128": _small128,
    "tiny": _tiny,
}


def get_preset(name: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Returns the named preset with optional dotted-key overrides applied."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; valid presets: {sorted(PRESETS)}.")
    config = PRESETS[name]()
    return config.override(overrides) if overrides else config


def _edge() -> StudentConfig:
    """The real-time student at 256²: 1.58 GMAC, 4.2 M parameters, bottleneck 8² (README,
    "Real time on a CPU" has its latency)."""
    return StudentConfig(preset="edge")


def _tiny_student() -> StudentConfig:
    """For tests: 64², three levels, every code path of the student present."""
    return StudentConfig(preset="tiny", resolution=64, channels=(8, 16, 32),
                         encoder_blocks=(1, 1, 1), bottleneck_blocks=1, expansion=2,
                         head_channels=8)


STUDENT_PRESETS: dict[str, Callable[[], StudentConfig]] = {
    "edge": _edge,
    "tiny": _tiny_student,
}


def get_student_preset(name: str, overrides: Mapping[str, Any] | None = None) -> StudentConfig:
    """Returns the named student preset with optional field overrides applied."""
    if name not in STUDENT_PRESETS:
        raise ConfigError(f"Unknown student preset {name!r}; valid student presets: "
                          f"{sorted(STUDENT_PRESETS)}.")
    config = STUDENT_PRESETS[name]()
    return config.override(overrides) if overrides else config
