"""Settings: documented, environment-driven, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from taskcraft_core.settings import ENV_FIELDS, Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_has_a_description() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []


def test_every_environment_variable_is_in_the_readme() -> None:
    assert [name for name in ENV_FIELDS if name not in README] == []


def test_api_key_never_shows_in_repr_or_dump() -> None:
    settings = Settings.from_env({"OPENAI_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in settings.model_dump_json()
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-very-secret"


def test_engine_is_offline_without_an_endpoint_and_openai_with_one() -> None:
    assert Settings.from_env({}).active_engine == "offline"
    assert Settings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}).active_engine == "openai"
    assert Settings.from_env({"OPENAI_API_KEY": "k", "TASKCRAFT_ENGINE": "offline"}).active_engine == "offline"


def test_environment_and_overrides_are_applied_in_order(tmp_path: Path) -> None:
    env = {"TASKCRAFT_HOME": str(tmp_path), "TASKCRAFT_MODEL": "m1", "TASKCRAFT_CONCURRENCY": "3"}
    settings = Settings.from_env(env, overrides={"model": "m2", "judge_model": ""})
    assert (settings.home, settings.model, settings.concurrency) == (tmp_path, "m2", 3)
    assert settings.model_for("judge") == "m2"
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'taskcraft.sqlite').resolve()}"
    assert Settings.from_env({"TASKCRAFT_DATABASE_URL": "postgresql+psycopg://x@h/db"}).resolved_database_url == (
        "postgresql+psycopg://x@h/db"
    )


def test_near_duplicate_settings_come_from_the_environment_with_unchanged_defaults() -> None:
    defaults = Settings.from_env({})
    assert (defaults.duplicate_threshold, defaults.duplicate_action) == (0.85, "flag")
    assert (defaults.near_exact_ratio, defaults.answer_match_ratio, defaults.name_match_ratio) == (0.90, 90.0, 85.0)
    chosen = Settings.from_env({"TASKCRAFT_DUPLICATE_ACTION": "skip", "TASKCRAFT_DUPLICATE_THRESHOLD": "0.8"})
    assert (chosen.duplicate_action, chosen.duplicate_threshold) == ("skip", 0.8)
    with pytest.raises(ValidationError):
        Settings.from_env({"TASKCRAFT_DUPLICATE_ACTION": "delete"})
    with pytest.raises(ValidationError):
        Settings(answer_match_ratio=101)


def test_adjudicators_come_from_the_environment_as_a_comma_list() -> None:
    settings = Settings.from_env({"TASKCRAFT_ADJUDICATORS": " ana@example.org, ben ,,",
                                  "TASKCRAFT_REVIEWS_PER_TASK": "2"})
    assert (settings.adjudicators, settings.reviews_per_task) == (["ana@example.org", "ben"], 2)
    assert Settings(adjudicators=["cy"]).adjudicators == ["cy"]
