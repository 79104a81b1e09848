"""A small HTTP load generator on asyncio: a closed loop for throughput, a constant rate for latency.

Every request opens its own connection (`Connection: close`), as gunicorn's sync workers close
after each response anyway. The constant-rate loop measures each latency from the request's
*scheduled* start (as wrk2 does), so a stalled server cannot hide its queueing delay
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 30.0

# Builds the raw request bytes for the i-th request of a run.
RequestFactory = Callable[[int], bytes]


@dataclass
class LoadResult:
    """What one load run saw: status counts, latencies in seconds and the wall time it took."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def add(self, other: LoadResult) -> LoadResult:
        """This run and another one of the same kind, as if they were one run."""
        self.statuses.update(other.statuses)
        self.latencies.extend(other.latencies)
        self.elapsed += other.elapsed
        return self

    @property
    def completed(self) -> int:
        return sum(self.statuses.values())

    @property
    def throughput(self) -> float:
        """Completed requests per second."""
        return self.completed / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in seconds (nearest-rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


def http_request(host: str, port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """Raw HTTP/1.1 request bytes with `Connection: close`."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _send(host: str, port: int, payload: bytes) -> int:
    """Send one request and return its status code (0 for a connection error or timeout)."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(payload)
                data = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return 0
    try:
        return int(data[9:12])
    except ValueError:
        return 0


async def _closed_loop(
    host: str,
    port: int,
    factory: RequestFactory,
    counter: itertools.count[int],
    concurrency: int,
    seconds: float,
) -> LoadResult:
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            payload = factory(next(counter))
            began = time.perf_counter()
            status = await _send(host, port, payload)
            result.latencies.append(time.perf_counter() - began)
            result.statuses[status] += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


async def _constant_rate(
    host: str, port: int, factory: RequestFactory, counter: itertools.count[int], rate: float, seconds: float
) -> LoadResult:
    result = LoadResult()
    total = max(1, int(rate * seconds))
    start = time.perf_counter()

    async def one(scheduled: float) -> None:
        status = await _send(host, port, factory(next(counter)))
        result.latencies.append(time.perf_counter() - scheduled)
        result.statuses[status] += 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    return result


def closed_loop(
    host: str,
    port: int,
    factory: RequestFactory,
    counter: itertools.count[int],
    concurrency: int,
    seconds: float,
) -> LoadResult:
    """Keep `concurrency` requests in flight for `seconds`: the server's maximum throughput."""
    return asyncio.run(_closed_loop(host, port, factory, counter, concurrency, seconds))


def constant_rate(
    host: str, port: int, factory: RequestFactory, counter: itertools.count[int], rate: float, seconds: float
) -> LoadResult:
    """Start requests at fixed intervals (`rate` per second) for `seconds`; latency from schedule."""
    return asyncio.run(_constant_rate(host, port, factory, counter, rate, seconds))
