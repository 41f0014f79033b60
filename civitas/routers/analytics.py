"""Analyst API (differentially private queries, releases, budgets) and the public dashboard.

Scope `analytics:query` (an analyst's OAuth2 client; its client id is the analyst whose budget
is charged). Errors are problem+json: an invalid query 422, an over-budget query 409 stating
the remaining budget (nothing is charged), an unknown release 404, unavailable data 503.
`GET /dashboard` is public HTML (inline SVG, no external assets).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Annotated, Any, Final

import sqlalchemy as sa
from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

import consent
from analytics import (
    Analytics,
    BudgetExceeded,
    BudgetPolicy,
    DataError,
    InvalidQuery,
    ReleaseNotFound,
    SelectSource,
    consent_change_marker,
    consent_rewards_select,
    release_csv,
)
from analytics.dashboard import build_dashboard, day_label, render_unavailable
from analytics.data import DAY_NS
from analytics.releases import Release
from analytics.standard import PUBLIC_ANALYST
from civitas.auth import Principal, require_scope
from civitas.errors import ProblemError

router = APIRouter(tags=["analytics"])
log = logging.getLogger("civitas.analytics")

AnalystDep = Annotated[Principal, require_scope("analytics:query")]

CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
MAX_DASHBOARD_AGE_DAYS: Final = 400  # bounds the public, unauthenticated work /dashboard can trigger


def build_analytics(app: FastAPI) -> Analytics:
    """The analytics service over the consent contract's readings (plus rewards paid)."""
    settings = app.state.settings
    recipient = settings.analytics_recipient
    purpose = settings.analytics_purpose

    def readings(start_ns: int, end_ns: int) -> sa.Select[Any]:
        return consent.analytics_readings_select(
            recipient=recipient, purpose=purpose, start_ns=start_ns, end_ns=end_ns, now_ns=app.state.clock()
        )

    districts = (
        [d.strip() for d in settings.analytics_districts.split(",") if d.strip()]
        if settings.analytics_districts
        else list(consent.DEFAULT_GRID.districts)
    )
    policy = BudgetPolicy(
        dataset_rho=settings.analytics_dataset_rho_per_day,
        analyst_rho=settings.analytics_analyst_rho_per_day,
        analysts={PUBLIC_ANALYST: settings.analytics_public_rho_per_day},
    )
    engine = app.state.engine
    return Analytics(
        engine,
        SelectSource(engine, [readings, consent_rewards_select], change_marker=consent_change_marker),
        districts,
        policy,
        clock=app.state.clock,
    )


def setup(app: FastAPI) -> None:
    """Attach the analytics service holder; it is built on first use (or set by tests/demo)."""
    if not hasattr(app.state, "analytics"):
        app.state.analytics = None
    app.state.analytics_lock = threading.Lock()


def _analytics(request: Request) -> Analytics:
    state = request.app.state
    service: Analytics | None = state.analytics
    if service is None:
        with state.analytics_lock:
            if state.analytics is None:
                state.analytics = build_analytics(request.app)
            service = state.analytics
    if service is None:
        raise RuntimeError("analytics service was not built")
    return service


def _over_budget(exc: BudgetExceeded) -> ProblemError:
    return ProblemError(
        409,
        "privacy-budget-exceeded",
        "Privacy budget exceeded",
        str(exc),
        requested_rho=exc.requested_rho,
        remaining_rho=exc.remaining_rho,
    )


def _invalid(exc: InvalidQuery) -> ProblemError:
    return ProblemError(422, "invalid-query", "Invalid analytics query", str(exc))


def _unavailable(exc: DataError) -> ProblemError:
    log.warning("analytics data unavailable: %s", type(exc).__name__)
    return ProblemError(503, "analytics-data-unavailable", "Analytics data unavailable", str(exc))


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise ProblemError(422, "invalid-format", "Unknown format", "format must be json or csv")
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _summary(release: Release) -> dict[str, Any]:
    body = release.body
    privacy = body["privacy"]
    return {
        "id": release.id,
        "created": body["created"],
        "created_ns": release.created_ns,
        "requested_by": release.analyst,
        "query": body["query"],
        "query_hash": release.query_hash,
        "rho": privacy["rho"],
        "epsilon": privacy["epsilon"],
        "epsilon_delta": privacy["epsilon_delta"],
        "cells": len(body["cells"]),
        "links": {
            "self": f"/analytics/releases/{release.id}",
            "csv": f"/analytics/releases/{release.id}?format=csv",
        },
    }


@router.post(
    "/analytics/queries",
    summary="Run a differentially private query (or re-serve an identical one at no cost)",
    status_code=201,
    responses={
        200: {"description": "An identical earlier release, re-served without charge"},
        201: {"description": "A new release; the budget was charged"},
        409: {"description": "Over budget: nothing charged; the problem states the remaining budget"},
        422: {"description": "Invalid query"},
    },
)
async def post_query(
    request: Request,
    principal: AnalystDep,
    query: Annotated[dict[str, Any], Body(description="Declarative query; see specs/analytics.md")],
) -> JSONResponse:
    service = _analytics(request)
    try:
        outcome = await run_in_threadpool(service.submit, query, principal.subject)
    except InvalidQuery as exc:
        raise _invalid(exc) from exc
    except BudgetExceeded as exc:
        raise _over_budget(exc) from exc
    except DataError as exc:
        raise _unavailable(exc) from exc
    release = outcome.release
    return JSONResponse(
        release.body,
        status_code=200 if outcome.reused else 201,
        headers={
            "Location": f"/analytics/releases/{release.id}",
            "Civitas-Release-Reused": "true" if outcome.reused else "false",
        },
    )


@router.get("/analytics/releases", summary="Releases, newest first (JSON or CSV)")
async def list_releases(
    request: Request,
    principal: AnalystDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_ns: Annotated[int | None, Query(ge=0, le=(1 << 63) - 1)] = None,
    mine: bool = False,
    format: Annotated[str | None, Query(description="json (default) or csv")] = None,
) -> Response:
    service = _analytics(request)
    releases = await run_in_threadpool(
        lambda: service.releases(
            analyst=principal.subject if mine else None, limit=limit, before_ns=before_ns
        )
    )
    summaries = [_summary(r) for r in releases]
    if _wants_csv(request, format):
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "id",
                "created",
                "requested_by",
                "metric",
                "stream",
                "group_by",
                "rho",
                "epsilon",
                "epsilon_delta",
                "cells",
            ]
        )
        for s in summaries:
            q = s["query"]
            writer.writerow(
                [
                    s["id"],
                    s["created"],
                    s["requested_by"],
                    q["metric"],
                    q["stream"],
                    " ".join(q["group_by"]),
                    s["rho"],
                    s["epsilon"],
                    s["epsilon_delta"],
                    s["cells"],
                ]
            )
        return Response(out.getvalue(), media_type=CSV_MEDIA_TYPE)
    return JSONResponse({"releases": summaries})


@router.get("/analytics/releases/{release_id}", summary="One release (JSON or CSV)")
async def get_release(
    request: Request,
    release_id: str,
    principal: AnalystDep,
    format: Annotated[str | None, Query(description="json (default) or csv")] = None,
) -> Response:
    service = _analytics(request)
    try:
        release = await run_in_threadpool(service.release, release_id)
    except ReleaseNotFound as exc:
        raise ProblemError(404, "release-not-found", "No such release", f"no release {release_id}") from exc
    if _wants_csv(request, format):
        return Response(
            release_csv(release.body),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="release-{release.id}.csv"'},
        )
    return JSONResponse(release.body)


def _parse_day(day: str) -> int:
    try:
        parsed = dt.date.fromisoformat(day)
    except ValueError as exc:
        raise ProblemError(422, "invalid-day", "Invalid day", "day must be YYYY-MM-DD") from exc
    start = int(dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
    if start < 0:
        raise ProblemError(422, "invalid-day", "Invalid day", "day must be after 1970-01-01")
    return start


def _dashboard_day(day: str | None, clock_ns: int) -> int:
    """A complete UTC day in the past (default: yesterday) within the dashboard's window."""
    if day is None:
        return (clock_ns // DAY_NS - 1) * DAY_NS
    start = _parse_day(day)
    if start + DAY_NS > clock_ns:
        raise ProblemError(422, "invalid-day", "Invalid day", "day must be a complete day in the past")
    if start < clock_ns - MAX_DASHBOARD_AGE_DAYS * DAY_NS:
        raise ProblemError(
            422, "invalid-day", "Invalid day", f"the dashboard covers the last {MAX_DASHBOARD_AGE_DAYS} days"
        )
    return start


@router.get("/analytics/budget", summary="The dataset's and your privacy budget for one day of data")
async def get_budget(
    request: Request,
    principal: AnalystDep,
    day: Annotated[str | None, Query(description="YYYY-MM-DD (UTC); default: today")] = None,
) -> JSONResponse:
    service = _analytics(request)
    now = service.clock()
    start = now // DAY_NS * DAY_NS if day is None else _parse_day(day)
    return JSONResponse(await run_in_threadpool(service.budget, principal.subject, start))


@router.get(
    "/dashboard",
    summary="The public city dashboard (HTML; DP releases with error bars)",
    response_class=HTMLResponse,
    responses={409: {"description": "The day's budget cannot cover its releases"}},
)
async def dashboard(
    request: Request,
    day: Annotated[str | None, Query(description="YYYY-MM-DD (UTC); default: yesterday")] = None,
) -> HTMLResponse:
    service = _analytics(request)
    start = _dashboard_day(day, service.clock())
    label = day_label(start)
    try:
        page = await run_in_threadpool(build_dashboard, service, start)
    except BudgetExceeded:
        return HTMLResponse(
            render_unavailable(
                label, "This day's privacy budget cannot cover its statistics, so none are published."
            ),
            status_code=409,
        )
    except DataError:
        log.warning("dashboard data unavailable for %s", label)
        return HTMLResponse(
            render_unavailable(label, "The data for this day is unavailable."), status_code=503
        )
    return HTMLResponse(page, headers={"Cache-Control": "public, max-age=300"})
