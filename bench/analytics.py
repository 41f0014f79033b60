"""Analytics benchmark: the daily DP dashboard end to end, and the cost of privacy for one ad-hoc query.

    python -m bench analytics [--quick] [--db URL]

1. Setup (not timed): a synthetic city day (1,000,000 readings from 10,000 citizens; --quick:
   100,000 from 1,000) written to a readings table with the analytics contract's columns.
2. Dashboard: from an empty release store and an empty snapshot cache, load the day's readings
   from SQL, bound each release's contributions, make every standard release with OpenDP
   (charging the budget), and render the HTML page. Then the same page again, re-served from the
   release store.
3. Ad-hoc grouped mean (mean household energy per district over the day) on the day snapshot the
   service keeps: the DP release (OpenDP plan over the snapshot's bounded rows, which were made
   once per bounds: clamping, noisy sum and count, OpenDP's accuracy summary, noise scale from the
   cache) vs a plain Polars group-by mean without DP over the raw snapshot file of the stream;
   median of repeats. Also: the first query with new bounds (it bounds the snapshot) and the
   whole service call (budget transaction and release store included).
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

from analytics import Analytics, BudgetPolicy, SelectSource, create_schema
from analytics import tables as analytics_tables
from analytics.bounding import bounded_snapshot
from analytics.dashboard import build_dashboard
from analytics.data import DAY_NS
from analytics.measurements import measure
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


def _adhoc(metric_group: list[str], rows_per_cell: int | None = None, rho: float = 0.05) -> dict[str, Any]:
    return {
        "metric": "mean",
        "stream": "home.energy_kwh",
        "group_by": metric_group,
        "start_ns": DAY,
        "end_ns": DAY + DAY_NS,
        "bounds": {
            "rows_per_cell": rows_per_cell or (24 if metric_group == ["district"] else 1),
            "cells_per_unit": 1 if metric_group == ["district"] else 24,
            "value_min": 0.0,
            "value_max": 5.0,
        },
        "privacy": {"rho": rho},
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

        def changed(conn: sa.Connection, start_ns: int, end_ns: int) -> Any:
            return tuple(conn.execute(sa.select(sa.func.count(), sa.func.max(table.c.id))).one())

        service = Analytics(
            engine,
            SelectSource(engine, [select_for], change_marker=changed),
            DISTRICTS,
            BudgetPolicy(analysts={PUBLIC_ANALYST: 0.5, "bench": 1.0}),
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

        with service.snapshot(["home.energy_kwh"], DAY, DAY + DAY_NS) as snap:
            results: dict[str, float] = {}
            for label, group in (("district", ["district"]), ("district+hour", ["district", "hour"])):
                query = parse_query(_adhoc(group))
                frame = snap.scan(query.stream)
                t0 = time.perf_counter()
                measure(bounded_snapshot(snap, query), query, DISTRICTS)
                first_s = time.perf_counter() - t0
                dp_s = _median_time(
                    lambda q=query: measure(bounded_snapshot(snap, q), q, DISTRICTS), args.repeats
                )
                by = list(group)
                plain_s = _median_time(
                    lambda f=frame, b=by: f.group_by(b).agg(pl.col("value").mean()).collect(), args.repeats
                )
                bounded = bounded_snapshot(snap, query)
                bounded_plain_s = _median_time(
                    lambda b=by, bf=bounded: (
                        bf.scan().group_by(b).agg(pl.col("value").clip(0.0, 5.0).sum(), pl.len()).collect()
                    ),
                    args.repeats,
                )
                results[label] = dp_s / plain_s
                print(
                    f"ad-hoc mean energy by {label}: DP {dp_s * 1000:.1f} ms vs plain Polars group-by "
                    f"{plain_s * 1000:.1f} ms -> {dp_s / plain_s:.1f}x (first query on this snapshot with these "
                    f"bounds: {first_s * 1000:.0f} ms{', bounded rows made by the dashboard' if label == 'district' else ''})\n"
                    f"  plain Polars clamped sum and count over the same bounded rows: {bounded_plain_s * 1000:.1f} ms; "
                    f"OpenDP plan, noise and accuracy summary on top: {(dp_s - bounded_plain_s) * 1000:.1f} ms"
                )
                if label == "district":
                    adhoc = (dp_s, plain_s, first_s, bounded_plain_s)
            new_bounds = parse_query(_adhoc(["district"], rows_per_cell=12))
            t0 = time.perf_counter()
            bounded_snapshot(snap, new_bounds)
            bounding_s = time.perf_counter() - t0
            new_bounds_s = bounding_s + _median_time(
                lambda: measure(bounded_snapshot(snap, new_bounds), new_bounds, DISTRICTS), 1
            )
        submit_times = []
        for i in range(args.repeats):
            query_raw = _adhoc(["district"], rho=0.01 + i * 1e-4)  # a new query each time (no re-serve)
            t0 = time.perf_counter()
            outcome = service.submit(query_raw, "bench")
            submit_times.append(time.perf_counter() - t0)
            if outcome.reused:
                raise RuntimeError("ad-hoc query was re-served")
        submit_s = statistics.median(submit_times)
        print(
            f"  first query with new bounds (12 rows/cell): {new_bounds_s * 1000:.0f} ms, of which bounding the "
            f"snapshot once: {bounding_s * 1000:.0f} ms\n"
            f"  whole service call for a new ad-hoc release (kept snapshot and bounded rows, new rho so the noise "
            f"scale is calibrated, budget transaction, release stored): {submit_s * 1000:.0f} ms\n"
            "  compared: the DP path is OpenDP's measurement over the bounded rows of the kept day snapshot (per\n"
            "  citizen at most 24 readings in one district, bounded once per snapshot and bounds; OpenDP is told\n"
            "  these bounds and clamps values into 0-5 kWh, adds noise to the sum and the count, and states their\n"
            "  accuracy) vs a plain Polars group-by mean over the raw snapshot file of the stream (no bounds, no\n"
            "  clamping, no noise). Loading from SQL and budget bookkeeping are excluded from both."
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
                "adhoc_bounded_plain_over_plain_ratio": round(adhoc[3] / adhoc[1], 2),
                "adhoc_new_bounds_s": round(new_bounds_s, 4),
                "adhoc_service_submit_s": round(submit_s, 4),
                "adhoc_district_hour_ratio": round(results["district+hour"], 2),
            }
        )
    )
    return 0
