"""The dashboard page: standard releases with error bars, self-contained, re-served for free."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from analytics import Analytics, BudgetExceeded, BudgetPolicy
from analytics.dashboard import build_dashboard
from analytics.standard import PUBLIC_ANALYST, STANDARD_RELEASES, standard_rho
from analytics.tables import TABLES

from .conftest import DAY0


def _state(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in TABLES}


def test_dashboard_renders_every_standard_release(
    make_analytics: Callable[..., Analytics], engine: sa.Engine
) -> None:
    service = make_analytics(BudgetPolicy(analysts={PUBLIC_ANALYST: 0.5}))
    page = build_dashboard(service, DAY0)
    assert page.startswith("<!doctype html>") and "2025-11-08" in page
    for spec in STANDARD_RELEASES:
        assert f'data-key="{spec.key}"' in page
    assert page.count('class="series"') >= len(STANDARD_RELEASES)
    assert page.count('class="errorbar"') > 24
    assert 'id="district-table"' in page and "How your privacy is protected" in page
    # self-contained: no scripts, no external resources
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    spent = service.budget(PUBLIC_ANALYST, DAY0)["analyst_budget"]["spent_rho"]
    assert spent == pytest.approx(standard_rho())
    before = _state(engine)
    assert build_dashboard(service, DAY0).count('class="series"') == page.count('class="series"')
    assert _state(engine) == before  # re-served from the release store at no cost


def test_dashboard_refuses_when_the_public_budget_is_too_small(
    make_analytics: Callable[..., Analytics], engine: sa.Engine
) -> None:
    service = make_analytics(BudgetPolicy(analysts={PUBLIC_ANALYST: 0.1}))
    before = _state(engine)
    with pytest.raises(BudgetExceeded):
        build_dashboard(service, DAY0)
    assert _state(engine) == before  # the whole day's set is refused up front
