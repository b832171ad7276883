"""Turns raw JSON events into validated, staged ones, or per-event rejections."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from service.config import Settings
from service.events.fingerprint import fingerprint, source_fingerprint
from service.events.schemas import Event, Rejection, describe_error
from service.vocabulary import ORDER_TYPES


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """A valid event with what storage needs: its bucket day and content fingerprint."""

    index: int
    event: Event
    day: date
    currency: str | None
    fingerprint: bytes
    properties_json: str


@dataclass(frozen=True)
class EventRules:
    """The settings-dependent rules: calendar, currency, clock tolerance."""

    zone: ZoneInfo
    currency: str
    future_tolerance: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> EventRules:
        return cls(
            zone=settings.zone,
            currency=settings.currency,
            future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
        )

    def stage(
        self, index: int, raw: Any, now: datetime, content: Any = None
    ) -> StagedEvent | Rejection:
        """`content`: the source message the event was mapped from, which then defines the
        event's identity (see `source_fingerprint`)."""
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        # Echoed back in the response, so it must be encodable whatever was sent.
        event_id = (
            event_id.encode("utf-8", "backslashreplace").decode()
            if isinstance(event_id, str)
            else None
        )
        if not isinstance(raw, dict):
            return Rejection(index=index, event_id=None, error="event: must be a JSON object")
        try:
            event = Event.model_validate(raw)
        except ValidationError as error:
            return Rejection(index=index, event_id=event_id, error=describe_error(error))
        problem = self._check_context(event, now)
        if problem:
            return Rejection(index=index, event_id=event_id, error=problem)
        try:
            properties_json = json.dumps(
                event.properties, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
            properties_json.encode()
        except (UnicodeEncodeError, ValueError):
            return Rejection(
                index=index,
                event_id=event_id,
                error="properties: must be valid UTF-8 JSON with finite numbers",
            )
        if "\\u0000" in properties_json:
            return Rejection(
                index=index, event_id=event_id, error="properties: must not contain NUL characters"
            )
        currency = (event.currency or self.currency) if event.type in ORDER_TYPES else None
        return StagedEvent(
            index=index,
            event=event,
            day=event.occurred_at.astimezone(self.zone).date(),
            currency=currency,
            fingerprint=fingerprint(event, currency)
            if content is None
            else source_fingerprint(event.event_id, event.customer_id, content),
            properties_json=properties_json,
        )

    def _check_context(self, event: Event, now: datetime) -> str | None:
        if event.occurred_at > now + self.future_tolerance:
            seconds = int(self.future_tolerance.total_seconds())
            return f"occurred_at: more than {seconds} s in the future"
        if event.currency is not None and event.currency != self.currency:
            return f"currency: must be {self.currency}, got {event.currency}"
        return None

    def stage_all(
        self, raws: Iterable[Any], now: datetime, first_index: int = 0
    ) -> tuple[list[StagedEvent], list[Rejection]]:
        staged: list[StagedEvent] = []
        rejected: list[Rejection] = []
        for index, raw in enumerate(raws, start=first_index):
            outcome = self.stage(index, raw, now)
            (staged if isinstance(outcome, StagedEvent) else rejected).append(outcome)
        return staged, rejected
