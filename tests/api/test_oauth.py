"""OAuth2 token endpoint and bearer-token checks: the 401/403 paths over real HTTP."""

from __future__ import annotations

import base64
import json
import time
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OKPKey

from civitas.app import create_app
from civitas.auth import Principal, TokenVerifier, require_scope, sign_jwt
from civitas.clients import revoke_client
from civitas.errors import ProblemError
from civitas.keys import KeyStore
from civitas.settings import Settings
from tests.api.conftest import BASE_URL, RegisterClient, TokenFor, bearer

probe = APIRouter()


@probe.get("/probe")
def read_probe(principal: Annotated[Principal, require_scope("probe:read")]) -> dict[str, str]:
    return {"subject": principal.subject}


@pytest.fixture
def probed(app: FastAPI, client: TestClient) -> TestClient:
    app.include_router(probe)
    return client


def _claims(settings: Settings, client_id: str, **over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": settings.issuer,
        "sub": client_id,
        "aud": settings.api_audience,
        "client_id": client_id,
        "iat": now,
        "exp": now + 60,
        "jti": "j",
        "scope": "probe:read",
    }
    base.update(over)
    return base


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_client_credentials_issues_a_short_lived_eddsa_jwt(
    client: TestClient, register_client: RegisterClient, settings: Settings
) -> None:
    client_id, secret = register_client("probe:read ledger:read")
    r = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "probe:read"},
        auth=(client_id, secret),
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "probe:read"
    assert body["expires_in"] == settings.access_token_ttl_s
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt" and header["kid"].startswith("did:key:z6Mk")


def test_secret_post_works_and_unknown_scopes_are_not_granted(
    client: TestClient, register_client: RegisterClient
) -> None:
    client_id, secret = register_client("probe:read")
    r = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "probe:read admin:everything",
        },
    )
    assert r.status_code == 200 and r.json()["scope"] == "probe:read"


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("c_nobody", "x"), 401, "invalid_client"),
        ({"grant_type": "password", "username": "u", "password": "p"}, None, 400, "unsupported_grant_type"),
        ({"scope": "probe:read"}, None, 400, "unsupported_grant_type"),
    ],
)
def test_token_endpoint_errors_use_rfc6749_json(
    client: TestClient,
    register_client: RegisterClient,
    form: dict[str, str],
    auth: tuple[str, str] | None,
    status: int,
    error: str,
) -> None:
    client_id, secret = register_client("probe:read")
    r = client.post("/oauth/token", data=form, auth=auth or (client_id, secret))
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == error


def test_wrong_secret_is_invalid_client(client: TestClient, register_client: RegisterClient) -> None:
    client_id, _ = register_client("probe:read")
    r = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "credentials",
    [b"\xff\xfe:secret", b"\xc3\x28:secret", b"id:\xff", None],
    ids=["latin-1", "broken-utf8", "secret", "not-base64"],
)
def test_basic_credentials_that_are_not_text_are_invalid_client(
    client: TestClient, register_client: RegisterClient, credentials: bytes | None
) -> None:
    token = "!!!" if credentials is None else base64.b64encode(credentials).decode()
    form = {"grant_type": "client_credentials"}
    r = client.post("/oauth/token", data=form, headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # UTF-8 credentials still reach the client check
    client_id, secret = register_client("probe:read")
    text = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    assert (
        client.post("/oauth/token", data=form, headers={"Authorization": f"Basic {text}"}).status_code == 200
    )


def test_token_endpoint_needs_a_form_body(client: TestClient) -> None:
    r = client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_valid_token_with_scope_reaches_the_route(probed: TestClient, token_for: TokenFor) -> None:
    r = probed.get("/probe", headers=bearer(token_for("probe:read")))
    assert r.status_code == 200 and r.json()["subject"].startswith("c_")


def test_missing_scope_is_403_problem(probed: TestClient, token_for: TokenFor) -> None:
    r = probed.get("/probe", headers=bearer(token_for("ledger:read")))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:civitas:problem:insufficient-scope"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer not.a.jwt", "Bearer " + "a" * 9000])
def test_missing_or_garbage_tokens_are_401(probed: TestClient, header: str | None) -> None:
    r = probed.get("/probe", headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(
    probed: TestClient, app: FastAPI, settings: Settings, register_client: RegisterClient
) -> None:
    client_id, _ = register_client("probe:read")
    past = int(time.time()) - 3600
    token = sign_jwt(app.state.keys, _claims(settings, client_id, iat=past, exp=past + 60), typ="at+jwt")
    assert probed.get("/probe", headers=bearer(token)).status_code == 401


def test_wrong_audience_or_issuer_or_type_is_401(
    probed: TestClient, app: FastAPI, settings: Settings, register_client: RegisterClient
) -> None:
    client_id, _ = register_client("probe:read")
    good = sign_jwt(app.state.keys, _claims(settings, client_id), typ="at+jwt")
    assert probed.get("/probe", headers=bearer(good)).status_code == 200
    for claims, typ in [
        (_claims(settings, client_id, aud="someone-else"), "at+jwt"),
        (_claims(settings, client_id, iss="https://evil.example"), "at+jwt"),
        (_claims(settings, client_id), "JWT"),
    ]:
        token = sign_jwt(app.state.keys, claims, typ=typ)
        assert probed.get("/probe", headers=bearer(token)).status_code == 401


def test_token_signed_by_another_key_is_401(
    probed: TestClient, settings: Settings, register_client: RegisterClient, tmp_path: object
) -> None:
    client_id, _ = register_client("probe:read")
    other = OKPKey.generate_key("Ed25519")
    token = jwt.encode(
        {"alg": "EdDSA", "typ": "at+jwt"}, _claims(settings, client_id), other, algorithms=["EdDSA"]
    )
    assert probed.get("/probe", headers=bearer(token)).status_code == 401


def test_alg_none_is_401(probed: TestClient, settings: Settings, register_client: RegisterClient) -> None:
    client_id, _ = register_client("probe:read")
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(settings, client_id))}."
    assert probed.get("/probe", headers=bearer(unsigned)).status_code == 401


def test_revoked_clients_tokens_stop_working(
    probed: TestClient, app: FastAPI, register_client: RegisterClient
) -> None:
    client_id, secret = register_client("probe:read")
    token = probed.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()["access_token"]
    assert probed.get("/probe", headers=bearer(token)).status_code == 200
    revoke_client(app.state.engine, client_id)
    assert probed.get("/probe", headers=bearer(token)).status_code == 401
    r = probed.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_restart_keeps_keys_and_clients_and_rotation_keeps_old_tokens_valid(
    settings: Settings, register_client: RegisterClient, client: TestClient
) -> None:
    client_id, secret = register_client("probe:read")
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()["access_token"]
    KeyStore.open(settings.data_dir).rotate("service")

    restarted = create_app(settings)
    restarted.include_router(probe)
    with TestClient(restarted, base_url=BASE_URL) as again:
        assert again.get("/probe", headers=bearer(token)).status_code == 200  # retired key still verifies
        r = again.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        assert r.status_code == 200
        new_kid = json.loads(base64.urlsafe_b64decode(r.json()["access_token"].split(".")[0] + "=="))["kid"]
        old_kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
        assert new_kid != old_kid
    restarted.state.engine.dispose()


def _verifier(app: FastAPI, now_s: list[int]) -> TokenVerifier:
    return TokenVerifier(
        app.state.engine, app.state.settings, app.state.keys, lambda: now_s[0] * 1_000_000_000
    )


def test_a_verified_token_is_remembered_but_still_expires(
    app: FastAPI, settings: Settings, register_client: RegisterClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id, _ = register_client("probe:read")
    now = [int(time.time())]
    verifier = _verifier(app, now)
    token = sign_jwt(app.state.keys, _claims(settings, client_id, iat=now[0], exp=now[0] + 60), typ="at+jwt")
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting_decode(value: str, *args: object, **kwargs: object) -> object:
        decodes.append(value)
        return real_decode(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("civitas.auth.jwt.decode", counting_decode)
    assert verifier.verify(token).subject == client_id
    assert verifier.verify(token).subject == client_id
    assert decodes == [token]  # the second use skipped the signature check
    now[0] += 120  # past exp and the 5 s leeway: the remembered token is refused all the same
    with pytest.raises(ProblemError) as exc:
        verifier.verify(token)
    assert exc.value.status == 401
    now[0] -= 120
    app.state.keys.rotate("service")  # a new key set: remembered tokens are checked again
    assert verifier.verify(token).subject == client_id
    assert decodes == [token, token]


def test_remembered_tokens_are_bounded_and_bad_tokens_are_not_remembered(
    app: FastAPI, settings: Settings, register_client: RegisterClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("civitas.auth.VERIFIED_TOKEN_CACHE", 2)
    client_id, _ = register_client("probe:read")
    now = [int(time.time())]
    verifier = _verifier(app, now)
    tokens = [
        sign_jwt(app.state.keys, _claims(settings, client_id, jti=f"j{i}"), typ="at+jwt") for i in range(3)
    ]
    for token in tokens:
        verifier.verify(token)
    assert list(verifier._verified) == tokens[1:]  # the oldest went first
    forged = tokens[0][:-4] + ("AAAA" if not tokens[0].endswith("AAAA") else "BBBB")
    with pytest.raises(ProblemError):
        verifier.verify(forged)
    assert forged not in verifier._verified
