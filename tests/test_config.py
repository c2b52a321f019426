import dataclasses
import json

import pytest

from tfhead import config as cfg


def test_paper256_matches_design():
    m = cfg.get_preset("paper256").model
    assert (m.resolution, m.base_channels, m.max_channels, m.embedding_dim) == (256, 64, 512, 512)
    assert (m.generator_down_blocks, m.generator_res_blocks, m.generator_up_blocks) == (4, 5, 4)
    assert m.generator_attention_down == (32,) and m.generator_attention_up == (64,)
    assert m.embedder_attention == (32,) and m.embedder_pooling == "sum" and m.embedder_final_relu
    assert m.generator_upsampling == "nearest" and not m.warp_guidance     # BigGAN's, the paper's
    assert m.generator_bottleneck_size == 16 and m.channels_at(16) == 512 and m.channels_at(128) == 64
    t = cfg.get_preset("paper256").train
    assert (t.lr_generator, t.lr_discriminator) == (5e-5, 2e-4)
    assert (t.weight_vgg19, t.weight_vggface, t.weight_feature_matching, t.weight_match) == (
        1e-2, 2e-3, 10.0, 80.0)


def test_small_presets_sizes():
    assert cfg.get_preset("small128").model.resolution == 128
    # The CPU preset of the demo: warp-guided, bilinear (no grid texture; docs/design.md §3).
    small = cfg.get_preset("small128").model
    assert small.warp_guidance and small.generator_upsampling == "bilinear"
    assert not small.embedder_final_relu  # a warp-guided G lets a ReLU'd E die (design §14)
    assert cfg.get_preset("tiny").model.resolution <= 64


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(cfg.ConfigError) as e:
        cfg.get_preset("paper512")
    assert "paper256" in str(e.value) and "tiny" in str(e.value) and "small128" in str(e.value)


def test_overrides_are_typed_and_frozen():
    c = cfg.get_preset("tiny", {"train.batch_size": "4", "model.generator_attention_up": "32",
                                 "train.feed_forward": "true", "train.lr_generator": 1e-4})
    assert c.train.batch_size == 4 and c.train.feed_forward is True
    assert c.model.generator_attention_up == (32,) and c.train.lr_generator == 1e-4
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.train.batch_size = 3


@pytest.mark.parametrize("key,message", [
    ("train.batch_sise", "batch_size"),      # a typo lists the valid fields
    ("optim.lr", "['model', 'train']"),
    ("batch_size", "model.<field>"),
])
def test_unknown_override_fails_with_valid_names(key, message):
    with pytest.raises(cfg.ConfigError) as e:
        cfg.get_preset("tiny", {key: 1})
    assert message in str(e.value)


@pytest.mark.parametrize("overrides,message", [
    ({"model.resolution": 100}, "power of two"),
    ({"model.generator_up_blocks": 3}, "must equal"),
    ({"model.generator_attention_down": (20,)}, "allowed"),
    ({"model.embedder_pooling": "mean"}, "('sum', 'max')"),
    ({"train.content_loss": "lpips"}, "pixel_l1"),
    ({"train.batch_size": 0}, ">= 1"),
    ({"train.batch_size": "four"}, "not a valid int"),
    ({"train.feed_forward": "maybe"}, "not a valid bool"),
    ({"model.generator_down_blocks": 5, "model.generator_up_blocks": 5}, "below"),
])
def test_validation(overrides, message):
    with pytest.raises(cfg.ConfigError) as e:
        cfg.get_preset("tiny", overrides)
    assert message in str(e.value)


@pytest.mark.parametrize("preset", sorted(cfg.PRESETS))
def test_json_round_trip(preset):
    c = cfg.get_preset(preset, {"train.seed": 7})
    text = c.to_json()
    assert cfg.Config.from_json(text) == c
    assert json.loads(text)["model"]["generator_attention_down"] == list(c.model.generator_attention_down)


def test_a_config_written_before_a_field_existed_reads_with_its_default():
    """Checkpoints keep their config.json: one from before `generator_upsampling` or
    `embedder_final_relu` existed was trained with nearest upsampling and E's ReLU and must load
    as such, whatever the preset says now."""
    import json

    data = json.loads(cfg.get_preset("small128").to_json())
    del data["model"]["generator_upsampling"], data["model"]["embedder_final_relu"]
    old = cfg.Config.from_dict(data).model
    assert old.generator_upsampling == "nearest" and old.embedder_final_relu  # as trained then


def test_from_json_rejects_unknown_fields():
    data = cfg.get_preset("tiny").to_dict()
    data["model"]["channels"] = 3
    with pytest.raises(cfg.ConfigError) as e:
        cfg.Config.from_dict(data)
    assert "model.channels" in str(e.value) and "base_channels" in str(e.value)
    with pytest.raises(cfg.ConfigError):
        cfg.Config.from_json("{not json")


def test_parse_overrides():
    assert cfg.parse_overrides(["train.batch_size=4", " model.base_channels = 16"]) == {
        "train.batch_size": "4", "model.base_channels": "16"}
    with pytest.raises(cfg.ConfigError):
        cfg.parse_overrides(["train.batch_size"])
