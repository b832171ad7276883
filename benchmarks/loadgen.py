"""A small, low-overhead keep-alive HTTP/1.1 load generator on asyncio streams.

Closed loop: N connections, each sends a request, reads the whole response,
records its latency (time.perf_counter) and sends the next one. Requests are
pre-built byte strings, so the per-request client work is one write, one
`readuntil` for the head and one `readexactly` for the body. No HTTP library
in the loop: on a small box the client must cost far less CPU than the server.

Library use (see benchmarks/ingest.py)::

    requests = build_get_requests(host, ["/a", "/b"], {"Authorization": "Bearer k"})
    result = await run_load(host, port, requests, connections=16, duration=5, warmup=1)
    result.summary()

Command line::

    python benchmarks/loadgen.py http://127.0.0.1:8000/healthz -c 16 -d 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "LoadResult",
    "build_get_requests",
    "percentile",
    "run_load",
]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] * (1.0 - frac) + sorted_values[hi] * frac


@dataclass
class LoadResult:
    """What one measured run saw. Latencies are seconds, one per measured request."""

    connections: int
    duration: float  # seconds of the measured window
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    # Latencies per status, for what was served apart from what was shed.
    by_status: dict[int, list[float]] = field(default_factory=dict)
    io_errors: int = 0
    client_cpu: float = 0.0  # CPU seconds this process used during the measured window

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def throughput(self) -> float:
        return self.requests / self.duration if self.duration > 0 else math.nan

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile(sorted(self.latencies), q) * 1000.0

    @property
    def client_cpu_share(self) -> float:
        """Client CPU use as a fraction of one core over the measured window."""
        return self.client_cpu / self.duration if self.duration > 0 else math.nan

    def summary(self) -> str:
        ordered = sorted(self.latencies)
        p50, p90, p99 = (percentile(ordered, q) * 1000.0 for q in (50, 90, 99))
        return (
            f"{self.requests} req in {self.duration:.1f}s = {self.throughput:,.0f} req/s | "
            f"p50 {p50:.2f} ms p90 {p90:.2f} ms p99 {p99:.2f} ms | "
            f"non-2xx {self.non_2xx} io-errors {self.io_errors} | "
            f"client CPU {self.client_cpu_share:.0%} of a core"
            + (f" | statuses {dict(sorted(self.statuses.items()))}" if self.non_2xx else "")
        )


def build_get_requests(
    host: str, paths: Sequence[str], headers: dict[str, str] | None = None
) -> list[bytes]:
    """Pre-encoded keep-alive GET requests, one per path."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    common = f"Host: {host}\r\nUser-Agent: scorer-loadgen\r\nAccept: */*\r\n{extra}\r\n"
    return [f"GET {path} HTTP/1.1\r\n{common}".encode("latin-1") for path in paths]


class _ConnectionClosed(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, float]:
    """Read one full response; returns (status, server wants to close, Retry-After s)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        raise _ConnectionClosed(f"bad status line {head[:40]!r}")
    status = int(head[9:12])
    lower = head.lower()
    close = b"\r\nconnection: close" in lower
    retry_after = 0.0
    at = lower.find(b"\r\nretry-after:")
    if at >= 0:
        retry_after = float(lower[at + 15 : lower.index(b"\r\n", at + 2)])
    idx = lower.find(b"\r\ncontent-length:")
    if idx >= 0:
        end = lower.index(b"\r\n", idx + 2)
        length = int(lower[idx + 17 : end])
        if length:
            await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)  # chunk + CRLF
            if size == 0:
                break
    elif status not in (204, 304) and not 100 <= status < 200:
        await reader.read()  # body delimited by connection close
        close = True
    return status, close, retry_after


async def _worker(
    host: str,
    port: int,
    requests: Sequence[bytes],
    offset: int,
    stride: int,
    measure_from: float,
    stop_at: float,
    max_requests: int | None,
    latencies: list[float],
    statuses: Counter,
    by_status: dict[int, list[float]],
    counters: dict[str, int],
    honour_retry_after: bool,
) -> None:
    reader = writer = None
    i = offset
    n = len(requests)
    perf = time.perf_counter
    try:
        while True:
            if max_requests is not None and counters["sent"] >= max_requests:
                return
            now = perf()
            if now >= stop_at:
                return
            request = requests[i % n]
            i += stride
            counters["sent"] += 1
            t0 = perf()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                    t0 = perf()  # connection set-up is not part of the request latency
                writer.write(request)
                status, close, retry_after = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, _ConnectionClosed, ValueError):
                counters["io_errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
                continue
            t1 = perf()
            if t0 >= measure_from and t1 <= stop_at:
                latencies.append(t1 - t0)
                statuses[status] += 1
                by_status.setdefault(status, []).append(t1 - t0)
            if close:
                writer.close()
                reader = writer = None
            if honour_retry_after and retry_after:
                await asyncio.sleep(retry_after)  # as a well-behaved client waits when shed
    finally:
        if writer is not None:
            writer.close()


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int = 16,
    duration: float = 10.0,
    warmup: float = 2.0,
    max_requests: int | None = None,
    honour_retry_after: bool = False,
) -> LoadResult:
    """Drive `requests` (cycled) over `connections` keep-alive connections.

    The first `warmup` seconds are not recorded; then requests sent and answered
    within the next `duration` seconds are. With `max_requests`, the run stops
    after that many requests in total (warm-up included) if that comes first.
    The garbage collector is paused during the run so it cannot add client-side
    pauses to the measured latencies.
    """
    if not requests:
        raise ValueError("no requests to send")
    latencies: list[float] = []
    statuses: Counter = Counter()
    by_status: dict[int, list[float]] = {}
    counters = {"sent": 0, "io_errors": 0}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration
        cpu_mark: list[float] = []

        async def _cpu_marker() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            cpu_mark.append(time.process_time())

        marker = asyncio.create_task(_cpu_marker())
        # Spread the connections over the request list so they do not hit
        # the same key at the same moment.
        stride = connections
        await asyncio.gather(
            *(
                _worker(
                    host,
                    port,
                    requests,
                    k,
                    stride,
                    measure_from,
                    stop_at,
                    max_requests,
                    latencies,
                    statuses,
                    by_status,
                    counters,
                    honour_retry_after,
                )
                for k in range(connections)
            )
        )
        end_cpu = time.process_time()
        end = min(time.perf_counter(), stop_at)
        marker.cancel()
        cpu_start = cpu_mark[0] if cpu_mark else end_cpu
        measured = max(0.0, end - measure_from)
    finally:
        if gc_was_enabled:
            gc.enable()
    return LoadResult(
        connections=connections,
        duration=measured,
        latencies=latencies,
        statuses=statuses,
        by_status=by_status,
        io_errors=counters["io_errors"],
        client_cpu=end_cpu - cpu_start,
    )


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:8000/healthz")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("-w", "--warmup", type=float, default=2.0)
    parser.add_argument("-n", "--requests", type=int, default=None, help="stop after N requests")
    parser.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value', repeatable"
    )
    args = parser.parse_args()
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error("only http:// URLs are supported")
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    requests = build_get_requests(url.netloc, [path], headers)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.Runner()
    with runner:
        result = runner.run(
            run_load(
                url.hostname,
                url.port or 80,
                requests,
                connections=args.connections,
                duration=args.duration,
                warmup=args.warmup,
                max_requests=args.requests,
            )
        )
    print(result.summary())
    print("statuses:", dict(result.statuses))


if __name__ == "__main__":
    _main()
