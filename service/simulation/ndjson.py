"""Writes simulated events as NDJSON in the shape `POST /v1/events` accepts ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.simulation import vocabulary as vocab
from service.simulation.clock import Clock
from service.simulation.event_log import EventColumns, Kind

CHUNK = 50_000


def customer_id(index: int) -> str:
    return f"c{index + 1:06d}"


def order_id(number: int) -> str:
    return f"o{number:07d}"


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


_CURRENCY_FIELD = f'"currency":"{vocab.CURRENCY}"'


def _order_fields(number: int, cents: int) -> str:
    return f'"order_id":"{order_id(number)}","amount":"{money(cents)}",{_CURRENCY_FIELD}'


def _survey(csat: int, nps: int, ticket: int) -> str:
    scores = f'"csat":{csat}' if nps < 0 else f'"csat":{csat},"nps":{nps}'
    return f'"properties":{{{scores},"ticket_id":"t{ticket:07d}"}}'


def _product(product: int) -> str:
    category = vocab.CATEGORIES[product // vocab.PRODUCTS_PER_CATEGORY]
    return f'"product_id":"p{product:05d}","category":"{category}"'


# Everything after "occurred_at", by kind, from the kind's integer slots. Values
# come from fixed vocabularies and numbers, so no JSON escaping is ever needed.
_TAILS: dict[int, Callable[[int, int, int], str]] = {
    Kind.SESSION_STARTED: lambda a, b, c: (
        f'"properties":{{"platform":"{vocab.PLATFORMS[a]}","device":"{vocab.DEVICES[b]}"}}'
    ),
    Kind.PRODUCT_VIEWED: lambda a, b, c: f'"properties":{{{_product(a)}}}',
    Kind.CART_UPDATED: lambda a, b, c: (
        f'"properties":{{{_product(a)},"action":"add","quantity":1}}'
    ),
    Kind.CHECKOUT_STARTED: lambda a, b, c: f'"properties":{{"items":{a}}}',
    Kind.ORDER_COMPLETED: lambda a, b, c: f'{_order_fields(a, b)},"properties":{{"items":{c}}}',
    Kind.ORDER_REFUNDED: lambda a, b, c: (
        f'{_order_fields(a, b)},"properties":{{"reason":"{vocab.REFUND_REASONS[c]}"}}'
    ),
    Kind.EMAIL_OPENED: lambda a, b, c: f'"properties":{{"campaign_id":"cmp-{a:04d}"}}',
    Kind.EMAIL_CLICKED: lambda a, b, c: f'"properties":{{"campaign_id":"cmp-{a:04d}"}}',
    Kind.SUPPORT_TICKET: lambda a, b, c: (
        f'"properties":{{"ticket_id":"t{a:07d}","topic":"{vocab.TICKET_TOPICS[b]}"}}'
    ),
    Kind.SURVEY_RESPONSE: _survey,
    Kind.CONSENT_UPDATED: lambda a, b, c: (
        f'"properties":{{"channel":"{vocab.CONSENT_CHANNELS[a]}",'
        f'"granted":{"true" if b else "false"},"source":"{vocab.CONSENT_SOURCES[c]}"}}'
    ),
    Kind.IDENTIFY: lambda a, b, c: (
        f'"properties":{{"traits":{{"country":"{vocab.COUNTRIES[a]}",'
        f'"signup_channel":"{vocab.SIGNUP_CHANNELS[b]}"}}}}'
    ),
}
_TYPES = {kind: kind.event_type for kind in Kind}


def write_events(
    path: Path,
    events: EventColumns,
    file_order: np.ndarray,
    *,
    clock: Clock,
    seed: int,
    customers: int,
    progress: bool,
) -> None:
    # Ids are numbered in occurrence order so that they read chronologically
    # in the file except where delivery was late or repeated.
    numbers = np.empty(len(events), dtype=np.int64)
    numbers[np.argsort(events.occurred, kind="stable")] = np.arange(1, len(events) + 1)
    id_prefix = f"sim-{seed}-"
    customer_ids = [customer_id(i) for i in range(customers)]
    rfc3339 = clock.rfc3339
    columns = (numbers, events.occurred, events.customer, events.kind, events.a, events.b, events.c)

    with (
        path.open("w", encoding="ascii", newline="\n") as out,
        tqdm(total=len(file_order), desc="writing", unit="ev", disable=not progress) as bar,
    ):
        for begin in range(0, len(file_order), CHUNK):
            chunk = file_order[begin : begin + CHUNK]
            rows = zip(*(column[chunk].tolist() for column in columns), strict=True)
            out.write(
                "".join(
                    f'{{"event_id":"{id_prefix}{number}","customer_id":"{customer_ids[customer]}",'
                    f'"type":"{_TYPES[kind]}","occurred_at":"{rfc3339(occurred)}",'
                    f"{_TAILS[kind](a, b, c)}}}\n"
                    for number, occurred, customer, kind, a, b, c in rows
                )
            )
            bar.update(len(chunk))
