"""C2SP signed notes, checkpoints, cosignatures, the witness and the client quorum check."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from ledger import merkle, note
from ledger.witness import Witness, WitnessConflictError, WitnessError, verify_checkpoint

VECTOR = Path(__file__).parent.parent / "vectors" / "merkle" / "c2sp-signed-note-ed25519-example.json"
LOG_KEY = SigningKey(b"\x01" * 32)
ORIGIN = "example.org/log"
LOG = note.NoteSigner(ORIGIN, LOG_KEY)


def checkpoint(tree: merkle.MemoryTree, size: int, signer: note.NoteSigner = LOG) -> str:
    body = note.format_checkpoint(note.Checkpoint(signer.name, size, tree.root(size)))
    return note.sign_note(body, signer)


def tree_of(n: int, salt: bytes = b"") -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)])


def test_c2sp_signed_note_example_vector() -> None:
    v = json.loads(VECTOR.read_text())
    verifier = note.NoteVerifier.parse(v["vkey"])
    assert verifier.vkey() == v["vkey"]
    n = note.verify_note(v["note"], [verifier])
    assert n.text == v["signed_text"]
    assert str(n) == v["note"]
    assert note.key_id(verifier.name, bytes(verifier.verify_key)).hex() == "530d903a"
    # Tampered text, truncated note, wrong key: all refused.
    with pytest.raises(note.NoteError):
        note.verify_note(v["note"].replace("example", "exempli"), [verifier])
    with pytest.raises(note.NoteError):
        note.verify_note(v["note"][:-2], [verifier])
    with pytest.raises(note.NoteError):
        note.verify_note(v["note"], [LOG.verifier])


def test_sign_and_verify_round_trip_and_key_id_rule() -> None:
    text = note.format_checkpoint(note.Checkpoint(ORIGIN, 5, b"\x07" * 32, ("ext line",)))
    root_b64 = base64.b64encode(b"\x07" * 32).decode()
    assert text == f"{ORIGIN}\n5\n{root_b64}\next line\n"
    signed = note.sign_note(text, LOG)
    pub = bytes(LOG_KEY.verify_key)
    assert LOG.key_id == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4]
    line = signed.split("\n\n", 1)[1]
    assert line.startswith("\u2014 " + ORIGIN + " ")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == LOG.key_id and len(raw) == 68
    LOG_KEY.verify_key.verify(text.encode(), raw[4:])
    n = note.verify_note(signed, [note.NoteVerifier.parse(LOG.verifier.vkey())])
    assert note.parse_checkpoint(n.text) == note.Checkpoint(ORIGIN, 5, b"\x07" * 32, ("ext line",))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.replace("\n5\n", "\n6\n"),  # wrong size
        lambda s: s[: s.index("\n\n")] + "\n",  # no signature block
        lambda s: s.rstrip("\n"),  # no final newline
        lambda s: s.replace("\u2014", "-"),  # malformed signature line
        lambda s: s[:-10] + "AAAAAAAAA\n",  # forged signature bytes
        lambda s: s.replace("\u2014 " + ORIGIN, "\u2014 evil"),  # signer name changed
        lambda s: s + "trailing\n",
        lambda s: "\x07" + s,  # control character in the text
    ],
)
def test_forged_or_malformed_notes_are_rejected(mangle: object) -> None:
    signed = note.sign_note(note.format_checkpoint(note.Checkpoint(ORIGIN, 5, b"\x07" * 32)), LOG)
    bad = mangle(signed)  # type: ignore[operator]
    with pytest.raises(note.NoteError):
        note.verify_note(bad, [LOG.verifier])


@pytest.mark.parametrize(
    "text",
    [
        "origin\n5\n",  # truncated
        "origin\n05\n" + base64.b64encode(b"\0" * 32).decode() + "\n",  # leading zero
        "origin\n-1\n" + base64.b64encode(b"\0" * 32).decode() + "\n",
        "origin\n5\n" + base64.b64encode(b"\0" * 31).decode() + "\n",  # 31-byte root
        "origin\n5\nnot base64!\n",
        "\n5\n" + base64.b64encode(b"\0" * 32).decode() + "\n",
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(text)


def test_cosignature_format_matches_c2sp_tlog_cosignature() -> None:
    wkey = SigningKey(b"\x02" * 32)
    body = note.format_checkpoint(note.Checkpoint(ORIGIN, 3, b"\x01" * 32))
    cos = note.cosign_checkpoint(body, "witness.example/w1", wkey, 1_700_000_000)
    raw = base64.b64decode(cos.line().split(" ")[2])
    kid = hashlib.sha256(b"witness.example/w1\n\x04" + bytes(wkey.verify_key)).digest()[:4]
    assert raw[:4] == kid and len(raw) == 4 + 8 + 64
    assert struct.unpack(">Q", raw[4:12])[0] == 1_700_000_000
    msg = b"cosignature/v1\ntime 1700000000\n" + body.encode()
    wkey.verify_key.verify(msg, raw[12:])
    signed = note.add_signatures(note.sign_note(body, LOG), [cos.line()])
    wver = note.NoteVerifier.from_key("witness.example/w1", wkey.verify_key, note.ALG_COSIGNATURE_V1)
    assert note.verify_cosignature(signed, wver).timestamp == 1_700_000_000
    assert note.NoteVerifier.parse(wver.vkey()) == wver
    # The cosignature is not a plain note signature and cannot be replayed on another checkpoint.
    other = note.format_checkpoint(note.Checkpoint(ORIGIN, 4, b"\x01" * 32))
    replayed = note.add_signatures(note.sign_note(other, LOG), [cos.line()])
    with pytest.raises(note.NoteError):
        note.verify_cosignature(replayed, wver)


@pytest.fixture
def witnesses(tmp_path: Path) -> list[Witness]:
    return [
        Witness(
            f"witness.example/w{i}",
            SigningKey(bytes([10 + i]) * 32),
            tmp_path / f"w{i}.json",
            [LOG.verifier.vkey()],
            clock_s=lambda: 1_700_000_000,
        )
        for i in range(3)
    ]


def test_witness_cosigns_consistent_growth_and_clients_check_a_quorum(witnesses: list[Witness]) -> None:
    tree = tree_of(20)
    w = witnesses[0]
    cp5 = checkpoint(tree, 5)
    line = w.add_checkpoint(cp5, 0, [])  # trust on first use
    assert w.head(ORIGIN) == (5, tree.root(5))
    cp12 = checkpoint(tree, 12)
    lines = [x.add_checkpoint(cp12, 0, []) for x in witnesses[1:]]
    lines.append(w.add_checkpoint(cp12, 5, tree.consistency_proof(5, 12)))
    signed = note.add_signatures(cp12, lines)
    keys = [x.verifier_key for x in witnesses]
    got = verify_checkpoint(signed, LOG.verifier.vkey(), keys, quorum=3)
    assert (got.size, got.root_hash) == (12, tree.root(12))
    with pytest.raises(note.NoteError):
        verify_checkpoint(note.add_signatures(cp12, lines[:1]), LOG.verifier.vkey(), keys, quorum=2)
    with pytest.raises(note.NoteError):
        verify_checkpoint(signed, note.NoteSigner(ORIGIN, SigningKey(b"\x09" * 32)).verifier, keys, quorum=1)
    assert line.startswith("\u2014 witness.example/w0 ")
    # Re-adding the same checkpoint is fine (idempotent), its cosignature verifies.
    again = w.add_checkpoint(cp12, 12, [])
    note.verify_cosignature(note.add_signatures(cp12, [again]), w.verifier)


def test_witness_state_persists_and_refuses_rollback_and_forks(
    witnesses: list[Witness], tmp_path: Path
) -> None:
    tree = tree_of(20)
    w = witnesses[0]
    w.add_checkpoint(checkpoint(tree, 10), 0, [])
    reopened = Witness(w.name, w.signing_key, w.state_path, [LOG.verifier.vkey()])
    assert reopened.head(ORIGIN) == (10, tree.root(10))
    with pytest.raises(WitnessError, match="rolls the log back"):
        reopened.add_checkpoint(checkpoint(tree, 8), 10, [])
    forked = tree_of(20, salt=b"f")
    with pytest.raises(WitnessError, match="fork"):
        reopened.add_checkpoint(checkpoint(forked, 10), 10, [])
    with pytest.raises(WitnessError, match="consistency"):
        reopened.add_checkpoint(checkpoint(forked, 15), 10, forked.consistency_proof(10, 15))
    with pytest.raises(WitnessError, match="consistency"):
        reopened.add_checkpoint(checkpoint(tree, 15), 10, tree.consistency_proof(10, 15)[:-1])
    with pytest.raises(WitnessConflictError) as exc:
        reopened.add_checkpoint(checkpoint(tree, 15), 9, tree.consistency_proof(9, 15))
    assert exc.value.known_size == 10
    with pytest.raises(WitnessError, match="signature"):
        forger = note.NoteSigner(ORIGIN, SigningKey(b"\x05" * 32))
        reopened.add_checkpoint(checkpoint(tree, 15, forger), 10, tree.consistency_proof(10, 15))
    with pytest.raises(WitnessError, match="unknown log"):
        reopened.add_checkpoint(checkpoint(tree, 15, note.NoteSigner("other.org/log", LOG_KEY)), 10, [])
    with pytest.raises(WitnessError, match="malformed"):
        reopened.add_checkpoint("garbage", 10, [])
    assert reopened.head(ORIGIN) == (10, tree.root(10))  # nothing above changed the state
    reopened.add_checkpoint(checkpoint(tree, 15), 10, tree.consistency_proof(10, 15))
    assert Witness(w.name, w.signing_key, w.state_path, [LOG.verifier]).head(ORIGIN) == (15, tree.root(15))


def test_witness_over_a_real_ledger(tmp_path: Path) -> None:
    from ledger import Account, Ledger, Transfer

    with Ledger.open(f"sqlite:///{tmp_path / 'l.db'}", signing_key=LOG_KEY, origin=ORIGIN) as led:
        led.create_accounts([Account(id=1, ledger=1, code=1), Account(id=2, ledger=1, code=1)])
        w = Witness("witness.example/w", SigningKey(b"\x03" * 32), tmp_path / "w.json", [led.verifier_key])
        seen = 0
        for k in range(4):
            led.create_transfers([Transfer(id=100 * k + i + 1, debit_account_id=1, credit_account_id=2, amount=1,
                                           ledger=1, code=1) for i in range(k + 3)])  # fmt: skip
            size = led.tree_size
            proof = led.consistency_proof(seen, size) if seen else []
            line = w.add_checkpoint(led.checkpoint(), seen, proof)
            seen = size
        cp = verify_checkpoint(
            note.add_signatures(led.checkpoint(), [line]), led.verifier_key, [w.verifier_key], 1
        )
        assert cp.size == led.tree_size == 18


def test_client_quorum_check_refuses_forged_duplicate_and_missing_cosignatures(
    witnesses: list[Witness], tmp_path: Path
) -> None:
    tree = tree_of(9)
    cp = checkpoint(tree, 9)
    lines = [w.add_checkpoint(cp, 0, []) for w in witnesses]
    keys = [w.verifier_key for w in witnesses]
    log = LOG.verifier.vkey()
    assert verify_checkpoint(note.add_signatures(cp, lines), log, keys, 3).size == 9
    assert verify_checkpoint(note.add_signatures(cp, lines[:2]), log, keys, 2).size == 9
    with pytest.raises(note.NoteError, match="only 2 of the required 3"):
        verify_checkpoint(note.add_signatures(cp, lines[:2]), log, keys, 3)
    # The same witness line twice is refused, not counted twice.
    with pytest.raises(note.NoteError, match="duplicate cosignature"):
        verify_checkpoint(cp + lines[0] + lines[0], log, keys, 1)
    # Two different lines by one witness key (another time) are refused too.
    w0 = witnesses[0]
    later = Witness(w0.name, w0.signing_key, w0.state_path, [log], clock_s=lambda: 1_700_000_001)
    again = later.add_checkpoint(cp, 9, [])
    assert again != lines[0]
    with pytest.raises(note.NoteError, match="duplicate cosignature"):
        verify_checkpoint(cp + lines[0] + again, log, keys, 1)
    # A forged line by a listed witness is an error even when the quorum is met without it.
    raw = bytearray(base64.b64decode(lines[2].split(" ")[2]))
    raw[-1] ^= 1
    forged = f"\u2014 {witnesses[2].name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(note.NoteError, match="invalid cosignature"):
        verify_checkpoint(cp + lines[0] + lines[1] + forged, log, keys, 2)
    # A listed witness's cosignature of another checkpoint, moved onto this one, is a forgery.
    other = Witness(w0.name, w0.signing_key, tmp_path / "other.json", [log]).add_checkpoint(
        checkpoint(tree, 8), 0, []
    )
    with pytest.raises(note.NoteError, match="invalid cosignature"):
        verify_checkpoint(cp + other, log, keys, 0)
    # Lines by unlisted keys are ignored and never count.
    stranger = Witness("witness.example/x", SigningKey(b"\x19" * 32), tmp_path / "x.json", [log])
    assert verify_checkpoint(cp + lines[0] + stranger.add_checkpoint(cp, 0, []), log, keys, 1).size == 9
    with pytest.raises(note.NoteError, match="only 0 of the required 1"):
        verify_checkpoint(note.add_signatures(cp, lines[1:]), log, keys[:1], 1)
    # The quorum must fit the listed witnesses; witness keys must be cosignature (0x04) keys.
    for bad in (4, -1):
        with pytest.raises(note.NoteError, match="quorum"):
            verify_checkpoint(note.add_signatures(cp, lines), log, keys, bad)
    with pytest.raises(note.NoteError, match="not a cosignature"):
        verify_checkpoint(note.add_signatures(cp, lines), log, [log], 0)
    # Two keys with one witness name count as one witness.
    rotated = Witness(w0.name, SigningKey(b"\x55" * 32), tmp_path / "r.json", [log])
    both = note.add_signatures(cp, [lines[0], rotated.add_checkpoint(cp, 0, [])])
    with pytest.raises(note.NoteError, match="quorum"):
        verify_checkpoint(both, log, [keys[0], rotated.verifier_key], 2)
    assert verify_checkpoint(both, log, [keys[0], rotated.verifier_key], 1).size == 9
