"""Settings: layered, validated, errors name the key."""

import json

import pytest

from copilot_server.config import Settings, SettingsError, load_settings


def test_camel_case_and_nested_overrides_merge_over_defaults():
    settings = Settings().merged({"completion": {"maxTokens": 32}, "model": {"nGpuLayers": 0}})
    assert settings.completion.max_tokens == 32
    assert settings.model.n_gpu_layers == 0
    assert settings.context.prefix_tokens == Settings().context.prefix_tokens


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"completion": {"max_tokens": 0}}, "completion.max_tokens"),
        ({"model": {"n_gpu_layers": "lots"}}, "model.n_gpu_layers"),
        ({"log_level": "loud"}, "log_level"),
        ({"completion": {"speed": 3}}, "completion.speed"),
    ],
)
def test_bad_value_names_the_key(overrides, key):
    with pytest.raises(SettingsError) as info:
        Settings().merged(overrides)
    assert key in str(info.value)


def test_config_file_then_cli_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("COPILOT_SERVER_GPU_LAYERS", raising=False)
    monkeypatch.delenv("COPILOT_SERVER_THREADS", raising=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"completion": {"max_tokens": 20, "max_lines": 3}}))
    settings = load_settings(config, {"completion": {"max_tokens": 40}})
    assert settings.completion.max_tokens == 40
    assert settings.completion.max_lines == 3


def test_unreadable_config_file_is_a_clear_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(config)
