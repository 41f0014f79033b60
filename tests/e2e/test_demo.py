"""End to end: a small `civitas demo` city day through the real HTTP API, every figure checked
against the seeded city model, then the ledger audit."""

from __future__ import annotations

import datetime as dt
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from civitas import cli
from civitas.demo.city import AFTERNOON, MORNING, City
from civitas.demo.server import REWARD_RATES_MICROS
from consent.vocab import STREAMS

CITIZENS = 50
SEED = 7


def _run_demo(data_dir: Path) -> dict[str, Any]:
    argv = ["--citizens", str(CITIZENS), "--seed", str(SEED), "--json", "--data-dir", str(data_dir)]
    out = io.StringIO()
    if "civitas.demo" in cli.COMMAND_MODULES:
        with redirect_stdout(out):
            code = cli.main(["demo", *argv])
        assert code == 0, out.getvalue()[-2000:]
    else:
        from civitas.demo import run_demo
        from civitas.demo.runner import DemoOptions

        with redirect_stdout(out):
            summary = run_demo(DemoOptions(citizens=CITIZENS, seed=SEED, data_dir=data_dir, json=True))
        assert summary.ok, summary.error
    parsed: dict[str, Any] = json.loads(out.getvalue())
    return parsed


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_dir = tmp_path_factory.mktemp("demo") / "city"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CIVITAS_DATA_DIR", str(data_dir.parent))
        mp.delenv("CIVITAS_DATABASE_URL", raising=False)
        summary = _run_demo(data_dir)
    summary["_data_dir"] = data_dir
    return summary


@pytest.fixture(scope="module")
def city() -> City:
    return City(SEED, CITIZENS)


def phase(demo: dict[str, Any], name: str) -> dict[str, Any]:
    skipped = {s["phase"]: s["reason"] for s in demo["skipped"]}
    if name in skipped:
        pytest.skip(f"{name}: {skipped[name]}")
    figures: dict[str, Any] = demo["phases"][name]
    return figures


def test_summary_shape(demo: dict[str, Any]) -> None:
    assert demo["ok"] is True and demo["error"] is None
    assert demo["citizens"] == CITIZENS and demo["seed"] == SEED
    assert demo["dashboard_url"].startswith("http://127.0.0.1:")
    for skipped in demo["skipped"]:
        # A phase is only ever skipped because an area's API is missing, never faked.
        assert skipped["reason"].endswith("API not available") or skipped["reason"].startswith("needs ")
        assert skipped["phase"] not in demo["phases"]


def test_totals(demo: dict[str, Any]) -> None:
    totals, phases = demo["totals"], demo["phases"]
    if "credentials" in phases:
        assert totals["credentials_issued"] == phases["credentials"]["credentials_issued"]
    if "morning" in phases and "afternoon" in phases:
        assert totals["readings_accepted"] + totals["readings_dropped"] == totals["readings_sent"]
    if "audit" in phases:
        assert totals["audit_passed"] is True
        assert totals["ledger_transfers"] == phases["audit"]["transfers"]
    if "fares" in phases:
        assert totals["eligibility_refused"] == phases["fares"]["refused_not_eligible"]
    for name in totals:
        assert not name.startswith("_")


def test_setup(demo: dict[str, Any], city: City) -> None:
    fig = phase(demo, "setup")
    assert fig["citizens"] == CITIZENS
    assert fig["devices"] == sum(1 for _ in city.devices())


def test_credentials(demo: dict[str, Any]) -> None:
    fig = phase(demo, "credentials")
    types = fig["credential_types"]
    assert types >= 1
    assert fig["offers"] == CITIZENS * types
    assert fig["credentials_issued"] == CITIZENS * types
    assert fig["credential_copies"] >= fig["credentials_issued"]


def test_public_sensors(demo: dict[str, Any], city: City) -> None:
    fig = phase(demo, "sensors")
    assert fig["public_sensors"] == sum(1 for d in city.devices() if d.kind == "public")


def expected_window(city: City, window: tuple[int, int], *, afternoon: bool) -> dict[str, int]:
    """What consent should let through in one window, from the city model alone."""
    out = {"sent": 0, "accepted": 0, "rewards": 0, "reward_transfers": 0}
    for device in city.devices():
        if device.owner is None:
            continue
        active = city.citizens[device.owner].active_categories(afternoon=afternoon)
        accepted: dict[str, int] = {}
        for r in device.readings(window):
            out["sent"] += 1
            category = STREAMS[r.stream]
            if category in active:
                accepted[category] = accepted.get(category, 0) + 1
        out["accepted"] += sum(accepted.values())
        out["rewards"] += sum(n * REWARD_RATES_MICROS.get(cat, 0) for cat, n in accepted.items())
        out["reward_transfers"] += sum(1 for cat in accepted if REWARD_RATES_MICROS.get(cat, 0))
    return out


@pytest.mark.parametrize(("name", "window"), [("morning", MORNING), ("afternoon", AFTERNOON)])
def test_readings(demo: dict[str, Any], city: City, name: str, window: tuple[int, int]) -> None:
    fig = phase(demo, name)
    public = sum(len(d.readings(window)) for d in city.devices() if d.kind == "public")
    assert fig["readings_accepted"] + fig["readings_dropped"] == fig["readings_sent"]
    assert fig["public_accepted"] == public  # public sensors need no consent
    assert fig["readings_accepted"] == fig["public_accepted"] + fig["personal_accepted"]
    assert fig["readings_sent"] == public + fig["personal_sent"]
    if "consent" not in demo["phases"]:
        assert fig["personal_sent"] == 0
        return
    expected = expected_window(city, window, afternoon=name == "afternoon")
    assert fig["personal_sent"] == expected["sent"]
    # A reading flows only under an active consent for its category; withdrawals at 12:30 stop
    # the afternoon's readings of those categories.
    assert fig["personal_accepted"] == expected["accepted"]
    if "accounts" in demo["phases"]:
        assert fig["rewards_paid_micros"] == expected["rewards"]


def test_withdrawals_drop_readings(demo: dict[str, Any], city: City) -> None:
    morning, afternoon = phase(demo, "morning"), phase(demo, "afternoon")
    phase(demo, "withdrawals")
    withdrawn = [c for c in city.citizens if c.withdraws and c.consents]
    assert withdrawn
    lost = sum(
        1
        for c in withdrawn
        for d in city.devices()
        if d.owner == c.index
        for r in d.readings(AFTERNOON)
        if STREAMS[r.stream] in c.active_categories(afternoon=False) - c.active_categories(afternoon=True)
    )
    assert lost > 0
    assert afternoon["readings_dropped"] >= lost
    assert morning["personal_accepted"] > 0


def test_accounts(demo: dict[str, Any], city: City) -> None:
    fig = phase(demo, "accounts")
    evs = sum(1 for c in city.citizens if c.has_ev)
    assert fig["sign_ins"] == CITIZENS
    assert fig["accounts_opened"] == CITIZENS
    assert fig["allowances_delegated"] == evs
    assert fig["top_ups"] == evs


def test_consent(demo: dict[str, Any], city: City) -> None:
    fig = phase(demo, "consent")
    assert fig["consent_records_given"] == sum(len(c.consents) for c in city.citizens)
    assert fig["personal_devices"] == sum(1 for d in city.devices() if d.owner is not None)
    withdrawals = phase(demo, "withdrawals")
    assert withdrawals["consent_records_withdrawn"] == sum(len(c.withdraws) for c in city.citizens)
    assert withdrawals["citizens_withdrawing"] == sum(1 for c in city.citizens if c.withdraws)


@pytest.mark.parametrize(("name", "trip"), [("tolls-morning", 0), ("tolls-evening", 1)])
def test_tolls(demo: dict[str, Any], city: City, name: str, trip: int) -> None:
    fig = phase(demo, name)
    trips = [t for c in city.citizens for t in city.trips(c) if t.index == trip]
    assert fig["tolls_authorised"] == len(trips) > 0
    assert fig["tolls_voided"] == sum(1 for t in trips if t.settled_micros == 0)
    assert fig["tolls_settled"] == len(trips) - fig["tolls_voided"]
    assert fig["toll_revenue_micros"] == sum(t.settled_micros for t in trips)


def test_rewards(demo: dict[str, Any], city: City) -> None:
    fig = phase(demo, "rewards")
    expected = sum(
        expected_window(city, w, afternoon=a)["rewards"] for w, a in ((MORNING, False), (AFTERNOON, True))
    )
    assert expected > 0
    assert fig["rewards_paid_micros"] == fig["rewards_reported_micros"] == expected
    assert fig["rewards_match"] is True


def test_senior_fares(demo: dict[str, Any], city: City) -> None:
    fig = phase(demo, "fares")
    day = dt.date.fromisoformat(demo["day"])
    checked = city.fare_checks(day)
    seniors = sum(1 for c in checked if c.senior_on(day))
    assert fig["citizens_checked"] == len(checked) > 0
    assert fig["eligible"] == seniors
    assert fig["refused_not_eligible"] == len(checked) - seniors
    assert fig["presentations_verified"] == len(checked)
    assert fig["presentations_refused"] == 0 and fig["declined_by_wallet"] == 0


def test_dashboard(demo: dict[str, Any]) -> None:
    fig = phase(demo, "dashboard")
    assert fig["releases"] >= 1
    assert 0 < fig["budget_spent_rho"] <= fig["budget_limit_rho"]
    assert fig["dashboard_bytes"] > 1000


def test_city_accounts(demo: dict[str, Any]) -> None:
    fig = phase(demo, "ledger")
    assert fig["city_accounts"] == 3
    assert fig["incentive_budget_micros"] > 0


@pytest.mark.parametrize("name", ["witness-noon", "witness-night"])
def test_witnesses_cosign(demo: dict[str, Any], name: str) -> None:
    fig = phase(demo, name)
    assert fig["witnesses"] == fig["cosignatures"] >= 2
    assert fig["quorum_verified"] is True
    assert fig["tree_size"] >= 1


def test_witnesses_see_the_log_grow(demo: dict[str, Any]) -> None:
    noon, night = phase(demo, "witness-noon"), phase(demo, "witness-night")
    assert night["tree_size"] >= noon["tree_size"]


def test_ledger_audit(demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fig = phase(demo, "audit")
    assert fig["audit_passed"] is True
    assert fig["transfers"] == fig["tree_size"]
    if all(p in demo["phases"] for p in ("ledger", "accounts", "consent", "tolls-morning", "tolls-evening")):
        city = City(SEED, CITIZENS)
        trips = sum(len(city.trips(c)) for c in city.citizens)
        reward_transfers = sum(
            expected_window(city, w, afternoon=a)["reward_transfers"]
            for w, a in ((MORNING, False), (AFTERNOON, True))
        )
        evs = sum(1 for c in city.citizens if c.has_ev)
        # funding + top-ups + a hold and its post/void per trip + one reward per (batch, category)
        assert fig["transfers"] == 1 + evs + 2 * trips + reward_transfers
    if "civitas.cli_ledger" not in cli.COMMAND_MODULES:
        pytest.skip("the `civitas ledger` commands are not registered")
    # The operator's own audit command, run afterwards against the demo's data dir.
    monkeypatch.setenv("CIVITAS_DATA_DIR", str(demo["_data_dir"]))
    monkeypatch.setenv("CIVITAS_PUBLIC_URL", demo["base_url"])  # the log's origin names the service
    monkeypatch.delenv("CIVITAS_DATABASE_URL", raising=False)
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(["ledger", "audit", "--json"])
    assert code == 0, out.getvalue()[-2000:]
    report = json.loads(out.getvalue())
    assert report["ok"] is True
    assert report["transfers"] == fig["transfers"]
