"""An in-memory ledger over the pure engine: applies each outcome to plain dicts (tests only)."""

from __future__ import annotations

from collections.abc import Sequence

from ledger import engine as eng
from ledger.types import (
    Account,
    CreateAccountResult,
    CreateAccountStatus,
    CreateTransferResult,
    CreateTransferStatus,
    PendingState,
    Transfer,
)


class MemLedger:
    def __init__(self, now_ns: int = 1_000_000_000) -> None:
        self.accounts: dict[int, eng.AccountRow] = {}
        self.transfers: dict[int, eng.TransferRow] = {}
        self.pending: dict[int, eng.PendingRow] = {}
        self.failed: dict[int, int] = {}
        self.last_ts = 0
        self.now = now_ns
        self.leaves: list[eng.TransferRow] = []
        self.balances: list[eng.BalanceRow] = []  # HISTORY records, in order

    def create_accounts(self, events: Sequence[Account]) -> list[CreateAccountResult]:
        out = eng.create_accounts(eng.AccountSnapshot(dict(self.accounts), self.last_ts), events, self.now)
        for row in out.created:
            self.accounts[row[0]] = row
        self.last_ts = out.last_timestamp
        return out.results

    def create_transfers(self, events: Sequence[Transfer]) -> list[CreateTransferResult]:
        base = eng.batch_timestamp(self.now, self.last_ts)
        due = [
            self.transfers[i]
            for i, p in self.pending.items()
            if p[1] == PendingState.PENDING and p[2] and p[2] <= base
        ]
        due.sort(key=lambda r: (self.pending[r[0]][2], r[12]))
        snap = eng.TransferSnapshot(
            self.accounts, self.transfers, self.pending, self.failed, due, self.last_ts
        )
        out = eng.create_transfers(snap, events, self.now)
        self.accounts.update(out.accounts)
        for row in out.created:
            self.transfers[row[0]] = row
            self.leaves.append(row)
        self.pending.update(out.pending)
        self.balances.extend(out.balances)
        for tid, status, _ts in out.failed:
            self.failed[tid] = status
        self.last_ts = out.last_timestamp
        return out.results

    def account(self, account_id: int) -> Account:
        return Account.from_row(self.accounts[account_id])

    def transfer(self, transfer_id: int) -> Transfer:
        return Transfer.from_row(self.transfers[transfer_id])

    def statuses(self, events: Sequence[Transfer]) -> list[CreateTransferStatus]:
        return [r.status for r in self.create_transfers(events)]

    def account_statuses(self, events: Sequence[Account]) -> list[CreateAccountStatus]:
        return [r.status for r in self.create_accounts(events)]
