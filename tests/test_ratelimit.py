"""Per-client token buckets: exact limits, refill, Retry-After, client keys and the size bound."""

from __future__ import annotations

import pytest

from civitas.ratelimit import RateLimiter, client_key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter("x", rate_per_min=30, burst=3, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a")
    assert wait == pytest.approx(2.0)  # 30 a minute: one token every 2 s
    clock.t += 1.999
    assert limiter.hit("a") == pytest.approx(0.001, abs=1e-6)
    clock.t += 0.001
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None
    assert limiter.hit("b") is None  # another client has its own bucket
    clock.t += 3600
    assert [limiter.hit("a") for _ in range(4)][:3] == [None, None, None]  # refill caps at burst
    assert limiter.hit("a") is not None


def test_refused_hits_do_not_dig_a_deeper_hole() -> None:
    clock = Clock()
    limiter = RateLimiter("x", rate_per_min=60, burst=1, clock=clock)
    assert limiter.hit("a") is None
    for _ in range(100):
        assert limiter.hit("a") == pytest.approx(1.0)
    clock.t += 1.0
    assert limiter.hit("a") is None


def test_bounded_number_of_clients_least_recently_used_go_first() -> None:
    clock = Clock()
    limiter = RateLimiter("x", rate_per_min=1, burst=1, max_clients=3, clock=clock)
    for key in ("a", "b", "c"):
        assert limiter.hit(key) is None
    assert limiter.hit("a") is not None  # "a" is now the most recent
    assert limiter.hit("d") is None  # evicts "b"
    assert len(limiter) == 3
    assert limiter.hit("b") is None  # forgotten: a full bucket again
    assert limiter.hit("a") is not None  # "a" was kept


def test_client_keys() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == client_key("") == "unknown"
    assert client_key("testclient") == "testclient"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter("x", rate_per_min=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter("x", rate_per_min=1, burst=0)
