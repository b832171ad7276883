"""Storing Segment messages: identity resolution, held anonymous events, then the one write
path, all in one transaction.

Identity rules (docs/segment.md):
- A message's customer is its `userId`; without one, the customer its `anonymousId` is linked
  to; without a link, its events are held until one is made.
- A message carrying both ids (an identify, or any call made after one), or an alias
  (`previousId` -> `userId`), links the anonymous id to the customer. One anonymous id
  belongs to one customer: the first link wins, a conflicting one is refused (dead letter)
  while the message itself is still stored for its `userId`.
- Making a link releases the held events into the customer's log in the same transaction,
  so the features are exactly as if they had come with the `userId`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.events import tombstones
from service.events.service import in_write_transaction, lock_keys
from service.events.validation import EventRules, StagedEvent
from service.sources.dead_letters import DeadLetter, storable_json
from service.sources.segment.mapping import Translation, translate
from service.sources.unusable import Unusable
from service.sources.write import Mapped, store_in_transaction

SOURCE = "segment"
# Advisory-lock and tombstone keys of anonymous ids, apart from customer ids that happen to
# be equal.
ANONYMOUS_KEY = "anonymous_id:"


@dataclass
class SegmentOutcome:
    accepted: int = 0
    duplicates: int = 0
    held: int = 0
    dead_lettered: int = 0
    custom: int = 0


async def ingest(
    conn: asyncpg.Connection,
    rules: EventRules,
    messages: list[Any],
    received_at: datetime,
    sent_at: Any = None,
    route_type: str | None = None,
    deadline_seconds: float | None = None,
) -> SegmentOutcome:
    translated: list[tuple[Translation, Any]] = []
    letters: list[DeadLetter] = []
    for message in messages:
        try:
            translated.append((translate(message, received_at, sent_at, route_type), message))
        except Unusable as problem:
            letters.append(DeadLetter(SOURCE, str(problem), message, _message_id(message)))
    anonymous = {a for t, _ in translated for a in (t.anonymous_id, t.previous_id) if a}
    # Links never change once made, so reading them before locking tells which customers
    # this batch will write, and every lock is taken in one sorted statement.
    linked = await _links(conn, anonymous)

    async def work() -> SegmentOutcome:
        customers = {t.user_id for t, _ in translated if t.user_id} | set(linked.values())
        # store_locked takes these same customer locks again (free) with the events.
        await lock_keys(conn, [*customers, *(ANONYMOUS_KEY + a for a in anonymous)])
        links = await _links(conn, anonymous)
        erased = await tombstones.erased_among(
            conn, [*customers, *(ANONYMOUS_KEY + a for a in anonymous)]
        )
        batch = _Batch(rules, received_at, links, list(letters), erased)
        await batch.resolve(conn, translated)
        stored = await store_in_transaction(
            conn, rules, SOURCE, batch.mapped, batch.letters, received_at
        )
        return SegmentOutcome(
            accepted=stored.accepted,
            duplicates=stored.duplicates + batch.held_duplicates,
            held=batch.held,
            dead_lettered=len(stored.dead_lettered),
            custom=sum(t.custom for t, _ in translated),
        )

    return await in_write_transaction(conn, deadline_seconds, work)


def content(message: Any) -> Any:
    """What a retry repeats: the message without the send time (which the client sets
    anew on every attempt and only serves the clock-skew correction)."""
    if isinstance(message, dict):
        return {key: value for key, value in message.items() if key != "sentAt"}
    return message


def _message_id(message: Any) -> str | None:
    value = message.get("messageId") if isinstance(message, dict) else None
    return value if isinstance(value, str) and value else None


async def _links(conn: asyncpg.Connection, anonymous: set[str]) -> dict[str, str]:
    if not anonymous:
        return {}
    rows = await conn.fetch(
        "SELECT anonymous_id, customer_id FROM identity_links WHERE anonymous_id = ANY($1)",
        list(anonymous),
    )
    return {row["anonymous_id"]: row["customer_id"] for row in rows}


class _Batch:
    """One batch's identity work inside the transaction, in message order."""

    def __init__(
        self,
        rules: EventRules,
        received_at: datetime,
        links: dict[str, str],
        letters: list[DeadLetter],
        erased: set[str],
    ) -> None:
        self.rules = rules
        self.received_at = received_at
        self.links = links
        self.letters = letters
        self.mapped: list[Mapped] = []
        self.new_links: list[tuple[str, str, str]] = []
        self.waiting: list[tuple[str, dict[str, Any], Any]] = []
        self.held = 0
        self.held_duplicates = 0
        # Erased customers and the anonymous ids they had (as `ANONYMOUS_KEY` + id): no
        # link is made to or from them again, and their events are duplicates.
        self.erased = erased

    async def resolve(self, conn: asyncpg.Connection, translated) -> None:
        previous = {t.previous_id for t, _ in translated if t.previous_id}
        own_customers = await _existing_customers(conn, previous)
        for translation, message in translated:
            self._link(translation, message, own_customers)
            customer = translation.user_id or self.links.get(translation.anonymous_id or "")
            if customer is None and ANONYMOUS_KEY + translation.anonymous_id in self.erased:
                self.held_duplicates += len(translation.events)
                continue
            for event in translation.events:
                if customer is None:
                    self.waiting.append((translation.anonymous_id, event, message))
                else:
                    self._map(event, customer, message)
        # Events held earlier in this very batch, then those held in the database.
        still_waiting = []
        for anonymous_id, event, message in self.waiting:
            if anonymous_id in self.links:
                self._map(event, self.links[anonymous_id], message)
            else:
                still_waiting.append((anonymous_id, event, message))
        if self.new_links:
            await _save_links(conn, self.new_links)
            for anonymous_id, event, message in await _release(conn, self.new_links):
                self._map(event, self.links[anonymous_id], message)
        await self._hold(conn, still_waiting)

    def _map(self, event: dict[str, Any], customer: str, message: Any) -> None:
        self.mapped.append(
            Mapped({**event, "customer_id": customer}, message, event["event_id"], content(message))
        )

    def _link(self, translation: Translation, message: Any, own_customers: set[str]) -> None:
        if not translation.links:
            return
        user = translation.user_id
        if user in self.erased:
            return
        for anonymous_id in {translation.previous_id, translation.anonymous_id} - {None, user}:
            if ANONYMOUS_KEY + anonymous_id in self.erased:
                continue
            known = self.links.get(anonymous_id)
            if known == user:
                continue
            if known is not None:
                reason = (
                    f"anonymousId: {anonymous_id!r} is already linked to customer {known!r}; "
                    "an anonymous id belongs to one customer (the first link wins), so this "
                    "link was not made (the message's events are stored for its userId)"
                )
            elif anonymous_id in own_customers:
                reason = (
                    f"previousId: {anonymous_id!r} is a customer with events of its own; "
                    "merging two customers is not supported, so no link was made"
                )
            else:
                self.links[anonymous_id] = user
                self.new_links.append((anonymous_id, user, translation.message_id))
                continue
            self.letters.append(
                DeadLetter(
                    SOURCE, reason, message, f"{translation.message_id}:link", customer_id=user
                )
            )

    async def _hold(self, conn: asyncpg.Connection, waiting) -> None:
        """Validate and keep the events of still-unknown visitors; a re-sent one is a
        duplicate, the same id with other content a conflict."""
        candidates: list[tuple[str, StagedEvent, dict[str, Any], Any]] = []
        for anonymous_id, event, message in waiting:
            placeholder = {**event, "customer_id": anonymous_id}
            staged = self.rules.stage(0, placeholder, self.received_at, content(message))
            if isinstance(staged, StagedEvent):
                candidates.append((anonymous_id, staged, event, message))
            else:
                self._refuse(staged.error, event, message)
        if not candidates:
            return
        ids = [staged.event.event_id for _, staged, _, _ in candidates]
        held = {
            row["event_id"]: row["fingerprint"]
            for row in await conn.fetch(
                "SELECT event_id, fingerprint FROM anonymous_events WHERE event_id = ANY($1)", ids
            )
        }
        stored = {
            row["event_id"]
            for row in await conn.fetch("SELECT event_id FROM events WHERE event_id = ANY($1)", ids)
        }
        rows = []
        for anonymous_id, staged, event, message in candidates:
            event_id = staged.event.event_id
            if held.get(event_id) == staged.fingerprint:
                self.held_duplicates += 1
            elif event_id in held or event_id in stored:
                self._refuse(
                    "messageId: already used with different content (conflict)", event, message
                )
            else:
                held[event_id] = staged.fingerprint
                rows.append(
                    (
                        anonymous_id,
                        event_id,
                        json.dumps(event),
                        storable_json(message),
                        staged.fingerprint,
                    )
                )
        await conn.executemany(
            "INSERT INTO anonymous_events (anonymous_id, event_id, event, message, fingerprint) "
            "VALUES ($1, $2, $3::jsonb, $4::jsonb, $5)",
            rows,
        )
        self.held += len(rows)

    def _refuse(self, reason: str, event: dict[str, Any], message: Any) -> None:
        self.letters.append(DeadLetter(SOURCE, reason, message, event["event_id"]))


async def _existing_customers(conn: asyncpg.Connection, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    rows = await conn.fetch(
        "SELECT customer_id FROM customers WHERE customer_id = ANY($1)", list(ids)
    )
    return {row["customer_id"] for row in rows}


async def _save_links(conn: asyncpg.Connection, links: list[tuple[str, str, str]]) -> None:
    await conn.executemany(
        "INSERT INTO identity_links (anonymous_id, customer_id, message_id) VALUES ($1, $2, $3)",
        links,
    )


async def _release(
    conn: asyncpg.Connection, links: list[tuple[str, str, str]]
) -> list[tuple[str, dict[str, Any], Any]]:
    rows = await conn.fetch(
        "DELETE FROM anonymous_events WHERE anonymous_id = ANY($1) "
        "RETURNING anonymous_id, event::text AS event, message::text AS message, received_at",
        [anonymous_id for anonymous_id, _, _ in links],
    )
    rows = sorted(rows, key=lambda row: (row["received_at"], row["event"]))
    return [
        (row["anonymous_id"], json.loads(row["event"]), json.loads(row["message"])) for row in rows
    ]
