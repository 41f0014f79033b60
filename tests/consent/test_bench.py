"""The consent benchmark's smoke run works end to end and ends with one JSON line."""

from __future__ import annotations

import json

import pytest

from bench import consent as bench_consent


def test_quick_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_consent.main(["--quick", "--consents", "100"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["area"] == "consent" and summary["readings_per_s"] > 0
    assert summary["per_consent_count"]["100"]["accepted"] > 0
