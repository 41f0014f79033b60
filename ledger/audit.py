"""Audit a ledger store by replaying it.

Recomputes every account's balances from the transfers (and the pending-state table), checks
debits equal credits per ledger and every balance limit, re-encodes every transfer into its
canonical leaf and compares it with the stored leaf hashes, recomputes the Merkle root and the
stored frontier, and verifies the latest stored checkpoint (signature, size and root).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import merkle, note
from .codec import encode_transfer
from .types import AccountFlags, PendingState, TransferFlags

if TYPE_CHECKING:
    from .store import Ledger

__all__ = ["AuditReport", "audit", "checkpoint_origin"]

_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_DMNEC = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CMNED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
MAX_PROBLEMS = 100


@dataclass(slots=True)
class AuditReport:
    ok: bool = True
    accounts: int = 0
    transfers: int = 0
    tree_size: int = 0
    root_hash: str = ""
    checkpoint_size: int = 0
    totals: dict[int, dict[str, int]] = field(default_factory=dict)  # ledger -> posted/pending sums
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "accounts": self.accounts,
            "transfers": self.transfers,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoint_size": self.checkpoint_size,
            "totals": {str(k): v for k, v in self.totals.items()},
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _stored_leaves(rows: Iterable[Any], rep: AuditReport) -> Iterator[tuple[int, bytes]]:
    """(leaf index, leaf hash) for every leaf of the per-batch leaf rows, in order."""
    for first, blob in rows:
        data = bytes(blob)
        if len(data) % 32:
            rep.problem(f"leaf row {first}: {len(data)} bytes is not a whole number of hashes")
        start = int(first)
        for k in range(len(data) // 32):
            yield start + k, data[32 * k : 32 * k + 32]


def checkpoint_origin(ledger: Ledger) -> str | None:
    """The origin line of the latest stored checkpoint (None for an empty log or an unreadable note).

    Auditors build the log's verifier key from it: the key ID binds the name, so a checkpoint under
    another origin still verifies only with the right key."""
    cp = ledger.stored_checkpoint(ledger.tree_size)
    if cp is None:
        return None
    try:
        return note.parse_checkpoint(note.parse_note(cp).text).origin
    except note.NoteError:
        return None


def audit(ledger: Ledger, log_keys: Sequence[str | note.NoteVerifier] | None = None) -> AuditReport:
    """Replay `ledger`. The latest checkpoint is verified with `log_keys` (verifier keys, e.g. the
    current and retired log keys) or, if none are given, with the ledger's own key unless that key
    is ephemeral — then only the checkpoint's body is compared and a note says so."""
    rep = AuditReport()
    d = ledger._d
    opts: dict[str, str] = {"isolation_level": "REPEATABLE READ"} if d.pg else {"sqlite_begin": "DEFERRED"}
    with ledger.engine.connect().execution_options(**opts) as conn:
        state = ledger._read_meta(conn, lock=False)
        accounts = {row[0]: row for row in ledger._account_rows(conn)}
        pend = {
            d.id_out(r[0]): int(r[1])
            for r in conn.exec_driver_sql("SELECT id, state FROM ledger_pending").fetchall()
        }
        balances: dict[int, list[int]] = {aid: [0, 0, 0, 0] for aid in accounts}
        frontier = merkle.Frontier()
        leaf_rows = conn.exec_driver_sql(
            "SELECT first_leaf_index, leaf_hashes FROM ledger_leaves ORDER BY first_leaf_index"
        )
        leaf_iter = _stored_leaves(leaf_rows, rep)
        sha = hashlib.sha256
        last_ts = 0
        for t in ledger._transfer_rows(conn):
            rep.transfers += 1
            if t[12] <= last_ts:
                rep.problem(f"transfer {t[0]}: timestamp does not increase")
            last_ts = t[12]
            dr, cr = balances.get(t[1]), balances.get(t[2])
            if dr is None or cr is None:
                rep.problem(f"transfer {t[0]}: references a missing account")
            else:
                amount, flags = t[3], t[11]
                if flags & _PENDING:
                    if pend.get(t[0]) is None:
                        rep.problem(f"transfer {t[0]}: pending transfer without a pending state")
                    elif pend[t[0]] == PendingState.PENDING:
                        dr[0] += amount
                        cr[2] += amount
                elif flags & _VOID:
                    pass
                else:  # single-phase or post
                    dr[1] += amount
                    cr[3] += amount
            h = sha(b"\x00" + encode_transfer(t)).digest()
            stored = next(leaf_iter, None)
            if stored is None or int(stored[0]) != frontier.size:
                rep.problem(f"leaf {frontier.size}: missing from the leaf table")
            elif bytes(stored[1]) != h:
                rep.problem(f"leaf {frontier.size}: stored hash differs from the transfer's encoding")
            frontier.append(h)
        if next(leaf_iter, None) is not None:
            rep.problem("the leaf table holds leaves without a transfer")
        for problem in ledger._storage_problems(conn):
            rep.problem(problem)
    rep.accounts = len(accounts)
    for aid, a in accounts.items():
        b = balances[aid]
        if (a[1], a[2], a[3], a[4]) != tuple(b):
            rep.problem(f"account {aid}: stored balances {a[1:5]} differ from the replay {tuple(b)}")
        flags = a[10]
        if flags & _DMNEC and a[1] + a[2] > a[4]:
            rep.problem(f"account {aid}: debits exceed credits")
        if flags & _CMNED and a[3] + a[4] > a[2]:
            rep.problem(f"account {aid}: credits exceed debits")
        tot = rep.totals.setdefault(
            a[8], {"debits_pending": 0, "debits_posted": 0, "credits_pending": 0, "credits_posted": 0}
        )
        tot["debits_pending"] += a[1]
        tot["debits_posted"] += a[2]
        tot["credits_pending"] += a[3]
        tot["credits_posted"] += a[4]
    for ledger_id, tot in rep.totals.items():
        if tot["debits_posted"] != tot["credits_posted"] or tot["debits_pending"] != tot["credits_pending"]:
            rep.problem(f"ledger {ledger_id}: total debits differ from total credits")
    rep.tree_size = frontier.size
    root = frontier.root()
    rep.root_hash = root.hex()
    if state.tree_size != frontier.size:
        rep.problem(f"log size {state.tree_size} differs from the replay's {frontier.size}")
    if state.frontier != frontier.to_bytes():
        rep.problem("stored Merkle frontier differs from the replay")
    if frontier.size:
        cp = ledger.stored_checkpoint(state.tree_size)
        if cp is None:
            rep.problem(f"no checkpoint stored for size {state.tree_size}")
        else:
            try:
                origins: set[str] | None
                if log_keys:
                    verifiers = [note.NoteVerifier.parse(k) if isinstance(k, str) else k for k in log_keys]
                    n = note.verify_note(cp, verifiers)
                    origins = {v.name for v in verifiers}
                elif ledger.ephemeral_key:
                    n = note.parse_note(cp)
                    origins = None
                    rep.notes.append(
                        "checkpoint signature not checked: no log key given (ephemeral ledger key)"
                    )
                else:
                    n = note.verify_note(cp, [ledger.signer.verifier])
                    origins = {ledger.origin}
                c = note.parse_checkpoint(n.text)
                rep.checkpoint_size = c.size
                wrong_origin = origins is not None and c.origin not in origins
                if wrong_origin or c.size != frontier.size or c.root_hash != root:
                    rep.problem("latest checkpoint does not match the replayed tree")
            except note.NoteError as exc:
                rep.problem(f"latest checkpoint does not verify with the ledger key: {exc}")
    return rep
