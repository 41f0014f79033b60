"""Witness cosignatures over HTTP on SQLite and PostgreSQL: submission, refusals, the served
cosigned checkpoint, `civitas witness --submit` (in process and as real processes against a
real server) and the client's quorum check."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from civitas.cli_ledger import run_witness
from civitas.settings import Settings
from ledger import note
from ledger.witness import Witness, verify_checkpoint

from .conftest import BASE_URL, TokenFor, bearer

WITNESS_SEEDS = {f"witness.example/{c}": bytes([0x50 + i]) * 32 for i, c in enumerate("abc")}


def vkey(name: str) -> str:
    key = SigningKey(WITNESS_SEEDS[name])
    return note.NoteVerifier.from_key(name, key.verify_key, note.ALG_COSIGNATURE_V1).vkey()


A, B, C = "witness.example/a", "witness.example/b", "witness.example/c"  # C is not configured


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        max_body_bytes=64 * 1024,
        ledger_witness_keys=f"{vkey(A)}, {vkey(B)}",
    )


@pytest.fixture
def admin(token_for: TokenFor) -> dict[str, str]:
    return bearer(token_for("ledger:read ledger:write ledger:admin"))


@pytest.fixture
def grow(client: TestClient, admin: dict[str, str]) -> Any:
    for aid in ("1", "2"):
        r = client.post("/ledger/accounts", json={"id": aid, "owner": "city"}, headers=admin)
        assert r.status_code == 201, r.text
    next_id = [100]

    def add(n: int) -> int:
        batch = [{"id": str(next_id[0] + i), "debit_account_id": "1", "credit_account_id": "2", "amount": "1",
                  "ledger": 1, "code": 1} for i in range(n)]  # fmt: skip
        next_id[0] += n
        r = client.post("/ledger/transfers", json={"transfers": batch}, headers=admin)
        assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {"CREATED"}
        return int(client.get("/ledger/log-key").json()["tree_size"])

    return add


def key_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name.rsplit('/', 1)[1]}.key"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(WITNESS_SEEDS[name]).rstrip(b"=").decode() + "\n")
        path.chmod(0o600)
    return path


def witness(tmp_path: Path, name: str, log_key: str) -> Witness:
    return Witness(name, SigningKey(WITNESS_SEEDS[name]), tmp_path / f"{name[-1]}-lib.json", [log_key])


def problem(r: Any, status: int, slug: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == f"urn:civitas:problem:{slug}"


def test_submit_store_and_serve_cosignatures(client: TestClient, grow: Any, tmp_path: Path) -> None:
    key = client.get("/ledger/log-key").json()
    assert key["witness_keys"] == [vkey(A), vkey(B)]
    log_key = key["verifier_key"]
    size = grow(3)
    cp = client.get("/ledger/checkpoint").text
    assert cp == client.get(f"/ledger/checkpoints/{size}").text  # nothing collected yet
    problem(client.get("/ledger/checkpoint/cosigned"), 404, "no-cosigned-checkpoint")
    wa, wb, wc = (witness(tmp_path, n, log_key) for n in (A, B, C))
    line_a = wa.add_checkpoint(cp, 0, [])
    r = client.post("/ledger/cosignatures", json={"checkpoint": cp, "cosignature": line_a})
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["status"], got["tree_size"], got["witness_key"]) == ("CREATED", size, vkey(A))
    assert abs(got["cosigned_at_s"] - time.time()) < 600
    r = client.post(
        "/ledger/cosignatures", json={"checkpoint": cp, "cosignature": wa.add_checkpoint(cp, size, [])}
    )
    assert r.status_code == 200 and r.json()["status"] == "EXISTS"
    served = client.get("/ledger/checkpoint")
    assert served.headers["content-type"].startswith("text/plain") and served.text == cp + line_a
    assert verify_checkpoint(served.text, log_key, [vkey(A), vkey(B)], 1).size == size
    with pytest.raises(note.NoteError, match="only 1 of the required 2"):
        verify_checkpoint(served.text, log_key, [vkey(A), vkey(B)], 2)

    # Refusals: problem+json, and nothing stored.
    problem(
        client.post("/ledger/cosignatures", json={"checkpoint": cp, "cosignature": wc.add_checkpoint(cp, 0, [])}),
        403, "unknown-witness",
    )  # fmt: skip
    line_b = wb.add_checkpoint(cp, 0, [])
    raw = bytearray(base64.b64decode(line_b.split(" ")[2]))
    raw[20] ^= 1
    forged = f"\u2014 {B} {base64.b64encode(bytes(raw)).decode()}\n"
    problem(
        client.post("/ledger/cosignatures", json={"checkpoint": cp, "cosignature": forged}),
        403,
        "bad-cosignature",
    )
    other = note.NoteSigner(key["origin"], SigningKey(b"\x09" * 32))
    body = note.parse_checkpoint(note.parse_note(cp).text)
    never = note.sign_note(note.format_checkpoint(note.Checkpoint(body.origin, size, b"\x02" * 32)), other)
    cos = note.cosign_checkpoint(
        note.parse_note(never).text, B, SigningKey(WITNESS_SEEDS[B]), int(time.time())
    )
    problem(client.post("/ledger/cosignatures", json={"checkpoint": never, "cosignature": cos.line()}), 409,
            "checkpoint-mismatch")  # fmt: skip
    beyond = note.sign_note(
        note.format_checkpoint(note.Checkpoint(body.origin, size + 5, body.root_hash)), other
    )
    cos = note.cosign_checkpoint(
        note.parse_note(beyond).text, B, SigningKey(WITNESS_SEEDS[B]), int(time.time())
    )
    problem(client.post("/ledger/cosignatures", json={"checkpoint": beyond, "cosignature": cos.line()}), 404,
            "unknown-checkpoint")  # fmt: skip
    problem(client.post("/ledger/cosignatures", json={"checkpoint": cp, "cosignature": "hello"}), 422,
            "invalid-cosignature")  # fmt: skip
    problem(client.post("/ledger/cosignatures", json={"checkpoint": "x", "cosignature": line_b}), 422,
            "invalid-checkpoint")  # fmt: skip
    problem(client.post("/ledger/cosignatures", json={"checkpoint": cp}), 422, "validation-error")
    assert client.get("/ledger/checkpoint").text == cp + line_a

    # The second witness cosigns: the checkpoint now meets a quorum of two.
    assert (
        client.post("/ledger/cosignatures", json={"checkpoint": cp, "cosignature": line_b}).status_code == 201
    )
    two = client.get("/ledger/checkpoint/cosigned?min_cosignatures=2").text
    assert verify_checkpoint(two, log_key, [vkey(A), vkey(B)], 2).size == size
    grow(2)  # the latest checkpoint has no cosignature yet; the cosigned one stays available
    assert verify_checkpoint(client.get("/ledger/checkpoint").text, log_key, [vkey(A)], 0).size == size + 2
    assert client.get("/ledger/checkpoint/cosigned?min_cosignatures=2").text == two
    assert client.get(f"/ledger/checkpoints/{size}").text == two
    problem(client.get("/ledger/checkpoints/4"), 404, "not-found")  # not a size the ledger stored
    problem(client.get("/ledger/checkpoint/cosigned?min_cosignatures=3"), 422, "invalid-quorum")
    problem(client.get("/ledger/checkpoint/cosigned?min_cosignatures=0"), 422, "validation-error")


def test_witness_command_submits_its_cosignatures(client: TestClient, grow: Any, tmp_path: Path) -> None:
    log_key = client.get("/ledger/log-key").json()["verifier_key"]
    grow(2)

    def run(name: str, **kw: Any) -> tuple[int, str]:
        out = io.StringIO()
        code = run_witness(BASE_URL, log_key, name, key_file(tmp_path, name), tmp_path / f"{name[-1]}.json",
                           once=True, submit=True, http=client, out=out, **kw)  # fmt: skip
        return code, out.getvalue()

    assert run(A)[0] == 0 and run(B)[0] == 0
    size = grow(4)
    assert run(A)[0] == 0 and run(B)[0] == 0  # both cosign the grown log (consistency proof 2 -> 6)
    cosigned = client.get("/ledger/checkpoint/cosigned?min_cosignatures=2").text
    cp = verify_checkpoint(cosigned, log_key, [vkey(A), vkey(B)], 2)
    assert cp.size == size and client.get("/ledger/checkpoint").text == cosigned
    # A witness the ledger does not know cosigns, but its submission is refused (exit status 3).
    code, text = run(C)
    assert code == 3 and "SUBMIT FAILED" in text and "HTTP 403" in text
    assert client.get("/ledger/checkpoint").text == cosigned


def _civitas(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "civitas"), *args]


def test_real_witness_processes_against_a_real_server(
    app: FastAPI, client: TestClient, grow: Any, tmp_path: Path
) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        log_key = client.get("/ledger/log-key").json()["verifier_key"]
        env = {**os.environ, "CIVITAS_DATA_DIR": str(tmp_path / "witness-env")}

        def argv(name: str, *extra: str) -> list[str]:
            return _civitas("witness", "--url", url, "--log-key", log_key, "--name", name, "--key-file",
                            str(key_file(tmp_path, name)), "--state", str(tmp_path / f"{name[-1]}.json"),
                            "--submit", *extra)  # fmt: skip

        size = grow(3)
        once = subprocess.run(argv(A, "--once"), env=env, capture_output=True, text=True, timeout=120)
        assert once.returncode == 0, once.stderr
        # A long-running witness follows the log as it grows and hands each cosignature back.
        proc = subprocess.Popen(argv(B, "--interval", "0.2"), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            seen = _wait_for_quorum(client, log_key, size, quorum=2)
            assert seen == size
            size = grow(5)
            assert _wait_for_quorum(client, log_key, size, quorum=1) == size
            once = subprocess.run(argv(A, "--once"), env=env, capture_output=True, text=True, timeout=120)
            assert once.returncode == 0, once.stderr
            assert _wait_for_quorum(client, log_key, size, quorum=2) == size
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=30)
        assert "REFUSED" not in err and "SUBMIT FAILED" not in err
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_for_quorum(client: TestClient, log_key: str, size: int, quorum: int) -> int:
    """Poll the ledger until a checkpoint of `size` has `quorum` cosignatures; return its size."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = client.get(f"/ledger/checkpoint/cosigned?min_cosignatures={quorum}")
        if r.status_code == 200:
            cp = verify_checkpoint(r.text, log_key, [vkey(A), vkey(B)], quorum)
            if cp.size == size:
                return cp.size
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size} with {quorum} cosignatures")


def test_witness_keys_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("CIVITAS_LEDGER_WITNESS_KEYS", f" {vkey(A)},{vkey(B)}\n{vkey(C)} ")
    assert Settings().ledger_witness_keys == (vkey(A), vkey(B), vkey(C))
    monkeypatch.setenv("CIVITAS_LEDGER_WITNESS_KEYS", "")
    assert Settings().ledger_witness_keys == ()
    log_key = note.NoteSigner("log.example", SigningKey(b"\x01" * 32)).verifier.vkey()
    many = [
        note.NoteVerifier.from_key(f"w{i}", SigningKey(bytes([i + 1]) * 32).verify_key, 4).vkey()
        for i in range(33)
    ]
    for bad in ("not-a-key", log_key, f"{vkey(A)},{vkey(A)}", ",".join(many)):
        monkeypatch.setenv("CIVITAS_LEDGER_WITNESS_KEYS", bad)
        with pytest.raises(ValidationError):
            Settings()
    monkeypatch.setenv("CIVITAS_LEDGER_WITNESS_KEYS", ",".join(many[:32]))
    assert len(Settings().ledger_witness_keys) == 32
