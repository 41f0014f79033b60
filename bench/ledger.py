"""Ledger benchmark: durable batched transfers through engine + SQLite vs a naive per-row ORM.

Workload: `--transfers` single-phase transfers between random pairs of `--accounts` accounts, in
batches of `--batch` (default 8190) on an embedded SQLite file (WAL, synchronous=FULL). Every batch
is one durable commit that also appends its Merkle leaves and signs a checkpoint. Transfer ids
are sequential (TigerBeetle recommends time-ordered ids). The transfer objects of a batch are built
before its clock starts; transfers/s is transfers divided by the summed commit-call time.

Baseline: the same kind of transfers through SQLModel with one ORM object per transfer, balances
updated through ORM objects and a session commit per transfer (durable, same pragmas), measured
on `--baseline-transfers` transfers and reported as a rate (no Merkle log, no signatures: the
baseline does strictly less work).

The HTTP figure (single-transfer requests from 64 concurrent clients through the group
committer) is reported as null until the ledger routes exist.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import Field, Session, SQLModel

from identity.sql import open_engine
from ledger import Account, CreateTransferStatus, Ledger, Transfer


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


def run_ledger(path: Path, n_transfers: int, n_accounts: int, batch: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    led = Ledger.open(f"sqlite:///{path}")
    t0 = time.perf_counter()
    for start in range(1, n_accounts + 1, batch):
        accs = [Account(id=i, ledger=1, code=1) for i in range(start, min(start + batch, n_accounts + 1))]
        res = led.create_accounts(accs)
        if any(r.status != 0 for r in res):
            raise SystemExit("account creation failed")
    setup_s = time.perf_counter() - t0
    latencies: list[float] = []
    next_id = 1
    created = 0
    while created < n_transfers:
        size = min(batch, n_transfers - created)
        events = []
        for _ in range(size):
            dr = rng.randint(1, n_accounts)
            cr = rng.randint(1, n_accounts - 1)
            if cr >= dr:
                cr += 1
            events.append(
                Transfer(
                    id=next_id,
                    debit_account_id=dr,
                    credit_account_id=cr,
                    amount=rng.randint(1, 1000),
                    ledger=1,
                    code=1,
                )
            )
            next_id += 1
        t = time.perf_counter()
        results = led.create_transfers(events)
        latencies.append(time.perf_counter() - t)
        bad = sum(1 for r in results if r.status is not CreateTransferStatus.CREATED)
        if bad:
            raise SystemExit(f"{bad} transfers failed")
        created += size
    total = sum(latencies)
    st = led.log_state()
    audit_t = time.perf_counter()
    report = led.audit() if n_transfers <= 200_000 else None
    audit_s = time.perf_counter() - audit_t
    led.close()
    out = {
        "transfers": float(created),
        "seconds": total,
        "transfers_per_s": created / total,
        "p50_batch_ms": _percentile(latencies, 0.50) * 1000,
        "p99_batch_ms": _percentile(latencies, 0.99) * 1000,
        "mean_batch_ms": statistics.fmean(latencies) * 1000,
        "tree_size": float(st.tree_size),
        "account_setup_s": setup_s,
    }
    if report is not None:
        out["audit_ok"] = float(report.ok)
        out["audit_s"] = audit_s
    return out


class OrmAccount(SQLModel, table=True):
    __tablename__ = "bench_orm_accounts"
    id: int = Field(primary_key=True)
    ledger: int
    code: int
    debits_posted: int = 0
    credits_posted: int = 0


class OrmTransfer(SQLModel, table=True):
    __tablename__ = "bench_orm_transfers"
    id: int = Field(primary_key=True)
    debit_account_id: int = Field(index=True)
    credit_account_id: int = Field(index=True)
    amount: int
    ledger: int
    code: int
    timestamp: int


def run_baseline(path: Path, n_transfers: int, n_accounts: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    engine = open_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine, tables=[OrmAccount.__table__, OrmTransfer.__table__])  # type: ignore[list-item]
    with Session(engine) as s:
        for i in range(1, n_accounts + 1):
            s.add(OrmAccount(id=i, ledger=1, code=1))
        s.commit()
    t = time.perf_counter()
    with Session(engine) as s:
        for k in range(1, n_transfers + 1):
            dr = rng.randint(1, n_accounts)
            cr = rng.randint(1, n_accounts - 1)
            if cr >= dr:
                cr += 1
            amount = rng.randint(1, 1000)
            a = s.get(OrmAccount, dr)
            b = s.get(OrmAccount, cr)
            if a is None or b is None or a.ledger != b.ledger:
                raise SystemExit("baseline account missing")
            a.debits_posted += amount
            b.credits_posted += amount
            s.add(OrmTransfer(id=k, debit_account_id=dr, credit_account_id=cr, amount=amount, ledger=1, code=1,
                              timestamp=time.time_ns()))  # fmt: skip
            s.commit()
    elapsed = time.perf_counter() - t
    engine.dispose()
    return {"transfers": float(n_transfers), "seconds": elapsed, "transfers_per_s": n_transfers / elapsed}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench ledger", description=__doc__.splitlines()[0])
    ap.add_argument("--transfers", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=8190)
    ap.add_argument("--baseline-transfers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--dir", type=Path, default=None, help="where to put the database files (default: a temp dir)"
    )
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.transfers, args.accounts, args.baseline_transfers = 30_000, 5_000, 1_000
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=args.dir) as tmp:
        led = run_ledger(Path(tmp) / "ledger.db", args.transfers, args.accounts, args.batch, args.seed)
        base = run_baseline(
            Path(tmp) / "baseline.db", args.baseline_transfers, min(args.accounts, 100_000), args.seed
        )
    ratio = led["transfers_per_s"] / base["transfers_per_s"]
    print(
        f"ledger: {int(led['transfers']):,} transfers over {args.accounts:,} accounts in batches of {args.batch}"
        f" (SQLite WAL, synchronous=FULL, Merkle leaves + signed checkpoint per batch)"
    )
    print(
        f"  {led['transfers_per_s']:,.0f} transfers/s; batch p50 {led['p50_batch_ms']:.1f} ms,"
        f" p99 {led['p99_batch_ms']:.1f} ms; tree size {int(led['tree_size']):,}"
    )
    if "audit_ok" in led:
        print(f"  audit ok={bool(led['audit_ok'])} in {led['audit_s']:.1f} s")
    print(
        f"baseline (SQLModel ORM, one commit per transfer): {int(base['transfers']):,} transfers,"
        f" {base['transfers_per_s']:,.0f} transfers/s"
    )
    print(f"ratio: {ratio:.1f}x")
    print("http: not measured yet (ledger routes pending)")
    print(
        json.dumps(
            {
                "area": "ledger",
                "transfers_per_s": round(led["transfers_per_s"]),
                "baseline_ratio": round(ratio, 1),
                "http_requests_per_s": None,
                "p50_batch_ms": round(led["p50_batch_ms"], 2),
                "p99_batch_ms": round(led["p99_batch_ms"], 2),
                "transfers": int(led["transfers"]),
                "baseline_transfers_per_s": round(base["transfers_per_s"]),
            }
        )
    )
    return 0
