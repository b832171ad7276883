"""Settings of the next-best-offer policy, from the environment (SCORER_NBO_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.offers.policy import PolicySettings


class NboSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCORER_NBO_", extra="ignore")

    epsilon: float = Field(
        default=0.05, ge=0, le=1, description="Exploration probability (uniform among eligible)."
    )
    control_share: float = Field(
        default=0.10, ge=0, lt=1, description="Share of customers held out with no offer."
    )
    frequency_cap: int = Field(default=3, ge=0, description="Most offers per customer per window.")
    frequency_window_days: int = Field(default=30, ge=1, description="Window of the cap, days.")
    min_expected_value: float = Field(
        default=0.0, description="Offers must beat this expected value (no offer is worth 0)."
    )
    control_salt: str = Field(
        default="nbo-control-v1",
        min_length=1,
        description="Seeds the control-group hash; changing it reshuffles the groups.",
    )

    def policy(self) -> PolicySettings:
        return PolicySettings(**self.model_dump())
