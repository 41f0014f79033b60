"""A tiny, obviously-correct reference model of the ledger's transfer semantics.

Written independently of `ledger.engine`, straight from the rules in specs/ledger.md: plain
dataclass copies, a full deep copy of the state for each linked chain, checks in precedence
order, no performance tricks. The property test compares the engine against it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ledger.types import (
    AMOUNT_MAX,
    BALANCE_MAX,
    ID_MAX,
    TRANSIENT_TRANSFER_STATUSES,
    AccountFlags,
    CreateTransferStatus,
    PendingState,
    Transfer,
    TransferFlags,
)

S = CreateTransferStatus
F = TransferFlags


@dataclass
class MAccount:
    id: int
    ledger: int
    flags: int
    dp: int = 0
    dpo: int = 0
    cp: int = 0
    cpo: int = 0


@dataclass
class MState:
    accounts: dict[int, MAccount] = field(default_factory=dict)
    transfers: dict[int, Transfer] = field(default_factory=dict)  # as stored (resolved fields)
    state: dict[int, PendingState] = field(default_factory=dict)
    expires: dict[int, int] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    last_ts: int = 0
    # HISTORY: (account id, transfer timestamp, side, dp, dpo, cp, cpo) after each created transfer
    balances: list[tuple[int, ...]] = field(default_factory=list)


def _has(flags: int, f: int) -> bool:
    return bool(flags & f)


class Model:
    def __init__(self) -> None:
        self.s = MState()

    def add_account(self, account_id: int, ledger: int, flags: int) -> None:
        self.s.accounts[account_id] = MAccount(account_id, ledger, flags)

    # The batch clock: after every earlier timestamp.
    def create_transfers(self, events: list[Transfer], now: int) -> list[CreateTransferStatus]:
        s = self.s
        base = max(now, s.last_ts + 1)
        self._expire(base)
        out: list[CreateTransferStatus] = []
        i = 0
        n = len(events)
        while i < n:
            # Collect the chain starting at i.
            j = i
            while j < n - 1 and _has(events[j].flags, F.LINKED):
                j += 1
            chain = list(range(i, j + 1))
            open_chain = _has(events[j].flags, F.LINKED)
            saved = copy.deepcopy(s)
            statuses: list[CreateTransferStatus] = []
            failed_at = -1
            for k in chain:
                st = S.LINKED_EVENT_CHAIN_OPEN if open_chain and k == j else self._one(events[k], base + k)
                statuses.append(st)
                if st is S.CREATED:
                    self._record(s.transfers[events[k].id])
                if st is not S.CREATED:
                    failed_at = k
                    break
            if (failed_at >= 0 and len(chain) > 1) or (failed_at >= 0 and open_chain):
                self.s = s = saved
                res = [S.LINKED_EVENT_FAILED] * len(chain)
                res[failed_at - i] = statuses[-1]
                if open_chain:
                    res[-1] = S.LINKED_EVENT_CHAIN_OPEN
                if statuses[-1] in TRANSIENT_TRANSFER_STATUSES:
                    s.failed.add(events[failed_at].id)
                out.extend(res)
            elif failed_at >= 0:
                if statuses[-1] in TRANSIENT_TRANSFER_STATUSES:
                    s.failed.add(events[failed_at].id)
                out.extend(statuses)
            else:
                out.extend(statuses)
            i = j + 1
        if n:
            s.last_ts = base + n - 1
        return out

    def _record(self, t: Transfer) -> None:
        """HISTORY accounts keep their balances after each of their transfers (not after expiries)."""
        for side, aid in ((0, t.debit_account_id), (1, t.credit_account_id)):
            a = self.s.accounts[aid]
            if _has(a.flags, AccountFlags.HISTORY):
                self.s.balances.append((aid, t.timestamp, side, a.dp, a.dpo, a.cp, a.cpo))

    def _expire(self, at: int) -> None:
        s = self.s
        for tid, st in list(s.state.items()):
            if st is PendingState.PENDING and s.expires.get(tid, 0) and s.expires[tid] <= at:
                self._release(s.transfers[tid])
                s.state[tid] = PendingState.EXPIRED

    def _release(self, p: Transfer) -> None:
        dr = self.s.accounts[p.debit_account_id]
        cr = self.s.accounts[p.credit_account_id]
        dr.dp -= p.amount
        cr.cp -= p.amount
        if _has(p.flags, F.CLOSING_DEBIT):
            dr.flags &= ~AccountFlags.CLOSED
        if _has(p.flags, F.CLOSING_CREDIT):
            cr.flags &= ~AccountFlags.CLOSED

    def _exists(self, e: Transfer, t: Transfer) -> CreateTransferStatus:
        if int(e.flags) != int(t.flags):
            return S.EXISTS_WITH_DIFFERENT_FLAGS
        if e.pending_id != t.pending_id:
            return S.EXISTS_WITH_DIFFERENT_PENDING_ID
        if e.timeout != t.timeout:
            return S.EXISTS_WITH_DIFFERENT_TIMEOUT
        resolving = _has(e.flags, F.POST_PENDING_TRANSFER | F.VOID_PENDING_TRANSFER)

        def differs(ev: int, stored: int) -> bool:
            return (ev != 0 and ev != stored) if resolving else ev != stored

        if differs(e.debit_account_id, t.debit_account_id):
            return S.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
        if differs(e.credit_account_id, t.credit_account_id):
            return S.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
        if _has(e.flags, F.BALANCING_DEBIT | F.BALANCING_CREDIT):
            amount_ok = t.amount <= e.amount
        elif _has(e.flags, F.POST_PENDING_TRANSFER):
            pend = self.s.transfers[t.pending_id]
            amount_ok = e.amount == t.amount or (t.amount == pend.amount and e.amount >= t.amount)
        elif _has(e.flags, F.VOID_PENDING_TRANSFER):
            amount_ok = e.amount in (0, t.amount)
        else:
            amount_ok = e.amount == t.amount
        if not amount_ok:
            return S.EXISTS_WITH_DIFFERENT_AMOUNT
        if differs(e.user_data_128, t.user_data_128):
            return S.EXISTS_WITH_DIFFERENT_USER_DATA_128
        if differs(e.user_data_64, t.user_data_64):
            return S.EXISTS_WITH_DIFFERENT_USER_DATA_64
        if differs(e.user_data_32, t.user_data_32):
            return S.EXISTS_WITH_DIFFERENT_USER_DATA_32
        if differs(e.ledger, t.ledger):
            return S.EXISTS_WITH_DIFFERENT_LEDGER
        if differs(e.code, t.code):
            return S.EXISTS_WITH_DIFFERENT_CODE
        return S.EXISTS

    def _one(self, e: Transfer, ts: int) -> CreateTransferStatus:
        s = self.s
        fl = int(e.flags)
        if e.id == 0:
            return S.ID_MUST_NOT_BE_ZERO
        if e.id == ID_MAX:
            return S.ID_MUST_NOT_BE_INT_MAX
        if e.id in s.transfers:
            return self._exists(e, s.transfers[e.id])
        if e.id in s.failed:
            return S.ID_ALREADY_FAILED
        post, void, pending = (
            _has(fl, F.POST_PENDING_TRANSFER),
            _has(fl, F.VOID_PENDING_TRANSFER),
            _has(fl, F.PENDING),
        )
        bal = _has(fl, F.BALANCING_DEBIT | F.BALANCING_CREDIT)
        closing = _has(fl, F.CLOSING_DEBIT | F.CLOSING_CREDIT)
        if (pending and (post or void)) or (post and void) or ((post or void) and (bal or closing)):
            return S.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if post or void:
            return self._resolve(e, ts, post)
        if e.debit_account_id == 0:
            return S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if e.credit_account_id == 0:
            return S.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if e.debit_account_id == e.credit_account_id:
            return S.ACCOUNTS_MUST_BE_DIFFERENT
        if e.pending_id != 0:
            return S.PENDING_ID_MUST_BE_ZERO
        if e.timeout and not pending:
            return S.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if closing and not pending:
            return S.CLOSING_TRANSFER_MUST_BE_PENDING
        if e.ledger == 0:
            return S.LEDGER_MUST_NOT_BE_ZERO
        if e.code == 0:
            return S.CODE_MUST_NOT_BE_ZERO
        dr = s.accounts.get(e.debit_account_id)
        if dr is None:
            return S.DEBIT_ACCOUNT_NOT_FOUND
        cr = s.accounts.get(e.credit_account_id)
        if cr is None:
            return S.CREDIT_ACCOUNT_NOT_FOUND
        if dr.ledger != cr.ledger:
            return S.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if e.ledger != dr.ledger:
            return S.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
        if dr.flags & AccountFlags.CLOSED:
            return S.DEBIT_ACCOUNT_ALREADY_CLOSED
        if cr.flags & AccountFlags.CLOSED:
            return S.CREDIT_ACCOUNT_ALREADY_CLOSED
        amount = e.amount
        if _has(fl, F.BALANCING_DEBIT):
            amount = min(amount, max(0, dr.cpo - dr.dp - dr.dpo))
        if _has(fl, F.BALANCING_CREDIT):
            amount = min(amount, max(0, cr.dpo - cr.cp - cr.cpo))
        if pending and dr.dp + amount > BALANCE_MAX:
            return S.OVERFLOWS_DEBITS_PENDING
        if pending and cr.cp + amount > BALANCE_MAX:
            return S.OVERFLOWS_CREDITS_PENDING
        if not pending and dr.dpo + amount > BALANCE_MAX:
            return S.OVERFLOWS_DEBITS_POSTED
        if not pending and cr.cpo + amount > BALANCE_MAX:
            return S.OVERFLOWS_CREDITS_POSTED
        if dr.dp + dr.dpo + amount > BALANCE_MAX:
            return S.OVERFLOWS_DEBITS
        if cr.cp + cr.cpo + amount > BALANCE_MAX:
            return S.OVERFLOWS_CREDITS
        if e.timeout and ts + e.timeout * 1_000_000_000 > BALANCE_MAX:
            return S.OVERFLOWS_TIMEOUT
        if dr.flags & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS and dr.dp + dr.dpo + amount > dr.cpo:
            return S.EXCEEDS_CREDITS
        if cr.flags & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS and cr.cp + cr.cpo + amount > cr.dpo:
            return S.EXCEEDS_DEBITS
        stored = copy.copy(e)
        stored.amount = amount
        stored.timestamp = ts
        s.transfers[e.id] = stored
        if pending:
            dr.dp += amount
            cr.cp += amount
            s.state[e.id] = PendingState.PENDING
            if e.timeout:
                s.expires[e.id] = ts + e.timeout * 1_000_000_000
            if _has(fl, F.CLOSING_DEBIT):
                dr.flags |= AccountFlags.CLOSED
            if _has(fl, F.CLOSING_CREDIT):
                cr.flags |= AccountFlags.CLOSED
        else:
            dr.dpo += amount
            cr.cpo += amount
        return S.CREATED

    def _resolve(self, e: Transfer, ts: int, post: bool) -> CreateTransferStatus:
        s = self.s
        if e.pending_id == 0:
            return S.PENDING_ID_MUST_NOT_BE_ZERO
        if e.pending_id == e.id:
            return S.PENDING_ID_MUST_BE_DIFFERENT
        if e.timeout:
            return S.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        p = s.transfers.get(e.pending_id)
        if p is None:
            return S.PENDING_TRANSFER_NOT_FOUND
        if not _has(p.flags, F.PENDING):
            return S.PENDING_TRANSFER_NOT_PENDING
        if e.debit_account_id not in (0, p.debit_account_id):
            return S.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if e.credit_account_id not in (0, p.credit_account_id):
            return S.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if e.ledger not in (0, p.ledger):
            return S.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if e.code not in (0, p.code):
            return S.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        if post:
            amount = p.amount if e.amount == AMOUNT_MAX else e.amount
            if amount > p.amount:
                return S.EXCEEDS_PENDING_TRANSFER_AMOUNT
        else:
            if e.amount not in (0, p.amount):
                return S.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
            amount = p.amount
        st = s.state[p.id]
        if st is PendingState.POSTED:
            return S.PENDING_TRANSFER_ALREADY_POSTED
        if st is PendingState.VOIDED:
            return S.PENDING_TRANSFER_ALREADY_VOIDED
        if st is PendingState.EXPIRED or (s.expires.get(p.id, 0) and s.expires[p.id] <= ts):
            return S.PENDING_TRANSFER_EXPIRED
        dr = s.accounts[p.debit_account_id]
        cr = s.accounts[p.credit_account_id]
        if post:
            if dr.flags & AccountFlags.CLOSED and not _has(p.flags, F.CLOSING_DEBIT):
                return S.DEBIT_ACCOUNT_ALREADY_CLOSED
            if cr.flags & AccountFlags.CLOSED and not _has(p.flags, F.CLOSING_CREDIT):
                return S.CREDIT_ACCOUNT_ALREADY_CLOSED
            if dr.dpo + amount > BALANCE_MAX:
                return S.OVERFLOWS_DEBITS_POSTED
            if cr.cpo + amount > BALANCE_MAX:
                return S.OVERFLOWS_CREDITS_POSTED
            dr.dp -= p.amount
            cr.cp -= p.amount
            dr.dpo += amount
            cr.cpo += amount
            s.state[p.id] = PendingState.POSTED
        else:
            self._release(p)
            s.state[p.id] = PendingState.VOIDED
        stored = Transfer(
            id=e.id,
            debit_account_id=p.debit_account_id,
            credit_account_id=p.credit_account_id,
            amount=amount,
            pending_id=p.id,
            user_data_128=e.user_data_128 or p.user_data_128,
            user_data_64=e.user_data_64 or p.user_data_64,
            user_data_32=e.user_data_32 or p.user_data_32,
            timeout=0,
            ledger=p.ledger,
            code=p.code,
            flags=e.flags,
            timestamp=ts,
        )
        s.transfers[e.id] = stored
        return S.CREATED
