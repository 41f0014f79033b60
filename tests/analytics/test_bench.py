from __future__ import annotations

import json

import pytest

from bench import analytics as bench_analytics


def test_quick_run_ends_with_headline_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_analytics.main(["--quick", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    headline = json.loads(lines[-1])
    assert headline["area"] == "analytics" and headline["readings"] == 100_000
    for key in ("dashboard_s", "adhoc_dp_s", "adhoc_plain_s", "adhoc_dp_over_plain_ratio"):
        assert headline[key] > 0
    assert any("plain Polars" in line for line in lines[:-1])
