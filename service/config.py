"""Every setting of the service, read from the environment (SCORER_* and DATABASE_URL)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCORER_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SCORER_DATABASE_URL"),
        description="postgresql://… URL; unset means the embedded PostgreSQL under data_dir.",
    )
    data_dir: Path = Field(default=Path(".scorer-data"), description="Embedded PostgreSQL home.")
    timezone: str = Field(default="UTC", description="Calendar used for daily feature buckets.")
    currency: str = Field(default="USD", description="The one ISO 4217 currency accepted.")
    bootstrap_api_key: str | None = Field(default=None, description="Ensured as an admin key.")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    max_batch_events: int = 1000
    max_body_bytes: int = 1024 * 1024
    future_tolerance_seconds: int = 300
    db_pool_size: int = 16
    shutdown_timeout_seconds: int = 30
    model_poll_seconds: float = Field(default=2.0, description="Registry poll for hot reload.")
    pcltv_tier_high: float = Field(default=500.0, description="pCLTV above this: tier high.")
    pcltv_tier_medium: float = Field(default=200.0, description="From this to high: medium.")
    churn_horizon_days: int = 90
    pcltv_horizon_days: int = 365
    pcltv_margin: float = 1.0
    pcltv_discount_rate: float = Field(default=0.0, description="Annual discount rate.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("currency")
    @classmethod
    def _upper_currency(cls, value: str) -> str:
        return value.upper()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
