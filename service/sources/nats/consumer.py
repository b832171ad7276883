"""`scorer consume`: drains a JetStream stream into PostgreSQL through the one write path.

At least once, with an exactly-once effect: a batch is acknowledged only after the
transaction that stored it commits, so a crash between the two redelivers the batch and
idempotency counts it as duplicates. What cannot be stored is dead-lettered (and
acknowledged: redelivering it would not make it valid). While the database is down nothing
is acknowledged; the consumer waits and retries. Several consumers with one durable name
share the stream's messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import nats
from nats.aio.client import Client as NatsClient
from nats.js import api
from nats.js.errors import NotFoundError

from service.db import CONNECTION_ERRORS
from service.events.validation import EventRules
from service.sources.nats.decoding import SOURCE, decode
from service.sources.write import store_mapped

log = logging.getLogger("scorer.consume")

STATUS_SECONDS = 2.0
PULLERS = 2
CONNECT_SECONDS = 10.0
RETRY_SECONDS = 1.0
# Longer than a batch's transaction takes (else JetStream redelivers a batch still being
# stored: harmless duplicates), short enough that the batches of a consumer that died are
# redelivered soon.
ACK_WAIT_SECONDS = 10.0
# Room for the unacknowledged batches of crashed consumers (held until ACK_WAIT_SECONDS)
# while the live ones keep fetching.
MAX_ACK_PENDING = 20_000
_TOO_SLOW = (asyncpg.exceptions.QueryCanceledError, asyncpg.exceptions.LockNotAvailableError)


class ConsumerSetupError(Exception):
    """NATS or the stream is not there; the message says what to do."""


@dataclass
class Progress:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    messages: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self, pending: int | None) -> str:
        rate = self.stored / max(time.monotonic() - self.started, 1e-9)
        return (
            f"consumed {self.messages} messages: {self.stored} events stored, "
            f"{self.duplicates} duplicates, {self.dead_lettered} dead-lettered "
            f"({rate:.0f} events/s); {pending if pending is not None else '?'} pending"
        )


@dataclass(frozen=True)
class ConsumerOptions:
    nats_url: str
    stream: str
    subject: str
    durable: str
    batch: int
    create_stream: bool
    write_deadline_seconds: float


async def consume(
    options: ConsumerOptions, database_dsn: str, rules: EventRules, stop: asyncio.Event
) -> Progress:
    nc = await _connect(options.nats_url)
    try:
        js = nc.jetstream()
        await _ensure_stream(js, options)
        # Pullers of one durable consumer share its messages: while one stores a batch, the
        # next fetches, each on its own database connection.
        subscriptions = [
            await js.pull_subscribe(
                options.subject,
                durable=options.durable,
                stream=options.stream,
                config=api.ConsumerConfig(
                    ack_wait=ACK_WAIT_SECONDS, max_deliver=-1, max_ack_pending=MAX_ACK_PENDING
                ),
            )
            for _ in range(PULLERS)
        ]
        progress = Progress()
        await asyncio.gather(
            *(
                _drain(subscription, options, database_dsn, rules, stop, progress, index == 0)
                for index, subscription in enumerate(subscriptions)
            )
        )
        return progress
    finally:
        await nc.close()


async def _connect(url: str):
    async def quiet(error: Exception) -> None:
        # nats-py would log a traceback per failed attempt; one line says it all.
        log.warning("NATS: %s", error or type(error).__name__)

    client = NatsClient()
    try:
        # Reconnects are endless once running; the first connection gets a deadline, so that
        # a wrong URL is a one-line error rather than a silent wait.
        await asyncio.wait_for(
            client.connect(
                url,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                error_cb=quiet,
            ),
            CONNECT_SECONDS,
        )
        return client
    except (OSError, nats.errors.NoServersError, TimeoutError, ValueError) as error:
        # Else its reconnect task would keep the process alive after the error.
        await client.close()
        raise ConsumerSetupError(
            f"cannot reach NATS at {url} ({str(error) or 'no answer in time'}): start it "
            "(nats-server -js) or fix --nats / SCORER_NATS_URL"
        ) from error


async def _ensure_stream(js, options: ConsumerOptions) -> None:
    try:
        await js.stream_info(options.stream)
    except NotFoundError:
        if not options.create_stream:
            raise ConsumerSetupError(
                f"no JetStream stream {options.stream!r}: create it, or pass --create-stream"
            ) from None
        await js.add_stream(name=options.stream, subjects=[options.subject])


async def _drain(subscription, options, database_dsn, rules, stop, progress, reports) -> None:
    conn: asyncpg.Connection | None = None
    next_status = 0.0
    try:
        while not stop.is_set():
            try:
                messages = await subscription.fetch(options.batch, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                messages = []
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(database_dsn, timeout=5)
                if messages:
                    await _store_batch(conn, messages, rules, options, progress)
                if reports and time.monotonic() >= next_status:
                    pending = await _record_status(conn, subscription, options, progress)
                    log.info(progress.line(pending))
                    next_status = time.monotonic() + STATUS_SECONDS
            except (*CONNECTION_ERRORS, *_TOO_SLOW, OSError, TimeoutError) as error:
                # Not acknowledged, so JetStream redelivers after ack_wait; say so, wait, retry.
                log.warning("database unavailable (%s); retrying in %.0f s", error, RETRY_SECONDS)
                for message in messages:
                    await message.nak(delay=RETRY_SECONDS)
                if conn is not None:
                    conn.terminate()
                conn = None
                await asyncio.sleep(RETRY_SECONDS)
    finally:
        if conn is not None:
            await conn.close()


async def _store_batch(conn, messages, rules: EventRules, options, progress: Progress) -> None:
    mapped, letters = [], []
    for message in messages:
        key = f"{options.stream}:{message.metadata.sequence.stream}"
        events, unusable = decode(message.data, key)
        mapped.extend(events)
        letters.extend(unusable)
    outcome = await store_mapped(
        conn, rules, SOURCE, mapped, letters, datetime.now(UTC), options.write_deadline_seconds
    )
    # Only now, with the transaction committed, may JetStream forget the messages.
    await asyncio.gather(*(message.ack() for message in messages))
    progress.messages += len(messages)
    progress.stored += outcome.accepted
    progress.duplicates += outcome.duplicates
    progress.dead_lettered += len(outcome.dead_lettered)


async def _record_status(conn, subscription, options, progress: Progress) -> int | None:
    try:
        info = await subscription.consumer_info()
    except Exception:  # a NATS hiccup leaves the last status standing
        return None
    await conn.execute(
        "INSERT INTO consumer_status (name, stream, subject, pending, ack_pending, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (name) DO UPDATE SET "
        "stream = excluded.stream, subject = excluded.subject, pending = excluded.pending, "
        "ack_pending = excluded.ack_pending, updated_at = now()",
        options.durable,
        options.stream,
        options.subject,
        info.num_pending,
        info.num_ack_pending,
    )
    return info.num_pending
