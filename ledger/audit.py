"""Audit a ledger store by replaying it.

Recomputes every account's balances from the transfers (and the pending-state table), checks
debits equal credits per ledger and every balance limit, re-encodes every transfer into its
canonical leaf and compares it with the stored leaf hashes, recomputes the Merkle root and the
stored frontier, and verifies the latest stored checkpoint (signature, size and root). The
recorded balances of HISTORY accounts are replayed too (`_HistoryReplay`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
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
_HISTORY = int(AccountFlags.HISTORY)
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


class _HistoryReplay:
    """Replays the recorded balances of HISTORY accounts (ledger_account_balances) beside the transfers.

    Posted balances only move through transfers, so each record's posted columns must equal the
    replay. Pending columns equal the replay minus what expiries released before that transfer,
    and expiries are applied at the start of a batch, in expiry order, for every pending transfer
    whose expiry is <= the batch's first timestamp. That timestamp is not stored, but it lies after
    the previous batch's last timestamp (`ledger_checkpoints` has one row per batch that created
    transfers) and at or before the transfer's: the released amount must be what the expiries up
    to some instant in that interval add up to. Records must also exist for every transfer of the
    account from its first record on (earlier transfers may predate migration ledger_0004) and for
    nothing else."""

    def __init__(self, conn: Any, accounts: dict[int, tuple[int, ...]], rep: AuditReport) -> None:
        self.rep = rep
        by_ts = {a[11]: aid for aid, a in accounts.items() if a[10] & _HISTORY}
        self.records: dict[int, list[tuple[int, ...]]] = {aid: [] for aid in by_ts.values()}
        res = conn.exec_driver_sql(
            "SELECT account_timestamp, timestamp, side, debits_pending, debits_posted, credits_pending, "
            "credits_posted FROM ledger_account_balances ORDER BY account_timestamp, timestamp"
        )
        for rows in iter(lambda: res.fetchmany(4096), []):
            for r in rows:
                aid = by_ts.get(int(r[0]))
                if aid is None:
                    rep.problem(f"account {int(r[0])}: recorded balances for an account without HISTORY")
                else:
                    self.records[aid].append(tuple(map(int, r[1:])))
        self.at = dict.fromkeys(self.records, 0)  # next record of each account
        self.running = {aid: [0, 0, 0, 0] for aid in self.records}  # no expiry applied
        self.pending: dict[int, int] = {}  # pending transfer id -> amount (HISTORY accounts' ones)
        self.expired: dict[
            tuple[int, int], list[tuple[int, int]]
        ] = {}  # (account, column) -> (expiry, amount)
        self.released: list[tuple[int, int, int, int]] = []  # (account, column, timestamp, released)
        self.batch_ends = sorted(
            int(r[0]) for r in conn.exec_driver_sql("SELECT timestamp FROM ledger_checkpoints").fetchall()
        )

    def transfer(self, t: tuple[int, ...], state: int | None, expires_at: int) -> None:
        dr, cr = self.running.get(t[1]), self.running.get(t[2])
        if dr is None and cr is None:
            return
        d = dr if dr is not None else [0, 0, 0, 0]
        c = cr if cr is not None else [0, 0, 0, 0]
        amount, flags = t[3], t[11]
        if flags & _PENDING:
            d[0] += amount
            c[2] += amount
            self.pending[t[0]] = amount
            if state == PendingState.EXPIRED:
                for aid, col in ((t[1], 0), (t[2], 2)):
                    if aid in self.running:
                        self.expired.setdefault((aid, col), []).append((expires_at, amount))
        elif flags & (_POST | _VOID):
            held = self.pending.pop(t[4], None)
            if held is None:
                self.rep.problem(f"transfer {t[0]}: resolves a pending transfer the replay did not see")
                held = 0
            d[0] -= held
            c[2] -= held
            if flags & _POST:
                d[1] += amount
                c[3] += amount
        else:
            d[1] += amount
            c[3] += amount
        for side, aid in ((0, t[1]), (1, t[2])):
            recs = self.records.get(aid)
            if recs is None:
                continue
            k = self.at[aid]
            while k < len(recs) and recs[k][0] < t[12]:
                self.rep.problem(f"account {aid}: recorded balances at {recs[k][0]} without its transfer")
                k += 1
            if k < len(recs) and recs[k][0] == t[12]:
                ts, rec_side, dp, dpo, cp, cpo = recs[k]
                run = self.running[aid]
                if rec_side != side or (dpo, cpo) != (run[1], run[3]):
                    self.rep.problem(f"account {aid}: recorded balances at {ts} differ from the replay")
                self.released.append((aid, 0, ts, run[0] - dp))
                self.released.append((aid, 2, ts, run[2] - cp))
                k += 1
            elif k > 0:  # from its first record on, every transfer of the account has one
                self.rep.problem(f"account {aid}: no recorded balances for transfer {t[0]}")
            self.at[aid] = k

    def finish(self) -> None:
        for aid, recs in self.records.items():
            for rec in recs[self.at[aid] :]:
                self.rep.problem(f"account {aid}: recorded balances at {rec[0]} without its transfer")
        sums: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
        for key, items in self.expired.items():
            items.sort()
            total, cum = 0, []
            for _, amount in items:
                total += amount
                cum.append(total)
            sums[key] = ([e for e, _ in items], cum)
        ends = self.batch_ends
        for aid, col, ts, released in self.released:
            instants, cum = sums.get((aid, col), ([], []))
            k = bisect_left(ends, ts)
            earliest = ends[k - 1] + 1 if k else 0  # the batch's first timestamp is >= this
            lo, hi = bisect_right(instants, earliest), bisect_right(instants, ts)
            possible = {cum[j - 1] if j else 0 for j in range(lo, hi + 1)}
            if released not in possible:
                self.rep.problem(
                    f"account {aid}: recorded balances at {ts} differ from the replay "
                    "(pending amounts released by expiries)"
                )


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
        pend: dict[int, int] = {}
        expires: dict[int, int] = {}
        for r in conn.exec_driver_sql("SELECT id, state, expires_at_ns FROM ledger_pending").fetchall():
            pend[d.id_out(r[0])] = int(r[1])
            expires[d.id_out(r[0])] = int(r[2])
        history = _HistoryReplay(conn, accounts, rep)
        balances: dict[int, list[int]] = {aid: [0, 0, 0, 0] for aid in accounts}
        frontier = merkle.Frontier()
        leaf_rows = conn.exec_driver_sql(
            "SELECT first_leaf_index, leaf_hashes FROM ledger_leaves ORDER BY first_leaf_index"
        )
        leaf_iter = _stored_leaves(leaf_rows, rep)
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
            if dr is not None and cr is not None:
                history.transfer(t, pend.get(t[0]), expires.get(t[0], 0))
            h = merkle.leaf_hash(encode_transfer(t))
            stored = next(leaf_iter, None)
            if stored is None or int(stored[0]) != frontier.size:
                rep.problem(f"leaf {frontier.size}: missing from the leaf table")
            elif bytes(stored[1]) != h:
                rep.problem(f"leaf {frontier.size}: stored hash differs from the transfer's encoding")
            frontier.append(h)
        if next(leaf_iter, None) is not None:
            rep.problem("the leaf table holds leaves without a transfer")
        history.finish()
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
