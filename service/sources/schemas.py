"""Wire shapes shared by the sources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class DeadLetterOut(BaseModel):
    id: int
    source: str = Field(description="Where the message came from: segment, shopify, stripe, nats.")
    external_id: str | None = Field(description="The source's id of the message, if it had one.")
    customer_id: str | None
    reason: str = Field(description="Why it could not be stored, naming the field.")
    payload: Any = Field(description="The message as the source sent it.")
    attempts: int = Field(description="How often it was sent (a retry updates the letter).")
    first_seen_at: datetime
    last_seen_at: datetime


class DeadLetterPage(BaseModel):
    data: list[DeadLetterOut]
    next_cursor: str | None = Field(description="Pass as `after` for the next page.")
    has_more: bool
