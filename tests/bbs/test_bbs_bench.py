from __future__ import annotations

import json

import pytest

from bench import bbs as bench_bbs


def test_quick_run_ends_with_headline_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_bbs.main(["--quick", "--reps", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    headline = json.loads(lines[-1])
    assert headline["area"] == "bbs"
    for key in ("sign_ms", "verify_ms", "proof_gen_ms", "proof_verify_ms"):
        assert headline[key] > 0
    if "peer_ratio" in headline:
        assert headline["peer_ratio"] > 0
    assert any("proof_verify" in line for line in lines[:-1])
