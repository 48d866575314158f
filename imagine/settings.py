"""Settings, read from the environment and ``.env`` (pydantic-settings).

Build one :class:`Settings` in the entry point and pass it down; nothing reads settings at import time.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_API_BASE", "DEFAULT_GATEWAY_URL", "Settings", "SettingsError"]

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"
_PLACEHOLDER_TOKENS = {"", "changeme", "your-token-here", "token", "xxx"}
#: A torch device a worker process may be given: ``cuda:1``, ``cpu`` (``cpu:N`` stands in for GPUs in tests).
_DEVICE = re.compile(r"(cpu|cuda|xpu|mps)(:\d+)?")


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
    storage_url: str = Field(
        default="", description="Image store: a folder, file:// or s3:// URL; default DATA_DIR/images."
    )
    models_file: Path | None = Field(default=None, description="Models file (TOML); default: the shipped one.")
    plans_file: Path | None = Field(default=None, description="Plans file (TOML); default: the shipped one.")
    admin_ids: str = Field(
        default="", description="Comma-separated Discord user ids allowed the admin commands in every server."
    )
    data_dir: Path = Field(default=Path(".data"), description="Where embedded services and images live.")
    worker_queues: str = Field(default="", description="Comma-separated queues this worker consumes; default all.")
    worker_devices: str = Field(
        default="",
        description="Comma-separated devices, one worker process each (`cuda:0,cuda:1`; `0,1` means the same);"
        " default one process on the first GPU, or the CPU.",
    )
    worker_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Port of the worker's /metrics and /healthz; 0 serves none."
    )
    bot_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Port of the bot's /metrics and /healthz; 0 serves none."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address the /metrics and /healthz servers listen on.")
    discord_shards: str = Field(
        default="",
        description="Empty: one gateway connection. `auto`: AutoShardedClient with Discord's shard count;"
        " a number: that many shards.",
    )
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
    command_burst: int = Field(
        default=8, ge=0, description="Commands and clicks a member may send at once (token bucket); 0: no limit."
    )
    command_rate_per_minute: float = Field(
        default=20.0, gt=0, description="How fast a member's command tokens come back, per minute."
    )
    image_safety_model: str = Field(
        default="", description="A transformers image-classification model (folder) that flags unsafe images; "
        "empty: images are not checked."
    )
    image_safety_labels: str = Field(
        default="nsfw", description="Comma-separated labels of that model that count as unsafe."
    )
    image_safety_threshold: float = Field(
        default=0.5, gt=0, le=1, description="An image is flagged when its unsafe labels' probability reaches this."
    )
    log_level: str = Field(default="INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR.")
    log_format: str = Field(
        default="text", description="`text` for people, `json` for one JSON object a line (with job_id)."
    )

    @field_validator("worker_devices")
    @classmethod
    def _devices_are_devices(cls, value: str) -> str:
        devices = []
        for part in value.replace(" ", "").split(","):
            if not part:
                continue
            device = f"cuda:{part}" if part.isdigit() else part
            if not _DEVICE.fullmatch(device):
                raise ValueError(
                    "WORKER_DEVICES must be comma-separated devices such as cuda:0,cuda:1 (or 0,1);"
                    f" {part!r} is not one"
                )
            devices.append(device)
        return ",".join(devices)

    @property
    def worker_device_list(self) -> tuple[str, ...]:
        """The ``WORKER_DEVICES``, one per worker process; empty: one process on the default device."""
        return tuple(part for part in self.worker_devices.split(",") if part)

    discord_http_connections: int = Field(
        default=32, ge=0,
        description="Connections to Discord's API kept open and reused (0: no limit, a new one whenever all are busy).",
    )

    @field_validator("discord_shards")
    @classmethod
    def _shards_are_auto_or_a_count(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("", "auto") and not (value.isdigit() and int(value) >= 1):
            raise ValueError(f"DISCORD_SHARDS must be empty, `auto` or a number of shards; {value!r} is neither")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be `text` or `json`, not {value!r}")
        return value

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
    def unsafe_labels(self) -> frozenset[str]:
        """``IMAGE_SAFETY_LABELS`` as a set of lower-case labels."""
        return frozenset(part.strip().lower() for part in self.image_safety_labels.split(",") if part.strip())

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
