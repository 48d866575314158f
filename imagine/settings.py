"""Settings, read from the environment and ``.env`` (pydantic-settings).

Build one :class:`Settings` in the entry point and pass it down; nothing reads settings at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_API_BASE", "DEFAULT_GATEWAY_URL", "Settings", "SettingsError"]

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"
_PLACEHOLDER_TOKENS = {"", "changeme", "your-token-here", "token", "xxx"}


class SettingsError(Exception):
    """A setting is missing or unusable; the message is one line for the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    discord_token: str = Field(default="", description="The bot's token from the Discord developer portal.")
    discord_api_base: str = Field(default=DEFAULT_API_BASE, description="Discord REST base URL (or a REST proxy).")
    discord_gateway_url: str = Field(default=DEFAULT_GATEWAY_URL, description="Discord gateway URL.")
    discord_guild_id: int | None = Field(
        default=None, description="Sync slash commands to this guild only (instant; for development)."
    )
    database_url: str = Field(default="", description="PostgreSQL URL; empty starts an embedded server.")
    redis_url: str = Field(default="", description="Redis URL (Celery broker); empty starts an embedded one.")
    broker_key_prefix: str = Field(
        default="", description="Prefix of every Redis key Celery uses; lets deployments share one Redis."
    )
    storage_url: str = Field(default="", description="Image store: a folder or file:// URL; default DATA_DIR/images.")
    models_file: Path | None = Field(default=None, description="Models file (TOML); default: the shipped one.")
    plans_file: Path | None = Field(default=None, description="Plans file (TOML); default: the shipped one.")
    admin_ids: str = Field(
        default="", description="Comma-separated Discord user ids allowed the admin commands in every server."
    )
    data_dir: Path = Field(default=Path(".data"), description="Where embedded services and images live.")
    worker_queues: str = Field(default="", description="Comma-separated queues this worker consumes; default all.")
    worker_concurrency: int = Field(default=1, ge=1, description="Worker processes (one per GPU).")
    job_timeout_s: int = Field(default=900, ge=10, description="Time limit of one job (its model loads before).")
    model_load_timeout_s: int = Field(
        default=600, ge=10, description="How long a worker process may take to load its models at start."
    )
    worker_stop_grace_s: int = Field(
        default=30, ge=1, description="On SIGTERM, how long a running job may take to finish before it is handed back."
    )
    reaper_interval_s: float = Field(
        default=30.0, gt=0, description="How often the reaper looks for jobs a broker or worker lost."
    )
    heartbeat_s: float = Field(
        default=5.0, gt=0, description="How often a running job's worker says it is alive; 3 missed: it is gone."
    )
    progress_interval_s: float = Field(default=2.0, ge=0, description="Minimum seconds between progress edits.")
    max_attempts: int = Field(default=3, ge=1, description="Attempts before a job fails and is refunded.")
    log_level: str = Field(default="INFO")

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def models_path(self) -> Path:
        if self.models_file is not None:
            return self.models_file.expanduser().resolve()
        return Path(__file__).with_name("models.toml")

    @field_validator("admin_ids")
    @classmethod
    def _admin_ids_are_ids(cls, value: str) -> str:
        for part in value.replace(" ", "").split(","):
            if part and not part.isdigit():
                raise ValueError(f"ADMIN_IDS must be comma-separated Discord user ids; {part!r} is not one")
        return value

    @property
    def admins(self) -> frozenset[int]:
        """The ``ADMIN_IDS`` as numbers."""
        return frozenset(int(part) for part in self.admin_ids.replace(" ", "").split(",") if part)

    @property
    def plans_path(self) -> Path:
        if self.plans_file is not None:
            return self.plans_file.expanduser().resolve()
        return Path(__file__).with_name("plans.toml")

    @property
    def image_store_url(self) -> str:
        return self.storage_url or str(self.data_dir / "images")

    @property
    def embedded(self) -> bool:
        """True when either service must be started in-process (no URL given)."""
        return not self.database_url or not self.redis_url

    def require_token(self) -> str:
        token = self.discord_token.strip()
        if token.lower() in _PLACEHOLDER_TOKENS:
            raise SettingsError(
                "DISCORD_TOKEN is not set: put the bot token from https://discord.com/developers/applications "
                "in the environment or in .env"
            )
        return token
