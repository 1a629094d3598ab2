"""The plugin's settings: one documented place, validated with the bad key and value named."""

from __future__ import annotations

from typing import Any

from litellm_cost_otel.settings import DEFAULT_ATTRIBUTION, ENV_NAMES, Settings, load_settings


def test_defaults_are_the_privacy_preserving_choice() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.capture_content is False
    assert settings.attribution == DEFAULT_ATTRIBUTION
    assert not {"key_hash", "user_id", "end_user_id", "tags"} & settings.attribution
    assert settings.metrics_team_dimension is False


def test_yaml_section_then_environment_on_top() -> None:
    yaml_section = {"attribution": ["team_alias", "end_user_id"], "capture_content": True,
                    "content_max_chars": 100, "request_timeout_s": 60}
    settings = load_settings({"LITELLM_COST_OTEL_CONTENT_MAX_CHARS": "50"}, yaml_section)
    assert settings.attribution == {"team_alias", "end_user_id"}
    assert settings.capture_content is True
    assert settings.content_max_chars == 50  # the environment wins
    assert settings.request_timeout_s == 60.0
    assert load_settings({"LITELLM_COST_OTEL_ATTRIBUTION": "none"}).attribution == frozenset()


def test_the_genai_capture_switch_is_honoured() -> None:
    assert load_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}).capture_content is True
    assert load_settings({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
                          "LITELLM_COST_OTEL_CAPTURE_CONTENT": "false"}).capture_content is False


def test_bad_values_and_unknown_keys_are_named(caplog: Any) -> None:
    settings = load_settings(
        {"LITELLM_COST_OTEL_REQUEST_TIMEOUT": "ten minutes", "LITELLM_COST_OTEL_MAX_INFLIGHT_REQUESTS": "-5",
         "LITELLM_COST_OTEL_USE_GLOBAL_PROVIDER": "maybe", "LITELLM_COST_OTEL_ATTRIBUTION": "team_alias,api_key",
         "LITELLM_COST_OTEL_CAPTUR_CONTENT": "true"},
        {"capture_content": "sometimes", "colour": "blue"})
    assert settings == Settings()
    for text in ("LITELLM_COST_OTEL_REQUEST_TIMEOUT='ten minutes'", "LITELLM_COST_OTEL_MAX_INFLIGHT_REQUESTS='-5'",
                 "LITELLM_COST_OTEL_USE_GLOBAL_PROVIDER='maybe'", "api_key",
                 "callback_settings.litellm_cost_otel.capture_content='sometimes'",
                 "callback_settings.litellm_cost_otel.colour", "LITELLM_COST_OTEL_CAPTUR_CONTENT"):
        assert text in caplog.text
    assert all(record.levelname == "ERROR" for record in caplog.records)
    assert load_settings({}, ["not", "a", "mapping"]) == Settings()
    assert "must be a mapping" in caplog.text


def test_every_scalar_setting_has_an_environment_variable() -> None:
    assert set(ENV_NAMES) == set(Settings.__dataclass_fields__) - {"budgets"}  # a list: YAML only
