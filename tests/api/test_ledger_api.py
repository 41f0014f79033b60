"""Ledger API over HTTP on SQLite and PostgreSQL: accounts, transfers, proofs, allowances, scopes."""

from __future__ import annotations

import base64
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from civitas.auth import sign_jwt
from civitas.settings import Settings
from ledger import PaymentRequest, Transfer, merkle, note, verify_transfer_inclusion
from ledger.witness import verify_checkpoint

from .conftest import BASE_URL, TokenFor, bearer

DEVICE = SigningKey(b"\x33" * 32)


def citizen(app: FastAPI, pseudonym: str, scope: str = "ledger:read ledger:write") -> dict[str, str]:
    settings: Settings = app.state.settings
    now = int(time.time())
    claims = {
        "iss": settings.issuer, "sub": pseudonym, "aud": settings.api_audience, "client_id": "wallet",
        "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "scope": scope,
    }  # fmt: skip
    return bearer(sign_jwt(app.state.keys, claims, typ="at+jwt"))


@pytest.fixture
def admin(token_for: TokenFor) -> dict[str, str]:
    return bearer(token_for("ledger:read ledger:write ledger:admin"))


def open_account(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/ledger/accounts", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    account: dict[str, Any] = r.json()["account"]
    return account


def transfer(tid: int, dr: str, cr: str, amount: int, **kw: Any) -> dict[str, Any]:
    return {"id": str(tid), "debit_account_id": dr, "credit_account_id": cr, "amount": str(amount), "ledger": 1,
            "code": kw.pop("code", 1), **kw}  # fmt: skip


def post_transfers(client: TestClient, headers: dict[str, str], *transfers: dict[str, Any]) -> list[str]:
    r = client.post("/ledger/transfers", json={"transfers": list(transfers)}, headers=headers)
    assert r.status_code == 200, r.text
    return [x["status"] for x in r.json()["results"]]


@pytest.fixture
def funded(client: TestClient, app: FastAPI, admin: dict[str, str]) -> dict[str, Any]:
    """A treasury (operator account), a shop, and alice's citizen account funded with 1000."""
    treasury = open_account(client, admin, id="1000", owner="city-treasury")
    shop = open_account(client, admin, id="2000", owner="shop-client")
    alice_h = citizen(app, "nym-alice")
    alice = open_account(client, alice_h)
    assert post_transfers(client, admin, transfer(1, treasury["id"], alice["id"], 1000)) == ["CREATED"]
    return {"treasury": treasury, "shop": shop, "alice": alice, "alice_h": alice_h}


def test_citizen_gets_one_pseudonymous_account(client: TestClient, app: FastAPI) -> None:
    h = citizen(app, "nym-alice")
    r1 = client.post("/ledger/accounts", json={}, headers=h)
    assert r1.status_code == 201 and r1.json()["status"] == "CREATED"
    r2 = client.post("/ledger/accounts", json={}, headers=h)
    assert r2.status_code == 200 and r2.json()["status"] == "EXISTS"
    acc = r1.json()["account"]
    assert acc["id"] == r2.json()["account"]["id"]
    assert acc["flags"] == 2  # DEBITS_MUST_NOT_EXCEED_CREDITS: a citizen can never overdraw
    assert "nym-alice" not in r1.text  # the ledger keeps no pseudonym in the clear
    bob = open_account(client, citizen(app, "nym-bob"))
    assert bob["id"] != acc["id"]
    r = client.post("/ledger/accounts", json={"id": "5"}, headers=h)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")


def test_only_citizens_and_the_operator_open_accounts(client: TestClient, token_for: TokenFor) -> None:
    r = client.post("/ledger/accounts", json={"id": "9"}, headers=bearer(token_for("ledger:write")))
    assert r.status_code == 403
    r = client.post("/ledger/accounts", json={"id": "9"}, headers=bearer(token_for("ledger:read")))
    assert r.status_code == 403 and r.json()["type"].endswith("insufficient-scope")
    assert client.post("/ledger/accounts", json={}).status_code == 401


def test_citizen_sees_and_spends_only_their_own_account(
    client: TestClient, app: FastAPI, funded: dict[str, Any]
) -> None:
    alice, shop, treasury, alice_h = funded["alice"], funded["shop"], funded["treasury"], funded["alice_h"]
    got = client.get(f"/ledger/accounts/{alice['id']}", headers=alice_h).json()
    assert got["credits_posted"] == "1000"
    bob_h = citizen(app, "nym-bob")
    assert client.get(f"/ledger/accounts/{alice['id']}", headers=bob_h).status_code == 404
    assert client.get(f"/ledger/accounts/{treasury['id']}", headers=alice_h).status_code == 404
    assert client.get("/ledger/accounts/424242", headers=alice_h).status_code == 404
    # Alice pays the shop; she cannot debit the treasury; she cannot overdraw.
    assert post_transfers(client, alice_h, transfer(10, alice["id"], shop["id"], 300)) == ["CREATED"]
    r = client.post(
        "/ledger/transfers",
        json={"transfers": [transfer(11, treasury["id"], alice["id"], 5)]},
        headers=alice_h,
    )
    assert r.status_code == 403 and r.json()["type"].endswith("not-account-owner")
    assert post_transfers(client, alice_h, transfer(12, alice["id"], shop["id"], 701)) == ["EXCEEDS_CREDITS"]
    assert post_transfers(client, alice_h, transfer(12, alice["id"], shop["id"], 1)) == ["ID_ALREADY_FAILED"]
    assert post_transfers(client, alice_h, transfer(10, alice["id"], shop["id"], 300)) == ["EXISTS"]
    page = client.get(f"/ledger/accounts/{alice['id']}/transfers?limit=1", headers=alice_h).json()
    assert [t["id"] for t in page["transfers"]] == ["1"] and page["next_after"]
    page2 = client.get(
        f"/ledger/accounts/{alice['id']}/transfers?limit=5&after={page['next_after']}", headers=alice_h
    ).json()
    assert [t["id"] for t in page2["transfers"]] == ["10"] and page2["next_after"] is None
    newest = client.get(
        f"/ledger/accounts/{alice['id']}/transfers?reverse=true&limit=1", headers=alice_h
    ).json()
    assert newest["transfers"][0]["id"] == "10"
    assert client.get(f"/ledger/accounts/{alice['id']}/transfers", headers=bob_h).status_code == 404
    # paging past the largest timestamp is an empty page; beyond it, or malformed, 422
    url = f"/ledger/accounts/{alice['id']}/transfers"
    last = "after=9223372036854775807"
    assert client.get(f"{url}?{last}", headers=alice_h).json()["transfers"] == []
    newest_first = client.get(f"{url}?reverse=true", headers=alice_h).json()
    assert client.get(f"{url}?reverse=true&{last}", headers=alice_h).json() == newest_first
    for query in (
        "after=9223372036854775808",
        "after=9999999999999999999",
        "after=-1",
        "limit=0",
        "limit=1001",
    ):
        r = client.get(f"{url}?{query}", headers=alice_h)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), (
            query
        )


def test_batch_limits_and_validation(
    client: TestClient, admin: dict[str, str], funded: dict[str, Any]
) -> None:
    t, a = funded["treasury"]["id"], funded["alice"]["id"]
    big = [transfer(100 + i, t, a, 1) for i in range(8191)]
    r = client.post("/ledger/transfers", json={"transfers": big}, headers=admin)
    assert r.status_code in (413,), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.post("/ledger/transfers", json={"transfers": [transfer(5, t, a, -1)]}, headers=admin)
    assert r.status_code == 422
    r = client.post(
        "/ledger/transfers",
        json={"transfers": [{**transfer(5, t, a, 1), "amount": str(1 << 129)}]},
        headers=admin,
    )
    assert r.status_code == 422
    assert client.get(f"/ledger/accounts/{a}", headers=admin).json()["credits_posted"] == "1000"
    statuses = post_transfers(
        client, admin, transfer(20, t, a, 5, flags=1), transfer(21, t, "777", 5), transfer(22, t, a, 5)
    )
    assert statuses == ["LINKED_EVENT_FAILED", "CREDIT_ACCOUNT_NOT_FOUND", "CREATED"]


def test_concurrent_single_transfers_share_commits_and_never_overdraw(
    client: TestClient, app: FastAPI, funded: dict[str, Any]
) -> None:
    alice, shop, alice_h = funded["alice"], funded["shop"], funded["alice_h"]

    def pay(i: int) -> str:
        r = client.post(
            "/ledger/transfers",
            json={"transfers": [transfer(500 + i, alice["id"], shop["id"], 30)]},
            headers=alice_h,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["results"][0]["status"])

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(pay, range(40)))
    assert statuses.count("CREATED") == 1000 // 30
    assert set(statuses) == {"CREATED", "EXCEEDS_CREDITS"}
    got = client.get(f"/ledger/accounts/{alice['id']}", headers=alice_h).json()
    assert int(got["debits_posted"]) == 30 * (1000 // 30) <= int(got["credits_posted"])


def test_checkpoint_and_proofs_are_public_and_verify(
    client: TestClient, admin: dict[str, str], funded: dict[str, Any]
) -> None:
    t, a = funded["treasury"]["id"], funded["alice"]["id"]
    post_transfers(client, admin, *[transfer(50 + i, t, a, 1) for i in range(6)])
    key = client.get("/ledger/log-key").json()
    assert key["origin"].endswith("/ledger") and key["tree_size"] == 7
    r = client.get("/ledger/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    cp = verify_checkpoint(r.text, key["verifier_key"], [], 0)
    assert cp.size == 7
    for i in (0, 3, 6):
        p = client.get(f"/ledger/proofs/inclusion?leaf_index={i}&tree_size=7").json()
        proof = [base64.b64decode(h) for h in p["proof"]]
        assert merkle.verify_inclusion(base64.b64decode(p["leaf_hash"]), i, 7, proof, cp.root_hash)
    old = note.parse_checkpoint(note.parse_note(client.get("/ledger/checkpoint").text).text)
    post_transfers(client, admin, transfer(70, t, a, 1))
    new = verify_checkpoint(client.get("/ledger/checkpoint").text, key["verifier_key"], [], 0)
    c = client.get(f"/ledger/proofs/consistency?old_size={old.size}&new_size={new.size}").json()
    assert merkle.verify_consistency(
        old.size, new.size, [base64.b64decode(h) for h in c["proof"]], old.root_hash, new.root_hash
    )
    assert client.get("/ledger/proofs/inclusion?leaf_index=0&tree_size=999").status_code == 422
    assert client.get("/ledger/proofs/consistency?old_size=5&new_size=2").status_code == 422


def test_device_allowance_over_http(
    client: TestClient, app: FastAPI, token_for: TokenFor, funded: dict[str, Any]
) -> None:
    alice, shop, alice_h = funded["alice"], funded["shop"], funded["alice_h"]
    now = time.time_ns()
    body = {
        "id": "77", "account_id": alice["id"],
        "device_public_key": base64.urlsafe_b64encode(bytes(DEVICE.verify_key)).rstrip(b"=").decode(),
        "cap_micros": "100", "period_s": 3600, "expires_at_ns": str(now + 86_400 * 10**9), "code": 9,
    }  # fmt: skip
    r = client.post("/ledger/allowances", json=body, headers=alice_h)
    assert r.status_code == 201, r.text
    bob_h = citizen(app, "nym-bob")
    assert client.post("/ledger/allowances", json={**body, "id": "78"}, headers=bob_h).status_code == 404
    assert client.get("/ledger/allowances/77", headers=bob_h).status_code == 404
    device_h = bearer(token_for("ledger:pay"))

    def pay(rid: int, amount: int, flags: int = 0) -> Any:
        req = PaymentRequest(
            77, rid, amount, int(shop["id"]), time.time_ns(), flags=flags, timeout_s=60 if flags else 0
        )
        sig = base64.urlsafe_b64encode(req.sign(DEVICE)).rstrip(b"=").decode()
        payload = {"allowance_id": "77", "request_id": str(rid), "amount_micros": str(amount),
                   "payee_account_id": shop["id"], "timestamp_ns": str(req.timestamp_ns), "flags": flags,
                   "timeout_s": req.timeout_s, "signature": sig}  # fmt: skip
        return client.post("/ledger/allowances/payments", json=payload, headers=device_h)

    r = pay(900, 60)
    assert r.status_code == 200 and r.json()["status"] == "CREATED"
    assert pay(900, 60).json()["status"] == "EXISTS"  # replay
    r = pay(901, 50)
    assert r.status_code == 409 and r.json()["type"].endswith("cap-exceeded")
    r = pay(902, 40, flags=1)  # a toll reservation
    assert r.json()["status"] == "CREATED"
    shop_h = bearer(token_for("ledger:read ledger:write"))  # not the shop's owner
    assert (
        client.post(
            "/ledger/allowances/reservations/902/post", json={"transfer_id": "903"}, headers=shop_h
        ).status_code
        == 404
    )
    owner_claims_h = citizen(app, "shop-client")  # the subject the operator named as the shop's owner
    r = client.post(
        "/ledger/allowances/reservations/902/post",
        json={"transfer_id": "903", "amount_micros": "25"},
        headers=owner_claims_h,
    )
    assert r.status_code == 200 and r.json()["status"] == "CREATED"
    got = client.get(f"/ledger/accounts/{alice['id']}", headers=alice_h).json()
    assert (got["debits_pending"], got["debits_posted"]) == ("0", "85")
    assert client.post("/ledger/allowances/77/revoke", headers=alice_h).status_code == 204
    assert pay(904, 1).status_code == 403
    tampered = pay(905, 1)
    assert tampered.status_code == 403
    assert client.post("/ledger/allowances/payments", json={}, headers=alice_h).status_code in (403, 422)


def test_operator_reads_any_account(
    client: TestClient, admin: dict[str, str], funded: dict[str, Any]
) -> None:
    r = client.get(f"/ledger/accounts/{funded['alice']['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["credits_posted"] == "1000"
    r = client.post(
        "/ledger/accounts", json={"id": "1000", "owner": "city-treasury", "code": 2}, headers=admin
    )
    assert r.status_code == 409 and r.json()["status_name"] == "EXISTS_WITH_DIFFERENT_CODE"


def test_witness_and_audit_commands(
    client: TestClient, app: FastAPI, admin: dict[str, str], funded: dict[str, Any], tmp_path: Any
) -> None:
    import io

    from civitas.cli_ledger import run_audit, run_witness

    key = client.get("/ledger/log-key").json()["verifier_key"]
    common = dict(
        name="witness.example", key_file=tmp_path / "w.key", state=tmp_path / "w.json", once=True, http=client
    )
    out = io.StringIO()
    assert run_witness(BASE_URL, key, out=out, **common) == 0  # type: ignore[arg-type]
    t, a = funded["treasury"]["id"], funded["alice"]["id"]
    post_transfers(client, admin, transfer(80, t, a, 1), transfer(81, t, a, 1))
    out = io.StringIO()
    assert run_witness(BASE_URL, key, out=out, **common) == 0  # type: ignore[arg-type]
    text = out.getvalue()
    signed = text[text.index("\n") + 1 :]
    wkey = text.split(": ", 1)[1].split("\n", 1)[0]
    assert verify_checkpoint(signed, key, [wkey], 1).size == 3
    assert (tmp_path / "w.key").stat().st_mode & 0o777 == 0o600
    report = io.StringIO()
    assert run_audit(app.state.settings, out=report) == 0, report.getvalue()
    assert "ledger audit: OK" in report.getvalue()
    forged = note.NoteSigner(
        client.get("/ledger/log-key").json()["origin"], SigningKey(b"\x07" * 32)
    ).verifier.vkey()
    assert run_audit(app.state.settings, log_keys=[forged], out=io.StringIO()) == 1


def _transfer_in(t: dict[str, Any]) -> Transfer:
    return Transfer(**{k: int(v) for k, v in t.items()})


def test_citizen_proves_their_transfer_is_in_the_log(
    client: TestClient, app: FastAPI, admin: dict[str, str], funded: dict[str, Any]
) -> None:
    alice, shop, treasury, alice_h = funded["alice"], funded["shop"], funded["treasury"], funded["alice_h"]
    assert post_transfers(client, alice_h, transfer(10, alice["id"], shop["id"], 300)) == ["CREATED"]
    assert post_transfers(client, alice_h, transfer(11, alice["id"], shop["id"], 9_999)) == [
        "EXCEEDS_CREDITS"
    ]
    post_transfers(client, admin, *[transfer(60 + i, treasury["id"], shop["id"], 1) for i in range(5)])
    log_key = client.get("/ledger/log-key").json()["verifier_key"]
    r = client.get("/ledger/transfers/10/proof", headers=alice_h)
    assert r.status_code == 200, r.text
    p = r.json()
    assert (p["leaf_index"], p["tree_size"], p["transfer"]["amount"]) == (1, 7, "300")
    cp = verify_checkpoint(p["checkpoint"], log_key, [], 0)
    assert cp.size == 7
    leaf = base64.b64decode(p["leaf"])
    assert len(leaf) == 128 and merkle.leaf_hash(leaf) == base64.b64decode(p["leaf_hash"])
    proof = [base64.b64decode(h) for h in p["proof"]]
    t = _transfer_in(p["transfer"])
    assert verify_transfer_inclusion(t, p["leaf_index"], p["tree_size"], proof, cp.root_hash)
    t.amount = 3  # a citizen's copy that differs from what the ledger committed does not verify
    assert not verify_transfer_inclusion(t, p["leaf_index"], p["tree_size"], proof, cp.root_hash)
    # Against the checkpoint right after the transfer's own batch.
    old = client.get("/ledger/transfers/10/proof?tree_size=2", headers=alice_h).json()
    old_cp = verify_checkpoint(old["checkpoint"], log_key, [], 0)
    assert old_cp.size == 2 == old["tree_size"]
    assert verify_transfer_inclusion(
        _transfer_in(old["transfer"]), 1, 2, [base64.b64decode(h) for h in old["proof"]], old_cp.root_hash
    )
    r = client.get("/ledger/transfers/10/proof?tree_size=1", headers=alice_h)
    assert r.status_code == 422 and r.json()["type"].endswith("invalid-proof-request")
    assert client.get("/ledger/transfers/10/proof?tree_size=99", headers=alice_h).status_code == 422
    # Alice sees the transfers debiting or crediting her account; the payee's owner sees the payment.
    assert client.get("/ledger/transfers/1/proof", headers=alice_h).json()["leaf_index"] == 0
    assert client.get("/ledger/transfers/10/proof", headers=citizen(app, "shop-client")).status_code == 200
    # Nobody else, and failed or unknown ids look the same (no existence leak).
    for tid, headers in [
        ("10", citizen(app, "nym-bob")),
        ("60", alice_h),
        ("11", alice_h),
        ("4242", alice_h),
    ]:
        r = client.get(f"/ledger/transfers/{tid}/proof", headers=headers)
        assert r.status_code == 404 and r.json()["type"].endswith("not-found"), (tid, r.text)
    assert client.get("/ledger/transfers/60/proof", headers=admin).json()["leaf_index"] == 2
    assert client.get("/ledger/transfers/10/proof").status_code == 401
    r = client.get("/ledger/transfers/10/proof", headers=citizen(app, "nym-alice", scope="ledger:pay"))
    assert r.status_code == 403 and r.json()["type"].endswith("insufficient-scope")
    assert client.get(f"/ledger/transfers/{1 << 128}/proof", headers=admin).status_code == 422


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time_ns()

    def __call__(self) -> int:
        return self.now


def test_expired_toll_reservation_frees_the_allowance_over_http(
    client: TestClient, app: FastAPI, token_for: TokenFor, funded: dict[str, Any]
) -> None:
    from civitas.routers import ledger as ledger_router

    clock = FakeClock()  # the ledger's clock, so the test can step to a reservation's expiry
    app.state.ledger.close()
    app.state.ledger, app.state.clock = None, clock
    ledger_router.setup(app)
    alice, shop, alice_h = funded["alice"], funded["shop"], funded["alice_h"]
    body = {
        "id": "88", "account_id": alice["id"],
        "device_public_key": base64.urlsafe_b64encode(bytes(DEVICE.verify_key)).rstrip(b"=").decode(),
        "cap_micros": "100", "period_s": 3600, "expires_at_ns": str(clock.now + 86_400 * 10**9),
    }  # fmt: skip
    assert client.post("/ledger/allowances", json=body, headers=alice_h).json()["spent_micros"] == "0"
    device_h = bearer(token_for("ledger:pay"))

    def pay(rid: int, amount: int, flags: int = 0, timeout_s: int = 0) -> Any:
        req = PaymentRequest(88, rid, amount, int(shop["id"]), clock.now, flags=flags, timeout_s=timeout_s)
        payload = {"allowance_id": "88", "request_id": str(rid), "amount_micros": str(amount),
                   "payee_account_id": shop["id"], "timestamp_ns": str(clock.now), "flags": flags,
                   "timeout_s": timeout_s,
                   "signature": base64.urlsafe_b64encode(req.sign(DEVICE)).rstrip(b"=").decode()}  # fmt: skip
        return client.post("/ledger/allowances/payments", json=payload, headers=device_h)

    def spent() -> str:
        return str(client.get("/ledger/allowances/88", headers=alice_h).json()["spent_micros"])

    r = pay(950, 60, flags=1, timeout_s=60)
    assert r.status_code == 200 and r.json()["status"] == "CREATED"
    expires = int(r.json()["timestamp"]) + 60 * 10**9
    assert spent() == "60"
    clock.now = expires - 1
    r = pay(951, 41)
    assert r.status_code == 409 and r.json()["type"].endswith("cap-exceeded")
    assert spent() == "60"
    clock.now = expires
    assert spent() == "0"
    r = pay(951, 41)
    assert r.status_code == 200 and r.json()["status"] == "CREATED"
    assert spent() == "41"
    owner_h = citizen(app, "shop-client")
    r = client.post("/ledger/allowances/reservations/950/post", json={"transfer_id": "952"}, headers=owner_h)
    assert r.status_code == 200 and r.json()["status"] == "PENDING_TRANSFER_EXPIRED"
    assert spent() == "41"
    got = client.get(f"/ledger/accounts/{alice['id']}", headers=alice_h).json()
    assert (got["debits_pending"], got["debits_posted"]) == ("0", "41")


def test_audit_takes_the_log_origin_from_the_signed_checkpoint(
    client: TestClient, app: FastAPI, admin: dict[str, str], funded: dict[str, Any]
) -> None:
    import io

    from civitas.cli_ledger import run_audit
    from ledger.tables import checkpoints

    settings: Settings = app.state.settings
    moved = settings.model_copy(update={"public_url": "https://city.example/civitas"})
    report = io.StringIO()
    assert run_audit(moved, out=report) == 0, report.getvalue()
    text = report.getvalue()
    assert "ledger audit: OK" in text and "differs from 'city.example/civitas/ledger'" in text
    report = io.StringIO()
    assert run_audit(settings, out=report) == 0 and "differs" not in report.getvalue()
    # The origin is read from the checkpoint, but only the service's key makes it verify: a
    # checkpoint re-signed by another key under another origin fails the audit.
    led = app.state.ledger
    size = led.tree_size
    forged_signer = note.NoteSigner("evil.example/ledger", SigningKey(b"\x0e" * 32))
    forged = note.sign_note(
        note.format_checkpoint(note.Checkpoint("evil.example/ledger", size, led.root())), forged_signer
    )
    with led.engine.begin() as conn:
        conn.execute(checkpoints.update().where(checkpoints.c.tree_size == size).values(note=forged))
    report = io.StringIO()
    assert run_audit(moved, out=report) == 1
    assert "does not verify" in report.getvalue()


def test_history_account_balances_over_http(
    client: TestClient, app: FastAPI, admin: dict[str, str], funded: dict[str, Any]
) -> None:
    """A HISTORY account (the operator opens it for a citizen) shows its balances after each transfer,
    to its owner and the operator only, paged like its transfers."""
    treasury = funded["treasury"]
    saver = open_account(client, admin, id="3000", owner="nym-alice", flags=8)  # AccountFlags.HISTORY
    alice_h, bob_h = funded["alice_h"], citizen(app, "nym-bob")
    statuses = post_transfers(
        client, admin, *[transfer(300 + k, treasury["id"], saver["id"], 10 * k) for k in range(1, 4)],
        transfer(310, saver["id"], treasury["id"], 5), transfer(311, saver["id"], treasury["id"], 7, flags=2),
    )  # fmt: skip
    assert statuses == ["CREATED"] * 5
    url = f"/ledger/accounts/{saver['id']}/balances"
    page = client.get(url, headers=alice_h).json()
    got = [
        (b["debits_pending"], b["debits_posted"], b["credits_pending"], b["credits_posted"])
        for b in page["balances"]
    ]
    assert got == [("0", "0", "0", "10"), ("0", "0", "0", "30"), ("0", "0", "0", "60"), ("0", "5", "0", "60"),
                   ("7", "5", "0", "60")]  # fmt: skip
    assert page["next_after"] is None
    stamps = [b["timestamp"] for b in page["balances"]]
    assert client.get(url, headers=admin).json() == page
    # Pages oldest first and newest first, continuing with next_after; side filters.
    p1 = client.get(f"{url}?limit=2", headers=alice_h).json()
    p2 = client.get(f"{url}?limit=2&after={p1['next_after']}", headers=alice_h).json()
    assert [b["timestamp"] for b in p1["balances"] + p2["balances"]] == stamps[:4]
    newest = client.get(f"{url}?reverse=true&limit=3", headers=alice_h).json()
    older = client.get(f"{url}?reverse=true&limit=3&after={newest['next_after']}", headers=alice_h).json()
    assert [b["timestamp"] for b in newest["balances"] + older["balances"]] == stamps[::-1]
    assert older["next_after"] is None
    debits = client.get(f"{url}?credits=false", headers=alice_h).json()["balances"]
    assert [b["timestamp"] for b in debits] == stamps[3:]
    assert client.get(f"{url}?credits=false&debits=false", headers=alice_h).json()["balances"] == []
    # Accounts without HISTORY have no recorded balances.
    assert client.get(f"/ledger/accounts/{funded['alice']['id']}/balances", headers=alice_h).json() == {
        "balances": [], "next_after": None,
    }  # fmt: skip
    # Others' and unknown accounts: 404 (no existence leak); without ledger:read: 403; bad paging: 422.
    for h, acc in ((bob_h, saver["id"]), (alice_h, treasury["id"]), (alice_h, "424242")):
        r = client.get(f"/ledger/accounts/{acc}/balances", headers=h)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = client.get(url, headers=citizen(app, "nym-alice", scope="ledger:write"))
    assert r.status_code == 403 and r.json()["type"].endswith("insufficient-scope")
    for query in ("limit=0", "limit=1001", "after=-1", "after=9223372036854775808", "reverse=maybe"):
        r = client.get(f"{url}?{query}", headers=alice_h)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), (
            query
        )
    assert client.get(f"{url}?after=9223372036854775807", headers=alice_h).json()["balances"] == []
    assert client.get(f"{url}?reverse=true&after=1", headers=alice_h).json()["balances"] == []
