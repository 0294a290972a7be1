"""Training configs: the shipped ones load, and a bad key or value stops a run before any work, naming key and file."""
import pytest
from sportbench.config import TrainConfig, config_digest, load_config, parse_config
from sportbench.core import BadInputError, bundled_data

CONFIGS = bundled_data().parent / "configs"


@pytest.mark.parametrize("name", ["tiny_cpu.yaml", "full_gpu.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / name)
    assert isinstance(cfg, TrainConfig) and cfg.model.resolution % 32 == 0
    assert len(cfg.phases) == 2 and cfg.phases[0].freeze_encoder and not cfg.phases[1].freeze_encoder
    assert cfg.phases[1].lr_scale == pytest.approx(0.1)


def test_tiny_config_is_tiny():
    cfg = load_config(CONFIGS / "tiny_cpu.yaml")
    assert cfg.model.size == "nano" and cfg.model.resolution <= 160 and cfg.model.weights is None
    assert cfg.data.max_images["train"] <= 8 and sum(p.epochs for p in cfg.phases) <= 2


@pytest.mark.parametrize("yaml_text, expected", [
    ("training:\n  epocs: 3\n", "unknown key 'training.epocs'"),
    ("trainng:\n  lr: 1.0e-4\n", "unknown key 'trainng' (did you mean 'training'?)"),
    ("model:\n  resolution: 100\n", "model.resolution"),
    ("training:\n  batch_size: two\n", "training.batch_size"),
    ("augment:\n  mosaic: 1.5\n", "augment.mosaic"),
    ("phases:\n  - {name: a, epochs: 1, freeze: true}\n", "unknown key 'phases.0.freeze'"),
    ("sampler:\n  class_weights: {bal: 3.0}\n", "'bal' is not in model.classes"),
    ("- just\n- a list\n", "expected a mapping"),
    ("model: [unclosed\n", "not YAML"),
])
def test_bad_config_names_key_and_file(tmp_path, yaml_text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(BadInputError) as err:
        load_config(path)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(BadInputError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_validated_too():
    with pytest.raises(BadInputError, match="unknown key 'training.lrr'"):
        parse_config({}, "x.yaml", overrides={"training.lrr": 1e-3})
    assert parse_config({}, "x.yaml", overrides={"training.lr": "3e-4"}).training.lr == pytest.approx(3e-4)


def test_digest_follows_content_not_layout():
    a = parse_config({"model": {"resolution": 128}})
    assert config_digest(a) == config_digest(parse_config({"model": {"resolution": 128, "size": "nano"}}))
    assert config_digest(a) != config_digest(parse_config({"model": {"resolution": 160}}))
