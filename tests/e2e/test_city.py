"""The demo's seeded city model and simulated clock (no service needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from civitas.demo.city import AFTERNOON, CONSENT_OFFERS, CREDENTIAL_TYPES, MORNING, City
from civitas.demo.clock import HOUR_NS, DayClock, simulated_day
from civitas.demo.runner import MARKER, DemoError, prepare_data_dir
from consent.minimise import DEFAULT_GRID
from consent.vocab import STREAMS


def test_same_seed_same_city() -> None:
    a, b = City(3, 40), City(3, 40)
    assert a.citizens == b.citizens
    assert [d.readings(MORNING) for d in a.devices()] == [d.readings(MORNING) for d in b.devices()]
    assert [a.trips(c) for c in a.citizens] == [b.trips(c) for c in b.citizens]


def test_a_small_city_is_a_prefix_of_a_larger_one() -> None:
    small, large = City(5, 10), City(5, 60)
    assert small.citizens == large.citizens[:10]
    assert City(6, 10).citizens != small.citizens


def test_citizens_are_plausible() -> None:
    city = City(11, 300)
    day = dt.date(2026, 6, 1)
    ages = [c.age_on(day) for c in city.citizens]
    assert min(ages) >= 17 and max(ages) < 100
    assert 0.15 < sum(a >= 65 for a in ages) / len(ages) < 0.45
    for c in city.citizens:
        assert c.district in DEFAULT_GRID.names
        assert DEFAULT_GRID.district_of(*c.home) == c.district
        assert set(c.withdraws) <= set(c.consents) <= {o.key for o in CONSENT_OFFERS}
        assert set(c.credential_claims()) == set(CREDENTIAL_TYPES)
        if c.active_categories(afternoon=True):
            assert c.active_categories(afternoon=True) <= c.active_categories(afternoon=False)


def test_readings_are_valid_and_inside_their_window() -> None:
    city = City(2, 30)
    for device in city.devices():
        for window in (MORNING, AFTERNOON):
            for r in device.readings(window):
                assert window[0] <= r.offset_ns < window[1]
                assert r.stream in STREAMS and r.stream in device.streams
                assert DEFAULT_GRID.lat_min <= r.lat < DEFAULT_GRID.lat_max


def test_fare_checks_skip_birthdays_at_the_threshold() -> None:
    city = City(1, 2000)
    day = dt.date(2026, 3, 15)
    for c in city.fare_checks(day):
        assert c.fare_check
        assert len({c.senior_on(day + dt.timedelta(days=d)) for d in (-1, 0, 1, 2)}) == 1


def test_day_clock_runs_jumps_forward_only_and_is_shared(tmp_path: Path) -> None:
    day = simulated_day(dt.date(2026, 11, 21))
    assert day == dt.date(2026, 11, 20)
    clock = DayClock.create(tmp_path / "clock", day)
    reader = DayClock.attach(tmp_path / "clock")
    start = clock.offset_ns()
    assert 6 * HOUR_NS <= start < 6 * HOUR_NS + 60 * 10**9
    clock.advance_to(12 * HOUR_NS)
    assert 12 * HOUR_NS <= reader.offset_ns() < 12 * HOUR_NS + 60 * 10**9
    before = clock()
    clock.advance_to(7 * HOUR_NS)  # never backwards
    assert clock() >= before
    assert reader.day == day and reader.at(0) == clock.day_start_ns
    with pytest.raises(PermissionError):
        reader.advance_to(13 * HOUR_NS)
    reader.close()
    clock.close()


def test_data_dir_is_recreated_but_foreign_dirs_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    prepare_data_dir(target)
    (target / "leftover").write_text("x")
    prepare_data_dir(target)
    assert (target / MARKER).exists() and not (target / "leftover").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(DemoError):
        prepare_data_dir(foreign)
    assert (foreign / "precious.txt").read_text() == "keep"


def test_data_dir_of_a_running_demo_is_left_alone(tmp_path: Path) -> None:
    import subprocess
    import sys

    target = tmp_path / "busy"
    target.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (target / MARKER).write_text(f"created by `civitas demo`\npid {other.pid}\n")
        with pytest.raises(DemoError, match="still using"):
            prepare_data_dir(target)
        assert (target / MARKER).exists()
    finally:
        other.kill()
        other.wait()
    prepare_data_dir(target)  # its owner is gone: recreated
    assert (target / MARKER).exists()
