"""Interop with the `sd-jwt` reference package in both directions, and issue/present/verify properties."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from identity import jose, sdjwt
from identity.sdjwt import SD

AUD = "https://agency.example"
NONCE = "3f1c2a9b8d7e6f50"
VCT = "https://city.example/credentials/resident"


def _jwcrypto(jwk: dict[str, Any]) -> JWK:
    return JWK.from_json(json.dumps(jwk))


def test_reference_verifier_accepts_our_presentation() -> None:
    issuer = jose.generate_ed25519()
    holder = jose.generate_ec_p256()  # the reference verifies KB-JWTs with ES256 only
    cred = sdjwt.issue(
        {
            "vct": VCT,
            "iss": "https://city.example",
            SD("given_name"): "Ada",
            SD("age_over_18"): True,
            "address": {SD("locality"): "Civitas", SD("street"): "Main 1"},
            SD("nationalities"): [SD("DE"), "FR"],
        },
        issuer_key=issuer,
        holder_jwk=holder,
        decoys=2,
    )
    presentation = sdjwt.present(
        cred,
        disclose=[("age_over_18",), ("address", "locality"), ("nationalities", 1)],
        holder_key=holder,
        audience=AUD,
        nonce=NONCE,
    )
    issuer_pub = jose.public_jwk(issuer)
    verifier = SDJWTVerifier(
        presentation, lambda iss, header: _jwcrypto(issuer_pub), expected_aud=AUD, expected_nonce=NONCE
    )
    theirs = verifier.get_verified_payload()
    ours = sdjwt.verify_presentation(
        presentation, issuer_jwk=issuer_pub, expected_audience=AUD, expected_nonce=NONCE
    )
    assert theirs == ours
    assert ours["address"] == {"locality": "Civitas"}
    assert ours["nationalities"] == ["FR"]
    assert "given_name" not in ours


def _reference_issue(
    user_claims: dict[Any, Any], issuer: dict[str, Any], holder: dict[str, Any], typ: str
) -> str:
    issuer_obj = SDJWTIssuer(
        user_claims,
        _jwcrypto(issuer),
        holder_key=_jwcrypto(holder),
        sign_alg="ES256",
        add_decoy_claims=True,
        extra_header_parameters={"typ": typ},
    )
    return str(issuer_obj.sd_jwt_issuance)


@pytest.mark.parametrize("typ", ["dc+sd-jwt", "vc+sd-jwt"])
def test_we_accept_reference_presentation(typ: str) -> None:
    issuer = jose.generate_ec_p256()
    holder = jose.generate_ec_p256()
    issuance = _reference_issue(
        {
            "vct": VCT,
            "iss": "https://city.example",
            SDObj("given_name"): "Ada",
            SDObj("resident_of"): "civitas",
            "address": {SDObj("locality"): "Civitas", SDObj("street"): "Main 1"},
            SDObj("roles"): [SDObj("voter"), "driver"],
        },
        issuer,
        holder,
        typ,
    )
    holder_obj = SDJWTHolder(issuance)
    holder_obj.create_presentation(
        {"resident_of": True, "address": {"locality": True}, "roles": [True]},
        nonce=NONCE,
        aud=AUD,
        holder_key=_jwcrypto(holder),
        sign_alg="ES256",
    )
    presentation = holder_obj.sd_jwt_presentation
    claims = sdjwt.verify_presentation(
        presentation, issuer_jwk=jose.public_jwk(issuer), expected_audience=AUD, expected_nonce=NONCE
    )
    assert claims["resident_of"] == "civitas"
    assert claims["address"] == {"locality": "Civitas"}
    assert claims["roles"] == ["voter", "driver"]
    assert "given_name" not in claims
    # Our holder can parse their issuance and build a presentation our verifier accepts too.
    held = sdjwt.parse(issuance, issuer_jwk=jose.public_jwk(issuer))
    ours = sdjwt.present(held, disclose=[("given_name",)], holder_key=holder, audience=AUD, nonce=NONCE)
    assert (
        sdjwt.verify_presentation(
            ours, issuer_jwk=jose.public_jwk(issuer), expected_audience=AUD, expected_nonce=NONCE
        )["given_name"]
        == "Ada"
    )


def test_reference_default_typ_is_not_an_sd_jwt_vc() -> None:
    issuer, holder = jose.generate_ec_p256(), jose.generate_ec_p256()
    issuance = _reference_issue({"vct": VCT, SDObj("a"): 1}, issuer, holder, "example+sd-jwt")
    with pytest.raises(sdjwt.SDJWTError, match="typ"):
        sdjwt.verify_presentation(
            issuance,
            issuer_jwk=jose.public_jwk(issuer),
            expected_audience=None,
            expected_nonce=None,
            require_key_binding=False,
        )
    # ... but it is a valid plain SD-JWT.
    verified = sdjwt.verify(
        issuance,
        issuer_jwk=jose.public_jwk(issuer),
        expected_audience=None,
        expected_nonce=None,
        require_key_binding=False,
        accepted_typs=None,
    )
    assert verified.claims["vct"] == VCT


def test_lax_reference_accepts_what_we_reject() -> None:
    """The reference ignores unreferenced disclosures; the strict verifier refuses them."""
    issuer, holder = jose.generate_ec_p256(), jose.generate_ec_p256()
    a = sdjwt.issue({"vct": VCT, SD("a"): 1}, issuer_key=issuer, holder_jwk=holder)
    stray = sdjwt.parse(sdjwt.issue({"vct": VCT, SD("b"): 2}, issuer_key=issuer)).disclosures[0].raw
    jwt, d, _ = a.split("~")
    body = f"{jwt}~{d}~{stray}~"
    kb = jose.sign_compact(
        {"typ": "kb+jwt"},
        json.dumps(
            {
                "iat": 1,
                "aud": AUD,
                "nonce": NONCE,
                "sd_hash": jose.b64u_encode(hashlib.sha256(body.encode()).digest()),
            }
        ).encode(),
        holder,
    )
    spliced = body + kb
    SDJWTVerifier(
        spliced, lambda i, h: _jwcrypto(jose.public_jwk(issuer)), expected_aud=AUD, expected_nonce=NONCE
    )
    with pytest.raises(sdjwt.SDJWTError, match="not referenced"):
        sdjwt.verify_presentation(
            spliced, issuer_jwk=jose.public_jwk(issuer), expected_audience=AUD, expected_nonce=NONCE, now=1
        )


# -- properties ----------------------------------------------------------------------------------

ISSUER = jose.generate_ed25519()
ISSUER_PUB = jose.public_jwk(ISSUER)
HOLDER = jose.generate_ed25519()

# registered claims (time checks, issuer, binding, status) are not part of the property
RESERVED = {"_sd", "_sd_alg", "vct", "cnf", "iss", "nbf", "exp", "iat", "status", "vct#integrity"}
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda s: s not in RESERVED
)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)


def _tree(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return scalars
    child = _tree(depth - 1)
    return (
        scalars
        | st.lists(st.tuples(st.booleans(), child), max_size=3)
        | st.dictionaries(names, st.tuples(st.booleans(), child), max_size=3)
    )


def _mark(node: Any) -> Any:
    """(sd?, value) pairs -> claims with SD markers."""
    if isinstance(node, dict):
        return {(SD(k) if sd else k): _mark(v) for k, (sd, v) in node.items()}
    if isinstance(node, list):
        return [SD(_mark(v)) if sd else _mark(v) for sd, v in node]
    return node


def _expected(node: Any, chosen: set[tuple[Any, ...]], path: tuple[Any, ...] = ()) -> Any:
    """Independent model: which parts a verifier sees for a chosen set of disclosure paths."""
    if isinstance(node, dict):
        out = {}
        for k, (sd, v) in node.items():
            p = (*path, k)
            if not sd or p in chosen:
                out[k] = _expected(v, chosen, p)
        return out
    if isinstance(node, list):
        items: list[Any] = []
        for i, (sd, v) in enumerate(node):
            p = (*path, i)
            if not sd or p in chosen:
                items.append(_expected(v, chosen, p))
        return items
    return node


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims=st.dictionaries(names, st.tuples(st.booleans(), _tree(2)), max_size=5), data=st.data())
def test_present_any_subset_verifies_to_exactly_that_subset(
    claims: dict[str, Any], data: st.DataObject
) -> None:
    cred = sdjwt.issue({"vct": "t", **_mark(claims)}, issuer_key=ISSUER, holder_jwk=HOLDER, decoys=1)
    held = sdjwt.parse(cred, issuer_jwk=ISSUER_PUB)
    subset = data.draw(
        st.lists(st.sampled_from(held.disclosures), unique_by=lambda d: d.digest)
        if held.disclosures
        else st.just([])
    )
    # A disclosure is only meaningful with its ancestors; close the subset upwards.
    by_path = {d.path: d for d in held.disclosures}
    closed = {d.path for d in subset}
    for d in subset:
        for cut in range(1, len(d.path)):
            if d.path[:cut] in by_path:
                closed.add(d.path[:cut])
    presentation = sdjwt.present(
        held, disclosures=[by_path[p] for p in closed], holder_key=HOLDER, audience=AUD, nonce=NONCE
    )
    got = sdjwt.verify_presentation(
        presentation, issuer_jwk=ISSUER_PUB, expected_audience=AUD, expected_nonce=NONCE
    )
    del got["cnf"]
    assert got == {"vct": "t", **_expected(claims, closed)}
