"""`python -m bench ledger --quick` runs end to end and ends with its JSON line."""

from __future__ import annotations

import json

import pytest

from bench import ledger as bench_ledger


def test_quick_bench_prints_the_headline_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_ledger.main(["--quick", "--no-http"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    assert figures["area"] == "ledger"
    assert figures["transfers_per_s"] > 0 and figures["baseline_ratio"] > 0
    assert figures["http_requests_per_s"] is None
    assert set(figures) >= {
        "p50_batch_ms",
        "p99_batch_ms",
        "transfers_per_cpu_s",
        "cpu_s",
        "cpu_us_per_transfer",
    }
    assert figures["per_transfer_commit_baseline_ratio"] > 0 and figures["baseline_transfers_per_s"] > 0
