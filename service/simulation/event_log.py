"""A compact, columnar buffer of simulated events.

A million events as dicts would cost gigabytes; as six int64 columns they cost
about 50 MB, and they still have to be held because the file is written in
arrival order, not generation order. Each event keeps up to three integer
slots (`a`, `b`, `c`) whose meaning depends on its kind (see `render`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Kind(IntEnum):
    SESSION_STARTED = 0  # a: platform, b: device
    PRODUCT_VIEWED = 1  # a: product
    CART_UPDATED = 2  # a: product
    CHECKOUT_STARTED = 3  # a: items
    ORDER_COMPLETED = 4  # a: order number, b: amount in cents, c: items
    ORDER_REFUNDED = 5  # a: order number, b: refund in cents, c: reason
    EMAIL_OPENED = 6  # a: campaign number
    EMAIL_CLICKED = 7  # a: campaign number
    SUPPORT_TICKET = 8  # a: ticket number, b: topic
    SURVEY_RESPONSE = 9  # a: csat, b: nps or -1 when not asked, c: ticket number
    CONSENT_UPDATED = 10  # a: channel, b: granted (0/1), c: source
    IDENTIFY = 11  # a: country, b: signup channel

    @property
    def event_type(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class EventColumns:
    occurred: np.ndarray  # whole seconds since the start of the observed period
    customer: np.ndarray  # customer index
    kind: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def __len__(self) -> int:
        return len(self.occurred)


class EventLog:
    def __init__(self, period_seconds: int) -> None:
        self._end = period_seconds
        self._columns = tuple(array("q") for _ in range(6))

    def add(self, at: float, customer: int, kind: Kind, a: int = 0, b: int = 0, c: int = 0) -> None:
        # The period's end is "now" for whoever reads the file: what the process
        # does later (refunds, tickets, surveys of recent orders) hasn't happened yet.
        if at >= self._end:
            return
        occurred, customers, kinds, slot_a, slot_b, slot_c = self._columns
        occurred.append(int(at))
        customers.append(customer)
        kinds.append(kind)
        slot_a.append(a)
        slot_b.append(b)
        slot_c.append(c)

    def columns(self) -> EventColumns:
        return EventColumns(*(np.frombuffer(column, dtype=np.int64) for column in self._columns))
