"""Witness cosignatures collected by the ledger, on both databases: accepted only from configured
witnesses, only for checkpoints the ledger signed, only when they verify; served appended to the
checkpoint so clients can check a quorum."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger import Account, Ledger, Transfer, merkle, note
from ledger.cosignatures import (
    MAX_FUTURE_S,
    MAX_WITNESSES,
    CosignatureError,
    Cosignatures,
    parse_witness_keys,
)
from ledger.tables import cosignatures
from ledger.witness import Witness, verify_checkpoint

NS = 1_000_000_000
T0_S = 1_700_000_000
LOG_KEY = SigningKey(b"\x21" * 32)
ORIGIN = "ledger.example/ledger"


class Clock:
    def __init__(self) -> None:
        self.now = T0_S * NS

    def __call__(self) -> int:
        self.now += 1
        return self.now


@pytest.fixture
def led(db_url: str) -> Iterator[Ledger]:
    with Ledger.open(db_url, signing_key=LOG_KEY, origin=ORIGIN, clock=Clock()) as ledger:
        ledger.create_accounts([Account(id=1, ledger=1, code=1), Account(id=2, ledger=1, code=1)])
        yield ledger


def grow(led: Ledger, first_id: int, n: int) -> None:
    led.create_transfers(
        [Transfer(id=first_id + i, debit_account_id=1, credit_account_id=2, amount=1, ledger=1, code=1)
         for i in range(n)]
    )  # fmt: skip


def witness(tmp_path: Path, led: Ledger, i: int, at_s: int = T0_S) -> Witness:
    return Witness(
        f"witness.example/w{i}",
        SigningKey(bytes([40 + i]) * 32),
        tmp_path / f"w{i}.json",
        [led.verifier_key],
        clock_s=lambda: at_s,
    )


def stored_rows(led: Ledger) -> int:
    with led.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(cosignatures)).scalar_one())


def test_cosignatures_are_verified_stored_and_served(led: Ledger, tmp_path: Path) -> None:
    ws = [witness(tmp_path, led, i) for i in range(3)]
    cs = Cosignatures(led, [w.verifier_key for w in ws[:2]])  # w2 is not configured
    grow(led, 10, 3)
    cp3 = led.checkpoint()
    assert cs.cosigned(cp3) == cp3  # nothing collected yet: the plain signed checkpoint
    line0 = ws[0].add_checkpoint(cp3, 0, [])
    got = cs.add(cp3, line0)
    assert (got.created, got.tree_size, got.witness_key, got.cosigned_at_s) == (
        True,
        3,
        ws[0].verifier_key,
        T0_S,
    )
    # A resubmission (even a fresh cosignature of the same size) keeps the first one.
    again = cs.add(cp3, ws[0].add_checkpoint(cp3, 3, []))
    assert not again.created and again.line == line0
    served = cs.checkpoint(3)
    assert served is not None and served.endswith(line0)
    assert verify_checkpoint(served, led.verifier_key, [w.verifier_key for w in ws[:2]], 1).size == 3
    with pytest.raises(note.NoteError, match="only 1 of the required 2"):
        verify_checkpoint(served, led.verifier_key, [w.verifier_key for w in ws[:2]], 2)
    # The log grows; the second witness cosigns the old and the new size, the first only the old.
    grow(led, 20, 2)
    cp5 = led.checkpoint()
    cs.add(cp3, ws[1].add_checkpoint(cp3, 0, []))
    cs.add(cp5, ws[1].add_checkpoint(cp5, 3, led.consistency_proof(3, 5)))
    assert cs.cosigned(cp5).count("\u2014 witness.example/") == 1
    latest2 = cs.latest(2)
    assert latest2 is not None
    assert verify_checkpoint(latest2, led.verifier_key, cs.witness_keys, 2).size == 3
    latest1 = cs.latest(1)
    assert latest1 is not None
    assert verify_checkpoint(latest1, led.verifier_key, cs.witness_keys, 1).size == 5
    for bad in (0, 3):
        with pytest.raises(CosignatureError, match="invalid-quorum"):
            cs.latest(bad)
    assert Cosignatures(led, []).checkpoint(3) == led.stored_checkpoint(3)  # no witnesses configured
    assert cs.checkpoint(4) is None  # the log never had size 4 at a batch boundary


def test_refused_cosignatures_store_nothing(led: Ledger, tmp_path: Path) -> None:
    ws = [witness(tmp_path, led, i) for i in range(2)]
    cs = Cosignatures(led, [ws[0].verifier_key])
    grow(led, 10, 4)
    cp = led.checkpoint()
    good = ws[0].add_checkpoint(cp, 0, [])

    def refused(reason: str, checkpoint_note: str, line: str) -> None:
        with pytest.raises(CosignatureError) as exc:
            cs.add(checkpoint_note, line)
        assert exc.value.reason == reason, exc.value

    refused("unknown-witness", cp, ws[1].add_checkpoint(cp, 0, []))
    raw = bytearray(base64.b64decode(good.split(" ")[2]))
    raw[-1] ^= 1
    refused("bad-cosignature", cp, f"\u2014 {ws[0].name} {base64.b64encode(bytes(raw)).decode()}\n")
    raw = bytearray(base64.b64decode(good.split(" ")[2]))
    raw[11] ^= 1  # the timestamp is signed too
    refused("bad-cosignature", cp, f"\u2014 {ws[0].name} {base64.b64encode(bytes(raw)).decode()}\n")
    # A checkpoint the ledger never signed: another root at a stored size, or a size it never had.
    body = note.parse_checkpoint(note.parse_note(cp).text)
    forger = note.NoteSigner(ORIGIN, SigningKey(b"\x66" * 32))
    fake = note.sign_note(note.format_checkpoint(note.Checkpoint(ORIGIN, 4, b"\x01" * 32)), forger)
    fake_w = Witness(ws[0].name, ws[0].signing_key, tmp_path / "fake.json", [forger.verifier.vkey()])
    refused("checkpoint-mismatch", fake, fake_w.add_checkpoint(fake, 0, []))
    beyond = note.sign_note(note.format_checkpoint(note.Checkpoint(ORIGIN, 9, body.root_hash)), forger)
    refused("unknown-checkpoint", beyond, _cosign(ws[0], beyond))
    other_origin = note.sign_note(
        note.format_checkpoint(note.Checkpoint("elsewhere/ledger", 4, body.root_hash)), forger
    )
    refused("checkpoint-mismatch", other_origin, _cosign(ws[0], other_origin))
    # Malformed input.
    refused("invalid-cosignature", cp, "not a signature line")
    refused("invalid-cosignature", cp, good + good)
    refused(
        "invalid-cosignature",
        cp,
        good.replace(good.split(" ")[2].strip(), base64.b64encode(b"x" * 68).decode()),
    )
    refused("invalid-cosignature", cp, "\u2014 " + "w" * 1000 + " AAAA\n")
    refused("invalid-checkpoint", "garbage", good)
    refused("invalid-checkpoint", note.parse_note(cp).text, good)  # the bare body is not a signed note
    # A cosignature dated more than MAX_FUTURE_S ahead of the ledger clock; exactly at the edge is fine.
    now_s = led.clock() // NS
    ahead = Witness(ws[0].name, ws[0].signing_key, tmp_path / "ahead.json", [led.verifier_key],
                    clock_s=lambda: now_s + MAX_FUTURE_S + 5)  # fmt: skip
    refused("invalid-cosignature", cp, ahead.add_checkpoint(cp, 0, []))
    assert stored_rows(led) == 0
    assert cs.cosigned(cp) == cp
    at_edge = note.cosign_checkpoint(note.parse_note(cp).text, ws[0].name, ws[0].signing_key,
                                     led.clock() // NS + MAX_FUTURE_S)  # fmt: skip
    assert cs.add(cp, at_edge.line()).created
    assert cs.add(cp, good.rstrip("\n")).created is False  # the trailing newline is optional
    assert stored_rows(led) == 1


def _cosign(w: Witness, signed: str) -> str:
    """A cosignature by `w`'s key on any checkpoint body (no witness state involved)."""
    return note.cosign_checkpoint(note.parse_note(signed).text, w.name, w.signing_key, T0_S).line()


def test_witness_keys_are_checked(led: Ledger) -> None:
    keys = [
        note.NoteVerifier.from_key(
            f"w{i}.example", SigningKey(bytes([i + 1]) * 32).verify_key, note.ALG_COSIGNATURE_V1
        )
        for i in range(MAX_WITNESSES + 1)
    ]
    assert len(parse_witness_keys(keys[:MAX_WITNESSES])) == MAX_WITNESSES
    with pytest.raises(note.NoteError, match="at most"):
        parse_witness_keys(keys)
    with pytest.raises(note.NoteError, match="twice"):
        parse_witness_keys([keys[0].vkey(), keys[0].vkey()])
    with pytest.raises(note.NoteError, match="not a cosignature"):
        Cosignatures(led, [led.verifier_key])  # a plain note key (0x01) cannot cosign
    with pytest.raises(note.NoteError):
        parse_witness_keys(["w+00000000+AAAA"])


def test_proofs_and_cosigned_checkpoint_agree(led: Ledger, tmp_path: Path) -> None:
    ws = [witness(tmp_path, led, i) for i in range(2)]
    cs = Cosignatures(led, [w.verifier_key for w in ws])
    grow(led, 10, 7)
    cp = led.checkpoint()
    for w in ws:
        cs.add(cp, w.add_checkpoint(cp, 0, []))
    served = cs.latest(2)
    assert served is not None
    c = verify_checkpoint(served, led.verifier_key, cs.witness_keys, 2)
    assert merkle.verify_inclusion(led.leaf_hash(3), 3, c.size, led.inclusion_proof(3, c.size), c.root_hash)
