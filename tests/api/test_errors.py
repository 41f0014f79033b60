"""Every error is RFC 9457 problem+json; limits are explicit; no internals leak."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from civitas.errors import NUL_REFUSED, ProblemError, _carries_nul

router = APIRouter()


class Payment(BaseModel):
    amount_micros: int = Field(ge=1)
    memo: str = Field(max_length=10)


@router.post("/echo")
def echo(body: Payment) -> dict[str, int]:
    return {"amount_micros": body.amount_micros}


@router.get("/echo/{word}")
def echo_word(word: str, q: str = "") -> dict[str, str]:
    return {"word": word, "q": q}


@router.get("/boom")
def boom() -> None:
    raise RuntimeError("secret-internal-detail /etc/passwd")


@router.get("/conflict")
def conflict() -> None:
    raise ProblemError(409, "over-budget", "Budget exceeded", "remaining 0.1", remaining_rho=0.1)


@pytest.fixture
def routed(app: FastAPI) -> Iterator[TestClient]:
    app.include_router(router)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        yield c


def _is_problem(r: object, status: int, slug: str) -> dict[str, object]:
    from httpx import Response

    assert isinstance(r, Response)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = r.json()
    assert body["type"] == f"urn:civitas:problem:{slug}"
    assert body["status"] == status and isinstance(body["title"], str)
    return body


def _is_protocol_error(r: object, status: int, error: str) -> str:
    """An OAuth2/OpenID4VC error body; returns its description."""
    from httpx import Response

    assert isinstance(r, Response) and r.status_code == status, r
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == error
    return str(r.json()["error_description"])


def test_unknown_route_is_404_problem(routed: TestClient) -> None:
    _is_problem(routed.get("/no/such/thing"), 404, "not-found")


def test_wrong_method_is_405_problem(routed: TestClient) -> None:
    _is_problem(routed.delete("/healthz"), 405, "method-not-allowed")


def test_validation_error_names_the_bad_fields(routed: TestClient) -> None:
    body = _is_problem(
        routed.post("/echo", json={"amount_micros": 0, "memo": "x" * 20}), 422, "validation-error"
    )
    fields = {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"amount_micros", "memo"}
    assert "amount_micros" in str(body["detail"]) and "memo" in str(body["detail"])


def test_malformed_json_is_422_problem(routed: TestClient) -> None:
    r = routed.post("/echo", content=b"{not json", headers={"content-type": "application/json"})
    _is_problem(r, 422, "validation-error")


def test_problem_error_carries_extensions(routed: TestClient) -> None:
    body = _is_problem(routed.get("/conflict"), 409, "over-budget")
    assert (
        body["remaining_rho"] == 0.1 and body["detail"] == "remaining 0.1" and body["instance"] == "/conflict"
    )


def test_unexpected_errors_hide_internals(routed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    r = routed.get("/boom")
    body = _is_problem(r, 500, "internal-error")
    assert "secret-internal-detail" not in r.text and "Traceback" not in r.text and "detail" not in body
    assert "secret-internal-detail" not in caplog.text


def test_body_over_the_limit_is_413_by_content_length(routed: TestClient, app: FastAPI) -> None:
    limit = app.state.settings.max_body_bytes
    ok = routed.post(
        "/echo",
        content=b'{"amount_micros": 1, "memo": "a"}' + b" " * (limit - 40),
        headers={"content-type": "application/json"},
    )
    assert ok.status_code == 200
    too_big = b'{"amount_micros": 1, "memo": "a"}' + b" " * (limit - 32)
    assert len(too_big) == limit + 1
    _is_problem(
        routed.post("/echo", content=too_big, headers={"content-type": "application/json"}),
        413,
        "body-too-large",
    )


def test_body_over_the_limit_is_413_when_streamed(routed: TestClient, app: FastAPI) -> None:
    limit = app.state.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"amount_micros": 1, "memo": "'
        for _ in range(limit // 1024 + 1):
            yield b"a" * 1024

    r = routed.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    _is_problem(r, 413, "body-too-large")


def test_health_and_readiness(routed: TestClient) -> None:
    assert routed.get("/healthz").json() == {"status": "ok"}
    assert routed.get("/readyz").json() == {"status": "ready"}


def test_readiness_fails_as_problem_when_the_database_is_gone(app: FastAPI, routed: TestClient) -> None:
    import sqlalchemy as sa

    app.state.engine = sa.create_engine("sqlite:////nonexistent-dir/civitas.db")
    _is_problem(routed.get("/readyz"), 503, "not-ready")


def test_nul_is_refused_in_path_query_and_body(routed: TestClient) -> None:
    for refused in (
        routed.get("/echo/a%00b"),
        routed.get("/echo/a", params={"q": "x\x00"}),
        routed.post("/echo", json={"amount_micros": 1, "memo": "a\x00"}),
        routed.post("/echo", json={"amount_micros": 1, "memo": "\\\x00"}),  # escaped backslash, then NUL
    ):
        assert _is_problem(refused, 400, "bad-request")["detail"] == NUL_REFUSED
    # the same characters spelled as text are ordinary input
    assert routed.get("/echo/text", params={"q": "%00"}).json() == {"word": "text", "q": "%00"}
    assert routed.post("/echo", json={"amount_micros": 7, "memo": "\\u0000"}).json() == {"amount_micros": 7}


def test_nul_refusal_changes_nothing_and_protocols_keep_their_format(
    client: TestClient, agency: dict[str, str]
) -> None:
    rule = client.post(
        "/identity/eligibility-rules", json={"rule": 'nul = resident_of == "a\x00"'}, headers=agency
    )
    assert rule.status_code == 400 and rule.json()["detail"] == NUL_REFUSED
    assert client.get("/identity/eligibility-rules", headers=agency).json() == []

    form = {"grant_type": "client_credentials", "client_id": "a\x00", "client_secret": "s"}
    assert _is_protocol_error(client.post("/oauth/token", data=form), 400, "invalid_request") == NUL_REFUSED
    basic = "Basic " + base64.b64encode(b"a\x00:s").decode()
    _is_protocol_error(
        client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": basic}
        ),
        401,
        "invalid_client",
    )
    vp = {"state": "s\x00", "vp_token": "{}"}
    _is_protocol_error(client.post("/identity/presentation-responses", data=vp), 400, "invalid_request")
    _is_protocol_error(client.get("/identity/presentation-requests/r%00"), 400, "invalid_request")


_SCOPE = {"path": "/p", "query_string": b""}


@given(st.text())
def test_nul_is_found_exactly_when_a_decoded_value_holds_one(text: str) -> None:
    holds = "\x00" in text
    for ascii_only in (True, False):
        body = json.dumps({"k": [text]}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        assert _carries_nul(_SCOPE, "application/json", body) is holds
    form = urllib.parse.urlencode({"k": text}, encoding="utf-8", errors="surrogatepass").encode()
    assert _carries_nul(_SCOPE, "application/x-www-form-urlencoded", form) is holds
    assert _carries_nul({**_SCOPE, "query_string": form}, "", b"") is holds
    # a body of another type is not decoded: only a raw NUL byte counts there
    assert _carries_nul(_SCOPE, "text/plain", json.dumps(text).encode()) is False


def test_protocol_endpoints_refuse_malformed_requests_in_their_own_format(
    client: TestClient, app: FastAPI
) -> None:
    missing = client.post("/identity/citizen-sessions/s/token", json={})
    assert "session_secret" in _is_protocol_error(missing, 400, "invalid_request")
    unreadable = client.post(
        "/identity/credential", content=b"\xff", headers={"content-type": "application/json"}
    )
    _is_protocol_error(unreadable, 400, "invalid_credential_request")
    limit = app.state.settings.max_body_bytes
    too_big = client.post(
        "/oauth/token",
        content=b"a" * (limit + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert _is_protocol_error(too_big, 413, "invalid_request") == f"the limit is {limit} bytes"
    wrong_method = client.get("/oauth/token")
    _is_protocol_error(wrong_method, 405, "invalid_request")
    assert wrong_method.headers["allow"] == "POST"
    # outside the protocols, the same refusals are problem+json
    assert client.post("/identity/offers", json={}).headers["content-type"] == "application/problem+json"
