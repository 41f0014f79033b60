"""Micro-rewards for accepted readings, paid as ledger transfers exactly once.

Each (batch, category) with accepted readings owes ``accepted x rate`` micro-units, debited from
the city's incentive account and credited to the reward account of the device's owner. The
transfer id is derived from (batch id, category, attempt), so paying again after a crash or a
retried batch finds the transfer EXISTS and never pays twice. Under TigerBeetle semantics a
failed id is burnt (a retry gives ID_ALREADY_FAILED); only then does the attempt counter move
on, so at most one id per (batch, category) can ever succeed.

Rewards stop at withdrawal because only readings accepted under an active consent are owed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from consent import tables as t
from consent.sqlutil import chunks
from ledger.types import BATCH_MAX, CreateTransferResult, CreateTransferStatus, Transfer

__all__ = [
    "REWARD_CODE",
    "Owed",
    "PaymentReport",
    "RewardConfig",
    "RewardPayer",
    "TransferSink",
    "reward_transfer_id",
]

REWARD_CODE = 7001  # ledger `code` of sensor-reward transfers
_ID_DOMAIN = b"civitas/consent/reward/v1\x00"
_PAID_STATUSES = frozenset({CreateTransferStatus.CREATED, CreateTransferStatus.EXISTS})
STATE_NONE = "none"
STATE_PENDING = "pending"
STATE_PAID = "paid"


class TransferSink(Protocol):
    """The part of `ledger.Ledger` rewards need."""

    def create_transfers(self, transfers: Sequence[Transfer]) -> Sequence[CreateTransferResult]: ...


def reward_transfer_id(batch_id: int, category: str, attempt: int = 0) -> int:
    """Deterministic 128-bit transfer id (never 0 or 2^128-1) for one (batch, category, attempt)."""
    msg = _ID_DOMAIN + batch_id.to_bytes(16, "big") + category.encode() + b"\x00" + attempt.to_bytes(4, "big")
    value = int.from_bytes(hashlib.sha256(msg).digest()[:16], "big")
    return value if 0 < value < (1 << 128) - 1 else 1


@dataclass(frozen=True)
class RewardConfig:
    """Where rewards come from and how much each accepted reading of a category earns."""

    incentive_account_id: int
    rates_micros: Mapping[str, int] = field(default_factory=dict)
    ledger: int = 1
    code: int = REWARD_CODE

    def __post_init__(self) -> None:
        for category, rate in self.rates_micros.items():
            if not 0 <= rate <= 1_000_000_000:
                raise ValueError(f"reward rate of {category} out of range")

    def amount(self, category: str, accepted: int) -> int:
        return self.rates_micros.get(category, 0) * accepted


@dataclass
class PaymentReport:
    paid: int = 0  # transfers created or found existing
    paid_micros: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # status name -> count (retried later)


@dataclass(frozen=True)
class Owed:
    """One reward owed: a (batch, category) row of `consent_batch_counts` and where to pay it."""

    batch_id: int
    category: str
    accepted: int
    amount: int
    account: int
    attempt: int = 0


class RewardPayer:
    """Pays owed rewards through a ledger; safe to call any number of times, from any thread.

    After the ledger answers, the rows are marked paid (or moved to their next attempt when the
    id failed for good). Marks are queued and written by the next ingest transaction
    (`flush_marks`) or by the sweeper (`pay`): a mark lost in a crash only means the sweeper
    sends the same transfer again and the ledger answers EXISTS.
    """

    def __init__(self, engine: sa.Engine, sink: TransferSink, config: RewardConfig) -> None:
        self.engine = engine
        self.sink = sink
        self.config = config
        self._lock = threading.Lock()
        self._paid: list[Owed] = []
        self._burnt: list[Owed] = []

    def pay(self, batch_ids: Sequence[int] | None = None) -> PaymentReport:
        """Sweep: pay every pending reward (of the given batches, or all) and write the marks."""
        with self.engine.begin() as conn:
            self.flush_marks(conn)
        report = self.pay_owed(self._pending(batch_ids))
        with self.engine.begin() as conn:
            self.flush_marks(conn)
        return report

    def pay_owed(self, owed: Sequence[Owed]) -> PaymentReport:
        """Send the transfers for these rewards now; their marks are queued."""
        report = PaymentReport()
        for part in chunks(owed, BATCH_MAX):
            transfers = [
                Transfer(
                    id=reward_transfer_id(o.batch_id, o.category, o.attempt),
                    debit_account_id=self.config.incentive_account_id,
                    credit_account_id=o.account,
                    amount=o.amount,
                    user_data_128=o.batch_id,
                    user_data_64=o.accepted,
                    ledger=self.config.ledger,
                    code=self.config.code,
                )
                for o in part
            ]
            results = self.sink.create_transfers(transfers)
            if len(results) != len(transfers):
                raise RuntimeError("ledger returned a result count that does not match the batch")
            paid: list[Owed] = []
            burnt: list[Owed] = []
            for o, result in zip(part, results, strict=True):
                if result.status in _PAID_STATUSES:
                    paid.append(o)
                    report.paid += 1
                    report.paid_micros += o.amount
                else:
                    burnt.append(o)
                    name = result.status.name
                    report.failed[name] = report.failed.get(name, 0) + 1
            with self._lock:
                self._paid.extend(paid)
                self._burnt.extend(burnt)
        return report

    def _pending(self, batch_ids: Sequence[int] | None) -> list[Owed]:
        bc, dev, b = t.batch_counts, t.devices, t.batches
        stmt = (
            sa.select(
                bc.c.batch_id,
                bc.c.category,
                bc.c.accepted,
                bc.c.reward_micros,
                bc.c.reward_attempt,
                dev.c.reward_account_id,
            )
            .join(b, b.c.batch_id == bc.c.batch_id)
            .join(dev, dev.c.device_id == b.c.device_id)
            .where(bc.c.reward_state == STATE_PENDING, dev.c.reward_account_id.is_not(None))
            .order_by(bc.c.batch_id, bc.c.category)
        )
        rows: list[Any] = []
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            if batch_ids is None:
                rows.extend(conn.execute(stmt.limit(100_000)))
            else:
                for part in chunks(list(batch_ids)):
                    rows.extend(conn.execute(stmt.where(bc.c.batch_id.in_(part))))
        return [
            Owed(r.batch_id, r.category, r.accepted, r.reward_micros, r.reward_account_id, r.reward_attempt)
            for r in rows
        ]

    def flush_marks(self, conn: sa.Connection) -> None:
        """Write queued marks inside the caller's transaction."""
        with self._lock:
            paid, burnt = self._paid, self._burnt
            self._paid, self._burnt = [], []
        if not paid and not burnt:
            return
        bc = t.batch_counts
        key = (
            bc.c.batch_id == sa.bindparam("b"),
            bc.c.category == sa.bindparam("c"),
            bc.c.reward_attempt == sa.bindparam("a"),
            bc.c.reward_state == STATE_PENDING,
        )
        try:
            if paid:
                conn.execute(
                    sa.update(bc).where(*key).values(reward_state=STATE_PAID),
                    [{"b": o.batch_id, "c": o.category, "a": o.attempt} for o in paid],
                )
            if burnt:
                # the id failed for good; the next attempt uses a fresh id
                conn.execute(
                    sa.update(bc).where(*key).values(reward_attempt=sa.bindparam("a2")),
                    [{"b": o.batch_id, "c": o.category, "a": o.attempt, "a2": o.attempt + 1} for o in burnt],
                )
        except BaseException:
            with self._lock:  # not written: keep them for the next transaction
                self._paid[:0] = paid
                self._burnt[:0] = burnt
            raise
