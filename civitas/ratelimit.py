"""Per-client token buckets for unauthenticated endpoints, answered with 429 + Retry-After.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_min`` tokens a minute; each request
takes one. Clients are keyed by address (``request.client.host``, which uvicorn takes from
``X-Forwarded-For`` only for trusted proxies); IPv6 addresses are grouped by /64, the block a
single subscriber usually gets. At most ``max_clients`` buckets are kept (least recently used
ones go first: a forgotten client starts with a full bucket, never with less). Buckets live in
the service process: with N worker processes a client gets at most N times the limit.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Depends, Request

from civitas.errors import ProblemError

__all__ = ["RateLimiter", "client_key", "rate_limited"]

MAX_CLIENTS: Final = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


class RateLimiter:
    def __init__(
        self,
        name: str,
        *,
        rate_per_min: int,
        burst: int,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_min < 1 or burst < 1 or max_clients < 1:
            raise ValueError("rate_per_min, burst and max_clients must be positive")
        self.name = name
        self.rate_per_min = rate_per_min
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._rate_per_s = rate_per_min / 60.0
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Take a token for ``key``: ``None`` when allowed, else seconds until one is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(float(self.burst), now)
            else:
                elapsed = max(0.0, now - bucket.updated_s)
                bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self._rate_per_s)
                bucket.updated_s = now
            self._buckets[key] = bucket  # most recently used last
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self._rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)


def client_key(host: str | None) -> str:
    """The bucket key of a client address: the address itself, or its /64 for IPv6."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an IP (a test client, a unix socket peer)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def rate_limited(name: str) -> Any:
    """A route dependency: the limiter ``app.state.rate_limiters[name]`` for the calling client."""

    async def check(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limiters[name]
        wait_s = limiter.hit(client_key(request.client.host if request.client else None))
        if wait_s is not None:
            retry_after = max(1, math.ceil(wait_s))
            raise ProblemError(
                429,
                "too-many-requests",
                "Too many requests",
                f"at most {limiter.burst} at once and {limiter.rate_per_min} a minute per client",
                headers={"Retry-After": str(retry_after)},
            )

    return Depends(check)


RATE_LIMITED_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    429: {
        "description": "Too many requests from this client (problem+json); Retry-After gives the seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}
