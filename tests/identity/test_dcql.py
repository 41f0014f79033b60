from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from identity import dcql, jose, sdjwt
from identity.dcql import DCQLError, HeldCredential, evaluate, parse_query
from identity.sdjwt import SD

EXAMPLES = Path(__file__).resolve().parents[1] / "vectors" / "sd-jwt" / "oid4vp-1.0" / "query_lang"
PID = "https://credentials.example.com/identity_credential"


def _query(name: str) -> dcql.DCQLQuery:
    return parse_query(json.loads((EXAMPLES / name).read_text()))


def _cred(vct: str, claims: dict[str, Any], fmt: str = "dc+sd-jwt") -> HeldCredential:
    return HeldCredential(fmt, vct, {"vct": vct, **claims})


FULL_PID = _cred(
    PID,
    {
        "given_name": "John",
        "family_name": "Doe",
        "address": {"street_address": "123 Main St", "locality": "Anytown"},
        "postal_code": "90210",
        "date_of_birth": "1940-01-01",
    },
)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_all_examples_parse_and_round_trip(name: str) -> None:
    raw = json.loads((EXAMPLES / name).read_text())
    q = parse_query(raw)
    assert parse_query(q.to_json()) == q


def test_simple() -> None:
    q = _query("simple.json")
    sel = evaluate(q, [FULL_PID])
    assert sel.satisfied
    (match,) = sel.matches["my_credential"]
    assert sorted(match.paths) == [("address", "street_address"), ("family_name",), ("given_name",)]
    assert match.disclosed_values() == {
        "family_name": "Doe",
        "given_name": "John",
        "address": {"street_address": "123 Main St"},
    }
    no_address = _cred(PID, {"given_name": "J", "family_name": "D"})
    assert not evaluate(q, [no_address]).satisfied
    other_type = _cred("https://other/vct", dict(FULL_PID.claims))
    assert not evaluate(q, [other_type]).satisfied


def test_value_matching() -> None:
    q = _query("value_matching_simple.json")
    assert evaluate(q, [FULL_PID]).satisfied
    wrong_zip = _cred(PID, {**FULL_PID.claims, "postal_code": "10001"})
    assert not evaluate(q, [wrong_zip]).satisfied
    # type matters: 90210 as a number is not "90210"
    numeric_zip = _cred(PID, {**FULL_PID.claims, "postal_code": 90210})
    assert not evaluate(q, [numeric_zip]).satisfied


def test_claim_sets_prefer_first_satisfiable() -> None:
    q = _query("claims_alternatives.json")
    first = _cred(
        PID, {"family_name": "D", "locality": "X", "region": "R", "date_of_birth": "d", "postal_code": "p"}
    )
    (m,) = evaluate(q, [first]).matches["pid"]
    assert [c.query.id for c in m.claims] == ["a", "c", "d", "e"]  # postal_code not disclosed
    second = _cred(PID, {"family_name": "D", "postal_code": "p", "date_of_birth": "d"})
    (m,) = evaluate(q, [second]).matches["pid"]
    assert [c.query.id for c in m.claims] == ["a", "b", "e"]
    assert not evaluate(q, [_cred(PID, {"family_name": "D"})]).satisfied


def test_credential_sets() -> None:
    q = _query("credentials_alternatives.json")
    reduced1 = _cred(
        "https://credentials.example.com/reduced_identity_credential", {"family_name": "D", "given_name": "J"}
    )
    reduced2 = _cred(
        "https://cred.example/residence_credential", {"postal_code": "1", "locality": "L", "region": "R"}
    )
    rewards = _cred("https://company.example/company_rewards", {"rewards_number": 7})
    sel = evaluate(q, [reduced1, reduced2])
    assert sel.satisfied and sorted(sel.matches) == ["pid_reduced_cred_1", "pid_reduced_cred_2"]
    sel = evaluate(q, [reduced1, reduced2, rewards, FULL_PID])
    assert sorted(sel.matches) == ["nice_to_have", "pid"]  # first option wins; optional set filled
    assert not evaluate(q, [reduced1, rewards]).satisfied


def test_mdoc_queries_never_match_here() -> None:
    assert not evaluate(_query("simple_mdoc.json"), [FULL_PID]).satisfied
    assert not evaluate(_query("multi_credentials.json"), [FULL_PID]).satisfied
    assert not evaluate(_query("complex_mdoc.json"), [FULL_PID]).satisfied


def test_null_path_and_index() -> None:
    cred = _cred(PID, {"nationalities": ["DE", "FR"], "degrees": [{"type": "BSc"}, {"type": "MSc"}]})
    assert dcql.resolve_path(cred.claims, ["nationalities", None]) == [
        (("nationalities", 0), "DE"),
        (("nationalities", 1), "FR"),
    ]
    assert dcql.resolve_path(cred.claims, ["degrees", 1, "type"]) == [(("degrees", 1, "type"), "MSc")]
    assert dcql.resolve_path(cred.claims, ["degrees", 5]) == []
    assert dcql.resolve_path(cred.claims, ["nationalities", "x"]) == []
    q = parse_query(
        {
            "credentials": [
                {
                    "id": "c",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [PID]},
                    "claims": [{"path": ["nationalities", None], "values": ["FR"]}],
                }
            ]
        }
    )
    (m,) = evaluate(q, [cred]).matches["c"]
    assert m.paths == [("nationalities", 1)]


def test_bbs_format_matches_only_bbs_credentials() -> None:
    q = parse_query(
        {
            "credentials": [
                {
                    "id": "c",
                    "format": dcql.BBS_FORMAT,
                    "meta": {"vct_values": [PID]},
                    "claims": [{"path": ["given_name"]}],
                }
            ]
        }
    )
    assert not evaluate(q, [FULL_PID]).satisfied
    bbs = _cred(PID, dict(FULL_PID.claims), fmt=dcql.BBS_FORMAT)
    assert evaluate(q, [bbs]).satisfied


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"credentials": []},
        {"credentials": [{"id": "a b", "format": "dc+sd-jwt", "meta": {}}]},
        {"credentials": [{"id": "a", "meta": {}}]},
        {"credentials": [{"id": "a", "format": "dc+sd-jwt"}]},
        {
            "credentials": [
                {"id": "a", "format": "dc+sd-jwt", "meta": {}},
                {"id": "a", "format": "dc+sd-jwt", "meta": {}},
            ]
        },
        {"credentials": [{"id": "a", "format": "dc+sd-jwt", "meta": {}, "claims": [{"path": []}]}]},
        {"credentials": [{"id": "a", "format": "dc+sd-jwt", "meta": {}, "claims": [{"path": [-1]}]}]},
        {
            "credentials": [
                {
                    "id": "a",
                    "format": "dc+sd-jwt",
                    "meta": {},
                    "claims": [{"path": ["x"]}],
                    "claim_sets": [["x"]],
                }
            ]
        },
        {
            "credentials": [
                {
                    "id": "a",
                    "format": "dc+sd-jwt",
                    "meta": {},
                    "claims": [{"id": "x", "path": ["x"]}],
                    "claim_sets": [["y"]],
                }
            ]
        },
        {
            "credentials": [{"id": "a", "format": "dc+sd-jwt", "meta": {}}],
            "credential_sets": [{"options": [["b"]]}],
        },
        {"credentials": [{"id": "a", "format": "dc+sd-jwt", "meta": {"vct_values": "x"}}]},
        {
            "credentials": [
                {
                    "id": "a",
                    "format": "dc+sd-jwt",
                    "meta": {},
                    "claims": [{"path": ["x"], "values": [{"a": 1}]}],
                }
            ]
        },
    ],
)
def test_invalid_queries(bad: dict[str, Any]) -> None:
    with pytest.raises(DCQLError):
        parse_query(bad)


def test_selection_drives_sd_jwt_disclosure() -> None:
    issuer, holder = jose.generate_ed25519(), jose.generate_ed25519()
    cred = sdjwt.issue(
        {
            "vct": PID,
            SD("given_name"): "John",
            SD("family_name"): "Doe",
            SD("birthdate"): "1940-01-01",
            SD("address"): {SD("street_address"): "123 Main St", SD("locality"): "Anytown"},
        },
        issuer_key=issuer,
        holder_jwk=holder,
    )
    held = sdjwt.parse(cred)
    sel = evaluate(_query("simple.json"), [HeldCredential("dc+sd-jwt", PID, held.claims, ref=held)])
    (m,) = sel.matches["my_credential"]
    pres = sdjwt.present(held, disclose=m.paths, holder_key=holder, audience="a", nonce="n")
    claims = sdjwt.verify_presentation(
        pres, issuer_jwk=jose.public_jwk(issuer), expected_audience="a", expected_nonce="n"
    )
    assert claims["address"] == {"street_address": "123 Main St"}
    assert "birthdate" not in claims and "locality" not in claims["address"]
