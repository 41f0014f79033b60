"""Analyst API and public dashboard over HTTP: releases, CSV, budgets, 409 over budget, scopes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import consent
from analytics import Analytics, BudgetPolicy, FrameSource
from analytics.data import DAY_NS
from analytics.standard import PUBLIC_ANALYST
from analytics.synthetic import DISTRICTS, synthetic_day
from analytics.tables import TABLES
from civitas.routers import analytics as analytics_router

from .conftest import TokenFor, bearer

DAY0 = (time.time_ns() // DAY_NS - 3) * DAY_NS  # a settled day within the dashboard's window
DAY_LABEL = dt.datetime.fromtimestamp(DAY0 // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%d")


def _ensure_router(app: FastAPI) -> None:
    """Include the analytics router if the app does not register it (yet)."""
    if not any(getattr(r, "path", None) == "/analytics/queries" for r in app.routes):
        analytics_router.setup(app)
        app.include_router(analytics_router.router)


@pytest.fixture
def city(app: FastAPI) -> pl.DataFrame:
    _ensure_router(app)
    frame = synthetic_day(DAY0, citizens=300, readings=15_000, seed=5)
    app.state.analytics = Analytics(
        app.state.engine,
        FrameSource(frame),
        DISTRICTS,
        BudgetPolicy(dataset_rho=1.0, analyst_rho=0.2, analysts={PUBLIC_ANALYST: 0.5}),
        clock=app.state.clock,
    )
    return frame


def _query(rho: float = 0.05, rows: int = 3) -> dict[str, Any]:
    return {
        "metric": "count",
        "stream": "vehicle.location",
        "group_by": ["district", "hour"],
        "start_ns": DAY0,
        "end_ns": DAY0 + DAY_NS,
        "bounds": {"rows_per_cell": rows, "cells_per_unit": 6},
        "privacy": {"rho": rho},
    }


def _state(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    with app.state.engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in TABLES}


def test_query_release_and_reserve(client: TestClient, token_for: TokenFor, city: pl.DataFrame) -> None:
    headers = bearer(token_for("analytics:query"))
    first = client.post("/analytics/queries", json=_query(), headers=headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert first.headers["Location"] == f"/analytics/releases/{body['id']}"
    assert first.headers["Civitas-Release-Reused"] == "false"
    assert len(body["cells"]) == len(DISTRICTS) * 24
    assert body["privacy"]["rho"] <= 0.05 and body["privacy"]["epsilon"] > 0
    cell = body["cells"][0]
    assert set(cell) == {"district", "hour", "estimates"}
    assert cell["estimates"][0]["accuracy_95"] > 0
    again = client.post("/analytics/queries", json=_query(), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert again.headers["Civitas-Release-Reused"] == "true"
    budget = client.get("/analytics/budget", params={"day": DAY_LABEL}, headers=headers).json()
    assert budget["analyst_budget"]["spent_rho"] == pytest.approx(0.05)
    assert budget["dataset_budget"]["remaining_rho"] == pytest.approx(0.95)
    assert budget["period"] == DAY_LABEL


def test_release_json_and_csv(client: TestClient, token_for: TokenFor, city: pl.DataFrame) -> None:
    headers = bearer(token_for("analytics:query"))
    created = client.post("/analytics/queries", json=_query(), headers=headers).json()
    got = client.get(f"/analytics/releases/{created['id']}", headers=headers)
    assert got.status_code == 200 and got.json() == created
    as_csv = client.get(f"/analytics/releases/{created['id']}", params={"format": "csv"}, headers=headers)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == len(created["cells"]) and {"accuracy_95", "rho", "epsilon"} <= set(rows[0])
    by_accept = client.get(f"/analytics/releases/{created['id']}", headers={**headers, "Accept": "text/csv"})
    assert by_accept.text == as_csv.text
    listing = client.get("/analytics/releases", headers=headers).json()["releases"]
    assert [r["id"] for r in listing] == [created["id"]]
    listing_csv = client.get("/analytics/releases", params={"format": "csv"}, headers=headers)
    assert created["id"] in listing_csv.text
    # before_ns is a signed 64-bit timestamp: its last value pages from the top, past it is refused
    last = client.get("/analytics/releases", params={"before_ns": (1 << 63) - 1}, headers=headers)
    assert [r["id"] for r in last.json()["releases"]] == [created["id"]]
    beyond = client.get("/analytics/releases", params={"before_ns": 1 << 63}, headers=headers)
    assert beyond.status_code == 422
    assert beyond.headers["content-type"].startswith("application/problem+json")
    missing = client.get("/analytics/releases/00000000-0000-0000-0000-000000000000", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_over_budget_is_409_problem_and_changes_nothing(
    app: FastAPI, client: TestClient, token_for: TokenFor, city: pl.DataFrame
) -> None:
    headers = bearer(token_for("analytics:query"))
    assert client.post("/analytics/queries", json=_query(rho=0.15), headers=headers).status_code == 201
    before = _state(app)
    refused = client.post("/analytics/queries", json=_query(rho=0.1, rows=4), headers=headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("privacy-budget-exceeded")
    assert "rho=0.05 remaining" in problem["detail"]
    assert min(problem["remaining_rho"].values()) == pytest.approx(0.05)
    assert problem["requested_rho"] == pytest.approx(0.1)
    assert _state(app) == before


def test_invalid_query_and_scopes(client: TestClient, token_for: TokenFor, city: pl.DataFrame) -> None:
    headers = bearer(token_for("analytics:query"))
    bad = client.post("/analytics/queries", json={**_query(), "metric": "max"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-query")
    wrong = bearer(token_for("sensors:read"))
    assert client.post("/analytics/queries", json=_query(), headers=wrong).status_code == 403
    assert client.get("/analytics/releases", headers=wrong).status_code == 403
    assert client.post("/analytics/queries", json=_query()).status_code == 401
    assert client.get("/analytics/budget").status_code == 401


def test_public_dashboard(app: FastAPI, client: TestClient, city: pl.DataFrame) -> None:
    page = client.get("/dashboard", params={"day": DAY_LABEL})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert DAY_LABEL in html and 'id="district-table"' in html and "<script" not in html
    assert html.count('class="series"') >= 5
    before = _state(app)
    assert client.get("/dashboard", params={"day": DAY_LABEL}).text.count('class="series"') == html.count(
        'class="series"'
    )
    assert _state(app) == before
    assert client.get("/dashboard", params={"day": "not-a-day"}).status_code == 422
    assert client.get("/dashboard", params={"day": "2999-01-01"}).status_code == 422
    assert client.get("/dashboard", params={"day": "2001-01-01"}).status_code == 422  # outside the window


def test_dashboard_over_consent_readings_in_the_database(app: FastAPI, client: TestClient) -> None:
    """The default wiring: readings from consent.analytics_readings_select (public sensors flow freely)."""
    _ensure_router(app)
    from consent import tables as ct

    ct.create_schema(app.state.engine)
    frame = synthetic_day(
        DAY0, citizens=120, readings=6_000, seed=9, districts=tuple(consent.DEFAULT_GRID.districts)
    )
    with app.state.engine.begin() as conn:
        conn.execute(
            sa.insert(ct.readings),
            [
                {**r, "category": "cvx:NonPersonalEnvironmental", "grant_set_id": None}
                for r in frame.to_dicts()
            ],
        )
    app.state.analytics = None  # built from settings on first use
    page = client.get("/dashboard", params={"day": DAY_LABEL})
    assert page.status_code == 200, page.text[:500]
    assert page.text.count('class="series"') >= 5
    for district in consent.DEFAULT_GRID.districts:  # the service's public district keys
        assert f"<td>{district}</td>" in page.text
