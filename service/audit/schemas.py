"""Wire shapes of `GET /v1/audit` (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryOut(BaseModel):
    id: int
    at: datetime = Field(description="When the action's transaction ran.")
    actor: str = Field(
        description="Who: the API key's name, `cli:<OS user>` for a `scorer` command, "
        "`system` for start-up work."
    )
    action: str = Field(description="What, dotted: key.created, offer.updated, model.activated, …")
    subject: str | None = Field(
        description="What was acted on: a key prefix, an offer or webhook id, `churn@VERSION`, …"
    )
    details: dict[str, Any] = Field(
        description="The particulars (changed fields, scopes, the version replaced); never a "
        "secret."
    )
    request_id: str | None = Field(
        description="The API request that did it (its `X-Request-Id`, as in the logs); null "
        "for commands and start-up work."
    )


class AuditPage(BaseModel):
    data: list[AuditEntryOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(description="Pass as `after` for the next page.")
    has_more: bool
