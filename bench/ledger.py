"""Ledger benchmark: durable batched transfers through engine + SQLite vs a naive per-row ORM.

Workload: `--transfers` single-phase transfers between random pairs of `--accounts` accounts, in
batches of `--batch` (default 8190) on an embedded SQLite file (WAL, synchronous=FULL). Every batch
is one durable commit that also appends its Merkle leaves and signs a checkpoint. Transfer ids
are sequential (TigerBeetle recommends time-ordered ids). The transfer objects of a batch are built
before its clock starts; transfers/s is transfers divided by the summed commit-call time.

Baseline: the same workload (the first `--baseline-transfers` transfers of the same seeded
sequence, over the same accounts) through a naive SQLModel ORM: one ORM object per transfer,
balances updated through ORM account objects, default session settings, the same SQLite pragmas
(WAL, synchronous=FULL) and one session and commit per batch of `--batch` transfers, as the
ledger commits. It does strictly less work (no Merkle log, no signatures, no idempotency checks).
The same ORM code committing every transfer on its own is reported beside it.

HTTP: the service (uvicorn with `--http-workers` worker processes, by default one per core up to
two as the README's `civitas serve --workers 2`; same SQLite settings) serves single-transfer
`POST /ledger/transfers` requests from `--http-clients` (64) concurrent keep-alive clients, each a
citizen paying a shop from their own account with their own bearer token; every request is
authenticated, ownership-checked and committed durably through the group committer (concurrent
requests share a batch). Reported as requests/s over `--http-requests` requests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
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
    cpu_s = 0.0
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
        c = time.process_time()
        results = led.create_transfers(events)
        latencies.append(time.perf_counter() - t)
        cpu_s += time.process_time() - c
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
        "cpu_s": cpu_s,
        "transfers_per_cpu_s": created / cpu_s if cpu_s else 0.0,
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


def run_baseline(path: Path, n_transfers: int, n_accounts: int, batch: int, seed: int) -> dict[str, float]:
    """The ledger's workload through a naive per-row SQLModel ORM, one commit per `batch` transfers."""
    rng = random.Random(seed)
    engine = open_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine, tables=[OrmAccount.__table__, OrmTransfer.__table__])  # type: ignore[attr-defined]
    with Session(engine) as s:
        for i in range(1, n_accounts + 1):
            s.add(OrmAccount(id=i, ledger=1, code=1))
        s.commit()
    seconds = 0.0
    k = 0
    while k < n_transfers:
        size = min(batch, n_transfers - k)
        # The same draws as run_ledger, made before the clock starts as there.
        draws = []
        for _ in range(size):
            dr = rng.randint(1, n_accounts)
            cr = rng.randint(1, n_accounts - 1)
            if cr >= dr:
                cr += 1
            draws.append((dr, cr, rng.randint(1, 1000)))
        t = time.perf_counter()
        with Session(engine) as s:
            for dr, cr, amount in draws:
                k += 1
                a = s.get(OrmAccount, dr)
                b = s.get(OrmAccount, cr)
                if a is None or b is None or a.ledger != b.ledger:
                    raise SystemExit("baseline account missing")
                a.debits_posted += amount
                b.credits_posted += amount
                s.add(OrmTransfer(id=k, debit_account_id=dr, credit_account_id=cr, amount=amount, ledger=1,
                                  code=1, timestamp=time.time_ns()))  # fmt: skip
                if batch == 1:
                    s.commit()
            s.commit()
        seconds += time.perf_counter() - t
    engine.dispose()
    return {"transfers": float(n_transfers), "seconds": seconds, "transfers_per_s": n_transfers / seconds}


_SERVER = """
import os, sys, uvicorn
from civitas.app import create_app
from civitas.settings import Settings
data_dir, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
public_url = "http://127.0.0.1:" + sys.argv[2]
settings = Settings(data_dir=data_dir, public_url=public_url)
app = create_app(settings)  # migrates and creates the keys once, before any worker starts
opts = dict(host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_keep_alive=120)
if workers == 1:
    uvicorn.run(app, **opts)
else:
    os.environ.update(CIVITAS_DATA_DIR=data_dir, CIVITAS_PUBLIC_URL=public_url)
    uvicorn.run("civitas.app:app_from_env", factory=True, workers=workers, **opts)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_WRK_LUA = """
local citizens = {%s}
local n, bad = 0, 0
request = function()
  n = n + 1
  local c = citizens[(n %% #citizens) + 1]
  local body = '{"transfers":[{"id":"' .. (%d + n) .. '","debit_account_id":"' .. c[2] ..
    '","credit_account_id":"2","amount":"1","ledger":1,"code":1}]}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = c[1]}, body)
end
response = function(status, headers, body)
  if status ~= 200 or not (string.find(body, '"CREATED"') or string.find(body, '"EXISTS"')) then
    bad = bad + 1
  end
end
done = function(summary, latency, requests)
  io.write("bad_responses: " .. bad .. "\\n")
end
"""


def _wrk(
    wrk: str,
    url: str,
    n_clients: int,
    seconds: int,
    citizens: list[tuple[dict[str, str], str]] | None,
    server_cpu_s: Callable[[], float],
) -> dict[str, float]:
    """Drive `url` with wrk (one thread, `n_clients` keep-alive connections): POSTs a fresh
    single transfer per request from a rotating citizen when `citizens` is given, else GETs."""
    import re
    import subprocess

    cmd = [wrk, "-t1", f"-c{n_clients}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        if citizens is not None:
            rows = ",".join(f'{{"{h["Authorization"]}","{acc}"}}' for h, acc in citizens)
            f.write(_WRK_LUA % (rows, 50_000_000))
        script = f.name
    if citizens is not None:
        cmd += ["-s", script]
    try:
        cpu0 = server_cpu_s()
        text = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
        cpu = server_cpu_s() - cpu0
    finally:
        Path(script).unlink()

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m is None:
            return 0.0
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    done = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"bad_responses: (\d+)", text)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if (bad and int(bad.group(1))) or errors:
        raise SystemExit(f"wrk: failed HTTP requests\n{text}")
    return {
        "requests": float(done),
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "server_cpu_ms_per_request": cpu / done * 1000 if done else 0.0,
    }


def run_http(
    data_dir: Path, n_requests: int, n_clients: int, *, use_wrk: bool = True, workers: int = 1
) -> dict[str, float]:
    import asyncio
    import shutil
    import subprocess
    import sys
    import uuid

    import httpx

    from civitas.auth import sign_jwt
    from civitas.clients import add_client
    from civitas.db import create_engine
    from civitas.keys import KeyStore
    from civitas.settings import Settings

    wrk = shutil.which("wrk") if use_wrk else None
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(data_dir), str(port), str(workers)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/ledger/log-key", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the HTTP server did not start")
            time.sleep(0.2)
        settings = Settings(data_dir=data_dir, public_url=base)
        keys = KeyStore.open(settings.data_dir, None)
        engine = create_engine(settings)
        admin_client, _secret = add_client(engine, "bench operator", "ledger:read ledger:write ledger:admin")
        engine.dispose()

        def token(sub: str, client_id: str, scope: str) -> dict[str, str]:
            now = int(time.time())
            claims = {"iss": settings.issuer, "sub": sub, "aud": settings.api_audience, "client_id": client_id,
                      "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex, "scope": scope}  # fmt: skip
            return {"Authorization": "Bearer " + sign_jwt(keys, claims, typ="at+jwt")}

        admin = token(admin_client.client_id, admin_client.client_id, "ledger:read ledger:write ledger:admin")
        with httpx.Client(base_url=base, timeout=60) as c:
            for acc_id in ("1", "2"):
                c.post(
                    "/ledger/accounts", json={"id": acc_id, "owner": "bench"}, headers=admin
                ).raise_for_status()
            citizens = []
            funding = []
            for i in range(n_clients):
                h = token(f"nym-bench-{i}", "wallet", "ledger:read ledger:write")
                acc = (
                    c.post("/ledger/accounts", json={}, headers=h).raise_for_status().json()["account"]["id"]
                )
                citizens.append((h, acc))
                funding.append({"id": str(10_000_000 + i), "debit_account_id": "1", "credit_account_id": acc,
                                "amount": str(10**12), "ledger": 1, "code": 1})  # fmt: skip
            c.post("/ledger/transfers", json={"transfers": funding}, headers=admin).raise_for_status()

        per_client = max(1, n_requests // n_clients)

        def server_cpu_s() -> float:
            """User + system CPU seconds of the server process and its workers so far (Linux /proc;
            0 elsewhere)."""

            def tree(pid: int) -> float:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                except OSError:
                    return 0.0
                own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                return own + sum(tree(int(k)) for k in kids)

            return tree(proc.pid)

        async def drive(
            request: Callable[[httpx.AsyncClient, int, int], Awaitable[bool]],
        ) -> dict[str, float]:
            latencies: list[float] = []
            bad = 0

            async def one_client(k: int, ac: httpx.AsyncClient) -> None:
                nonlocal bad
                for j in range(per_client):
                    t = time.perf_counter()
                    for attempt in range(3):  # ids are idempotent: a retry after a dropped connection is safe
                        try:
                            ok = await request(ac, k, j)
                            break
                        except httpx.TransportError:
                            if attempt == 2:
                                raise
                    latencies.append(time.perf_counter() - t)
                    bad += not ok

            limits = httpx.Limits(max_connections=n_clients, max_keepalive_connections=n_clients)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as ac:
                cpu0, t = server_cpu_s(), time.perf_counter()
                await asyncio.gather(*(one_client(k, ac) for k in range(n_clients)))
                elapsed, cpu = time.perf_counter() - t, server_cpu_s() - cpu0
            if bad:
                raise SystemExit(f"{bad} HTTP requests failed")
            done = per_client * n_clients
            return {
                "requests": float(done),
                "requests_per_s": done / elapsed,
                "p50_ms": _percentile(latencies, 0.5) * 1000,
                "p99_ms": _percentile(latencies, 0.99) * 1000,
                "server_cpu_ms_per_request": cpu / done * 1000,
            }

        async def healthz(ac: httpx.AsyncClient, k: int, j: int) -> bool:
            return (await ac.get("/healthz")).status_code == 200

        async def transfer(ac: httpx.AsyncClient, k: int, j: int) -> bool:
            h, acc = citizens[k]
            body = {"transfers": [{"id": str(20_000_000 + k * per_client + j), "debit_account_id": acc,
                                   "credit_account_id": "2", "amount": "1", "ledger": 1, "code": 1}]}  # fmt: skip
            r = await ac.post("/ledger/transfers", json=body, headers=h)
            return r.status_code == 200 and r.json()["results"][0]["status"] in ("CREATED", "EXISTS")

        if wrk is not None:
            wrk_seconds = max(3, min(30, n_requests // 500))
            ceiling = _wrk(wrk, base + "/healthz", n_clients, wrk_seconds, None, server_cpu_s)
            out = _wrk(wrk, base + "/ledger/transfers", n_clients, wrk_seconds, citizens, server_cpu_s)
        else:
            # The same load generator on a trivial route first: the ceiling of this machine and client.
            ceiling = asyncio.run(drive(healthz))
            out = asyncio.run(drive(transfer))
        out["ceiling_requests_per_s"] = ceiling["requests_per_s"]
        out["ceiling_server_cpu_ms_per_request"] = ceiling["server_cpu_ms_per_request"]
        out["wrk"] = float(wrk is not None)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench ledger", description=__doc__.splitlines()[0])
    ap.add_argument("--transfers", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=8190)
    ap.add_argument(
        "--baseline-transfers",
        type=int,
        default=None,
        help="transfers the baseline runs (default: 3 batches)",
    )
    ap.add_argument("--per-transfer-baseline-transfers", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--dir", type=Path, default=None, help="where to put the database files (default: a temp dir)"
    )
    ap.add_argument("--http-requests", type=int, default=10_000)
    ap.add_argument("--http-clients", type=int, default=64)
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    ap.add_argument(
        "--http-workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="uvicorn worker processes (default: one per core, at most 2)",
    )
    ap.add_argument(
        "--no-wrk",
        action="store_true",
        help="drive HTTP with the built-in httpx client even if wrk is installed",
    )
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.transfers, args.accounts, args.baseline_transfers = 30_000, 5_000, 1_000
        args.per_transfer_baseline_transfers = 200
        args.http_requests = 640
    if args.baseline_transfers is None:
        args.baseline_transfers = 3 * args.batch
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=args.dir) as tmp:
        led = run_ledger(Path(tmp) / "ledger.db", args.transfers, args.accounts, args.batch, args.seed)
        print(
            f"ledger: {int(led['transfers']):,} transfers over {args.accounts:,} accounts in batches of {args.batch}"
            f" (SQLite WAL, synchronous=FULL, Merkle leaves + signed checkpoint per batch)"
        )
        print(
            f"  {led['transfers_per_s']:,.0f} transfers/s wall ({led['transfers_per_cpu_s']:,.0f} per CPU-second,"
            f" {led['cpu_s'] / led['transfers'] * 1e6:.1f} µs CPU per transfer,"
            f" {led['cpu_s']:.1f} s CPU in {led['seconds']:.1f} s); batch p50 {led['p50_batch_ms']:.1f} ms,"
            f" p99 {led['p99_batch_ms']:.1f} ms; tree size {int(led['tree_size']):,}",
            flush=True,
        )
        if "audit_ok" in led:
            print(f"  audit ok={bool(led['audit_ok'])} in {led['audit_s']:.1f} s")
        base = run_baseline(
            Path(tmp) / "baseline.db", args.baseline_transfers, args.accounts, args.batch, args.seed
        )
        ratio = led["transfers_per_s"] / base["transfers_per_s"]
        print(
            f"baseline (naive SQLModel ORM, per-row objects, one commit per batch of {args.batch}):"
            f" {int(base['transfers']):,} transfers, {base['transfers_per_s']:,.0f} transfers/s"
        )
        single = run_baseline(
            Path(tmp) / "baseline-single.db",
            args.per_transfer_baseline_transfers,
            args.accounts,
            1,
            args.seed,
        )
        single_ratio = led["transfers_per_s"] / single["transfers_per_s"]
        print(
            f"  the same ORM code committing each transfer: {int(single['transfers']):,} transfers,"
            f" {single['transfers_per_s']:,.0f} transfers/s"
        )
        print(f"ratio: {ratio:.1f}x (vs one commit per transfer: {single_ratio:.1f}x)", flush=True)
        http = (
            None
            if args.no_http
            else run_http(
                Path(tmp) / "http",
                args.http_requests,
                args.http_clients,
                use_wrk=not args.no_wrk,
                workers=args.http_workers,
            )
        )
    if http is not None:
        print(
            f"http: {int(http['requests']):,} single-transfer requests from {args.http_clients} concurrent clients"
            f" to {args.http_workers} worker process(es):"
            f" {http['requests_per_s']:,.0f} requests/s (p50 {http['p50_ms']:.1f} ms, p99 {http['p99_ms']:.1f} ms;"
            f" server CPU {http['server_cpu_ms_per_request']:.2f} ms/request)"
        )
        print(
            f"  load generator: {'wrk' if http['wrk'] else 'httpx.AsyncClient'} ({args.http_clients} keep-alive connections);"
            f" ceiling: GET /healthz (no auth, no database) with the same client: {http['ceiling_requests_per_s']:,.0f}"
            f" requests/s (server CPU {http['ceiling_server_cpu_ms_per_request']:.2f} ms/request);"
            f" transfers reach {http['requests_per_s'] / http['ceiling_requests_per_s']:.0%} of it"
        )
    print(
        json.dumps(
            {
                "area": "ledger",
                "transfers_per_s": round(led["transfers_per_s"]),
                "baseline_ratio": round(ratio, 1),
                "http_requests_per_s": round(http["requests_per_s"]) if http else None,
                "http_ceiling_requests_per_s": round(http["ceiling_requests_per_s"]) if http else None,
                "http_workers": args.http_workers if http else None,
                "http_p50_ms": round(http["p50_ms"], 2) if http else None,
                "http_p99_ms": round(http["p99_ms"], 2) if http else None,
                "http_server_cpu_ms_per_request": round(http["server_cpu_ms_per_request"], 3)
                if http
                else None,
                "transfers_per_cpu_s": round(led["transfers_per_cpu_s"]),
                "cpu_us_per_transfer": round(led["cpu_s"] / led["transfers"] * 1e6, 2),
                "cpu_s": round(led["cpu_s"], 2),
                "p50_batch_ms": round(led["p50_batch_ms"], 2),
                "p99_batch_ms": round(led["p99_batch_ms"], 2),
                "transfers": int(led["transfers"]),
                "baseline_transfers_per_s": round(base["transfers_per_s"]),
                "per_transfer_commit_baseline_transfers_per_s": round(single["transfers_per_s"]),
                "per_transfer_commit_baseline_ratio": round(single_ratio, 1),
            }
        )
    )
    return 0
