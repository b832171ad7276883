"""`scorer import FILE`: bulk backfill through the same validation and write path as the API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import asyncpg

from service.backfill.readers import Line, read_ndjson, read_orders_csv
from service.events.schemas import Rejection
from service.events.service import store_events
from service.events.validation import EventRules
from service.features.recompute import DERIVED_TABLES, analyze


@dataclass
class ImportSummary:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_rejection: Rejection | None = None


class RejectsFile:
    """Rejected lines as JSON, one a line; the file is created by the first rejection, so it
    exists only for an import that had some (a previous run's is removed at the start)."""

    def __init__(self, path: Path, summary: ImportSummary) -> None:
        self.path, self.summary, self._stream = path, summary, None
        path.unlink(missing_ok=True)

    def write(self, items: list[Rejection]) -> None:
        if not items:
            return
        if self._stream is None:
            self._stream = self.path.open("w")
            self.summary.first_rejection = items[0]
        self.summary.rejected += len(items)
        for item in items:
            record = {"line": item.index, "event_id": item.event_id, "error": item.error}
            self._stream.write(json.dumps(record) + "\n")

    def __enter__(self) -> RejectsFile:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._stream is not None:
            self._stream.close()


def lines_of(path: Path, stream: TextIO, rules: EventRules) -> Iterator[Line]:
    if path.suffix.lower() == ".csv":
        return read_orders_csv(stream, rules.zone)
    return read_ndjson(stream)


async def import_file(
    conn: asyncpg.Connection,
    path: Path,
    rules: EventRules,
    rejects_path: Path,
    batch_size: int = 5000,
    progress: Callable[[int], None] = lambda lines_read: None,
) -> ImportSummary:
    """Load `path` in batches; rejected lines go to `rejects_path` (see `RejectsFile`), and
    the tables written are analysed at the end."""
    summary = ImportSummary()
    with (
        path.open(encoding="utf-8", errors="surrogateescape", newline="") as stream,
        RejectsFile(rejects_path, summary) as rejects,
    ):
        batch: list[Line] = []

        async def flush() -> None:
            now = datetime.now(UTC)
            staged, rejected = [], []
            for number, raw in batch:
                outcome = (
                    Rejection(index=number, event_id=None, error=raw)
                    if isinstance(raw, str)
                    else rules.stage(number, raw, now)
                )
                (rejected if isinstance(outcome, Rejection) else staged).append(outcome)
            if staged:
                stored = await store_events(conn, staged, source="import")
                summary.accepted += stored.accepted
                summary.duplicates += stored.duplicates
                rejected.extend(stored.rejected)
            rejects.write(sorted(rejected, key=lambda r: r.index))
            batch.clear()
            progress(summary.lines)

        for line in lines_of(path, stream, rules):
            summary.lines += 1
            batch.append(line)
            if len(batch) >= batch_size:
                await flush()
        await flush()
    if summary.accepted:
        await analyze(conn, ("events", *DERIVED_TABLES))
    return summary
