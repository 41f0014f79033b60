"""The public dashboard in a real browser: the real server, headless Chromium, screenshots.

Starts the service with uvicorn on 127.0.0.1 (a free port) over a SQLite database seeded with
consented readings, opens /dashboard in Debian's Chromium via Playwright at desktop and phone
widths, waits for the charts, checks every chart rendered its series with error bars and that
the page fetched nothing from any other host, and saves screenshots under tests/artifacts/.
Without a browser the test skips locally and fails when CI=true.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

import consent
from analytics.data import DAY_NS
from analytics.standard import STANDARD_RELEASES
from analytics.synthetic import synthetic_day

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CITY_DISTRICTS = tuple(consent.DEFAULT_GRID.districts)  # the service's public district keys
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DAY0 = (time.time_ns() // DAY_NS - 3) * DAY_NS  # a settled day within the dashboard's window
DAY_LABEL = dt.datetime.fromtimestamp(DAY0 // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%d")


def _browser_problem() -> str | None:
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser_ready() -> None:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, browser_ready: None) -> Iterator[str]:
    import uvicorn

    from civitas.app import create_app
    from civitas.routers import analytics as analytics_router
    from civitas.settings import Settings
    from consent import tables as ct

    data_dir = tmp_path_factory.mktemp("server")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'civitas.db'}")
    app = create_app(settings)
    if not any(getattr(r, "path", None) == "/dashboard" for r in app.routes):
        analytics_router.setup(app)
        app.include_router(analytics_router.router)
    engine = app.state.engine
    ct.create_schema(engine)
    frame = synthetic_day(DAY0, citizens=600, readings=40_000, seed=21, districts=CITY_DISTRICTS)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ct.readings),
            [
                {**r, "category": "cvx:NonPersonalEnvironmental", "grant_set_id": None}
                for r in frame.to_dicts()
            ],
        )
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        uv.should_exit = True
        pytest.fail("the server did not start")
    try:
        yield base
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.mark.parametrize(("name", "width"), [("desktop", 1280), ("phone", 390)])
def test_dashboard_renders_every_chart(server: str, name: str, width: int) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            response = page.goto(f"{server}/dashboard?day={DAY_LABEL}", timeout=120_000)
            assert response is not None and response.status == 200
            page.wait_for_selector("svg.chart .series rect.bar", timeout=60_000)
            for spec in STANDARD_RELEASES:
                card = page.locator(f'figure[data-key="{spec.key}"]')
                assert card.count() == 1, spec.key
                assert card.locator("svg.chart").count() >= 1
                series = card.locator("svg.chart g.series")
                assert series.count() >= 1
                bars = card.locator("svg.chart g.series rect.bar")
                assert bars.count() >= 6, f"{spec.key}: {bars.count()} bars"
                assert card.locator("svg.chart g.errorbar").count() >= 6, spec.key
                box = card.locator("svg.chart").first.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 40
            districts = page.locator("#district-table tbody tr")
            assert districts.count() == len(CITY_DISTRICTS)
            assert page.locator("#privacy").inner_text().count("differential privacy") >= 1
            # readable at this width: the page does not scroll sideways (tables scroll inside their box)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-first-screen.png"))
            page.locator("#district-table").screenshot(path=str(ARTIFACTS / f"dashboard-{name}-table.png"))
        finally:
            browser.close()
    assert requested and all(url.startswith(server) for url in requested), "the page fetched another host"


def test_browser_is_the_debian_chromium(browser_ready: None) -> None:
    assert shutil.which("chromium") == CHROMIUM or os.path.exists(CHROMIUM)
