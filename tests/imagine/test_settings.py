"""Settings come from the environment and .env; placeholders are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagine.settings import DEFAULT_API_BASE, Settings, SettingsError


def test_defaults_point_at_discord_and_the_shipped_models_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISCORD_API_BASE", "DISCORD_GATEWAY_URL", "MODELS_FILE", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.discord_api_base == DEFAULT_API_BASE
    assert settings.models_path.name == "models.toml" and settings.models_path.exists()
    assert settings.embedded


def test_environment_and_dotenv_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-dotenv\nDATA_DIR=relative/data\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.require_token() == "from-dotenv"
    assert settings.data_dir == tmp_path / "relative" / "data"
    assert settings.image_store_url == str(tmp_path / "relative" / "data" / "images")
    assert settings.redis_url == "redis://example:6379/0"


@pytest.mark.parametrize("token", ["", "  ", "changeme", "your-token-here"])
def test_a_missing_or_placeholder_token_is_refused(token: str) -> None:
    with pytest.raises(SettingsError, match="DISCORD_TOKEN is not set"):
        Settings(_env_file=None, discord_token=token).require_token()  # type: ignore[call-arg]


def test_worker_devices_are_read_and_bad_ones_refused() -> None:
    settings = Settings(_env_file=None, worker_devices="0, 1,cpu")  # type: ignore[call-arg]
    assert settings.worker_device_list == ("cuda:0", "cuda:1", "cpu")
    assert Settings(_env_file=None).worker_device_list == ()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="WORKER_DEVICES must be comma-separated devices"):
        Settings(_env_file=None, worker_devices="gpu0")  # type: ignore[call-arg]


@pytest.mark.parametrize(("name", "value"), [("discord_shards", "two"), ("log_format", "xml")])
def test_bad_shards_and_log_format_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name.upper()):
        Settings(_env_file=None, **{name: value})  # type: ignore[arg-type, call-arg]
