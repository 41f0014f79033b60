"""Ingest: consent decisions, minimisation, drop counting, idempotency, cache invalidation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consent import tables as t
from consent.batches import BadSignature, InvalidBatch, Reading
from consent.devices import DeviceKind, register_device, revoke_device
from consent.gateway import Gateway
from consent.minimise import DEFAULT_GRID, OUTSIDE
from consent.records import MINUTE_NS
from consent.store import ConsentStore

from .support import DAY, HOUR, MIN, T0, Clock, batch, device_key, readings, terms


def _personal(
    engine: sa.Engine, n: int = 1, owner: str = "pseudo-alice", device_id: str | None = None
) -> str:
    return register_device(
        engine,
        public_key=bytes(device_key(n).verify_key),
        kind=DeviceKind.PERSONAL,
        owner=owner,
        serial=f"SN-{n:08d}",
        now_ns=T0,
        device_id=device_id or f"dev-{n}",
    ).device_id


def _rows(engine: sa.Engine) -> list[sa.Row[object]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.readings).order_by(t.readings.c.id)).all())


def test_reading_flows_only_under_consent(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    dev = _personal(store.engine)
    store.give(terms(categories=("pd:Location",)))
    clock.advance(HOUR)
    items = readings("vehicle.location", [T0 + 5 * MIN + 1_234]) + readings(
        "vehicle.speed_kmh", [T0 + 6 * MIN]
    )
    (result,) = gateway.ingest([batch(dev, device_key(1), items)])
    assert (result.accepted, result.dropped, result.dropped_no_consent) == (1, 1, 1)
    (row,) = _rows(store.engine)
    assert row.unit == "pseudo-alice" and row.stream == "vehicle.location" and row.category == "pd:Location"
    assert row.district == "Old Town" and row.ts_ns == T0 + 5 * MIN  # minute-truncated
    assert row.grant_set_id is not None


def test_minimisation_keeps_no_serial_device_or_coordinates(
    store: ConsentStore, gateway: Gateway, clock: Clock
) -> None:
    dev = _personal(store.engine)
    store.give(terms(categories=("cvx:HouseholdEnergyUse",)))
    clock.advance(HOUR)
    items = [Reading("home.energy_kwh", T0 + 7 * MIN + 59 * 10**9, 0.25, 48.2512345, 16.2567891)]
    gateway.ingest([batch(dev, device_key(1), items)])
    (row,) = _rows(store.engine)
    values = {str(v) for v in row._mapping.values()}
    assert not any("SN-" in v or "dev-1" in v or "48.25" in v or "16.25" in v for v in values)
    assert row.district == DEFAULT_GRID.district_of(48.2512345, 16.2567891) == "Northgate"
    assert row.ts_ns % MINUTE_NS == 0 and row.ts_ns == T0 + 7 * MIN


def test_district_grid() -> None:
    assert DEFAULT_GRID.district_of(10.0, 10.0) == OUTSIDE
    assert len(DEFAULT_GRID.names) == 8
    for name in DEFAULT_GRID.names:
        assert DEFAULT_GRID.district_of(*DEFAULT_GRID.centre_of(name)) == name


def test_drops_are_counted_without_content(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    dev = _personal(store.engine)
    clock.advance(HOUR)
    items = readings("vehicle.location", [T0 + i * MIN for i in range(4)], value=123.456)
    items += readings("vehicle.location", [clock() + HOUR])  # from the future
    (result,) = gateway.ingest([batch(dev, device_key(1), items)])
    assert (result.accepted, result.dropped_no_consent, result.dropped_future) == (0, 4, 1)
    assert _rows(store.engine) == []
    with store.engine.connect() as conn:
        (counts,) = conn.execute(sa.select(t.batch_counts)).all()
        assert (counts.accepted, counts.dropped_no_consent, counts.dropped_future) == (0, 4, 1)
        stored = [str(v) for table in t.TABLES for row in conn.execute(sa.select(table)) for v in row]
    assert not any("123.456" in v for v in stored)


def test_public_sensors_flow_without_consent(cengine: sa.Engine, gateway: Gateway, clock: Clock) -> None:
    clock.advance(HOUR)
    register_device(
        cengine,
        public_key=bytes(device_key(5).verify_key),
        kind=DeviceKind.PUBLIC,
        now_ns=T0,
        device_id="city-aq-1",
    )
    (result,) = gateway.ingest([batch("city-aq-1", device_key(5), readings("city.air_pm25", [T0, T0 + MIN]))])
    assert result.accepted == 2
    rows = _rows(cengine)
    assert {r.unit for r in rows} == {"city-aq-1"} and all(r.grant_set_id is None for r in rows)


def test_stream_kind_must_match_the_device(cengine: sa.Engine, gateway: Gateway) -> None:
    register_device(
        cengine,
        public_key=bytes(device_key(5).verify_key),
        kind=DeviceKind.PUBLIC,
        now_ns=T0,
        device_id="city-aq-1",
    )
    dev = _personal(cengine)
    with pytest.raises(InvalidBatch):
        gateway.ingest([batch("city-aq-1", device_key(5), readings("vehicle.location", [T0]))])
    with pytest.raises(InvalidBatch):
        gateway.ingest([batch(dev, device_key(1), readings("city.noise_db", [T0]))])


def test_same_batch_twice_is_stored_once(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    dev = _personal(store.engine)
    store.give(terms())
    clock.advance(HOUR)
    signed = batch(dev, device_key(1), readings("vehicle.location", [T0 + MIN, T0 + 2 * MIN]))
    (first,) = gateway.ingest([signed])
    (again,) = gateway.ingest([signed])
    both = gateway.ingest([signed, signed])
    assert not first.duplicate and again.duplicate and all(r.duplicate for r in both)
    assert (again.accepted, again.readings) == (2, 2)
    assert len(_rows(store.engine)) == 2


def test_unknown_forged_and_revoked_devices_are_refused(store: ConsentStore, gateway: Gateway) -> None:
    dev = _personal(store.engine)
    items = readings("vehicle.location", [T0])
    with pytest.raises(BadSignature):
        gateway.ingest([batch("dev-404", device_key(1), items)])
    with pytest.raises(BadSignature):
        gateway.ingest([batch(dev, device_key(2), items)])  # signed with another device's key
    with pytest.raises(BadSignature):
        gateway.ingest([batch(dev, device_key(1), items)], device_id="dev-other")
    revoke_device(store.engine, dev, now_ns=T0)
    with pytest.raises(BadSignature):
        gateway.ingest([batch(dev, device_key(1), items)])
    assert _rows(store.engine) == []


def test_a_bad_batch_refuses_the_whole_call(store: ConsentStore, gateway: Gateway, clock: Clock) -> None:
    dev = _personal(store.engine)
    store.give(terms())
    clock.advance(HOUR)
    good = batch(dev, device_key(1), readings("vehicle.location", [T0]))
    bad = batch(dev, device_key(2), readings("vehicle.location", [T0]))
    with pytest.raises(BadSignature):
        gateway.ingest([good, bad])
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.batches)).scalar_one() == 0


def test_consent_change_in_another_process_is_seen(
    store: ConsentStore, cengine: sa.Engine, clock: Clock
) -> None:
    """Two gateways (two processes): the version counter in the DB invalidates both caches."""
    dev = _personal(cengine)
    g1, g2 = Gateway(cengine, clock=clock), Gateway(cengine, clock=clock)
    given = store.give(terms())
    clock.advance(HOUR)
    assert (
        g1.ingest([batch(dev, device_key(1), readings("vehicle.location", [clock() - MIN]))])[0].accepted == 1
    )
    assert (
        g2.ingest([batch(dev, device_key(1), readings("vehicle.location", [clock() - MIN]))])[0].accepted == 1
    )
    clock.advance(HOUR)
    store.withdraw(given.record_id, subject="pseudo-alice")
    after = clock()
    clock.advance(HOUR)
    for g in (g1, g2):
        (r,) = g.ingest(
            [batch(dev, device_key(1), readings("vehicle.location", [after + MIN, after - 30 * MIN]))]
        )
        assert (r.accepted, r.dropped_no_consent) == (1, 1)  # only the reading from before T


def test_consent_validity_bounds_what_is_accepted(
    store: ConsentStore, gateway: Gateway, clock: Clock
) -> None:
    dev = _personal(store.engine)
    store.give(terms(valid_from_ns=T0 + HOUR, valid_until_ns=T0 + DAY))
    clock.now = T0 + 2 * DAY
    times = [T0 + 30 * MIN, T0 + HOUR, T0 + DAY - MIN, T0 + DAY - 1, T0 + DAY + MIN]
    (r,) = gateway.ingest([batch(dev, device_key(1), readings("vehicle.location", times))])
    assert r.accepted == 3  # T0+1h and two readings in the last whole minute before the end


def test_warm_start_writes_grant_sets_and_sharing_finds_them(
    store: ConsentStore, cengine: sa.Engine, clock: Clock
) -> None:
    from consent.sharing import register_recipient, share_page

    dev = _personal(cengine)
    register_recipient(
        cengine, client_id="transport-agency", name="T", purposes=["dpv:PublicBenefit"], now_ns=T0
    )
    store.give(terms())
    clock.advance(HOUR)
    gateway = Gateway(cengine, clock=clock)
    assert gateway.warm() == 1
    with cengine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.grant_set_members)).scalar_one() == 1
    gateway.ingest([batch(dev, device_key(1), readings("vehicle.location", [T0, T0 + MIN]))])
    page = share_page(
        cengine,
        recipient="transport-agency",
        purpose="dpv:PublicBenefit",
        cursor=None,
        limit=10,
        now_ns=clock(),
    )
    assert [r.unit for r in page.readings] == ["pseudo-alice", "pseudo-alice"]
