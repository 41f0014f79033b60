from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import sqlalchemy as sa

from identity import jose, sdjwt
from identity.issuer import PRE_AUTH_GRANT, IssuanceError, make_proof
from identity.verifier import EligibilityRules, TrustedIssuers, Verifier, VerifierConfig, VerifierError
from identity.wallet import Wallet, WalletError

from .issuer_support import ISSUER_ID, RAW_CLAIMS, RESIDENT_VCT, FakeClock, make_issuer

SENIOR = 'senior_fare = resident_of == "civitas" and age_over_65'
VERIFIER_KEY = jose.generate_ed25519()


def _wallet(tmp_path: Path, http: httpx.Client | None = None, clock: FakeClock | None = None) -> Wallet:
    tick = None if clock is None else (lambda: clock.s)
    return Wallet.create(tmp_path / "wallet.json", "correct horse", kdf_profile="test", http=http, clock=tick)


def _issue_into(wallet: Wallet, engine: sa.Engine, clock: FakeClock, n: int = 3) -> Any:
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="c")
    grant = issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    keys = wallet.new_holder_keys(n)
    nonce = issuer.new_nonce()
    creds = issuer.issue(
        grant.offer_id, [make_proof(k, audience=ISSUER_ID, nonce=nonce, iat=clock.s) for k in keys]
    )
    return issuer, wallet.add_sd_jwt_batch(creds, keys, issuer_jwk=issuer.public_jwk)


def test_encrypted_at_rest_and_reopen(tmp_path: Path, engine: sa.Engine) -> None:
    wallet = _wallet(tmp_path)
    _, stored = _issue_into(wallet, engine, FakeClock())
    raw = (tmp_path / "wallet.json").read_text()
    for secret in ("Lovelace", "1950-12-10", '"d"', stored.copies[0].credential[:40]):
        assert secret not in raw
    assert stat.S_IMODE((tmp_path / "wallet.json").stat().st_mode) == 0o600
    again = Wallet.open(tmp_path / "wallet.json", "correct horse")
    assert [c.id for c in again.credentials()] == [stored.id]
    assert again.get(stored.id).claims["family_name"] == "Lovelace"
    with pytest.raises(WalletError, match="wrong passphrase"):
        Wallet.open(tmp_path / "wallet.json", "wrong horse")
    with pytest.raises(WalletError, match="exists"):
        _wallet(tmp_path)


def test_tampered_file_rejected(tmp_path: Path) -> None:
    _wallet(tmp_path)
    env = json.loads((tmp_path / "wallet.json").read_text())
    box = bytearray(__import__("base64").b64decode(env["box"]))
    box[-1] ^= 1
    env["box"] = __import__("base64").b64encode(bytes(box)).decode()
    (tmp_path / "wallet.json").write_text(json.dumps(env))
    with pytest.raises(WalletError):
        Wallet.open(tmp_path / "wallet.json", "correct horse")


def _verifier(engine: sa.Engine, clock: FakeClock, issuer: Any) -> Verifier:
    trusted = TrustedIssuers(engine, clock=clock)
    trusted.register(ISSUER_ID, issuer.public_jwk, [RESIDENT_VCT])
    rules = EligibilityRules(engine, clock=clock)
    rules.register("agency", SENIOR, [RESIDENT_VCT])
    config = VerifierConfig(
        response_uri="https://city.example/r",
        request_uri_base="https://city.example/q",
        signing_jwk=VERIFIER_KEY,
    )
    from identity import status_list

    checker = status_list.StatusChecker(
        lambda uri: issuer.status_list_token(int(uri.rsplit("/", 1)[1])),
        lambda uri: issuer.public_jwk,
        clock=lambda: clock.s,
    )
    return Verifier(engine, config, trusted, rules=rules, status_checker=checker, clock=clock)


def test_preview_then_present_single_use_copies(tmp_path: Path, engine: sa.Engine) -> None:
    clock = FakeClock()
    wallet = _wallet(tmp_path)
    issuer, stored = _issue_into(wallet, engine, clock, n=2)
    verifier = _verifier(engine, clock, issuer)
    presented: list[str] = []
    for _ in range(2):
        req = verifier.create_request("agency", rule_name="senior_fare")
        obj = verifier.request_object(req)
        (item,) = wallet.preview(obj)
        assert item.disclosed == {"resident_of": "civitas", "age_over_65": True}
        vp = wallet.present(obj, now=clock.s)
        presented.append(vp["eligibility"][0])
        d = verifier.handle_response(state=obj["state"], vp_token=vp)
        assert d.accepted and d.eligible
    # two presentations share no issuer signature, holder key or status slot
    a, b = (sdjwt.parse(p) for p in presented)
    assert a.jwt != b.jwt
    assert a.payload["cnf"] != b.payload["cnf"] and a.payload["status"] != b.payload["status"]
    assert (set(a.serialized.split("~")) - {""}).isdisjoint(b.serialized.split("~"))
    assert Wallet.open(tmp_path / "wallet.json", "correct horse").get(stored.id).unused == 0
    req = verifier.create_request("agency", rule_name="senior_fare")
    obj = verifier.request_object(req)
    assert wallet.preview(obj) == []
    with pytest.raises(WalletError, match="satisfies"):
        wallet.present(obj)
    assert wallet.present(obj, allow_reuse=True)["eligibility"]


def test_batch_must_match_wallet_keys(tmp_path: Path, engine: sa.Engine) -> None:
    clock = FakeClock()
    wallet = _wallet(tmp_path)
    issuer = make_issuer(engine, clock)
    created = issuer.create_offer("resident", RAW_CLAIMS, subject_ref="c")
    grant = issuer.redeem_pre_authorized_code(created.pre_authorized_code, created.tx_code)
    stranger = jose.generate_ed25519()
    (cred,) = issuer.issue(
        grant.offer_id, [make_proof(stranger, audience=ISSUER_ID, nonce=issuer.new_nonce(), iat=clock.s)]
    )
    with pytest.raises(WalletError, match="did not create"):
        wallet.add_sd_jwt_batch([cred], wallet.new_holder_keys(1))
    with pytest.raises(WalletError, match="rejected"):
        wallet.add_sd_jwt_batch([cred], [stranger], issuer_jwk=jose.public_jwk(jose.generate_ed25519()))


class FakeCity:
    """An httpx transport that routes wallet calls onto the library cores (no web framework)."""

    def __init__(self, engine: sa.Engine, clock: FakeClock) -> None:
        self.issuer = make_issuer(engine, clock)
        self.verifier = _verifier(engine, clock, self.issuer)
        self.clock = clock
        self.tokens: dict[str, int] = {}
        # what GET {request_uri} answers; tests swap it for forged or unsigned variants
        self.request_response = lambda req: httpx.Response(
            200,
            content=self.verifier.signed_request_object(req),
            headers={"content-type": "application/oauth-authz-req+jwt"},
        )
        # what POST {request_uri} answers (request_uri_method=post), and the forms it received
        self.posted: list[dict[str, str]] = []
        self.post_response = lambda req, form: httpx.Response(
            200,
            content=self.verifier.signed_request_object(
                req, wallet_metadata=form.get("wallet_metadata"), wallet_nonce=form.get("wallet_nonce")
            ),
            headers={"content-type": "application/oauth-authz-req+jwt"},
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        form = (
            {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            if request.method == "POST"
            else {}
        )
        try:
            if path == "/.well-known/openid-credential-issuer":
                return httpx.Response(200, json=self.issuer.metadata())
            if path == "/.well-known/jwt-vc-issuer":
                return httpx.Response(
                    200, json={"issuer": ISSUER_ID, "jwks": {"keys": [self.issuer.public_jwk]}}
                )
            if path == "/oauth/token":
                grant = self.issuer.redeem_pre_authorized_code(
                    form["pre-authorized_code"], form.get("tx_code")
                )
                token = uuid.uuid4().hex
                self.tokens[token] = grant.offer_id
                return httpx.Response(
                    200, json={"access_token": token, "token_type": "Bearer", "expires_in": 600}
                )
            if path == "/identity/nonce":
                return httpx.Response(200, json={"c_nonce": self.issuer.new_nonce()})
            if path == "/identity/credential":
                offer_id = self.tokens[request.headers["authorization"].removeprefix("Bearer ")]
                body = json.loads(request.content)
                creds = self.issuer.issue(offer_id, body["proofs"]["jwt"])
                return httpx.Response(200, json={"credentials": [{"credential": c} for c in creds]})
            if path.startswith("/q/"):
                req = self.verifier.get_request(int(path.rsplit("/", 1)[1], 16))
                assert req is not None
                if request.method == "POST":
                    assert request.headers["accept"] == "application/oauth-authz-req+jwt"
                    self.posted.append(form)
                    return self.post_response(req, form)
                return self.request_response(req)
            if path == "/r":
                self.verifier.handle_response(state=form["state"], vp_token=form["vp_token"])
                return httpx.Response(200, json={})
        except IssuanceError as exc:
            return httpx.Response(exc.status, json={"error": exc.error, "error_description": exc.description})
        except VerifierError as exc:
            return httpx.Response(exc.status, json={"error": exc.code})
        return httpx.Response(404, json={"error": "not_found"})


def test_http_receive_and_respond(tmp_path: Path, engine: sa.Engine) -> None:
    clock = FakeClock()
    city = FakeCity(engine, clock)
    http = httpx.Client(transport=httpx.MockTransport(city), base_url=ISSUER_ID)
    wallet = _wallet(tmp_path, http, clock)
    created = city.issuer.create_offer("resident", RAW_CLAIMS, subject_ref="c")
    assert created.offer["grants"][PRE_AUTH_GRANT]
    with pytest.raises(WalletError, match="token request failed: invalid_grant"):
        wallet.receive(created.offer, tx_code="wrong!")
    stored = wallet.receive(json.dumps(created.offer), tx_code=created.tx_code, batch_size=4)
    assert stored.unused == 4 and stored.vct == RESIDENT_VCT
    req = city.verifier.create_request("agency", rule_name="senior_fare")
    obj = wallet.fetch_request(city.verifier.request_uri(req))
    assert wallet.respond(obj) == {}
    decision = city.verifier.result(req.id, owner="agency")
    assert decision is not None and decision.accepted and decision.eligible
    assert wallet.get(stored.id).unused == 3


def _holder_and_request(
    tmp_path: Path, engine: sa.Engine
) -> tuple[FakeClock, FakeCity, Wallet, Any, Any, str]:
    """A wallet over HTTP holding two copies of a resident credential, and an agency's pending
    senior_fare request with its request_uri."""
    clock = FakeClock()
    city = FakeCity(engine, clock)
    http = httpx.Client(transport=httpx.MockTransport(city), base_url=ISSUER_ID)
    wallet = _wallet(tmp_path, http, clock)
    created = city.issuer.create_offer("resident", RAW_CLAIMS, subject_ref="c")
    stored = wallet.receive(created.offer, tx_code=created.tx_code, batch_size=2)
    req = city.verifier.create_request("agency", rule_name="senior_fare")
    return clock, city, wallet, stored, req, city.verifier.request_uri(req)


def _link(city: FakeCity, uri: str, **extra: str) -> str:
    return "openid4vp://?" + str(
        httpx.QueryParams({"client_id": city.verifier.client_id, "request_uri": uri, **extra})
    )


def test_wallet_refuses_unsigned_forged_and_misdirected_requests(tmp_path: Path, engine: sa.Engine) -> None:
    from identity import request_object

    clock, city, wallet, stored, req, uri = _holder_and_request(tmp_path, engine)
    params = city.verifier.request_object(req)

    def jar(body: str) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": request_object.MEDIA_TYPE})

    def sign(claims: dict[str, Any], key: dict[str, Any] = VERIFIER_KEY) -> str:
        signer = request_object.RequestSigner.did_key(key)
        return request_object.sign_request(claims, signer, iat=clock.s, exp=clock.s + 300)

    impostor = jose.generate_ed25519()
    forged = sign({**params, "client_id": request_object.client_id_for(impostor)}, impostor)
    head, payload, sig = sign(params).split(".")
    tampered_claims = {**json.loads(jose.b64u_decode(payload)), "dcql_query": {"credentials": []}}
    tampered = ".".join((head, jose.b64u_encode(json.dumps(tampered_claims).encode()), sig))
    cases: list[tuple[Any, str]] = [
        (lambda r: httpx.Response(200, json=params), r"expected application/oauth-authz-req\+jwt"),
        (lambda r: jar(json.dumps(params)), "not a compact JWS|not base64url"),
        (lambda r: jar(tampered), "signature invalid"),
        (lambda r: jar(sign({**params, "response_uri": "https://elsewhere.example/r"})), "another origin"),
        (lambda r: httpx.Response(404, json={"error": "invalid_request_uri"}), "invalid_request_uri"),
    ]
    for respond_with, message in cases:
        city.request_response = respond_with
        with pytest.raises(WalletError, match=message):
            wallet.fetch_request(uri)
    # a request signed by another did:key is refused when the QR code named this verifier
    city.request_response = lambda r: jar(forged)
    link = _link(city, uri)
    from identity.wallet import parse_authorization_request

    request_uri, client_id = parse_authorization_request(link)
    assert (request_uri, client_id) == (uri, city.verifier.client_id)
    with pytest.raises(WalletError, match="differs from the one in the authorization request"):
        wallet.fetch_request(request_uri, client_id=client_id)
    # ... and when it is presented anyway, the verifier refuses it: wrong audience
    obj = wallet.fetch_request(uri)  # no client_id to compare with: its own signature holds
    assert obj["client_id"] == request_object.client_id_for(impostor)
    vp = wallet.present(obj)
    assert city.verifier.handle_response(state=obj["state"], vp_token=vp).reason == "wrong_audience"
    with pytest.raises(WalletError, match="exactly one request_uri"):
        parse_authorization_request("openid4vp://?client_id=x")
    assert wallet.get(stored.id).unused == 1  # nothing was presented for the refused requests


def test_request_uri_method_post_sends_metadata_and_requires_the_wallet_nonce(
    tmp_path: Path, engine: sa.Engine
) -> None:
    from identity import request_object
    from identity.wallet import WALLET_METADATA, parse_request_link

    clock, city, wallet, stored, req, uri = _holder_and_request(tmp_path, engine)
    link = _link(city, uri, request_uri_method="post")
    parsed = parse_request_link(link)
    assert (parsed.request_uri, parsed.client_id, parsed.request_uri_method) == (
        uri,
        city.verifier.client_id,
        "post",
    )

    obj = wallet.fetch_link(link)
    (sent,) = city.posted
    assert json.loads(sent["wallet_metadata"]) == WALLET_METADATA
    assert obj["wallet_nonce"] == sent["wallet_nonce"] and len(sent["wallet_nonce"]) == 32
    # every fetch uses a fresh nonce
    assert wallet.fetch_link(link)["wallet_nonce"] != obj["wallet_nonce"]

    def signed(extra: dict[str, Any]) -> httpx.Response:
        params = {**city.verifier.request_object(req), **extra}
        signer = request_object.RequestSigner.did_key(VERIFIER_KEY)
        body = request_object.sign_request(params, signer, iat=clock.s, exp=clock.s + 300)
        return httpx.Response(200, content=body, headers={"content-type": request_object.MEDIA_TYPE})

    # a replayed object (fetched earlier, by GET or with another nonce) is refused
    city.post_response = lambda r, form: signed({})
    with pytest.raises(WalletError, match="lacks the wallet_nonce the wallet sent"):
        wallet.fetch_link(link)
    city.post_response = lambda r, form: signed({"wallet_nonce": obj["wallet_nonce"]})
    with pytest.raises(WalletError, match="wallet_nonce differs"):
        wallet.fetch_link(link)
    city.post_response = lambda r, form: signed({"wallet_nonce": form["wallet_nonce"] + "x"})
    with pytest.raises(WalletError, match="wallet_nonce differs"):
        wallet.fetch_link(link)
    city.post_response = lambda r, form: httpx.Response(400, json={"error": "vp_formats_not_supported"})
    with pytest.raises(WalletError, match="vp_formats_not_supported"):
        wallet.fetch_link(link)

    # get, or no method at all, is a plain GET as before
    posts = len(city.posted)
    for plain in (_link(city, uri, request_uri_method="get"), _link(city, uri), uri):
        assert "wallet_nonce" not in wallet.fetch_link(plain)
    assert len(city.posted) == posts
    assert wallet.get(stored.id).unused == 2  # nothing was presented for the refused requests
    assert wallet.respond(obj) == {}  # the verified POST object is answered as any other
    decision = city.verifier.result(req.id, owner="agency")
    assert decision is not None and decision.accepted and decision.eligible


def test_unknown_request_uri_method_is_refused(tmp_path: Path, engine: sa.Engine) -> None:
    from identity.wallet import parse_authorization_request, parse_request_link

    clock = FakeClock()
    city = FakeCity(engine, clock)
    calls: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return city(request)

    wallet = _wallet(tmp_path, httpx.Client(transport=httpx.MockTransport(recording)), clock)
    uri = city.verifier.request_uri(city.verifier.create_request("agency", rule_name="senior_fare"))
    for method in ("put", "POST", "Get", "", "post "):
        link = _link(city, uri, request_uri_method=method)
        for parse in (parse_request_link, parse_authorization_request, wallet.fetch_link):
            with pytest.raises(WalletError, match="invalid_request_uri_method"):
                parse(link)
    twice = _link(city, uri, request_uri_method="post") + "&request_uri_method=get"
    with pytest.raises(WalletError, match="invalid_request_uri_method"):
        wallet.fetch_link(twice)
    with pytest.raises(WalletError, match="invalid_request_uri_method"):
        wallet.fetch_request(uri, request_uri_method="put")
    with pytest.raises(WalletError, match="exactly one request_uri"):
        parse_request_link("openid4vp://?client_id=x&request_uri=&request_uri_method=post")
    with pytest.raises(WalletError, match="empty client_id"):
        parse_request_link(f"openid4vp://?client_id=&request_uri={uri}")
    assert calls == []  # refused before anything was sent
