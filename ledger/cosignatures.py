"""Witness cosignatures collected by the log: verified against configured witness keys, stored per
checkpoint size, served appended to the checkpoint (a C2SP signed note).

A witness submits the checkpoint it cosigned (the signed note as the log served it) and its
`cosignature/v1` line. The line must be by one of the configured witness keys, cover exactly the
body of a checkpoint this ledger stored for that size, verify, and carry a time no later than
`MAX_FUTURE_S` after the ledger clock. Anything else is refused and nothing is stored. A witness
has at most one stored cosignature per size: a resubmission keeps the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from . import note
from .tables import cosignatures
from .types import LedgerRefusal

if TYPE_CHECKING:
    from .store import Ledger

__all__ = ["MAX_FUTURE_S", "MAX_WITNESSES", "CosignatureError", "Cosignatures", "StoredCosignature"]

MAX_WITNESSES = 32  # the served note holds the log's signature plus one line per witness (C2SP: <= 100)
MAX_FUTURE_S = 300  # a cosignature may be timestamped at most this far ahead of the ledger clock
MAX_LINE_CHARS = 1000


class CosignatureError(LedgerRefusal):
    """A submitted cosignature is refused; `reason` is a stable slug."""


@dataclass(frozen=True, slots=True)
class StoredCosignature:
    tree_size: int
    witness_key: str
    cosigned_at_s: int
    line: str
    created: bool  # False: this witness had already cosigned this size; the stored line is kept


def parse_witness_keys(keys: Sequence[str | note.NoteVerifier]) -> list[note.NoteVerifier]:
    """Parse cosignature verifier keys (`<name>+<key ID>+<base64(0x04 || key)>`); refuse
    other key types, duplicates and more than `MAX_WITNESSES`."""
    out: list[note.NoteVerifier] = []
    for k in keys:
        v = note.NoteVerifier.parse(k) if isinstance(k, str) else k
        if v.alg != note.ALG_COSIGNATURE_V1:
            raise note.NoteError(f"{v.name}: not a cosignature (0x04) verifier key")
        if any((v.name, v.key_id) == (o.name, o.key_id) for o in out):
            raise note.NoteError(f"{v.name}: witness key listed twice")
        out.append(v)
    if len(out) > MAX_WITNESSES:
        raise note.NoteError(f"at most {MAX_WITNESSES} witness keys")
    return out


class Cosignatures:
    """Collects and serves witness cosignatures for a `Ledger`'s stored checkpoints."""

    def __init__(
        self,
        ledger: Ledger,
        witness_keys: Sequence[str | note.NoteVerifier],
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.ledger = ledger
        self.witnesses = parse_witness_keys(witness_keys)
        self._by_id = {(v.name, v.key_id): v for v in self.witnesses}
        self._vkeys = [v.vkey() for v in self.witnesses]
        self.clock = clock or ledger.clock

    @property
    def witness_keys(self) -> list[str]:
        return list(self._vkeys)

    def add(self, checkpoint_note: str, line: str) -> StoredCosignature:
        """Verify a witness's cosignature line on a checkpoint of this ledger and store it."""
        sig = self._parse_line(line)
        verifier = self._by_id.get((sig.name, sig.key_id))
        if verifier is None:
            raise CosignatureError(
                "unknown-witness", f"no configured witness key {sig.name}+{sig.key_id.hex()}"
            )
        try:
            text = note.parse_note(checkpoint_note).text
            cp = note.parse_checkpoint(text)
        except note.NoteError as exc:
            raise CosignatureError("invalid-checkpoint", str(exc)) from None
        stored = self.ledger.stored_checkpoint(cp.size)
        if stored is None:
            raise CosignatureError("unknown-checkpoint", f"the ledger signed no checkpoint of size {cp.size}")
        if note.parse_note(stored).text != text:
            raise CosignatureError(
                "checkpoint-mismatch", f"the ledger's checkpoint of size {cp.size} has another body"
            )
        try:
            cos = note.verify_cosignature(note.Note(text, (sig,)), verifier)
        except note.NoteError as exc:
            raise CosignatureError("bad-cosignature", str(exc)) from None
        now_s = self.clock() // 1_000_000_000
        if cos.timestamp > now_s + MAX_FUTURE_S:
            raise CosignatureError("invalid-cosignature", "the cosignature's time is in the future")
        vkey = verifier.vkey()
        row = {
            "tree_size": cp.size,
            "witness_key": vkey,
            "cosigned_at_s": cos.timestamp,
            "line": cos.line(),
            "received_at_ns": self.clock(),
        }
        try:
            with self.ledger.engine.begin() as conn:
                conn.execute(cosignatures.insert().values(**row))
        except sa.exc.IntegrityError:
            with self.ledger.engine.connect() as conn:
                kept = conn.execute(
                    sa.select(cosignatures.c.cosigned_at_s, cosignatures.c.line).where(
                        cosignatures.c.tree_size == cp.size, cosignatures.c.witness_key == vkey
                    )
                ).one()
            return StoredCosignature(cp.size, vkey, int(kept[0]), str(kept[1]), created=False)
        return StoredCosignature(cp.size, vkey, cos.timestamp, cos.line(), created=True)

    @staticmethod
    def _parse_line(line: str) -> note.NoteSignature:
        if len(line) > MAX_LINE_CHARS:
            raise CosignatureError("invalid-cosignature", "the line is too long")
        text = line if line.endswith("\n") else line + "\n"
        if text.count("\n") != 1:
            raise CosignatureError("invalid-cosignature", "expected exactly one signature line")
        try:
            (sig,) = note.parse_note("x\n\n" + text).signatures
        except note.NoteError as exc:
            raise CosignatureError("invalid-cosignature", str(exc)) from None
        if len(sig.signature) != 72:
            raise CosignatureError("invalid-cosignature", "a cosignature/v1 line carries 8 + 64 bytes")
        return sig

    def lines(self, tree_size: int) -> list[str]:
        """The stored cosignature lines of configured witnesses for a size, ordered by key."""
        if not self._vkeys:
            return []
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(
                sa.select(cosignatures.c.line)
                .where(cosignatures.c.tree_size == tree_size, cosignatures.c.witness_key.in_(self._vkeys))
                .order_by(cosignatures.c.witness_key)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def cosigned(self, signed_note: str) -> str:
        """`signed_note` (a checkpoint of this ledger) with the cosignatures stored for its size."""
        n = note.parse_note(signed_note)
        extra = self.lines(note.parse_checkpoint(n.text).size)
        return note.add_signatures(signed_note, extra) if extra else signed_note

    def checkpoint(self, tree_size: int) -> str | None:
        """The checkpoint stored for `tree_size` with its cosignatures, or None."""
        stored = self.ledger.stored_checkpoint(tree_size)
        return None if stored is None else self.cosigned(stored)

    def latest(self, min_cosignatures: int = 1) -> str | None:
        """The newest stored checkpoint cosigned by at least `min_cosignatures` configured
        witnesses, with its cosignatures; None if there is none."""
        if not 1 <= min_cosignatures <= len(self._vkeys):
            raise CosignatureError(
                "invalid-quorum", f"min_cosignatures must be in 1..{len(self._vkeys)} (configured witnesses)"
            )
        c = cosignatures.c
        with self.ledger.engine.connect() as conn:
            size = conn.execute(
                sa.select(c.tree_size)
                .where(c.witness_key.in_(self._vkeys))
                .group_by(c.tree_size)
                .having(sa.func.count() >= min_cosignatures)
                .order_by(c.tree_size.desc())
                .limit(1)
            ).scalar()
        return None if size is None else self.checkpoint(int(size))
