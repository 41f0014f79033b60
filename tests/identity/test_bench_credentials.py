from __future__ import annotations

import json

import pytest

from bench import credentials


def test_quick_run_ends_with_headline_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert credentials.main(["--quick"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    headline = json.loads(last)
    assert headline["area"] == "credentials"
    for key in ("sdjwt_verify_per_s", "reference_verify_per_s", "bbs_presentation_verify_per_s"):
        assert key in headline
    assert headline["sdjwt_verify_per_s"] > 0 and headline["reference_verify_per_s"] > 0
