"""Loading readings from SQL (a synthetic table and the consent contract) into snapshots."""

from __future__ import annotations

import math

import polars as pl
import sqlalchemy as sa

from analytics import Analytics, BudgetPolicy, SelectSource, create_schema, load_readings, snapshot_of
from analytics.data import DAY_NS, READING_SCHEMA
from analytics.measurements import bounded_rows
from analytics.synthetic import DISTRICTS, synthetic_day, synthetic_readings_table, write_readings

from .conftest import DAY0, count_query


def _table_select(table: sa.Table) -> sa.Select[tuple[object, ...]]:
    return sa.select(table.c.unit, table.c.stream, table.c.district, table.c.ts_ns, table.c.value)


def test_loader_reads_the_contract_columns_from_sql(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    table = synthetic_readings_table(metadata)
    metadata.create_all(engine)
    frame = synthetic_day(DAY0, citizens=50, readings=1_000, seed=2)
    write_readings(engine, table, frame)
    loaded = load_readings(engine, _table_select(table))
    assert loaded.schema == pl.Schema(READING_SCHEMA)
    assert loaded.sort(list(READING_SCHEMA)).equals(frame.sort(list(READING_SCHEMA)))


def test_snapshot_encodes_units_and_drops_non_finite_values() -> None:
    frame = pl.DataFrame(
        {
            "unit": ["alice", "alice", "bob", "carol"],
            "stream": ["s.a", "s.a", "s.b", "s.a"],
            "district": ["north", "north", "east", "east"],
            "ts_ns": [DAY0, DAY0 + 60_000_000_000, DAY0, DAY0],
            "value": [1.0, math.nan, 2.0, math.inf],
        }
    )
    with snapshot_of(frame) as snap:
        assert snap.streams == ["s.a", "s.b"] and snap.rows == 2
        a = snap.scan("s.a").collect()
        assert a.schema["unit"] == pl.UInt32 and a.height == 1
        assert "alice" not in str(a.to_dicts())
        assert snap.scan("s.unknown").collect().height == 0
        path = next(iter(snap.files.values()))
    assert not path.exists()


def test_service_over_the_consent_contract(engine: sa.Engine) -> None:
    import consent
    from consent import tables as ct

    ct.create_schema(engine)
    create_schema(engine)
    frame = synthetic_day(DAY0, citizens=60, readings=2_000, seed=4).filter(
        pl.col("stream") == "vehicle.location"
    )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ct.readings),
            [
                {
                    **r,
                    "stream": "city.traffic_count",
                    "category": "cvx:NonPersonalEnvironmental",
                    "grant_set_id": None,
                }
                for r in frame.to_dicts()
            ],
        )

    def factory(start_ns: int, end_ns: int) -> sa.Select[tuple[object, ...]]:
        return consent.analytics_readings_select(
            recipient="analytics", purpose="dpv:ProvideOfficialStatistics", start_ns=start_ns, end_ns=end_ns
        )

    service = Analytics(engine, SelectSource(engine, [factory]), DISTRICTS, BudgetPolicy(analyst_rho=1.0))
    loaded = service.source.load(streams=["city.traffic_count"], start_ns=DAY0, end_ns=DAY0 + DAY_NS)
    assert loaded.height == frame.height
    release = service.submit(count_query(rho=0.5) | {"stream": "city.traffic_count"}, "alice").release
    estimates = [e for c in release.body["cells"] for e in c["estimates"]]
    total = sum(e["value"] for e in estimates)
    query = service.parse(count_query(rho=0.5) | {"stream": "city.traffic_count"})
    with snapshot_of(loaded) as snap:
        bounded = bounded_rows(snap.scan("city.traffic_count"), query).select(pl.len()).collect().item()
    assert 0 < bounded < frame.height  # the contribution bounds bind on this data
    # six independent cells, each within its 95% accuracy; 1.5x their sum is > 7 sd for the total
    assert abs(total - bounded) <= 1.5 * sum(e["accuracy_95"] for e in estimates)


def test_rewards_paid_from_the_consent_tables(engine: sa.Engine) -> None:
    from analytics import consent_rewards_select
    from consent import tables as ct

    ct.create_schema(engine)
    minute = 60_000_000_000
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ct.batches),
            [
                {
                    "batch_id": i,
                    "device_id": f"dev-{i}",
                    "received_ns": DAY0 + i * minute + 7,
                    "readings": 3,
                    "accepted": 3,
                    "dropped": 0,
                }
                for i in range(1, 4)
            ],
        )
        conn.execute(
            sa.insert(ct.batch_counts),
            [
                {
                    "batch_id": i,
                    "category": "pd:Location",
                    "unit": f"citizen-{i % 2}",
                    "accepted": 3,
                    "dropped_no_consent": 0,
                    "dropped_future": 0,
                    "reward_micros": 1500 * i,
                    "reward_state": "paid" if i < 3 else "pending",
                    "reward_attempt": 0,
                }
                for i in range(1, 4)
            ],
        )
    loaded = SelectSource(engine, [consent_rewards_select]).load(
        streams=None, start_ns=DAY0, end_ns=DAY0 + DAY_NS
    )
    assert sorted(loaded.get_column("value").to_list()) == [0.0015, 0.003]
    assert set(loaded.get_column("stream")) == {"rewards.paid"}
    assert all(ts % minute == 0 for ts in loaded.get_column("ts_ns"))
