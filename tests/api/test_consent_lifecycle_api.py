"""The consent lifecycle over HTTP, on SQLite and PostgreSQL: a changed notice starts a new request,
the citizen gives or refuses it in one call, the controller revokes with a reason. Every event is
in the consent log with a signed receipt; illegal transitions are 409, unknown ids 404, and a
refused call changes nothing. Processing (sensor ingest and sharing) stops after revoke/refuse."""

from __future__ import annotations

import base64
import json
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
from civitas.settings import Settings
from consent import tables as t
from consent.records import Notice
from ledger import merkle
from ledger.note import NoteVerifier, parse_checkpoint, verify_note
from tests.api.conftest import BASE_URL, TokenFor, bearer
from tests.api.test_consent_api import PROBLEM, Device, _agency, _token, citizen, consent_body
from tests.consent.support import HOUR, MIN, NOTICE, NOTICE_V2, T0, Clock

PURPOSE = {"purpose": "dpv:PublicBenefit"}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 - HOUR)  # consent is given an hour before the first readings' minute


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[FastAPI]:
    application = create_app(settings, clock=clock)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def notice_json(notice: Notice) -> dict[str, str]:
    return {"id": notice.notice_id, "version": notice.version, "sha256": notice.content_sha256}


def event_count(app: FastAPI) -> int:
    engine: sa.Engine = app.state.engine
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar_one())


def check_receipts(
    client: TestClient, app: FastAPI, headers: dict[str, str], receipts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each receipt verifies with the service key, names its record, status and log leaf, and its
    event is included in the signed consent-log checkpoint."""
    key = app.state.keys.current("service")
    origin_key = app.state.keys.current("log").verify_key()
    out = []
    for r in receipts:
        got = client.get(f"/consent/receipts/{r['receipt_id']}", headers=headers)
        assert got.status_code == 200, got.text
        claims = consent.verify_receipt(got.json()["jws"], key.public)
        binding = claims["civitas"]
        assert (binding["recordId"], binding["status"], binding["logIndex"]) == (
            r["record_id"],
            r["status"],
            r["log_index"],
        )
        assert binding["statusTerm"] == consent.Status(r["status"]).dpv
        proof = client.get(f"/consent/receipts/{r['receipt_id']}/proof", headers=headers).json()
        note = proof["checkpoint"]
        origin = note.split("\n", 1)[0]
        body = parse_checkpoint(verify_note(note, [NoteVerifier.from_key(origin, origin_key)]).text)
        leaf = base64.b64decode(proof["leaf"])
        assert json.loads(leaf)["receipt_id"] == r["receipt_id"] and proof["log_index"] == r["log_index"]
        path = [base64.b64decode(h) for h in proof["inclusion_proof"]]
        assert merkle.verify_inclusion(
            merkle.leaf_hash(leaf), r["log_index"], body.size, path, body.root_hash
        )
        out.append(claims)
    return out


class City:
    """Alice with one given consent (notice v1) for a registered agency, and her vehicle."""

    def __init__(self, client: TestClient, app: FastAPI, clock: Clock, token_for: TokenFor) -> None:
        self.client, self.app, self.clock, self.token_for = client, app, clock, token_for
        self.agency_id, self.agency_secret = _agency(client, app, token_for)
        given = client.post(
            "/consent/records", json=consent_body(recipients=[self.agency_id]), headers=self.alice()
        )
        assert given.status_code == 201, given.text
        self.record_id: str = given.json()["record"]["id"]
        clock.now = T0 + 10 * MIN
        self.devices = 0

    def alice(self) -> dict[str, str]:
        return citizen(self.app, "pseudo-alice", self.clock)

    def admin(self) -> dict[str, str]:
        return bearer(self.token_for("consent:admin"))

    def agency(self) -> dict[str, str]:
        return _token(self.client, self.agency_id, self.agency_secret)

    def send(self, *minutes: int) -> tuple[int, int]:
        """Readings of a newly registered vehicle of alice's (fresh credentials at the current
        time) at T0 + minutes; returns (accepted, dropped for lack of consent)."""
        self.devices += 1
        device = Device(self.client, self.alice(), SigningKey(bytes([self.devices]) * 32))
        envelope = device.batch("vehicle.location", [T0 + m * MIN for m in minutes])
        response = self.client.post("/sensors/readings", json=envelope, headers=device.headers)
        assert response.status_code == 200, response.text
        return response.json()["accepted"], response.json()["dropped_no_consent"]

    def shared_minutes(self) -> list[int]:
        response = self.client.get("/sensors/shared", params=PURPOSE, headers=self.agency())
        assert response.status_code == 200, response.text
        return [(r["ts_ns"] - T0) // MIN for r in response.json()["readings"]]

    def publish(self, notice: Notice) -> list[dict[str, Any]]:
        response = self.client.post("/consent/notices", json=notice_json(notice), headers=self.admin())
        assert response.status_code == 200, response.text
        assert response.json()["notice"] == notice_json(notice)
        requests: list[dict[str, Any]] = response.json()["requests"]
        return requests

    def record(self, record_id: str) -> dict[str, Any]:
        response = self.client.get(f"/consent/records/{record_id}", headers=self.alice())
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()["record"]
        return record


@pytest.fixture
def city(client: TestClient, app: FastAPI, clock: Clock, token_for: TokenFor) -> City:
    return City(client, app, clock, token_for)


def test_changed_notice_request_then_give_replaces_the_old_record(
    city: City, client: TestClient, app: FastAPI, clock: Clock
) -> None:
    assert city.send(0, 1) == (2, 0)
    clock.now = T0 + 11 * MIN
    requests = city.publish(NOTICE_V2)
    assert [r["status"] for r in requests] == ["requested"]
    assert city.publish(NOTICE_V2) == []  # publishing the same version again asks nobody twice
    assert city.publish(NOTICE) == []  # nor does the version the records are already under
    request_id = requests[0]["record_id"]

    pending = client.get("/consent/records", params={"status": "requested"}, headers=city.alice())
    assert pending.status_code == 200, pending.text
    (record,) = pending.json()["records"]
    assert record["id"] == request_id and record["supersedes"] == city.record_id
    assert record["notice"] == notice_json(NOTICE_V2) and record["status_term"] == "dpv:ConsentRequested"
    assert not record["permits_processing"] and record["recipients"] == [city.agency_id]
    given_only = client.get("/consent/records", params={"status": "given"}, headers=city.alice())
    assert [r["id"] for r in given_only.json()["records"]] == [city.record_id]
    assert client.get("/consent/records", params={"status": "bogus"}, headers=city.alice()).status_code == 422
    # another citizen sees no request of alice's and cannot answer it
    bob = citizen(app, "pseudo-bob", clock)
    assert client.get("/consent/records", params={"status": "requested"}, headers=bob).json()["records"] == []
    answer = {"notice": notice_json(NOTICE_V2)}
    for verb in ("give", "refuse"):
        stranger = client.post(f"/consent/records/{request_id}/{verb}", json=answer, headers=bob)
        assert stranger.status_code == 404 and stranger.headers["content-type"] == PROBLEM

    # giving under a notice other than the request's is refused and changes nothing
    before = event_count(app)
    stale = client.post(
        f"/consent/records/{request_id}/give", json={"notice": notice_json(NOTICE)}, headers=city.alice()
    )
    assert stale.status_code == 409 and stale.headers["content-type"] == PROBLEM
    assert stale.json()["type"].endswith("notice-changed")
    assert event_count(app) == before and city.record(request_id)["status"] == "requested"

    clock.now = T0 + 12 * MIN
    given = client.post(f"/consent/records/{request_id}/give", json=answer, headers=city.alice())
    assert given.status_code == 200, given.text
    body = given.json()
    assert body["record"]["status"] == "given" and body["record"]["permits_processing"]
    assert [(r["record_id"], r["status"]) for r in body["receipts"]] == [
        (request_id, "given"),
        (city.record_id, "withdrawn"),
    ]
    assert city.record(city.record_id)["status"] == "withdrawn"
    claims = check_receipts(client, app, city.alice(), body["receipts"])
    assert claims[0]["civitas"]["notice"]["version"] == NOTICE_V2.version
    assert claims[1]["civitas"]["reason"].startswith("superseded")
    check_receipts(client, app, city.alice(), requests)

    # the consent now lives in the new record: readings still flow, and exactly one record carries it
    clock.now = T0 + 20 * MIN
    assert city.send(13, 14) == (2, 0)
    # sharing follows the record that permitted a reading: the replaced record ended, so what it
    # alone permitted is not handed out any more (withdrawal semantics)
    assert city.shared_minutes() == [13, 14]
    listed = client.get("/consent/records", params={"status": "given"}, headers=city.alice()).json()
    assert [r["id"] for r in listed["records"]] == [request_id]

    # illegal transitions: 409 problem, nothing written
    before = event_count(app)
    for verb, payload in (("give", answer), ("refuse", None)):
        again = client.post(f"/consent/records/{request_id}/{verb}", json=payload, headers=city.alice())
        assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
        assert again.json()["type"].endswith("illegal-transition")
    old = client.post(f"/consent/records/{city.record_id}/give", json=answer, headers=city.alice())
    assert old.status_code == 409
    assert event_count(app) == before


def test_refusing_a_changed_notice_stops_processing(
    city: City, client: TestClient, app: FastAPI, clock: Clock
) -> None:
    assert city.send(0, 1) == (2, 0)
    clock.now = T0 + 11 * MIN
    (request,) = city.publish(NOTICE_V2)
    clock.now = T0 + 12 * MIN
    refused = client.post(f"/consent/records/{request['record_id']}/refuse", headers=city.alice())
    assert refused.status_code == 200, refused.text
    body = refused.json()
    assert body["record"]["status"] == "refused" and body["record"]["status_term"] == "dpv:ConsentRefused"
    assert not body["record"]["permits_processing"]
    assert [(r["record_id"], r["status"]) for r in body["receipts"]] == [
        (request["record_id"], "refused"),
        (city.record_id, "withdrawn"),
    ]
    check_receipts(client, app, city.alice(), body["receipts"])
    assert client.get("/consent/records", params={"status": "requested"}, headers=city.alice()).json() == {
        "records": []
    }

    # after the refusal nothing of alice's is accepted or shared any more
    clock.now = T0 + 20 * MIN
    assert city.send(13, 14) == (0, 2)
    assert city.shared_minutes() == []

    # refused is terminal: neither give nor refuse again; a new publication asks nobody again
    before = event_count(app)
    answer = {"notice": notice_json(NOTICE_V2)}
    assert (
        client.post(
            f"/consent/records/{request['record_id']}/give", json=answer, headers=city.alice()
        ).status_code
        == 409
    )
    assert (
        client.post(f"/consent/records/{request['record_id']}/refuse", headers=city.alice()).status_code
        == 409
    )
    notice_v3 = Notice(NOTICE.notice_id, "3", "ab" * 32)
    assert city.publish(notice_v3) == []
    assert event_count(app) == before


def test_refusing_a_given_record_is_illegal(city: City, client: TestClient, app: FastAPI) -> None:
    before = event_count(app)
    refused = client.post(f"/consent/records/{city.record_id}/refuse", headers=city.alice())
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("illegal-transition")
    assert event_count(app) == before and city.record(city.record_id)["status"] == "given"


def test_controller_revokes_with_a_reason_and_processing_stops(
    city: City, client: TestClient, app: FastAPI, clock: Clock
) -> None:
    assert city.send(0, 1) == (2, 0)
    assert city.shared_minutes() == [0, 1]
    clock.now = T0 + 11 * MIN
    url = f"/consent/records/{city.record_id}/revoke"

    # only the controller revokes, and only with a reason
    assert client.post(url, json={"reason": "x"}, headers=city.alice()).status_code == 403
    missing = client.post(url, json={}, headers=city.admin())
    assert missing.status_code == 422 and missing.headers["content-type"] == PROBLEM
    assert client.post(url, json={"reason": ""}, headers=city.admin()).status_code == 422
    assert city.record(city.record_id)["status"] == "given"

    revoked = client.post(url, json={"reason": "sensor programme ended"}, headers=city.admin())
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert body["record"]["status"] == "revoked" and body["record"]["status_term"] == "dpv:ConsentRevoked"
    assert [(r["record_id"], r["status"]) for r in body["receipts"]] == [(city.record_id, "revoked")]
    (claims,) = check_receipts(client, app, city.alice(), body["receipts"])
    assert claims["civitas"]["reason"] == "sensor programme ended"
    assert claims["piiPrincipalId"] == "pseudo-alice"

    # processing stops: nothing new accepted, nothing shared any more
    clock.now = T0 + 20 * MIN
    assert city.send(12, 13) == (0, 2)
    assert city.shared_minutes() == []

    # revoked is terminal for everyone
    before = event_count(app)
    answer = {"notice": notice_json(NOTICE)}
    for response in (
        client.post(url, json={"reason": "again"}, headers=city.admin()),
        client.post(f"/consent/records/{city.record_id}/give", json=answer, headers=city.alice()),
        client.post(f"/consent/records/{city.record_id}/withdraw", headers=city.alice()),
        client.post(
            f"/consent/records/{city.record_id}/renew",
            json={"notice": notice_json(NOTICE), "valid_until_ns": T0 + 90 * 24 * HOUR},
            headers=city.alice(),
        ),
    ):
        assert response.status_code == 409 and response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("illegal-transition")
    assert event_count(app) == before
    # a revoked record is not asked again under a new notice
    assert city.publish(NOTICE_V2) == []


def test_revoking_a_pending_request_is_illegal(city: City, client: TestClient, clock: Clock) -> None:
    clock.now = T0 + 11 * MIN
    (request,) = city.publish(NOTICE_V2)
    response = client.post(
        f"/consent/records/{request['record_id']}/revoke", json={"reason": "r"}, headers=city.admin()
    )
    assert response.status_code == 409 and response.json()["type"].endswith("illegal-transition")
    assert city.record(request["record_id"])["status"] == "requested"


def test_unknown_ids_and_scopes(client: TestClient, app: FastAPI, clock: Clock, token_for: TokenFor) -> None:
    alice = citizen(app, "pseudo-alice", clock)
    admin = bearer(token_for("consent:admin"))
    unknown = "00000000-0000-4000-8000-000000000000"
    answer = {"notice": notice_json(NOTICE_V2)}
    for path, payload, headers in (
        (f"/consent/records/{unknown}/give", answer, alice),
        (f"/consent/records/{unknown}/refuse", None, alice),
        (f"/consent/records/{unknown}/revoke", {"reason": "r"}, admin),
        ("/consent/records/not-an-id/give", answer, alice),
        ("/consent/records/not-an-id/revoke", {"reason": "r"}, admin),
    ):
        response = client.post(path, json=payload, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == PROBLEM and response.json()["type"].endswith("not-found")
    # publishing notices is the controller's; a citizen or anonymous caller may not
    assert client.post("/consent/notices", json=notice_json(NOTICE_V2), headers=alice).status_code == 403
    assert client.post("/consent/notices", json=notice_json(NOTICE_V2)).status_code == 401
    bad = client.post("/consent/notices", json={**notice_json(NOTICE_V2), "sha256": "zz"}, headers=admin)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    # with nothing to supersede a new notice version asks nobody
    published = client.post("/consent/notices", json=notice_json(NOTICE_V2), headers=admin)
    assert published.status_code == 200 and published.json()["requests"] == []
    assert event_count(app) == 0


def test_a_newer_notice_supersedes_a_pending_request(
    city: City, client: TestClient, app: FastAPI, clock: Clock
) -> None:
    clock.now = T0 + 11 * MIN
    (v2,) = city.publish(NOTICE_V2)
    notice_v3 = Notice(NOTICE.notice_id, "3", "cd" * 32)
    (v3,) = city.publish(notice_v3)
    assert city.publish(notice_v3) == []
    assert city.record(v3["record_id"])["supersedes"] == v2["record_id"]
    pending = client.get("/consent/records", params={"status": "requested"}, headers=city.alice()).json()
    assert {r["id"] for r in pending["records"]} == {v2["record_id"], v3["record_id"]}

    # the stale request cannot be given any more, even under its own notice
    before = event_count(app)
    stale = client.post(
        f"/consent/records/{v2['record_id']}/give",
        json={"notice": notice_json(NOTICE_V2)},
        headers=city.alice(),
    )
    assert stale.status_code == 409 and stale.json()["type"].endswith("notice-changed")
    assert event_count(app) == before

    clock.now = T0 + 12 * MIN
    given = client.post(
        f"/consent/records/{v3['record_id']}/give",
        json={"notice": notice_json(notice_v3)},
        headers=city.alice(),
    )
    assert given.status_code == 200, given.text
    assert [(r["record_id"], r["status"]) for r in given.json()["receipts"]] == [
        (v3["record_id"], "given"),
        (city.record_id, "withdrawn"),
    ]
    check_receipts(client, app, city.alice(), given.json()["receipts"])
    # the stale request can still be answered no; that ends nothing else
    refused = client.post(f"/consent/records/{v2['record_id']}/refuse", headers=city.alice())
    assert refused.status_code == 200, refused.text
    assert [r["status"] for r in refused.json()["receipts"]] == ["refused"]
    assert city.record(v3["record_id"])["permits_processing"]
    clock.now = T0 + 20 * MIN
    assert city.send(13) == (1, 0)
