"""Identity over HTTP: OpenID4VCI issuance to the Python wallet, OpenID4VP presentation, status."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from civitas.app import create_app
from civitas.settings import Settings
from identity import did_key, jose, sdjwt
from identity import tables as t
from identity.issuer import MAX_STATUS_LIST_ID, PRE_AUTH_GRANT, make_proof
from identity.wallet import Wallet, WalletError, parse_authorization_request

from .conftest import BASE_URL, bearer
from .identity_support import CLAIMS, identity_settings

SENIOR = 'senior_fare = resident_of == "civitas" and age_over_65'


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return identity_settings(tmp_path, db_url)


@pytest.fixture
def staff(token_for: Any) -> dict[str, str]:
    return bearer(token_for("identity:issue"))


def _offer(client: TestClient, staff: dict[str, str], claims: dict[str, Any] = CLAIMS) -> dict[str, Any]:
    response = client.post(
        "/identity/offers", json={"subject_ref": "citizen-42", "claims": claims}, headers=staff
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["credential_offer_uri"].startswith("openid-credential-offer://?credential_offer=")
    return body


def _wallet(tmp_path: Path, client: TestClient) -> Wallet:
    return Wallet.create(tmp_path / "wallet.json", "passphrase", kdf_profile="test", http=client)


def test_metadata_documents(client: TestClient) -> None:
    meta = client.get("/.well-known/openid-credential-issuer").json()
    assert meta["credential_issuer"] == BASE_URL
    assert meta["credential_endpoint"] == f"{BASE_URL}/identity/credential"
    assert meta["nonce_endpoint"] == f"{BASE_URL}/identity/nonce"
    conf = meta["credential_configurations_supported"]["resident"]
    assert conf["format"] == "dc+sd-jwt" and conf["vct"] == f"{BASE_URL}/credentials/resident"
    as_meta = client.get("/.well-known/oauth-authorization-server").json()
    assert PRE_AUTH_GRANT in as_meta["grant_types_supported"]
    keys = client.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    assert keys[0]["kty"] == "OKP" and "d" not in keys[0]


def test_issue_present_decide_end_to_end(
    client: TestClient, staff: dict[str, str], agency: dict[str, str], tmp_path: Path, app: FastAPI
) -> None:
    offer = _offer(client, staff)
    wallet = _wallet(tmp_path, client)
    stored = wallet.receive(offer["credential_offer"], tx_code=offer["tx_code"], batch_size=3)
    assert stored.unused == 3 and stored.claims["age_over_65"] is True

    rule = client.post("/identity/eligibility-rules", json={"rule": SENIOR}, headers=agency)
    assert rule.status_code == 201, rule.text
    assert rule.json()["claims"] == ["resident_of", "age_over_65"]
    created = client.post("/identity/presentation-requests", json={"rule": "senior_fare"}, headers=agency)
    assert created.status_code == 201, created.text
    req = created.json()
    assert req["authorization_request_uri"].startswith("openid4vp://?client_id=")
    did = app.state.keys.current("service").did
    assert req["client_id"] == f"decentralized_identifier:{did}"
    pending = client.get(f"/identity/presentation-requests/{req['id']}/result", headers=agency)
    assert pending.status_code == 202

    # the request object is a JWS signed by the service key (RFC 9101), never plain JSON
    served = client.get(req["request_uri"])
    assert served.headers["content-type"] == "application/oauth-authz-req+jwt"
    header = json.loads(jose.b64u_decode(served.text.split(".")[0]))
    assert header == {
        "typ": "oauth-authz-req+jwt",
        "alg": "EdDSA",
        "kid": app.state.keys.current("service").kid,
    }
    request_uri, client_id = parse_authorization_request(req["authorization_request_uri"])
    request_object = wallet.fetch_request(request_uri, client_id=client_id)
    assert request_object["response_mode"] == "direct_post"
    assert request_object["aud"] == "https://self-issued.me/v2" and request_object["iss"] == client_id
    (item,) = wallet.preview(request_object)
    assert item.disclosed == {"resident_of": "civitas", "age_over_65": True}
    assert wallet.respond(request_object) == {}

    result = client.get(f"/identity/presentation-requests/{req['id']}/result", headers=agency)
    assert result.status_code == 200
    decision = result.json()
    assert decision["accepted"] and decision["eligible"] and decision["status_checked"]
    assert decision["disclosed"] == {"eligibility": {"resident_of": "civitas", "age_over_65": True}}
    # another agency cannot read it
    other = bearer_token_for_other(client, app)
    assert client.get(f"/identity/presentation-requests/{req['id']}/result", headers=other).status_code == 404
    # the verifier side stores nothing identifying
    with app.state.engine.connect() as conn:
        dump = json.dumps(
            [dict(r) for r in conn.execute(sa.select(t.presentation_results)).mappings()], default=str
        )
    for secret in ("Ada", "Lovelace", "1950-12-10", "Main St"):
        assert secret not in dump
    # a request object is served only while pending
    assert client.get(req["request_uri"]).status_code == 404


def bearer_token_for_other(client: TestClient, app: FastAPI) -> dict[str, str]:
    from civitas.clients import add_client

    created, secret = add_client(app.state.engine, "other agency", "identity:verify")
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(created.client_id, secret)
    ).json()["access_token"]
    return bearer(token)


def test_replay_and_revocation(
    client: TestClient, staff: dict[str, str], agency: dict[str, str], tmp_path: Path
) -> None:
    offer = _offer(client, staff)
    wallet = _wallet(tmp_path, client)
    wallet.receive(offer["credential_offer"], tx_code=offer["tx_code"], batch_size=2)
    query = {
        "credentials": [
            {
                "id": "res",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [f"{BASE_URL}/credentials/resident"]},
                "claims": [{"path": ["resident_of"]}],
            }
        ]
    }
    req = client.post("/identity/presentation-requests", json={"dcql_query": query}, headers=agency).json()
    obj = wallet.fetch_request(req["request_uri"])
    vp_token = wallet.present(obj)
    form = {"vp_token": json.dumps(vp_token), "state": obj["state"]}
    assert client.post("/identity/presentation-responses", data=form).status_code == 200
    replay = client.post("/identity/presentation-responses", data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_request"

    status = client.post(
        f"/identity/credentials/{offer['offer_id']}/status", json={"status": "revoked"}, headers=staff
    )
    assert status.status_code == 200 and status.json()["copies"] == 2
    req2 = client.post("/identity/presentation-requests", json={"dcql_query": query}, headers=agency).json()
    obj2 = wallet.fetch_request(req2["request_uri"])
    with pytest.raises(WalletError, match="invalid_presentation"):
        wallet.respond(obj2)
    result = client.get(f"/identity/presentation-requests/{req2['id']}/result", headers=agency).json()
    assert result["accepted"] is False and result["reason"] == "revoked" and result["disclosed"] == {}


def test_status_list_endpoint(client: TestClient, staff: dict[str, str], tmp_path: Path) -> None:
    offer = _offer(client, staff)
    wallet = _wallet(tmp_path, client)
    stored = wallet.receive(offer["credential_offer"], tx_code=offer["tx_code"], batch_size=1)
    ref = sdjwt.parse(stored.copies[0].credential).payload["status"]["status_list"]
    path = ref["uri"].removeprefix(BASE_URL)
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/statuslist+jwt")
    assert client.get("/identity/status-lists/999").status_code == 404
    # ids are 32-bit SQL integers: the last one is looked up, anything past it is refused unread
    assert client.get(f"/identity/status-lists/{MAX_STATUS_LIST_ID}").status_code == 404
    for beyond in (0, MAX_STATUS_LIST_ID + 1, 1 << 63):
        refused = client.get(f"/identity/status-lists/{beyond}")
        assert refused.status_code == 422, beyond
        assert refused.headers["content-type"] == "application/problem+json"


def test_token_grant_errors(client: TestClient, staff: dict[str, str]) -> None:
    offer = _offer(client, staff)
    code = offer["credential_offer"]["grants"][PRE_AUTH_GRANT]["pre-authorized_code"]
    wrong = client.post(
        "/oauth/token", data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code, "tx_code": "x"}
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    ok = client.post(
        "/oauth/token",
        data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code, "tx_code": offer["tx_code"]},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"].lower() == "bearer"
    again = client.post(
        "/oauth/token",
        data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code, "tx_code": offer["tx_code"]},
    )
    assert again.json()["error"] == "invalid_grant"


def test_credential_endpoint_errors(
    client: TestClient, staff: dict[str, str], agency: dict[str, str]
) -> None:
    no_token = client.post(
        "/identity/credential", json={"credential_configuration_id": "resident", "proofs": {"jwt": []}}
    )
    assert no_token.status_code == 401 and no_token.json()["error"] == "invalid_token"
    assert "Bearer" in no_token.headers["www-authenticate"]
    wrong_kind = client.post(
        "/identity/credential",
        json={"credential_configuration_id": "resident", "proofs": {"jwt": []}},
        headers=agency,
    )
    assert wrong_kind.status_code == 403
    offer = _offer(client, staff)
    code = offer["credential_offer"]["grants"][PRE_AUTH_GRANT]["pre-authorized_code"]
    access = client.post(
        "/oauth/token",
        data={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code, "tx_code": offer["tx_code"]},
    ).json()["access_token"]
    holder = jose.generate_ed25519()
    bad_nonce = make_proof(holder, audience=BASE_URL, nonce="made-up")
    r = client.post(
        "/identity/credential",
        json={"credential_configuration_id": "resident", "proofs": {"jwt": [bad_nonce]}},
        headers=bearer(access),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_nonce"
    nonce = client.post("/identity/nonce").json()["c_nonce"]
    wrong_aud = make_proof(holder, audience="https://elsewhere", nonce=nonce)
    r = client.post(
        "/identity/credential",
        json={"credential_configuration_id": "resident", "proofs": {"jwt": [wrong_aud]}},
        headers=bearer(access),
    )
    assert r.json()["error"] == "invalid_proof"
    r = client.post(
        "/identity/credential",
        json={"credential_configuration_id": "other", "proofs": {"jwt": [wrong_aud]}},
        headers=bearer(access),
    )
    assert r.json()["error"] == "unknown_credential_configuration"


def test_staff_endpoints_need_scope_and_use_problem_json(
    client: TestClient, agency: dict[str, str], staff: dict[str, str]
) -> None:
    r = client.post("/identity/offers", json={"subject_ref": "x", "claims": CLAIMS}, headers=agency)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    r = client.post("/identity/offers", json={"subject_ref": "x", "claims": {"vct": "x"}}, headers=staff)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    # raw claims the predicates are derived from are checked when the offer is made
    for bad, reason in (
        ({"student": "yes"}, "student must be a boolean"),
        ({"birthdate": "1990-13-01"}, "birthdate must be YYYY-MM-DD"),
        ({"address": {"locality": " "}}, "locality must be a non-empty string"),
    ):
        r = client.post(
            "/identity/offers", json={"subject_ref": "x", "claims": {**CLAIMS, **bad}}, headers=staff
        )
        assert r.status_code == 400 and r.json()["detail"] == reason
    r = client.post("/identity/eligibility-rules", json={"rule": "x = (("}, headers=agency)
    assert r.status_code == 400 and r.json()["type"].endswith("invalid-rule")
    r = client.post("/identity/presentation-requests", json={"rule": "nope"}, headers=agency)
    assert r.status_code == 404
    r = client.post(
        "/identity/credentials/00000000000000000000000000000000/status",
        json={"status": "revoked"},
        headers=staff,
    )
    assert r.status_code == 404


def test_trusted_issuer_registration(client: TestClient, token_for: Any) -> None:
    admin = bearer(token_for("identity:admin"))
    key = jose.public_jwk(jose.generate_ed25519())
    r = client.post(
        "/identity/trusted-issuers",
        json={
            "issuer": "https://library.example",
            "jwk": key,
            "vct_values": ["https://library.example/card"],
        },
        headers=admin,
    )
    assert r.status_code == 201
    r = client.post(
        "/identity/trusted-issuers",
        json={"issuer": "https://library.example", "jwk": jose.generate_ed25519(), "vct_values": ["x"]},
        headers=admin,
    )
    assert r.status_code == 400


def test_wallet_cli(
    client: TestClient,
    staff: dict[str, str],
    agency: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from civitas import cli_wallet

    monkeypatch.setenv(cli_wallet.PASSPHRASE_ENV, "cli passphrase")
    monkeypatch.setattr(cli_wallet, "_http", lambda args: client)
    parser = argparse.ArgumentParser()
    cli_wallet.register(parser.add_subparsers(dest="command"))
    wallet_file = str(tmp_path / "w.json")

    def run(*argv: str) -> int:
        args = parser.parse_args(["wallet", "--wallet", wallet_file, *argv])
        return int(args.func(args))

    assert run("init") == 0
    offer = _offer(client, staff)
    assert run("receive", offer["credential_offer_uri"], "--tx-code", offer["tx_code"], "--copies", "2") == 0
    capsys.readouterr()
    assert run("list", "--json") == 0
    (held,) = json.loads(capsys.readouterr().out)
    assert held["unused_copies"] == 2 and held["claims"]["resident_of"] == "civitas"
    client.post("/identity/eligibility-rules", json={"rule": SENIOR}, headers=agency)
    req = client.post("/identity/presentation-requests", json={"rule": "senior_fare"}, headers=agency).json()
    assert run("present", req["authorization_request_uri"], "--yes") == 0
    out = capsys.readouterr().out
    assert "age_over_65 = true" in out and "birthdate" not in out
    result = client.get(f"/identity/presentation-requests/{req['id']}/result", headers=agency).json()
    assert result["eligible"] is True
    assert run("receive", "not json at all") == 2  # errors are reported, not raised


def test_bbs_credential_with_per_verifier_pseudonym(
    client: TestClient, staff: dict[str, str], agency: dict[str, str], tmp_path: Path
) -> None:
    meta = client.get("/.well-known/openid-credential-issuer").json()
    assert meta["credential_configurations_supported"]["resident_bbs"]["format"] == "civitas-bbs"
    # the issuer's BBS key as a did:key (its leading characters vary with the key: decode it)
    bbs_did = client.get("/.well-known/jwt-vc-issuer").json()["bbs_did"]
    assert did_key.decode(bbs_did).key_type == "Bls12381G2"
    response = client.post(
        "/identity/offers",
        json={"credential_configuration_id": "resident_bbs", "subject_ref": "c-7", "claims": CLAIMS},
        headers=staff,
    )
    offer = response.json()
    wallet = _wallet(tmp_path, client)
    stored = wallet.receive(offer["credential_offer"], tx_code=offer["tx_code"])
    assert stored.format == "civitas-bbs" and stored.claims["age_over_65"] is True
    client.post("/identity/eligibility-rules", json={"rule": SENIOR}, headers=agency)

    status_ref = stored.claims["status"]["status_list"]
    assert status_ref["uri"].startswith(f"{BASE_URL}/identity/status-lists/")

    def ask(context: str, *, require_status: bool = True) -> dict[str, Any]:
        req = client.post(
            "/identity/presentation-requests",
            json={"rule": "senior_fare", "pseudonym_context": context, "require_status": require_status},
            headers=agency,
        ).json()
        obj = wallet.fetch_request(req["request_uri"])
        (item,) = wallet.preview(obj)
        shown = {"resident_of": "civitas", "age_over_65": True}
        # the user sees that the status reference (a correlation handle) is part of the answer
        assert item.disclosed == ({**shown, "status": stored.claims["status"]} if require_status else shown)
        with contextlib.suppress(WalletError):  # refused: the result says why
            wallet.respond(obj)
        result: dict[str, Any] = client.get(
            f"/identity/presentation-requests/{req['id']}/result", headers=agency
        ).json()
        return result

    first, second = ask("https://city.example/ledger"), ask("https://city.example/ledger")
    other = ask("https://library.example")
    for r in (first, second, other):
        assert r["accepted"] and r["eligible"] and r["format"] == "civitas-bbs" and r["status_checked"]
        # the status reference was checked and is not handed to the agency
        assert r["disclosed"] == {"eligibility_1": {"resident_of": "civitas", "age_over_65": True}}
    assert first["pseudonym"] == second["pseudonym"] != other["pseudonym"]
    assert first["pseudonym"]
    unlinkable = ask("https://library.example", require_status=False)
    assert unlinkable["accepted"] and not unlinkable["status_checked"]

    for status, reason in (("suspended", "suspended"), ("revoked", "revoked")):
        changed = client.post(
            f"/identity/credentials/{offer['offer_id']}/status", json={"status": status}, headers=staff
        )
        assert changed.status_code == 200 and changed.json()["copies"] == 1
        refused = ask("https://city.example/ledger")
        assert not refused["accepted"] and refused["reason"] == reason and refused["disclosed"] == {}
    # a request that does not ask for the status cannot see the revocation (documented trade-off)
    assert ask("https://library.example", require_status=False)["accepted"]
    with app_engine(client).connect() as conn:
        dump = json.dumps(
            [dict(r) for r in conn.execute(sa.select(t.presentation_results)).mappings()], default=str
        )
    assert status_ref["uri"] not in dump  # decisions never keep the status reference


def app_engine(client: TestClient) -> sa.Engine:
    engine: sa.Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def test_citizen_sign_in_gives_per_service_pseudonymous_tokens(
    client: TestClient, staff: dict[str, str], tmp_path: Path
) -> None:
    response = client.post(
        "/identity/offers",
        json={"credential_configuration_id": "resident_bbs", "subject_ref": "c-9", "claims": CLAIMS},
        headers=staff,
    )
    offer = response.json()
    wallet = _wallet(tmp_path, client)
    wallet.receive(offer["credential_offer"], tx_code=offer["tx_code"])

    first = wallet.sign_in(BASE_URL)
    again = wallet.sign_in(BASE_URL)
    other = wallet.sign_in(BASE_URL, service="library", scope="consent")

    def claims(token: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(jose.b64u_decode(token["access_token"].split(".")[1]))
        return payload

    a, b, c = claims(first), claims(again), claims(other)
    assert a["sub"] == b["sub"] != c["sub"]
    assert a["client_id"] == "wallet" and a["scope"] == "consent ledger:read ledger:write"
    assert c["scope"] == "consent"
    for secret in ("Ada", "Lovelace", "1950"):
        assert secret not in json.dumps(a)
    # the token works where citizens are served
    records = client.get("/consent/records", headers=bearer(first["access_token"]))
    assert records.status_code == 200, records.text
    opened = client.post("/ledger/accounts", json={}, headers=bearer(first["access_token"]))
    assert opened.status_code in (200, 201), opened.text


def test_citizen_sign_in_errors(client: TestClient, tmp_path: Path) -> None:
    started = client.post("/identity/citizen-sessions", json={}).json()
    # sign-in never asks for the status reference: it would link the pseudonyms of all services
    jar = client.get(started["request_uri"]).text
    (cq,) = json.loads(jose.b64u_decode(jar.split(".")[1]))["dcql_query"]["credentials"]
    assert cq["format"] == "civitas-bbs" and "claims" not in cq
    token_url = f"/identity/citizen-sessions/{started['id']}/token"
    pending = client.post(token_url, json={"session_secret": started["session_secret"]})
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    wrong = client.post(token_url, json={"session_secret": "nope"})
    assert wrong.json()["error"] == "invalid_grant"
    bad_scope = client.post("/identity/citizen-sessions", json={"scope": "ledger:admin"})
    assert bad_scope.status_code == 400
    assert bad_scope.headers["content-type"].startswith("application/problem+json")
    # a wallet holding only an SD-JWT credential has no pseudonym to offer
    wallet = _wallet(tmp_path, client)
    with pytest.raises(WalletError):
        wallet.sign_in(BASE_URL)


def test_unauthenticated_identity_endpoints_are_rate_limited_per_client(
    settings: Settings, db_url: str
) -> None:
    limited = settings.model_copy(update={"identity_rate_limit_burst": 3, "identity_rate_limit_per_min": 60})
    application = create_app(limited)
    try:
        with TestClient(application, base_url=BASE_URL) as client:
            now = [0.0]
            for limiter in application.state.rate_limiters.values():
                limiter.clock = lambda: now[0]
            for path, body in (("/identity/nonce", None), ("/identity/citizen-sessions", {})):
                for _ in range(3):
                    assert client.post(path, json=body).status_code in (200, 201)
                refused = client.post(path, json=body)
                assert refused.status_code == 429
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert refused.headers["retry-after"] == "1"  # 60 a minute: a token every second
                problem = refused.json()
                assert problem["type"] == "urn:civitas:problem:too-many-requests"
                assert "3 at once and 60 a minute" in problem["detail"]
            # the other endpoint's bucket and other clients are untouched; time refills the bucket
            now[0] += 1.0
            assert client.post("/identity/nonce").status_code == 200
            assert client.post("/identity/nonce").status_code == 429
            # issuing nonces wrote nothing; each started sign-in wrote one session
            with application.state.engine.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(t.nonces)).scalar() == 0
                sessions = conn.execute(sa.select(sa.func.count()).select_from(t.citizen_sessions)).scalar()
            assert sessions == 3
    finally:
        application.state.engine.dispose()


def test_expired_sign_ins_are_purged(client: TestClient, app: FastAPI) -> None:
    started = [client.post("/identity/citizen-sessions", json={}).json() for _ in range(2)]
    clock = app.state.identity_verifier.clock
    with app.state.engine.begin() as conn:  # the first sign-in is long over
        conn.execute(
            t.citizen_sessions.update()
            .where(t.citizen_sessions.c.request_id == int(started[0]["id"], 16))
            .values(expires_ns=clock() - 1)
        )
    client.post("/identity/citizen-sessions", json={})
    with app.state.engine.connect() as conn:
        left = set(conn.execute(sa.select(t.presentation_requests.c.id)).scalars())
        assert conn.execute(sa.select(sa.func.count()).select_from(t.citizen_sessions)).scalar() == 2
    assert int(started[0]["id"], 16) not in left and int(started[1]["id"], 16) in left
    gone = client.post(
        f"/identity/citizen-sessions/{started[0]['id']}/token",
        json={"session_secret": started[0]["session_secret"]},
    )
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"


def test_request_object_is_not_served_after_expiry(
    client: TestClient, agency: dict[str, str], app: FastAPI
) -> None:
    query = {"credentials": [{"id": "res", "format": "dc+sd-jwt", "meta": {"vct_values": ["x"]}}]}
    req = client.post("/identity/presentation-requests", json={"dcql_query": query}, headers=agency).json()
    verifier = app.state.identity_verifier
    expires_ns = req["expires_at"] * 1_000_000_000
    real_clock = verifier.clock
    try:
        verifier.clock = lambda: expires_ns - 1
        assert client.get(req["request_uri"]).status_code == 200
        verifier.clock = lambda: expires_ns + 1_000_000_000  # expires_at is rounded down
        gone = client.get(req["request_uri"])
        assert gone.status_code == 404 and gone.json()["error"] == "invalid_request_uri"
    finally:
        verifier.clock = real_clock
    assert client.get("/identity/presentation-requests/not-hex").status_code == 404
