"""OpenID4VP ``request_uri_method=post`` over HTTP: the wallet POSTs its metadata and a wallet_nonce
to ``request_uri`` and gets a Request Object carrying that nonce; GET keeps working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from civitas.routers.oid4vp import MAX_FORM_FIELDS, MAX_REQUEST_URI_BODY_BYTES
from civitas.settings import Settings
from identity import request_object
from identity import tables as t
from identity.verifier import MAX_WALLET_METADATA_CHARS
from identity.wallet import WALLET_METADATA, Wallet, WalletError, parse_request_link

from .conftest import BASE_URL, bearer
from .identity_support import CLAIMS, FORM, ask, identity_settings, jwt_payload, resident_wallet


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return identity_settings(tmp_path, db_url)


@pytest.fixture
def wallet(client: TestClient, token_for: Any, tmp_path: Path) -> Wallet:
    return resident_wallet(client, token_for, tmp_path / "wallet.json")


def _stored(app: FastAPI) -> list[dict[str, Any]]:
    with app.state.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t.presentation_requests)).mappings()]
        rows += [dict(r) for r in conn.execute(sa.select(t.presentation_results)).mappings()]
    return rows


def test_link_offers_post_and_the_wallet_uses_it_end_to_end(
    client: TestClient, agency: dict[str, str], wallet: Wallet
) -> None:
    req = ask(client, agency)
    link = req["authorization_request_uri"]
    query = parse_qs(urlsplit(link).query)
    assert query["request_uri_method"] == ["post"] and query["request_uri"] == [req["request_uri"]]
    assert query["client_id"] == [req["client_id"]]
    # the verifier's capabilities travel with the link (unsigned; the signed object repeats them)
    assert json.loads(query["client_metadata"][0])["vp_formats_supported"]["dc+sd-jwt"]
    assert parse_request_link(link).request_uri_method == "post"

    sent: list[httpx.Request] = []
    client.event_hooks["request"].append(sent.append)
    obj = wallet.fetch_link(link)
    (fetch,) = sent
    assert fetch.method == "POST" and fetch.url == req["request_uri"]
    assert fetch.headers["accept"] == request_object.MEDIA_TYPE
    form = parse_qs(fetch.content.decode())
    assert json.loads(form["wallet_metadata"][0]) == WALLET_METADATA
    assert obj["wallet_nonce"] == form["wallet_nonce"][0]
    assert obj["client_id"] == req["client_id"] and obj["client_metadata"] == json.loads(
        query["client_metadata"][0]
    )
    assert wallet.respond(obj) == {}
    result = client.get(f"/identity/presentation-requests/{req['id']}/result", headers=agency).json()
    assert result["accepted"] and result["disclosed"] == {"res": {"resident_of": "civitas"}}
    # answered: neither method serves it any more
    for method in ("GET", "POST"):
        gone = client.request(method, req["request_uri"], headers=FORM)
        assert gone.status_code == 404 and gone.json()["error"] == "invalid_request_uri"


def test_get_keeps_working_for_wallets_without_post(
    client: TestClient, agency: dict[str, str], wallet: Wallet
) -> None:
    req = ask(client, agency)
    served = client.get(req["request_uri"])
    assert served.status_code == 200 and served.headers["content-type"] == request_object.MEDIA_TYPE
    assert "wallet_nonce" not in jwt_payload(served.text)
    obj = wallet.fetch_request(req["request_uri"], client_id=req["client_id"])  # GET
    assert "wallet_nonce" not in obj
    assert wallet.respond(obj) == {}


def test_post_signs_the_wallet_nonce_in_and_a_replayed_object_is_refused(
    client: TestClient, agency: dict[str, str], wallet: Wallet
) -> None:
    req = ask(client, agency)
    answer = client.post(req["request_uri"], data={"wallet_nonce": "qPmxiNFCR3QTm19POc8u"})
    assert answer.status_code == 200 and answer.headers["content-type"] == request_object.MEDIA_TYPE
    assert answer.headers["cache-control"] == "no-store"
    claims = jwt_payload(answer.text)
    assert claims["wallet_nonce"] == "qPmxiNFCR3QTm19POc8u" and claims["iss"] == req["client_id"]
    # both fields are optional: an empty form gets the plain object
    empty = client.post(req["request_uri"], content=b"", headers=FORM)
    assert empty.status_code == 200 and "wallet_nonce" not in jwt_payload(empty.text)
    # an object recorded from an earlier exchange does not pass a wallet that sent another nonce
    with pytest.raises(WalletError, match="wallet_nonce differs"):
        wallet.verify_request(answer.text, client_id=req["client_id"], wallet_nonce="another-nonce")
    with pytest.raises(WalletError, match="lacks the wallet_nonce"):
        wallet.verify_request(empty.text, client_id=req["client_id"], wallet_nonce="qPmxiNFCR3QTm19POc8u")
    assert wallet.verify_request(answer.text, wallet_nonce="qPmxiNFCR3QTm19POc8u")["state"]


def test_wallet_nonce_limit_at_the_edge(client: TestClient, agency: dict[str, str]) -> None:
    req = ask(client, agency)
    edge = "a" * request_object.WALLET_NONCE_MAX_CHARS
    ok = client.post(req["request_uri"], data={"wallet_nonce": edge})
    assert ok.status_code == 200 and jwt_payload(ok.text)["wallet_nonce"] == edge
    for bad in (edge + "a", "", "has space", "new\nline", "\u00fc"):
        refused = client.post(req["request_uri"], data={"wallet_nonce": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"] == "invalid_request"
        assert "wallet_nonce must be 1 to 128" in refused.json()["error_description"]
        assert refused.headers["cache-control"] == "no-store"


def test_bad_wallet_metadata_is_refused_and_changes_nothing(
    client: TestClient, agency: dict[str, str], wallet: Wallet, app: FastAPI
) -> None:
    req = ask(client, agency)
    before = _stored(app)
    padding = len(json.dumps({"p": ""}))
    cases: list[tuple[str, int, str]] = [
        ("not json", 400, "invalid_request"),
        ('["vp_formats_supported"]', 400, "invalid_request"),
        ('"text"', 400, "invalid_request"),
        ("", 400, "invalid_request"),
        (json.dumps({"p": "x" * (MAX_WALLET_METADATA_CHARS - padding + 1)}), 400, "invalid_request"),
        ('{"vp_formats_supported": {"dc+sd-jwt": "yes"}}', 400, "invalid_request"),
        ('{"vp_formats_supported": {"civitas-bbs": {}}}', 400, "vp_formats_not_supported"),
        (
            '{"vp_formats_supported": {"dc+sd-jwt": {"kb-jwt_alg_values": ["PS256"]}}}',
            400,
            "vp_formats_not_supported",
        ),
        ('{"client_id_prefixes_supported": ["x509_san_dns"]}', 400, "invalid_request"),
        ('{"request_object_signing_alg_values_supported": ["ES256"]}', 400, "invalid_request"),
        ('{"response_types_supported": ["code"]}', 400, "unsupported_response_type"),
    ]
    for metadata, status, error in cases:
        refused = client.post(req["request_uri"], data={"wallet_metadata": metadata, "wallet_nonce": "n-1"})
        assert refused.status_code == status, metadata
        assert refused.json()["error"] == error, metadata
        assert refused.json()["error_description"]
    assert _stored(app) == before
    # exactly at the limit is fine; what the wallet said about itself is not kept anywhere
    at_limit = json.dumps({"p": "x" * (MAX_WALLET_METADATA_CHARS - padding)})
    assert len(at_limit) == MAX_WALLET_METADATA_CHARS
    assert client.post(req["request_uri"], data={"wallet_metadata": at_limit}).status_code == 200
    marker = {**WALLET_METADATA, "wallet_name": "fingerprint-me-7f3a"}
    assert client.post(req["request_uri"], data={"wallet_metadata": json.dumps(marker)}).status_code == 200
    assert _stored(app) == before
    # the request is still open and answerable
    obj = wallet.fetch_link(req["authorization_request_uri"])
    assert wallet.respond(obj) == {}
    assert "fingerprint-me-7f3a" not in json.dumps(_stored(app), default=str)


def test_post_body_limits(client: TestClient, agency: dict[str, str], app: FastAPI) -> None:
    req = ask(client, agency)
    uri = req["request_uri"]
    before = _stored(app)

    def error(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["error"]

    assert error(client.post(uri, json={"wallet_nonce": "n"})) == (400, "invalid_request")  # not a form
    assert error(client.post(uri, content=b"wallet_nonce=n")) == (400, "invalid_request")  # no type
    big = b"wallet_metadata=" + b"%20" * (MAX_REQUEST_URI_BODY_BYTES // 3)
    assert len(big) > MAX_REQUEST_URI_BODY_BYTES
    assert error(client.post(uri, content=big, headers=FORM)) == (413, "invalid_request")

    def chunks() -> Any:  # no Content-Length: the streamed size counts
        yield b"wallet_nonce=n&x="
        for _ in range(MAX_REQUEST_URI_BODY_BYTES // 1024 + 1):
            yield b"y" * 1024

    assert error(client.post(uri, content=chunks(), headers=FORM)) == (413, "invalid_request")
    fields = "&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS + 1))
    assert error(client.post(uri, content=fields.encode(), headers=FORM)) == (400, "invalid_request")
    for body in (b"wallet_nonce=a&wallet_nonce=b", b"wallet_nonce=%ff", b"wallet_nonce", "w=\u00fc".encode()):
        assert error(client.post(uri, content=body, headers=FORM)) == (400, "invalid_request"), body
    assert _stored(app) == before
    # at most MAX_FORM_FIELDS fields, unknown ones ignored (OpenID4VP: the verifier ignores them)
    fields = "&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS - 1)) + "&wallet_nonce=n-2"
    ok = client.post(
        uri, content=fields.encode(), headers={"content-type": FORM["content-type"] + "; charset=UTF-8"}
    )
    assert ok.status_code == 200 and jwt_payload(ok.text)["wallet_nonce"] == "n-2"


def test_post_has_the_get_semantics_for_unknown_and_expired_requests(
    client: TestClient, agency: dict[str, str], app: FastAPI
) -> None:
    for path in ("not-hex", "0" * 32):
        gone = client.post(f"/identity/presentation-requests/{path}", data={"wallet_nonce": "n"})
        assert gone.status_code == 404 and gone.json()["error"] == "invalid_request_uri"
    req = ask(client, agency)
    verifier = app.state.identity_verifier
    real_clock = verifier.clock
    try:
        verifier.clock = lambda: req["expires_at"] * 1_000_000_000 + 1_000_000_000
        for method in ("GET", "POST"):
            expired = client.request(method, req["request_uri"], headers=FORM)
            assert expired.status_code == 404 and expired.json()["error"] == "invalid_request_uri"
    finally:
        verifier.clock = real_clock


def test_citizen_sign_in_fetches_by_post(client: TestClient, token_for: Any, tmp_path: Path) -> None:
    offer = client.post(
        "/identity/offers",
        json={"credential_configuration_id": "resident_bbs", "subject_ref": "c-9", "claims": CLAIMS},
        headers=bearer(token_for("identity:issue")),
    ).json()
    held = Wallet.create(tmp_path / "bbs.json", "passphrase", kdf_profile="test", http=client)
    held.receive(offer["credential_offer"], tx_code=offer["tx_code"])
    methods: list[tuple[str, str]] = []
    client.event_hooks["request"].append(lambda r: methods.append((r.method, r.url.path)))
    token = held.sign_in(BASE_URL)
    assert token["token_type"] == "Bearer"
    fetches = [m for m, path in methods if path.startswith("/identity/presentation-requests/")]
    assert fetches == ["POST"]
