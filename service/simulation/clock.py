"""Simulated time: float seconds since the start of the observed period, shown in UTC."""

from __future__ import annotations

from datetime import date, timedelta

DAY = 86_400


class Clock:
    def __init__(self, start: date, days: int) -> None:
        self.start = start
        # Formatting a million timestamps through datetime is a measurable share
        # of the run; a table of day prefixes makes it plain integer arithmetic.
        self._day_prefixes = [f"{start + timedelta(days=d)}T" for d in range(days + 1)]

    def rfc3339(self, seconds: int) -> str:
        day, second_of_day = divmod(seconds, DAY)
        hour, second_of_hour = divmod(second_of_day, 3600)
        minute, second = divmod(second_of_hour, 60)
        return f"{self._day_prefixes[day]}{hour:02d}:{minute:02d}:{second:02d}+00:00"
