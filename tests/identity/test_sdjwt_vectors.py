"""RFC 9901 example inputs, the sd-jwt-python test cases and the OpenID4VP golden SD-JWT+KB vector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from identity import jose, sdjwt

from .sdjwt_support import VECTORS, expected_for_frame, frame_paths, load_settings, load_spec, plain, to_sd

SPEC_DIRS = sorted(
    [p.parent for p in (VECTORS / "rfc9901-examples").glob("*/specification.yml")]
    + [p.parent for p in (VECTORS / "sd-jwt-python" / "testcases").glob("*/specification.yml")]
)
NOW = 1_700_000_000


def _settings(case: Path) -> dict[str, Any]:
    return load_settings(case.parent / "settings.yml")


@pytest.mark.parametrize("case", SPEC_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_spec_case_round_trip(case: Path) -> None:
    spec = load_spec(case / "specification.yml")
    settings = _settings(case)
    issuer_key = settings["key_settings"]["issuer_keys"][0]
    holder_key = settings["key_settings"]["holder_key"]
    claims = to_sd(spec["user_claims"])
    # joserfc insists on a string kid (RFC 7515 section 4.1.4); the header_mod case uses 42.
    extra = {k: str(v) if k == "kid" else v for k, v in (spec.get("extra_header_parameters") or {}).items()}
    own_cnf = "cnf" in plain(spec["user_claims"])  # one example carries its own cnf claim
    issued = sdjwt.issue(
        claims,
        issuer_key=issuer_key,
        holder_jwk=None if own_cnf else holder_key,
        typ=extra.get("typ", "example+sd-jwt"),
        decoys=2 if spec.get("add_decoy_claims") else 0,
        extra_header=extra,
    )
    issuer_public = jose.public_jwk(issuer_key)
    frame = spec["holder_disclosed_claims"]
    presentation = sdjwt.present(
        issued,
        disclose=frame_paths(frame),
        include_nested=False,
        holder_key=None if own_cnf else holder_key,
        audience=settings["identifiers"]["verifier"],
        nonce=settings["key_binding_nonce"],
        iat=NOW,
    )
    result = sdjwt.verify(
        presentation,
        issuer_jwk=issuer_public,
        expected_audience=settings["identifiers"]["verifier"],
        expected_nonce=settings["key_binding_nonce"],
        require_key_binding=not own_cnf,
        now=NOW,
        accepted_typs=None,
        require_vct=False,
    )
    got = result.claims if own_cnf else {k: v for k, v in result.claims.items() if k != "cnf"}
    assert got == expected_for_frame(spec["user_claims"], frame)
    if "expect_verified_user_claims" in spec:
        assert got == spec["expect_verified_user_claims"]
    if not own_cnf:
        assert result.claims["cnf"] == {"jwk": jose.public_jwk(holder_key)}
        assert result.key_binding is not None
    if "kid" in extra:
        assert result.header["kid"] == extra["kid"]

    # Everything disclosed gives back the original claims; nothing disclosed hides every SD claim.
    held = sdjwt.parse(issued, issuer_jwk=issuer_public)
    drop = set() if own_cnf else {"cnf"}
    assert {k: v for k, v in held.claims.items() if k not in drop} == plain(spec["user_claims"])
    bare = sdjwt.present(held, disclose=[])
    nothing = sdjwt.verify(
        bare,
        issuer_jwk=issuer_public,
        expected_audience=None,
        expected_nonce=None,
        require_key_binding=False,
        accepted_typs=None,
        require_vct=False,
    )
    assert {k: v for k, v in nothing.claims.items() if k not in drop} == expected_for_frame(
        spec["user_claims"], {}
    )


def test_every_spec_dir_found() -> None:
    assert len(SPEC_DIRS) == 17 + 15


GOLDEN = VECTORS / "oid4vp-1.0" / "sd_jwt_vcld"


def _unwrap(path: Path) -> str:
    return "".join(path.read_text().split())


def test_oid4vp_golden_sd_jwt_kb_vector() -> None:
    settings = load_settings(GOLDEN / "settings.yml")
    issuer_public = jose.public_jwk(settings["key_settings"]["issuer_keys"][0])
    presentation = _unwrap(GOLDEN / "01" / "sd_jwt_presentation.txt")
    kb_payload = json.loads((GOLDEN / "01" / "kb_jwt_payload.json").read_text())
    claims = sdjwt.verify_presentation(
        presentation,
        issuer_jwk=issuer_public,
        expected_audience=settings["identifiers"]["verifier"],
        expected_nonce=settings["key_binding_nonce"],
        now=kb_payload["iat"] + 5,
    )
    assert claims == json.loads((GOLDEN / "01" / "verified_contents.json").read_text())
    # The same vector fails once the KB-JWT is stale, or for another nonce or audience.
    for kwargs, message in [
        ({"now": kb_payload["iat"] + 3600}, "too old"),
        ({"now": kb_payload["iat"], "expected_nonce": "other"}, "nonce"),
        ({"now": kb_payload["iat"], "expected_audience": "https://other"}, "audience"),
    ]:
        args: dict[str, Any] = {
            "issuer_jwk": issuer_public,
            "expected_audience": settings["identifiers"]["verifier"],
            "expected_nonce": settings["key_binding_nonce"],
        }
        args.update(kwargs)
        with pytest.raises(sdjwt.SDJWTError, match=message):
            sdjwt.verify_presentation(presentation, **args)


def test_oid4vp_golden_issuance_parses_with_paths() -> None:
    settings = load_settings(GOLDEN / "settings.yml")
    issuer_public = jose.public_jwk(settings["key_settings"]["issuer_keys"][0])
    held = sdjwt.parse(_unwrap(GOLDEN / "01" / "sd_jwt_issuance.txt"), issuer_jwk=issuer_public)
    assert sorted(d.path for d in held.disclosures) == [
        ("ld", "credentialSubject", "birthDate"),
        ("ld", "credentialSubject", "familyName"),
        ("ld", "credentialSubject", "givenName"),
    ]
    assert (
        held.claims["ld"]["credentialSubject"]
        == json.loads((GOLDEN / "01" / "user_claims.json").read_text())["ld"]["credentialSubject"]
    )
