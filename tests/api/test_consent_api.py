"""Consent and sensor API over HTTP, on SQLite and PostgreSQL: citizens, devices, agencies."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

import consent
from civitas.app import create_app
from civitas.auth import sign_jwt
from civitas.settings import Settings
from consent import tables as t
from consent.batches import SIGNING_CONTEXT, Batch, Reading, SignedBatch, encode_payload
from consent.minimise import DEFAULT_GRID
from ledger import Account, Ledger
from tests.api.conftest import BASE_URL, TokenFor, bearer
from tests.consent.support import DAY, HOUR, MIN, NOTICE, T0, Clock

PROBLEM = "application/problem+json"
AGENCY_SCOPES = "sensors:read"


@pytest.fixture
def clock() -> Clock:
    # consents are given an hour before the readings' minutes; tokens are minted after moving on
    return Clock(T0 - HOUR)


NOW = T0 + 10 * MIN  # when devices send (after the readings' minutes)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # room for a 10,000-reading batch (about 1.5 MB as an envelope)
    return Settings(data_dir=tmp_path / "data", database_url=db_url, max_body_bytes=8 * 1024 * 1024)


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[FastAPI]:
    application = create_app(settings, clock=clock)
    if not any(getattr(r, "path", "") == "/consent/records" for r in application.routes):
        from civitas.routers import consent as consent_router  # until the app lists the router

        consent_router.setup(application)
        application.include_router(consent_router.router)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def citizen(app: FastAPI, pseudonym: str, clock: Clock) -> dict[str, str]:
    """A wallet access token whose subject is the citizen's pseudonym (as the identity flow issues)."""
    settings: Settings = app.state.settings
    now = clock() // 10**9
    claims = {
        "iss": settings.issuer,
        "sub": pseudonym,
        "aud": settings.api_audience,
        "client_id": "wallet",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": "consent",
    }
    return bearer(sign_jwt(app.state.keys, claims, typ="at+jwt"))


def consent_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "notice": {"id": NOTICE.notice_id, "version": NOTICE.version, "sha256": NOTICE.content_sha256},
        "purposes": ["dpv:PublicBenefit"],
        "categories": ["pd:Location"],
        "recipients": [],
        "valid_until_ns": T0 + 30 * DAY,
    }
    body.update(over)
    return body


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Device:
    def __init__(self, client: TestClient, headers: dict[str, str], key: SigningKey, **extra: Any) -> None:
        response = client.post(
            "/sensors/devices", json={"public_key": b64u(bytes(key.verify_key)), **extra}, headers=headers
        )
        assert response.status_code == 201, response.text
        body = response.json()
        self.device_id: str = body["device_id"]
        self.key = key
        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(body["client_id"], body["client_secret"]),
        )
        assert token.status_code == 200, token.text
        self.headers = bearer(token.json()["access_token"])

    def batch(self, stream: str, times: list[int], *, device_id: str | None = None) -> dict[str, str]:
        lat, lon = DEFAULT_GRID.centre_of("Market")
        readings = tuple(Reading(stream, ts, 2.5, lat, lon) for ts in times)
        # signed like `sign_batch`, but without its size check (to send oversized batches too)
        payload = encode_payload(Batch(uuid.uuid4().int, device_id or self.device_id, T0, readings))
        return SignedBatch(payload, self.key.sign(SIGNING_CONTEXT + payload).signature).to_envelope()


def _agency(client: TestClient, app: FastAPI, token_for: TokenFor) -> tuple[str, str]:
    """Register an agency client and its declared purpose; returns (client_id, secret)."""
    from civitas.clients import add_client

    created, secret = add_client(app.state.engine, "transport agency", AGENCY_SCOPES, clock=app.state.clock)
    admin = bearer(token_for("consent:admin"))
    response = client.post(
        "/consent/recipients",
        json={"client_id": created.client_id, "name": "Transport", "purposes": ["dpv:PublicBenefit"]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return created.client_id, secret


def _token(client: TestClient, client_id: str, secret: str) -> dict[str, str]:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def test_citizen_gives_lists_and_withdraws(client: TestClient, app: FastAPI, clock: Clock) -> None:
    alice = citizen(app, "pseudo-alice", clock)
    given = client.post("/consent/records", json=consent_body(recipients=["transport-agency"]), headers=alice)
    assert given.status_code == 201, given.text
    record = given.json()["record"]
    assert (
        record["subject"] == "pseudo-alice" and record["status"] == "given" and record["permits_processing"]
    )
    assert record["legal_basis"] == "dpv:Consent" and record["status_term"] == "dpv:ConsentGiven"

    receipt_id = given.json()["receipts"][0]["receipt_id"]
    receipt = client.get(f"/consent/receipts/{receipt_id}", headers=alice).json()
    key = app.state.keys.current("service")
    claims = consent.verify_receipt(receipt["jws"], key.public)
    assert claims["piiPrincipalId"] == "pseudo-alice" and claims["version"] == "KI-CR-v1.1.0"
    assert any(k["kid"] == key.kid for k in receipt["jwks"]["keys"])

    listed = client.get("/consent/records", headers=alice).json()["records"]
    assert [r["id"] for r in listed] == [record["id"]]
    assert client.get("/consent/records", headers=citizen(app, "pseudo-bob", clock)).json()["records"] == []
    # another citizen can neither read nor withdraw it
    bob = citizen(app, "pseudo-bob", clock)
    assert client.get(f"/consent/records/{record['id']}", headers=bob).status_code == 404
    assert client.post(f"/consent/records/{record['id']}/withdraw", headers=bob).status_code == 404
    assert client.get(f"/consent/receipts/{receipt_id}", headers=bob).status_code == 404

    clock.now = NOW
    alice = citizen(app, "pseudo-alice", clock)
    withdrawn = client.post(f"/consent/records/{record['id']}/withdraw", headers=alice)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["record"]["status"] == "withdrawn"
    again = client.post(f"/consent/records/{record['id']}/withdraw", headers=alice)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["type"].endswith("illegal-transition")


def test_invalid_consent_is_refused_and_changes_nothing(
    client: TestClient, app: FastAPI, clock: Clock
) -> None:
    alice = citizen(app, "pseudo-alice", clock)
    for body in (
        consent_body(purposes=["dpv:Marketing"], recipients=["a"]),
        consent_body(recipients=[]),
        consent_body(recipients=["a"], valid_until_ns=T0 - 2 * HOUR),
        {"purposes": ["dpv:PublicBenefit"]},
    ):
        response = client.post("/consent/records", json=body, headers=alice)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
    assert client.get("/consent/records", headers=alice).json()["records"] == []


def test_scopes_are_enforced(client: TestClient, token_for: TokenFor) -> None:
    assert client.get("/consent/records").status_code == 401
    agency = bearer(token_for(AGENCY_SCOPES))
    assert client.get("/consent/records", headers=agency).status_code == 403
    assert (
        client.post("/sensors/readings", json={"payload": "", "signature": ""}, headers=agency).status_code
        == 403
    )
    device_only = bearer(token_for("sensors:ingest"))
    assert client.get("/sensors/shared?purpose=dpv:PublicBenefit", headers=device_only).status_code == 403


def test_device_ingest_sharing_and_access_log(
    client: TestClient, app: FastAPI, clock: Clock, token_for: TokenFor
) -> None:
    agency_id, agency_secret = _agency(client, app, token_for)
    alice = citizen(app, "pseudo-alice", clock)
    given = client.post("/consent/records", json=consent_body(recipients=[agency_id]), headers=alice)
    assert given.status_code == 201
    clock.now = NOW
    agency = _token(client, agency_id, agency_secret)
    alice = citizen(app, "pseudo-alice", clock)
    device = Device(client, alice, SigningKey(b"\x11" * 32), serial="SN-0001")

    envelope = device.batch("vehicle.location", [T0 + i * MIN for i in range(5)] + [T0 - 2 * HOUR])
    first = client.post("/sensors/readings", json=envelope, headers=device.headers)
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["dropped_no_consent"], first.json()["duplicate"]) == (
        5,
        1,
        False,
    )
    replay = client.post("/sensors/readings", json=envelope, headers=device.headers)
    assert replay.json()["duplicate"] is True

    page = client.get("/sensors/shared", params={"purpose": "dpv:PublicBenefit", "limit": 3}, headers=agency)
    assert page.status_code == 200, page.text
    body = page.json()
    assert len(body["readings"]) == 3 and body["next_cursor"]
    assert body["readings"][0] == {
        "unit": "pseudo-alice",
        "stream": "vehicle.location",
        "category": "pd:Location",
        "district": "Market",
        "ts_ns": T0,
        "value": 2.5,
    }
    rest = client.get(
        "/sensors/shared",
        params={"purpose": "dpv:PublicBenefit", "cursor": body["next_cursor"]},
        headers=agency,
    ).json()
    assert len(rest["readings"]) == 2 and rest["next_cursor"] is None
    denied = client.get("/sensors/shared", params={"purpose": "dpv:ResearchAndDevelopment"}, headers=agency)
    assert denied.status_code == 403 and denied.json()["type"].endswith("purpose-not-declared")

    log = client.get("/consent/access-log", headers=alice).json()["entries"]
    assert sum(e["count"] for e in log) == 5
    assert {(e["recipient"], e["purpose"], e["category"]) for e in log} == {
        (agency_id, "dpv:PublicBenefit", "pd:Location")
    }

    # withdrawal: one call, and the agency gets nothing more of alice's
    record_id = given.json()["record"]["id"]
    assert client.post(f"/consent/records/{record_id}/withdraw", headers=alice).status_code == 200
    after = client.get("/sensors/shared", params={"purpose": "dpv:PublicBenefit"}, headers=agency).json()
    assert after["readings"] == []

    engine: sa.Engine = app.state.engine
    with engine.connect() as conn:
        stored = [dict(r._mapping) for r in conn.execute(sa.select(t.readings))]
    assert not any(
        "SN-0001" in json.dumps(r, default=str) or device.device_id in json.dumps(r, default=str)
        for r in stored
    )


def test_refused_batches_change_nothing(client: TestClient, app: FastAPI, clock: Clock) -> None:
    alice = citizen(app, "pseudo-alice", clock)
    client.post("/consent/records", json=consent_body(recipients=["x"]), headers=alice)
    clock.now = NOW
    alice = citizen(app, "pseudo-alice", clock)
    device = Device(client, alice, SigningKey(b"\x12" * 32))
    other = Device(client, citizen(app, "pseudo-bob", clock), SigningKey(b"\x13" * 32))

    too_many = device.batch("vehicle.location", [T0] * 10_001)
    response = client.post("/sensors/readings", json=too_many, headers=device.headers)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM

    ok = device.batch("vehicle.location", [T0] * 10_000)
    response = client.post("/sensors/readings", json=ok, headers=device.headers)
    assert response.status_code == 200 and response.json()["accepted"] == 10_000

    forged = device.batch("vehicle.location", [T0])
    forged["signature"] = b64u(bytes(64))
    assert client.post("/sensors/readings", json=forged, headers=device.headers).status_code == 403
    # a batch signed by this device but sent with another device's credentials
    assert (
        client.post(
            "/sensors/readings", json=device.batch("vehicle.location", [T0]), headers=other.headers
        ).status_code
        == 403
    )
    # a batch claiming another device
    claimed = device.batch("vehicle.location", [T0], device_id=other.device_id)
    assert client.post("/sensors/readings", json=claimed, headers=device.headers).status_code == 403
    bad = SignedBatch(b'{"v":1}', device.key.sign(b"civitas-sensor-batch/v1\n" + b'{"v":1}').signature)
    response = client.post("/sensors/readings", json=bad.to_envelope(), headers=device.headers)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM

    engine: sa.Engine = app.state.engine
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.batches)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(t.readings)).scalar_one() == 10_000


def test_device_registration_rules(
    client: TestClient, app: FastAPI, clock: Clock, token_for: TokenFor
) -> None:
    alice = citizen(app, "pseudo-alice", clock)
    key = b64u(bytes(SigningKey(b"\x14" * 32).verify_key))
    assert (
        client.post("/sensors/devices", json={"public_key": key, "kind": "public"}, headers=alice).status_code
        == 403
    )
    assert client.post("/sensors/devices", json={"public_key": "AAAA"}, headers=alice).status_code == 422
    admin = bearer(token_for("consent:admin"))
    public = client.post("/sensors/devices", json={"public_key": key, "kind": "public"}, headers=admin)
    assert public.status_code == 201
    refused = client.post(
        "/sensors/devices",
        json={"public_key": key, "kind": "public", "reward_account_id": "5"},
        headers=admin,
    )
    assert refused.status_code == 422


def test_rewards_are_paid_through_the_ledger(client: TestClient, app: FastAPI, clock: Clock) -> None:
    ledger = Ledger(app.state.engine, clock=clock)
    ledger.create_accounts([Account(id=1, ledger=1, code=1), Account(id=42, ledger=1, code=2)])
    app.state.ledger = ledger
    app.state.consent_rewards = consent.RewardConfig(incentive_account_id=1, rates_micros={"pd:Location": 7})
    alice = citizen(app, "pseudo-alice", clock)
    client.post("/consent/records", json=consent_body(recipients=["x"]), headers=alice)
    clock.now = NOW
    device = Device(
        client, citizen(app, "pseudo-alice", clock), SigningKey(b"\x15" * 32), reward_account_id="42"
    )
    envelope = device.batch("vehicle.location", [T0, T0 + MIN, T0 + 2 * MIN])
    assert (
        client.post("/sensors/readings", json=envelope, headers=device.headers).json()["reward_micros"] == 21
    )
    client.post("/sensors/readings", json=envelope, headers=device.headers)  # retry: paid once
    (account,) = ledger.lookup_accounts([42])
    assert account.credits_posted == 21


def test_receipt_inclusion_proof_verifies_against_the_signed_checkpoint(
    client: TestClient, app: FastAPI, clock: Clock
) -> None:
    from ledger import merkle
    from ledger.note import NoteVerifier, parse_checkpoint, verify_note

    alice = citizen(app, "pseudo-alice", clock)
    for _ in range(3):
        given = client.post("/consent/records", json=consent_body(recipients=["x"]), headers=alice)
    receipt_id = given.json()["receipts"][0]["receipt_id"]
    proof = client.get(f"/consent/receipts/{receipt_id}/proof", headers=alice).json()
    note = proof["checkpoint"]
    origin = note.split("\n", 1)[0]
    verifier = NoteVerifier.from_key(origin, app.state.keys.current("log").verify_key())
    body = parse_checkpoint(verify_note(note, [verifier]).text)
    assert body.size == proof["tree_size"] == 3 and proof["log_index"] == 2
    leaf = base64.b64decode(proof["leaf"])
    path = [base64.b64decode(h) for h in proof["inclusion_proof"]]
    assert merkle.verify_inclusion(
        merkle.leaf_hash(leaf), proof["log_index"], body.size, path, body.root_hash
    )
    assert json.loads(leaf)["receipt_id"] == receipt_id
    assert (
        client.get(
            f"/consent/receipts/{receipt_id}/proof", headers=citizen(app, "pseudo-bob", clock)
        ).status_code
        == 404
    )
    plain = client.get("/consent/log/checkpoint")
    assert plain.status_code == 200 and plain.text.startswith(origin + "\n3\n")
