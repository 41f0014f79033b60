from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from identity import dcql, eligibility, jose, sdjwt, status_list
from identity import tables as t
from identity.issuer import Issuer, make_proof
from identity.verifier import EligibilityRules, TrustedIssuers, Verifier, VerifierConfig, VerifierError

from .issuer_support import ISSUER_ID, RAW_CLAIMS, RESIDENT_VCT, FakeClock, make_issuer

AGENCY = "transit-agency"
VERIFIER_KEY = jose.generate_ed25519()
CONFIG = VerifierConfig(
    response_uri="https://city.example/identity/presentation-responses",
    request_uri_base="https://city.example/identity/presentation-requests",
    signing_jwk=VERIFIER_KEY,
)
AUD = CONFIG.effective_client_id


class World:
    def __init__(self, engine: sa.Engine) -> None:
        self.clock = FakeClock()
        self.issuer: Issuer = make_issuer(engine, self.clock)
        self.trusted = TrustedIssuers(engine, clock=self.clock)
        self.trusted.register(ISSUER_ID, self.issuer.public_jwk, [RESIDENT_VCT])
        self.rules = EligibilityRules(engine, clock=self.clock)
        checker = status_list.StatusChecker(
            lambda uri: self.issuer.status_list_token(int(uri.rsplit("/", 1)[1])),
            lambda uri: self.issuer.public_jwk,
            clock=lambda: self.clock.s,
            default_ttl_s=0,
        )
        self.checker = checker
        self.verifier = Verifier(
            engine, CONFIG, self.trusted, rules=self.rules, status_checker=checker, clock=self.clock
        )
        self.engine = engine

    def credential(self, claims: dict[str, Any] = RAW_CLAIMS) -> tuple[sdjwt.HeldSDJWT, dict[str, Any], int]:
        created = self.issuer.create_offer("resident", claims, subject_ref="c")
        grant = self.issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
        holder = jose.generate_ed25519()
        nonce = self.issuer.new_nonce()
        (cred,) = self.issuer.issue(
            grant.offer_id, [make_proof(holder, audience=ISSUER_ID, nonce=nonce, iat=self.clock.s)]
        )
        batch = self.issuer.batch_of_offer(grant.offer_id)
        assert batch is not None
        return sdjwt.parse(cred), holder, batch

    def answer(
        self, request_obj: dict[str, Any], held: sdjwt.HeldSDJWT, holder: dict[str, Any], **override: Any
    ) -> dict[str, Any]:
        query = dcql.parse_query(request_obj["dcql_query"])
        sel = dcql.evaluate(
            query, [dcql.HeldCredential("dc+sd-jwt", held.claims["vct"], held.claims, ref=held)]
        )
        assert sel.satisfied
        out: dict[str, Any] = {}
        for qid, matches in sel.matches.items():
            out[qid] = [
                sdjwt.present(
                    held,
                    disclose=m.paths,
                    holder_key=holder,
                    audience=override.get("aud", request_obj["client_id"]),
                    nonce=override.get("nonce", request_obj["nonce"]),
                    iat=self.clock.s,
                )
                for m in matches
            ]
        return out


SENIOR = 'senior_fare = resident_of == "civitas" and age_over_65'


def test_rule_request_end_to_end_stores_only_requested_claims(engine: sa.Engine) -> None:
    w = World(engine)
    w.rules.register(AGENCY, SENIOR, [RESIDENT_VCT])
    held, holder, _ = w.credential()
    req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    obj = w.verifier.request_object(req)
    assert obj["response_mode"] == "direct_post" and obj["client_id"] == AUD
    assert len(jose.b64u_decode(obj["nonce"])) >= 16
    decision = w.verifier.handle_response(
        state=obj["state"], vp_token=json.dumps(w.answer(obj, held, holder))
    )
    assert decision.accepted and decision.eligible is True and decision.reason == "eligible"
    assert decision.disclosed == {"eligibility": {"resident_of": "civitas", "age_over_65": True}}
    assert decision.status_checked and decision.issuer_id == ISSUER_ID
    stored = w.verifier.result(req.id, owner=AGENCY)
    assert stored == decision
    assert w.verifier.result(req.id, owner="someone-else") is None
    # nothing identifying is stored anywhere on the verifier side
    with engine.connect() as conn:
        dump = json.dumps(
            [dict(r) for r in conn.execute(sa.select(t.presentation_results)).mappings()], default=str
        )
    for secret in ("Ada", "Lovelace", "1950-12-10", "Main St", "10001"):
        assert secret not in dump


def test_not_eligible_is_a_verified_no(engine: sa.Engine) -> None:
    w = World(engine)
    w.rules.register(AGENCY, "adult_pass = resident_of == 'civitas' and age_over_18", [RESIDENT_VCT])
    young = {**RAW_CLAIMS, "birthdate": "2015-01-01"}
    held, holder, _ = w.credential(young)
    req = w.verifier.create_request(AGENCY, rule_name="adult_pass")
    obj = w.verifier.request_object(req)
    token = w.answer(obj, held, holder)
    # the wallet answers with the false predicate, never with the birthdate
    assert "2015-01-01" not in json.dumps([sdjwt.parse(p).claims for p in token["eligibility"]])
    d = w.verifier.handle_response(state=obj["state"], vp_token=token)
    assert d.accepted and d.eligible is False and d.reason == "not_eligible"
    assert d.disclosed == {"eligibility": {"resident_of": "civitas", "age_over_18": False}}


def test_plain_dcql_request(engine: sa.Engine) -> None:
    w = World(engine)
    held, holder, _ = w.credential()
    query = {
        "credentials": [
            {
                "id": "res",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [RESIDENT_VCT]},
                "claims": [{"path": ["address", "locality"]}],
            }
        ]
    }
    req = w.verifier.create_request(AGENCY, dcql_query=query)
    obj = w.verifier.request_object(req)
    d = w.verifier.handle_response(state=obj["state"], vp_token=w.answer(obj, held, holder))
    assert d.accepted and d.eligible is None
    assert d.disclosed == {"res": {"address": {"locality": "Civitas"}}}


def _rejected(w: World, reason: str, vp_token: Any, state: str) -> None:
    d = w.verifier.handle_response(state=state, vp_token=vp_token)
    assert not d.accepted
    assert d.reason == reason
    assert d.disclosed == {}


def _setup(engine: sa.Engine) -> tuple[World, Any, dict[str, Any], int, dict[str, Any]]:
    w = World(engine)
    w.rules.register(AGENCY, SENIOR, [RESIDENT_VCT])
    held, holder, batch = w.credential()
    req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    return w, held, holder, batch, w.verifier.request_object(req)


def test_replay_refused_and_first_result_kept(engine: sa.Engine) -> None:
    w, held, holder, _, obj = _setup(engine)
    token = w.answer(obj, held, holder)
    first = w.verifier.handle_response(state=obj["state"], vp_token=token)
    with pytest.raises(VerifierError, match="replay"):
        w.verifier.handle_response(state=obj["state"], vp_token=token)
    assert w.verifier.result(first.request_id) == first
    # the same presentation against a fresh request fails: nonce mismatch
    req2 = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    obj2 = w.verifier.request_object(req2)
    _rejected(w, "nonce_mismatch", token, obj2["state"])


def test_wrong_audience(engine: sa.Engine) -> None:
    w, held, holder, _, obj = _setup(engine)
    _rejected(w, "wrong_audience", w.answer(obj, held, holder, aud="https://evil.example"), obj["state"])


def test_revoked_and_suspended(engine: sa.Engine) -> None:
    w, held, holder, batch, obj = _setup(engine)
    w.issuer.set_status(batch, status_list.SUSPENDED)
    _rejected(w, "suspended", w.answer(obj, held, holder), obj["state"])
    w.issuer.set_status(batch, status_list.INVALID)
    w.clock.advance(301)  # the cached list (ttl 300 s) goes stale; the next check refetches
    req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    obj = w.verifier.request_object(req)
    _rejected(w, "revoked", w.answer(obj, held, holder), obj["state"])


def test_expired_credential_and_expired_request(engine: sa.Engine) -> None:
    w, held, holder, _, obj = _setup(engine)
    w.clock.advance(200)
    req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    fresh = w.verifier.request_object(req)
    w.clock.advance(120)  # first request (300 s) is now expired, the second is not
    _rejected(w, "expired_request", w.answer(obj, held, holder), obj["state"])
    w.clock.advance(366 * 86_400)
    req3 = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    obj3 = w.verifier.request_object(req3)
    _rejected(w, "expired_credential", w.answer(obj3, held, holder), obj3["state"])
    assert fresh["state"] != obj3["state"]


def test_untrusted_issuer_and_disallowed_type(engine: sa.Engine) -> None:
    w, held, holder, _, obj = _setup(engine)
    w.trusted.revoke(ISSUER_ID)
    _rejected(w, "untrusted_issuer", w.answer(obj, held, holder), obj["state"])
    w.trusted.register(ISSUER_ID, w.issuer.public_jwk, ["https://city.example/credentials/library-card"])
    req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    obj = w.verifier.request_object(req)
    _rejected(w, "vct_not_allowed_for_issuer", w.answer(obj, held, holder), obj["state"])


def test_forged_issuer_key(engine: sa.Engine) -> None:
    w, held, holder, _, obj = _setup(engine)
    w.trusted.register(ISSUER_ID, jose.public_jwk(jose.generate_ed25519()), [RESIDENT_VCT])
    _rejected(w, "bad_issuer_signature", w.answer(obj, held, holder), obj["state"])


def test_insufficient_disclosure(engine: sa.Engine) -> None:
    w, held, holder, _, obj = _setup(engine)
    only_residence = sdjwt.present(
        held, disclose=[("resident_of",)], holder_key=holder, audience=AUD, nonce=obj["nonce"], iat=w.clock.s
    )
    _rejected(w, "query_not_satisfied", {"eligibility": [only_residence]}, obj["state"])


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not json", "malformed_vp_token"),
        ({}, "malformed_vp_token"),
        ({"other": ["x"]}, "unknown_credential_query_id"),
        ({"eligibility": "x"}, "malformed_vp_token"),
        ({"eligibility": ["a.b.c~", "a.b.c~"]}, "multiple_presentations_not_requested"),
        ({"eligibility": ["garbage"]}, "malformed_presentation"),
    ],
)
def test_malformed_tokens(engine: sa.Engine, token: Any, reason: str) -> None:
    w, _, _, _, obj = _setup(engine)
    _rejected(w, reason, token, obj["state"])


def test_unknown_state_changes_nothing(engine: sa.Engine) -> None:
    w, _, _, _, _ = _setup(engine)
    with pytest.raises(VerifierError, match="unknown state"):
        w.verifier.handle_response(state="nope", vp_token={})
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.presentation_results)).scalar() == 0


def test_request_validation_and_rule_ownership(engine: sa.Engine) -> None:
    w = World(engine)
    with pytest.raises(VerifierError):
        w.verifier.create_request(AGENCY)
    with pytest.raises(VerifierError):
        w.verifier.create_request(AGENCY, dcql_query={"credentials": []})
    with pytest.raises(VerifierError, match="unknown eligibility rule"):
        w.verifier.create_request(AGENCY, rule_name="nope")
    w.rules.register(AGENCY, SENIOR, [RESIDENT_VCT])
    with pytest.raises(VerifierError, match="another client"):
        w.rules.register("other-agency", SENIOR, [RESIDENT_VCT])
    assert [r["name"] for r in w.rules.list(AGENCY)] == ["senior_fare"]
    with pytest.raises(VerifierError):
        w.trusted.register(ISSUER_ID, jose.generate_ed25519(), [RESIDENT_VCT])


def test_bbs_presentations_through_the_verifier(engine: sa.Engine) -> None:
    from identity import bbs_credentials as bc
    from identity.issuer import CredentialConfiguration, IssuanceError, Issuer

    w = World(engine)
    bbs_key = bc.BBSIssuerKey.from_seed(b"\x05" * 32)
    config = w.issuer.config
    bbs_conf = CredentialConfiguration(
        "resident_bbs", RESIDENT_VCT, "BBS", format="civitas-bbs", validity_s=30 * 86400
    )
    issuer = Issuer(
        engine,
        type(config)(
            **{
                **{f: getattr(config, f) for f in config.__dataclass_fields__},
                "configurations": {**config.configurations, "resident_bbs": bbs_conf},
                "bbs_key": bbs_key,
            }
        ),
        clock=w.clock,
        today=w.issuer.today,
    )
    w.trusted.register(ISSUER_ID, issuer.public_jwk, [RESIDENT_VCT], bbs_did=bbs_key.did)
    w.rules.register(AGENCY, SENIOR, [RESIDENT_VCT])
    created = issuer.create_offer("resident_bbs", RAW_CLAIMS, subject_ref="c")
    grant = issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    nym = bc.start_request()
    with pytest.raises(IssuanceError, match="civitas_bbs_nym"):
        issuer.issue(
            grant.offer_id,
            [
                make_proof(
                    jose.generate_ed25519(), audience=ISSUER_ID, nonce=issuer.new_nonce(), iat=w.clock.s
                )
            ],
        )
    (issued,) = issuer.issue_bbs(grant.offer_id, [nym.commitment])
    cred = bc.accept(bc.IssuedBBS.from_json(issued), nym)

    def respond(context: str | None, present_context: str | None, **kw: Any) -> Any:
        req = w.verifier.create_request(
            AGENCY,
            rule_name="senior_fare",
            pseudonym_context=context,
            require_status=kw.get("require_status", True),
        )
        obj = w.verifier.request_object(req)
        text = bc.present(
            cred,
            kw.get("disclose", ["age_over_65", "resident_of", "status"]),
            audience=kw.get("aud", obj["client_id"]),
            nonce=obj["nonce"],
            pseudonym_context=present_context,
        )
        return w.verifier.handle_response(state=obj["state"], vp_token={"eligibility_1": [text]})

    ok = respond("ledger", "ledger")
    assert ok.accepted and ok.eligible and ok.pseudonym and ok.format == "civitas-bbs"
    assert ok.status_checked and ok.disclosed == {
        "eligibility_1": {"resident_of": "civitas", "age_over_65": True}
    }
    assert respond("ledger", "ledger").pseudonym == ok.pseudonym
    anonymous = respond(None, None)
    assert anonymous.accepted and anonymous.pseudonym is None
    assert respond("ledger", "library").reason == "wrong_pseudonym_context"
    assert respond(None, None, aud="https://evil.example").reason == "invalid_presentation"
    # a pseudonym context that UTF-8 cannot carry is refused with a reason, not an error
    req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
    obj = w.verifier.request_object(req)
    presented = bc.present(
        cred, ["age_over_65", "resident_of", "status"], audience=obj["client_id"], nonce=obj["nonce"]
    )
    body = {**json.loads(jose.b64u_decode(presented)), "ctx": "\ud800"}
    mangled = jose.b64u_encode(json.dumps(body).encode())
    result = w.verifier.handle_response(state=obj["state"], vp_token={"eligibility_1": [mangled]})
    assert result.reason == "invalid_presentation"
    # the status reference is required by default; without it the presentation does not qualify
    no_status = ["age_over_65", "resident_of"]
    assert respond(None, None, disclose=no_status).reason == "query_not_satisfied"
    unchecked = respond(None, None, disclose=no_status, require_status=False)
    assert unchecked.accepted and not unchecked.status_checked
    # revocation and suspension reach BBS credentials through their status-list entry
    batch = issuer.batch_of_offer(grant.offer_id)
    assert batch is not None
    issuer.set_status(batch, status_list.SUSPENDED)
    w.checker.invalidate()  # the list was cached for its ttl
    assert respond(None, None).reason == "suspended"
    assert respond(None, None, disclose=no_status, require_status=False).accepted  # not asked: not seen
    issuer.set_status(batch, status_list.INVALID)
    w.checker.invalidate()
    assert respond(None, None).reason == "revoked"
    w.trusted.register(ISSUER_ID, issuer.public_jwk, [RESIDENT_VCT])  # BBS key no longer trusted
    assert respond(None, None).reason == "untrusted_issuer"


def test_credentials_signed_before_a_key_rotation_still_verify(engine: sa.Engine) -> None:
    w = World(engine)
    old_key = {**w.issuer.config.signing_jwk, "kid": "did:key:old#old"}
    new_public = {**jose.public_jwk(jose.generate_ed25519()), "kid": "did:key:new#new"}
    issuer = make_issuer(engine, w.clock, signing_jwk=old_key, kid="did:key:old#old")
    w.issuer = issuer
    held, holder, _ = w.credential()
    assert held.header["kid"] == "did:key:old#old"
    w.rules.register(AGENCY, SENIOR, [RESIDENT_VCT])

    def answer() -> Any:
        req = w.verifier.create_request(AGENCY, rule_name="senior_fare")
        obj = w.verifier.request_object(req)
        return w.verifier.handle_response(state=obj["state"], vp_token=w.answer(obj, held, holder))

    w.trusted.register(ISSUER_ID, new_public, [RESIDENT_VCT])
    assert answer().reason == "bad_issuer_signature"
    w.trusted.register(ISSUER_ID, new_public, [RESIDENT_VCT], previous_keys=[jose.public_jwk(old_key)])
    assert answer().accepted


def test_require_bbs_status_adds_the_reference_to_every_bbs_query() -> None:
    from identity.verifier import require_bbs_status

    bbs = {"id": "b", "format": "civitas-bbs", "meta": {"vct_values": [RESIDENT_VCT]}}
    sd = {"id": "s", "format": "dc+sd-jwt", "meta": {"vct_values": [RESIDENT_VCT]}}
    out = require_bbs_status({"credentials": [bbs, sd]})
    assert out["credentials"][0]["claims"] == [{"path": ["status"]}]
    assert out["credentials"][1] == sd and "claims" not in bbs  # SD-JWT untouched, input not changed
    with_sets = {
        **bbs,
        "claims": [{"id": "status_0", "path": ["x"]}, {"id": "b", "path": ["y"]}],
        "claim_sets": [["status_0"], ["b"]],
    }
    (cq,) = require_bbs_status({"credentials": [with_sets]})["credentials"]
    assert cq["claims"][-1] == {"id": "status_1", "path": ["status"]}
    assert cq["claim_sets"] == [["status_0", "status_1"], ["b", "status_1"]]
    asked = {**bbs, "claims": [{"id": "st", "path": ["status"]}], "claim_sets": [["st"]]}
    assert require_bbs_status({"credentials": [asked]})["credentials"][0] == asked
    # a rule's query: the BBS alternative needs the status in both claim sets (predicates or birthdate)
    rule = eligibility.parse_rule("adult = age_over_18")
    query = require_bbs_status(rule.dcql(vct_values=[RESIDENT_VCT]))
    dcql.parse_query(query)
    bbs_query = query["credentials"][1]
    assert all("status_0" in s for s in bbs_query["claim_sets"]) and len(bbs_query["claim_sets"]) == 2
    assert "status" not in json.dumps(query["credentials"][0])


def test_citizen_sessions_ask_for_status_only_when_configured(engine: sa.Engine) -> None:
    from identity.sessions import CitizenSessions

    w = World(engine)

    def query(require_status: bool) -> Any:
        sessions = CitizenSessions(
            w.verifier,
            vct_values=[RESIDENT_VCT],
            context_base=ISSUER_ID,
            allowed_scopes=["consent"],
            default_scope="consent",
            require_status=require_status,
        )
        return sessions.start().request.dcql_query["credentials"][0].get("claims")

    assert query(False) is None
    assert query(True) == [{"path": ["status"]}]


# --------------------------------------------------------------------------------------------
# request_uri_method=post: wallet_metadata and wallet_nonce (OpenID4VP 1.0 section 5.10)


def _sd_jwt_query(fmt: str = "dc+sd-jwt", qid: str = "res") -> dict[str, Any]:
    return {"id": qid, "format": fmt, "meta": {"vct_values": [RESIDENT_VCT]}}


def _refused_metadata(w: World, req: Any, metadata: Any, code: str, message: str) -> None:
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    with pytest.raises(VerifierError, match=message) as caught:
        w.verifier.signed_request_object(req, wallet_metadata=text, wallet_nonce="n")
    assert caught.value.code == code and caught.value.status == 400


def test_wallet_metadata_that_allows_the_request_is_accepted(engine: sa.Engine) -> None:
    from identity import request_object
    from identity.wallet import WALLET_METADATA

    w = World(engine)
    req = w.verifier.create_request(AGENCY, dcql_query={"credentials": [_sd_jwt_query()]})
    for metadata in (
        WALLET_METADATA,
        {},  # nothing stated: nothing held against the wallet
        # the specification's example: ES256 only, shared with this verifier
        {
            "vp_formats_supported": {
                "dc+sd-jwt": {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}
            }
        },
        {"vp_formats_supported": {"dc+sd-jwt": {}, "mso_mdoc": {"x": 1}}, "unknown_parameter": [1, {}]},
        {"client_id_prefixes_supported": ["x509_hash", "decentralized_identifier"]},
    ):
        token = w.verifier.signed_request_object(
            req, wallet_metadata=json.dumps(metadata), wallet_nonce="wallet-nonce-1"
        )
        params = request_object.verify_request(
            token, now=w.clock.s, expected_client_id=AUD, expected_wallet_nonce="wallet-nonce-1"
        )
        assert params["wallet_nonce"] == "wallet-nonce-1" and params["state"] == req.state
    # without a wallet_nonce the object is the GET one
    plain = request_object.verify_request(w.verifier.signed_request_object(req), now=w.clock.s)
    assert "wallet_nonce" not in plain


def test_wallet_metadata_that_excludes_the_request_is_refused(engine: sa.Engine) -> None:
    w = World(engine)
    sd_jwt = w.verifier.create_request(AGENCY, dcql_query={"credentials": [_sd_jwt_query()]})
    bbs_only = {"vp_formats_supported": {"civitas-bbs": {}}}
    _refused_metadata(w, sd_jwt, bbs_only, "vp_formats_not_supported", "cannot meet this request")
    no_shared_kb_alg = {"vp_formats_supported": {"dc+sd-jwt": {"kb-jwt_alg_values": ["RS256"]}}}
    _refused_metadata(w, sd_jwt, no_shared_kb_alg, "vp_formats_not_supported", "dc\\+sd-jwt")
    no_shared_issuer_alg = {"vp_formats_supported": {"dc+sd-jwt": {"sd-jwt_alg_values": ["ES384"]}}}
    _refused_metadata(w, sd_jwt, no_shared_issuer_alg, "vp_formats_not_supported", "cannot meet")
    for name, value, code in (
        ("client_id_prefixes_supported", ["x509_san_dns"], "invalid_request"),
        ("request_object_signing_alg_values_supported", ["ES256"], "invalid_request"),
        ("response_modes_supported", ["fragment"], "invalid_request"),
        ("response_types_supported", ["code"], "unsupported_response_type"),
    ):
        _refused_metadata(w, sd_jwt, {name: value}, code, f"the wallet's {name} lacks")
    # credential_sets: one option the wallet can meet is enough; none is not
    either = {
        "credentials": [_sd_jwt_query(qid="a"), _sd_jwt_query("civitas-bbs", "b")],
        "credential_sets": [{"options": [["a"], ["b"]]}],
    }
    alternatives = w.verifier.create_request(AGENCY, dcql_query=either, require_status=False)
    assert w.verifier.signed_request_object(alternatives, wallet_metadata=json.dumps(bbs_only))
    mdoc_only = {"vp_formats_supported": {"mso_mdoc": {}}}
    _refused_metadata(w, alternatives, mdoc_only, "vp_formats_not_supported", "civitas-bbs, dc\\+sd-jwt")
    both = {"credentials": either["credentials"]}  # without credential_sets every query is needed
    needs_both = w.verifier.create_request(AGENCY, dcql_query=both, require_status=False)
    _refused_metadata(w, needs_both, bbs_only, "vp_formats_not_supported", "cannot meet")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("not json", "not JSON"),
        ("", "not JSON"),
        ("[" * 10_000, "over 8192 characters"),
        ("[" * 5000 + "]" * 5000, "over 8192"),
        ("[" * 4000 + "]" * 4000, "not JSON|JSON object"),  # deep nesting within the limit
        ('["vp_formats_supported"]', "must be a JSON object"),
        ('"{}"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"vp_formats_supported": []}', "map formats to objects"),
        ('{"vp_formats_supported": {"dc+sd-jwt": true}}', "map formats to objects"),
        ('{"vp_formats_supported": {"dc+sd-jwt": {"kb-jwt_alg_values": "EdDSA"}}}', "non-empty array"),
        ('{"vp_formats_supported": {"dc+sd-jwt": {"kb-jwt_alg_values": []}}}', "non-empty array"),
        ('{"client_id_prefixes_supported": "decentralized_identifier"}', "non-empty array of strings"),
        ('{"request_object_signing_alg_values_supported": [1]}', "non-empty array of strings"),
    ],
)
def test_malformed_wallet_metadata(engine: sa.Engine, metadata: str, message: str) -> None:
    w = World(engine)
    req = w.verifier.create_request(AGENCY, dcql_query={"credentials": [_sd_jwt_query()]})
    _refused_metadata(w, req, metadata, "invalid_request", message)


def test_wallet_metadata_size_edge(engine: sa.Engine) -> None:
    from identity.verifier import MAX_WALLET_METADATA_CHARS

    w = World(engine)
    req = w.verifier.create_request(AGENCY, dcql_query={"credentials": [_sd_jwt_query()]})
    padded = json.dumps({"padding": ""})
    at_limit = json.dumps({"padding": "x" * (MAX_WALLET_METADATA_CHARS - len(padded))})
    assert len(at_limit) == MAX_WALLET_METADATA_CHARS
    assert w.verifier.signed_request_object(req, wallet_metadata=at_limit)
    over = json.dumps({"padding": "x" * (MAX_WALLET_METADATA_CHARS - len(padded) + 1)})
    _refused_metadata(w, req, over, "invalid_request", "over 8192 characters")


def test_wallet_nonce_is_checked_before_signing(engine: sa.Engine) -> None:
    w = World(engine)
    req = w.verifier.create_request(AGENCY, dcql_query={"credentials": [_sd_jwt_query()]})
    for bad in ("", "x" * 129, "with space", "ümlaut"):
        with pytest.raises(VerifierError, match="wallet_nonce must be") as caught:
            w.verifier.signed_request_object(req, wallet_nonce=bad)
        assert caught.value.code == "invalid_request"
    assert w.verifier.signed_request_object(req, wallet_nonce="x" * 128)
