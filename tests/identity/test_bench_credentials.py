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
        "sdjwt_verify_us",
        "sdjwt_signature_checks_us",
        "verify_budget_for_3x_us",
    ):
        assert key in headline
    assert headline["sdjwt_verify_per_s"] > 0 and headline["reference_verify_per_s"] > 0
    assert (
        headline["bbs_presentation_verify_per_s"] > 0 and headline["bbs_presentation_verify_single_per_s"] > 0
    )
    # the headline ratio compares the same key types (ES256 issuer and holder on both sides)
    ratio = headline["sdjwt_es256_verify_per_s"] / headline["reference_verify_per_s"]
    assert headline["verify_ratio_vs_reference"] == pytest.approx(ratio, abs=0.01)
    # the floor figures are the same run's: per-verification time and 3x the reference's rate
    assert headline["sdjwt_verify_us"] == pytest.approx(1e6 / headline["sdjwt_verify_per_s"], rel=0.01)
    budget = 1e6 / (3 * headline["reference_verify_per_s"])
    assert headline["verify_budget_for_3x_us"] == pytest.approx(budget, rel=0.01)
    assert headline["sdjwt_signature_checks_us"] > 0


def test_presentations_are_verified_once() -> None:
    ours = credentials.Ours("EdDSA", "EdDSA", 2)
    ours.verify(2)
    with pytest.raises(RuntimeError, match="exhausted"):
        ours.verify(1)
    ref = credentials.Reference("ES256", 1)
    ref.verify(1)
    with pytest.raises(RuntimeError, match="exhausted"):
        ref.verify(1)


def test_signature_checks_verify_each_presentations_two_signatures_once() -> None:
    floor = credentials.SignatureChecks(credentials.Ours("EdDSA", "EdDSA", 2))
    first = floor.pool._items[0]
    assert len(first) == 2  # the issuer JWT's and the KB-JWT's
    assert first[0][2] != first[1][2]  # under the issuer key and the holder key
    floor.verify(2)
    with pytest.raises(RuntimeError, match="exhausted"):
        floor.verify(1)


def test_signature_checks_refuse_a_bad_signature() -> None:
    floor = credentials.SignatureChecks(credentials.Ours("EdDSA", "EdDSA", 1))
    signature, message, key = floor.pool._items[0][1]
    floor.pool._items[0][1] = (signature, message + b"x", key)
    with pytest.raises(RuntimeError, match="did not verify"):
        floor.verify(1)
