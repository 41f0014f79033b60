"""Sharing: purposes, cursor pagination, the access log, read-time re-checks, analytics contract."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consent import tables as t
from consent.devices import DeviceKind, register_device
from consent.gateway import Gateway
from consent.sharing import (
    InvalidCursor,
    PurposeNotDeclared,
    access_log,
    analytics_readings_select,
    register_recipient,
    share_page,
)
from consent.store import ConsentStore

from .support import DAY, HOUR, MIN, T0, Clock, batch, device_key, readings, terms

AGENCY = "transport-agency"
OTHER = "energy-agency"


def _setup(store: ConsentStore, gateway: Gateway, clock: Clock) -> int:
    engine = store.engine
    register_recipient(engine, client_id=AGENCY, name="Transport", purposes=["dpv:PublicBenefit"], now_ns=T0)
    register_recipient(
        engine,
        client_id=OTHER,
        name="Energy",
        purposes=["dpv:PublicBenefit", "dpv:ResearchAndDevelopment"],
        now_ns=T0,
    )
    for n, owner in ((1, "pseudo-alice"), (2, "pseudo-bob")):
        register_device(
            engine,
            public_key=bytes(device_key(n).verify_key),
            kind=DeviceKind.PERSONAL,
            owner=owner,
            now_ns=T0,
            device_id=f"dev-{n}",
        )
    register_device(
        engine,
        public_key=bytes(device_key(9).verify_key),
        kind=DeviceKind.PUBLIC,
        now_ns=T0,
        device_id="city-noise-1",
    )
    alice = store.give(terms("pseudo-alice", categories=("pd:Location",), recipients=(AGENCY,)))
    store.give(terms("pseudo-bob", categories=("pd:Location",), recipients=(OTHER,)))
    clock.advance(HOUR)
    times = [T0 + i * MIN for i in range(10)]
    gateway.ingest(
        [
            batch("dev-1", device_key(1), readings("vehicle.location", times)),
            batch("dev-2", device_key(2), readings("vehicle.location", times, district="Harbour")),
            batch("city-noise-1", device_key(9), readings("city.noise_db", times[:3])),
        ]
    )
    return alice.record_id


def _all(engine: sa.Engine, recipient: str, purpose: str, limit: int, now: int) -> tuple[list[str], int]:
    units: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = share_page(
            engine, recipient=recipient, purpose=purpose, cursor=cursor, limit=limit, now_ns=now
        )
        units += [r.unit for r in page.readings]
        pages += 1
        if page.next_cursor is None:
            return units, pages
        cursor = page.next_cursor


def test_agency_receives_only_what_consent_allows(
    store: ConsentStore, gateway: Gateway, clock: Clock
) -> None:
    _setup(store, gateway, clock)
    units, pages = _all(store.engine, AGENCY, "dpv:PublicBenefit", 4, clock())
    assert sorted(units) == ["city-noise-1"] * 3 + ["pseudo-alice"] * 10
    assert pages == 4
    units, _ = _all(store.engine, OTHER, "dpv:PublicBenefit", 100, clock())
    assert sorted(units) == ["city-noise-1"] * 3 + ["pseudo-bob"] * 10
    # OTHER declared R&D but bob consented to public benefit only
    units, _ = _all(store.engine, OTHER, "dpv:ResearchAndDevelopment", 100, clock())
    assert units == ["city-noise-1"] * 3


def test_undeclared_purpose_is_refused(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    _setup(store, gateway, clock)
    with pytest.raises(PurposeNotDeclared):
        share_page(
            store.engine,
            recipient=AGENCY,
            purpose="dpv:ResearchAndDevelopment",
            cursor=None,
            limit=10,
            now_ns=clock(),
        )
    with pytest.raises(PurposeNotDeclared):
        share_page(
            store.engine,
            recipient="nobody",
            purpose="dpv:PublicBenefit",
            cursor=None,
            limit=10,
            now_ns=clock(),
        )
    assert access_log(store.engine, "pseudo-alice") == []


def test_cursor_continues_after_new_readings(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    _setup(store, gateway, clock)
    first = share_page(
        store.engine, recipient=AGENCY, purpose="dpv:PublicBenefit", cursor=None, limit=100, now_ns=clock()
    )
    assert len(first.readings) == 13 and first.next_cursor is None
    gateway.ingest([batch("dev-1", device_key(1), readings("vehicle.location", [T0 + 30 * MIN]))])
    later = share_page(
        store.engine,
        recipient=AGENCY,
        purpose="dpv:PublicBenefit",
        cursor=first.cursor,
        limit=100,
        now_ns=clock(),
    )
    assert [(r.unit, r.ts_ns) for r in later.readings] == [("pseudo-alice", T0 + 30 * MIN)]
    with pytest.raises(InvalidCursor):
        share_page(
            store.engine, recipient=AGENCY, purpose="dpv:PublicBenefit", cursor="!!", limit=10, now_ns=clock()
        )


def test_every_disclosure_is_in_the_access_log(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    _setup(store, gateway, clock)
    _all(store.engine, AGENCY, "dpv:PublicBenefit", 4, clock())
    entries = access_log(store.engine, "pseudo-alice")
    assert sum(e.count for e in entries) == 10
    assert {(e.recipient, e.purpose, e.category) for e in entries} == {
        (AGENCY, "dpv:PublicBenefit", "pd:Location")
    }
    assert all(e.at_ns == clock() for e in entries)
    assert min(e.first_ts_ns for e in entries) == T0 and max(e.last_ts_ns for e in entries) == T0 + 9 * MIN
    assert access_log(store.engine, "pseudo-bob") == []  # nothing of bob's went anywhere yet


def test_withdrawal_stops_sharing_at_once(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    alice = _setup(store, gateway, clock)
    store.withdraw(alice, subject="pseudo-alice")
    units, _ = _all(store.engine, AGENCY, "dpv:PublicBenefit", 100, clock())
    assert "pseudo-alice" not in units


def test_expiry_stops_sharing_by_the_clock(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    _setup(store, gateway, clock)
    units, _ = _all(store.engine, AGENCY, "dpv:PublicBenefit", 100, T0 + 31 * DAY)
    assert "pseudo-alice" not in units and "city-noise-1" in units


def test_analytics_select_contract(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    _setup(store, gateway, clock)
    stmt = analytics_readings_select(
        recipient=AGENCY,
        purpose="dpv:PublicBenefit",
        start_ns=T0 + 2 * MIN,
        end_ns=T0 + 5 * MIN,
        now_ns=clock(),
    )
    with store.engine.connect() as conn:
        result = conn.execute(stmt)
        assert list(result.keys()) == ["unit", "stream", "district", "ts_ns", "value"]
        rows = result.all()
    assert sorted((r.unit, r.ts_ns) for r in rows) == sorted(
        [("pseudo-alice", T0 + i * MIN) for i in (2, 3, 4)] + [("city-noise-1", T0 + 2 * MIN)]
    )
    assert all(isinstance(r.value, float) and r.district for r in rows)


def test_retention_follows_the_clock_and_purge_deletes(
    store: ConsentStore, gateway: Gateway, clock: Clock
) -> None:
    from consent.sharing import purge_readings

    register_recipient(
        store.engine, client_id=AGENCY, name="Transport", purposes=["dpv:PublicBenefit"], now_ns=T0
    )
    register_device(
        store.engine,
        public_key=bytes(device_key(1).verify_key),
        kind=DeviceKind.PERSONAL,
        owner="pseudo-alice",
        now_ns=T0,
        device_id="dev-1",
    )
    register_device(
        store.engine,
        public_key=bytes(device_key(9).verify_key),
        kind=DeviceKind.PUBLIC,
        now_ns=T0,
        device_id="city-1",
    )
    store.give(
        terms("pseudo-alice", recipients=(AGENCY,), valid_until_ns=T0 + 200 * DAY)
    )  # retention: 90 days
    clock.advance(HOUR)
    gateway.ingest(
        [
            batch("dev-1", device_key(1), readings("vehicle.location", [T0, T0 + MIN])),
            batch("city-1", device_key(9), readings("city.noise_db", [T0])),
        ]
    )
    units, _ = _all(store.engine, AGENCY, "dpv:PublicBenefit", 100, T0 + 89 * DAY)
    assert sorted(units) == ["city-1", "pseudo-alice", "pseudo-alice"]
    units, _ = _all(store.engine, AGENCY, "dpv:PublicBenefit", 100, T0 + 91 * DAY)
    assert units == ["city-1"]
    assert purge_readings(store.engine, now_ns=T0 + 89 * DAY) == 0
    assert purge_readings(store.engine, now_ns=T0 + 91 * DAY) == 2
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.readings)).scalar_one() == 1
