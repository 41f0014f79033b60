"""Analytics benchmark: the daily DP dashboard end to end, and the cost of privacy for one ad-hoc query.

    python -m bench analytics [--quick] [--db URL]

1. Setup (not timed): a synthetic city day (1,000,000 readings from 10,000 citizens; --quick:
   100,000 from 1,000) written to a readings table with the analytics contract's columns.
2. Dashboard: from an empty release store, load the day's readings from SQL, make every standard
   release with OpenDP (charging the budget), and render the HTML page. Then the same page again,
   re-served from the release store.
3. Ad-hoc grouped mean (mean household energy per district over the day): the DP release
   (contribution bounding, noise from a reused calibrated scale, OpenDP's accuracy summary) vs a
   plain Polars group-by mean without DP, both over the same snapshot file; median of repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from analytics import Analytics, BudgetPolicy, SelectSource, create_schema, snapshot_of
from analytics import tables as analytics_tables
from analytics.dashboard import build_dashboard
from analytics.data import DAY_NS
from analytics.measurements import bounded_rows, measure
from analytics.queries import parse_query
from analytics.standard import PUBLIC_ANALYST
from analytics.synthetic import DISTRICTS, synthetic_day, synthetic_readings_table, write_readings
from identity.sql import open_engine

DAY = 20_410 * DAY_NS  # 2025-11-18


def _median_time(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _adhoc(metric_group: list[str]) -> dict[str, Any]:
    return {
        "metric": "mean",
        "stream": "home.energy_kwh",
        "group_by": metric_group,
        "start_ns": DAY,
        "end_ns": DAY + DAY_NS,
        "bounds": {
            "rows_per_cell": 24 if metric_group == ["district"] else 1,
            "cells_per_unit": 1 if metric_group == ["district"] else 24,
            "value_min": 0.0,
            "value_max": 5.0,
        },
        "privacy": {"rho": 0.05},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench analytics", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 readings from 1,000 citizens")
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    readings, citizens = (100_000, 1_000) if args.quick else (1_000_000, 10_000)

    with tempfile.TemporaryDirectory(prefix="civitas-bench-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = open_engine(url, synchronous_full=False)
        metadata = sa.MetaData()
        table = synthetic_readings_table(metadata, "bench_readings")
        metadata.drop_all(engine)
        for t in reversed(analytics_tables.TABLES):
            t.drop(engine, checkfirst=True)
        metadata.create_all(engine)
        create_schema(engine)
        t0 = time.perf_counter()
        day = synthetic_day(DAY, citizens=citizens, readings=readings, seed=11)
        write_readings(engine, table, day)
        setup_s = time.perf_counter() - t0
        print(
            f"setup: {day.height:,} readings from {citizens:,} citizens written to {engine.dialect.name} in {setup_s:.1f}s"
        )

        def select_for(start_ns: int, end_ns: int) -> sa.Select[Any]:
            return sa.select(
                table.c.unit, table.c.stream, table.c.district, table.c.ts_ns, table.c.value
            ).where(table.c.ts_ns >= start_ns, table.c.ts_ns < end_ns)

        service = Analytics(
            engine,
            SelectSource(engine, [select_for]),
            DISTRICTS,
            BudgetPolicy(analysts={PUBLIC_ANALYST: 0.5}),
        )
        t0, c0 = time.perf_counter(), time.process_time()
        page = build_dashboard(service, DAY)
        dashboard_s, dashboard_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        again = build_dashboard(service, DAY)
        cached_s = time.perf_counter() - t0
        if again.count('class="series"') != page.count('class="series"'):
            raise RuntimeError("re-served dashboard differs")
        t0 = time.perf_counter()
        loaded = service.source.load(streams=None, start_ns=DAY, end_ns=DAY + DAY_NS)
        load_all_s = time.perf_counter() - t0
        print(
            f"dashboard (load from SQL + 5 OpenDP releases + budget charges + render): {dashboard_s:.2f}s; "
            f"re-served: {cached_s * 1000:.0f} ms; page {len(page) / 1024:.0f} KiB\n"
            f"  CPU time of the first build (all threads): {dashboard_cpu_s:.2f}s; machine load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times inflate when the machine is busy)"
        )
        print(
            f"  (loading all {loaded.height:,} readings alone: {load_all_s:.2f}s; the dashboard loads only its streams)"
        )

        with snapshot_of(loaded) as snap:
            results: dict[str, float] = {}
            for label, group in (("district", ["district"]), ("district+hour", ["district", "hour"])):
                query = parse_query(_adhoc(group))
                frame = snap.scan(query.stream)
                t0 = time.perf_counter()
                measure(frame, query, DISTRICTS)
                cold_s = time.perf_counter() - t0
                dp_s = _median_time(lambda q=query, f=frame: measure(f, q, DISTRICTS), args.repeats)
                by = [c for c in group]
                plain_s = _median_time(
                    lambda f=frame, b=by: f.group_by(b).agg(pl.col("value").mean()).collect(), args.repeats
                )
                bounded_s = _median_time(
                    lambda f=frame, q=query, b=by: (
                        bounded_rows(f, q).group_by(b).agg(pl.col("value").clip(0.0, 5.0).mean()).collect()
                    ),
                    args.repeats,
                )
                results[label] = dp_s / plain_s
                print(
                    f"ad-hoc mean energy by {label}: DP {dp_s * 1000:.0f} ms (first, calibrating: {cold_s * 1000:.0f} ms) "
                    f"vs plain Polars group-by {plain_s * 1000:.0f} ms -> {dp_s / plain_s:.1f}x\n"
                    f"  of which contribution bounding (the same truncation in plain Polars, no noise): "
                    f"{bounded_s * 1000:.0f} ms ({bounded_s / plain_s:.1f}x plain); OpenDP noise, accounting and "
                    f"summary: {(dp_s - bounded_s) * 1000:.0f} ms"
                )
                if label == "district":
                    adhoc = (dp_s, plain_s, cold_s, bounded_s)
        print(
            "  compared: OpenDP release (truncation to the contribution bounds, clamping, noisy sum and count,\n"
            "  accuracy summary; noise scale reused from the cache) vs a plain Polars mean; both scan the same\n"
            "  snapshot file of the stream; budget bookkeeping excluded from both."
        )
        if args.db:  # leave a shared database as it was found
            metadata.drop_all(engine)
            for t in reversed(analytics_tables.TABLES):
                t.drop(engine, checkfirst=True)
        engine.dispose()
    print(
        json.dumps(
            {
                "area": "analytics",
                "backend": engine.dialect.name,
                "readings": readings,
                "citizens": citizens,
                "dashboard_s": round(dashboard_s, 3),
                "dashboard_cpu_s": round(dashboard_cpu_s, 3),
                "load_average": round(os.getloadavg()[0], 2),
                "dashboard_reserved_s": round(cached_s, 4),
                "adhoc_dp_s": round(adhoc[0], 4),
                "adhoc_plain_s": round(adhoc[1], 4),
                "adhoc_dp_first_s": round(adhoc[2], 4),
                "adhoc_dp_over_plain_ratio": round(adhoc[0] / adhoc[1], 2),
                "adhoc_bounding_only_over_plain_ratio": round(adhoc[3] / adhoc[1], 2),
                "adhoc_district_hour_ratio": round(results["district+hour"], 2),
            }
        )
    )
    return 0
