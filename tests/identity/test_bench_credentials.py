from __future__ import annotations

import json

import pytest

from bench import credentials


def test_quick_run_ends_with_headline_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert credentials.main(["--quick"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    headline = json.loads(last)
    assert headline["area"] == "credentials"
    for key in (
        "sdjwt_verify_per_s",
        "sdjwt_es256_verify_per_s",
        "sdjwt_eddsa_es256_verify_per_s",
        "reference_verify_per_s",
        "reference_eddsa_es256_verify_per_s",
        "verify_ratio_vs_reference",
        "verify_ratio_eddsa_es256_vs_reference",
        "bbs_presentation_verify_per_s",
        "bbs_presentation_verify_single_per_s",
    ):
        assert key in headline
    assert headline["sdjwt_verify_per_s"] > 0 and headline["reference_verify_per_s"] > 0
    assert (
        headline["bbs_presentation_verify_per_s"] > 0 and headline["bbs_presentation_verify_single_per_s"] > 0
    )
    # the headline ratio compares the same key types (ES256 issuer and holder on both sides)
    ratio = headline["sdjwt_es256_verify_per_s"] / headline["reference_verify_per_s"]
    assert headline["verify_ratio_vs_reference"] == pytest.approx(ratio, abs=0.01)


def test_presentations_are_verified_once() -> None:
    ours = credentials.Ours("EdDSA", "EdDSA", 2)
    ours.verify(2)
    with pytest.raises(RuntimeError, match="exhausted"):
        ours.verify(1)
    ref = credentials.Reference("ES256", 1)
    ref.verify(1)
    with pytest.raises(RuntimeError, match="exhausted"):
        ref.verify(1)
