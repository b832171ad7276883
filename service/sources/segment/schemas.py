"""Wire shapes of the Segment-compatible API (documentation of bodies; the routes parse
them themselves so that one bad message is dead-lettered alone)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

MESSAGE_DESCRIPTION = (
    "A Segment spec call: type (track, identify, page, screen, alias, group; implied by a "
    "single-call route), messageId (the idempotency key), userId and/or anonymousId, "
    "timestamp, and event + properties (track), traits (identify, group), name + properties "
    "(page, screen), previousId (alias), groupId (group); context, integrations and other "
    "fields are kept with the message. One that cannot be stored is kept as a dead letter "
    "(GET /v1/dead-letters) instead of failing its request."
)

# A message that is not a valid SegmentMessage is kept as a dead letter, not refused with its
# batch: so the request schema takes any object and documents the message in words.
MessageItem = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "object",
            "description": MESSAGE_DESCRIPTION,
        }
    ),
]


class SegmentBatch(BaseModel):
    model_config = ConfigDict(extra="allow")

    batch: list[MessageItem] = Field(max_length=10_000)
    sentAt: str | None = Field(None, description="When the client sent the batch.")
    writeKey: str | None = Field(None, description="The API key, if not sent as Basic auth.")


class SegmentAccepted(BaseModel):
    success: bool = Field(
        description="Always true for a valid envelope: messages that cannot be stored are "
        "kept as dead letters (GET /v1/dead-letters), not refused one by one."
    )
