"""Ledger phases: the city's accounts, citizens' pseudonymous accounts and EV allowances, two-phase
micro-tolls, rewards reconciled with the ledger, witnesses cosigning checkpoints, the audit."""

from __future__ import annotations

import threading
from typing import Any

from nacl.signing import SigningKey

from civitas.demo.clock import HOUR_NS
from civitas.demo.runner import DemoContext, DemoError
from civitas.demo.state import (
    NS,
    ApiError,
    CitizenState,
    b64u,
    citizens_of,
    clients_of,
    expect_json,
    seconds_of,
    sign_in,
    transfer_id,
)
from civitas.demo.summary import PhaseFigures

__all__ = [
    "audit_ledger",
    "open_accounts",
    "open_city_accounts",
    "settle_rewards",
    "tolls_evening",
    "tolls_morning",
    "witness_night",
    "witness_noon",
]


CITY_LEDGER = 1
CITY_ACCOUNT_CODE = 10
FUND_CODE = 100
INCENTIVE_BUDGET_PER_CITIZEN_MICROS = 5_000_000
TOP_UP_CODE = 101
EV_TOP_UP_MICROS = 10_000_000  # the city's welcome credit for toll-ring drivers
EV_ALLOWANCE_MICROS = 6_000_000  # per day, delegated by the owner to the car's key
LEDGER_BATCH_MAX = 8_190


def open_city_accounts(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The operator opens the city's treasury, incentive and toll accounts and funds the incentive
    budget that pays the citizens' micro-rewards (`POST /ledger/accounts`, `POST /ledger/transfers`)."""
    from civitas.demo.server import INCENTIVE_ACCOUNT_ID, TOLL_ACCOUNT_ID, TREASURY_ACCOUNT_ID

    clients = clients_of(ctx)
    clients.register("treasury", "ledger:admin ledger:write ledger:read")
    from ledger import AccountFlags

    dmnec = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)  # the incentive budget cannot be overspent
    accounts = ((TREASURY_ACCOUNT_ID, 0), (INCENTIVE_ACCOUNT_ID, dmnec), (TOLL_ACCOUNT_ID, 0))
    for account_id, flags in accounts:
        expect_json(
            ctx.http.post(
                "/ledger/accounts",
                json={
                    "id": str(account_id),
                    "ledger": CITY_LEDGER,
                    "code": CITY_ACCOUNT_CODE,
                    "flags": flags,
                },
                headers=clients.headers("treasury"),
            ),
            "open city account",
        )
    budget = INCENTIVE_BUDGET_PER_CITIZEN_MICROS * len(ctx.city.citizens)
    body = expect_json(
        ctx.http.post(
            "/ledger/transfers",
            json={
                "transfers": [
                    {
                        "id": str(transfer_id("fund-incentives")),
                        "debit_account_id": str(TREASURY_ACCOUNT_ID),
                        "credit_account_id": str(INCENTIVE_ACCOUNT_ID),
                        "amount": str(budget),
                        "ledger": CITY_LEDGER,
                        "code": FUND_CODE,
                    }
                ]
            },
            headers=clients.headers("treasury"),
        ),
        "fund incentives",
    )
    status = body["results"][0]["status"]
    if status != "CREATED":
        raise ApiError(f"funding the incentive budget: {status}")
    fig.set("city_accounts", len(accounts))
    fig.set("incentive_budget_micros", budget)
    ctx.state["ledger_ready"] = True


def open_accounts(ctx: DemoContext, fig: PhaseFigures) -> None:
    """Every citizen signs in to the ledger and opens their one pseudonymous account; EV owners
    delegate a daily toll allowance to their car's key; the city tops up EV owners' accounts."""
    from civitas.demo.server import TREASURY_ACCOUNT_ID

    devices_keys: dict[int, SigningKey] = ctx.state.setdefault("ev_keys", {})
    counts = {"accounts": 0, "allowances": 0, "sign_ins": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        c = state.citizen
        headers = sign_in(ctx, state, "ledger", "ledger:read ledger:write")
        with lock:
            counts["sign_ins"] += 1
        body = expect_json(ctx.http.post("/ledger/accounts", json={}, headers=headers), "open account")
        state.account_id = int(body["account"]["id"])
        with lock:
            counts["accounts"] += body["status"] == "CREATED"
        if not c.has_ev:
            return
        key = SigningKey.generate()
        allowance_id = transfer_id("allowance", c.index)
        expect_json(
            ctx.http.post(
                "/ledger/allowances",
                json={
                    "id": str(allowance_id),
                    "account_id": str(state.account_id),
                    "device_public_key": b64u(bytes(key.verify_key)),
                    "cap_micros": str(EV_ALLOWANCE_MICROS),
                    "period_s": 86_400,
                    "expires_at_ns": str(ctx.clock.at(30 * 24 * HOUR_NS)),
                },
                headers=headers,
            ),
            "delegate allowance",
        )
        state.allowance_id = allowance_id
        with lock:
            devices_keys[c.index] = key
            counts["allowances"] += 1

    states = citizens_of(ctx)
    ctx.map("ledger accounts (sign-in)", [s for s in states if s.wallet is not None], one)
    top_ups = [
        {
            "id": str(transfer_id("top-up", s.citizen.index)),
            "debit_account_id": str(TREASURY_ACCOUNT_ID),
            "credit_account_id": str(s.account_id),
            "amount": str(EV_TOP_UP_MICROS),
            "ledger": CITY_LEDGER,
            "code": TOP_UP_CODE,
        }
        for s in states
        if s.allowance_id is not None and s.account_id is not None
    ]
    created = _batch_transfers(ctx, top_ups, "top-ups")
    fig.set("sign_ins", counts["sign_ins"])
    fig.set("accounts_opened", counts["accounts"])
    fig.set("allowances_delegated", counts["allowances"])
    fig.set("top_ups", created)
    fig.set("top_ups_micros", created * EV_TOP_UP_MICROS)


def _batch_transfers(ctx: DemoContext, transfers: list[dict[str, Any]], step: str) -> int:
    """Operator transfers in batches of at most 8,190; returns how many were created."""
    clients = clients_of(ctx)
    created = 0
    for i in range(0, len(transfers), LEDGER_BATCH_MAX):
        part = transfers[i : i + LEDGER_BATCH_MAX]
        body = expect_json(
            ctx.http.post("/ledger/transfers", json={"transfers": part}, headers=clients.headers("treasury")),
            step,
        )
        bad = [r["status"] for r in body["results"] if r["status"] != "CREATED"]
        if bad:
            raise ApiError(f"{step}: {len(bad)} refused ({bad[0]})")
        created += len(part)
    return created


def _tolls(ctx: DemoContext, fig: PhaseFigures, trip_index: int, label: str) -> None:
    """Each EV entering the toll ring signs a pending payment (a hold) from its allowance
    (`POST /ledger/allowances/payments`); on exit the toll operator posts the actual amount or voids
    the hold of an abandoned trip (`POST /ledger/allowances/reservations/{id}/post|void`)."""
    from civitas.demo.server import TOLL_ACCOUNT_ID
    from ledger.allowances import FLAG_PENDING, PaymentRequest

    clients = clients_of(ctx)
    if "ev-payments" not in clients.credentials:
        clients.register("ev-payments", "ledger:pay")
    ev_keys: dict[int, SigningKey] = ctx.state.get("ev_keys", {})
    work = []
    for state in citizens_of(ctx):
        if state.allowance_id is None:
            continue
        for trip in ctx.city.trips(state.citizen):
            if trip.index == trip_index:
                work.append((state, trip))
    totals = {"authorised": 0, "settled": 0, "voided": 0, "revenue": 0}
    lock = threading.Lock()

    def one(item: tuple[CitizenState, Any]) -> None:
        state, trip = item
        pending_id = transfer_id("toll", state.citizen.index, trip.index)
        request = PaymentRequest(
            allowance_id=int(state.allowance_id or 0),
            request_id=pending_id,
            amount_micros=trip.authorised_micros,
            payee_account_id=TOLL_ACCOUNT_ID,
            timestamp_ns=ctx.clock(),
            flags=FLAG_PENDING,
            timeout_s=3_600,
        )
        signature = request.sign(ev_keys[state.citizen.index])
        result = expect_json(
            ctx.http.post(
                "/ledger/allowances/payments",
                json={
                    "allowance_id": str(request.allowance_id),
                    "request_id": str(request.request_id),
                    "amount_micros": str(request.amount_micros),
                    "payee_account_id": str(request.payee_account_id),
                    "timestamp_ns": str(request.timestamp_ns),
                    "flags": request.flags,
                    "timeout_s": request.timeout_s,
                    "signature": b64u(signature),
                },
                headers=clients.headers("ev-payments"),
            ),
            "toll hold",
        )
        if result["status"] != "CREATED":
            raise ApiError(f"toll hold refused: {result['status']}")
        resolve_id = transfer_id("toll-exit", state.citizen.index, trip.index)
        if trip.settled_micros:
            action, body = "post", {"transfer_id": str(resolve_id), "amount_micros": str(trip.settled_micros)}
        else:
            action, body = "void", {"transfer_id": str(resolve_id)}
        result = expect_json(
            ctx.http.post(
                f"/ledger/allowances/reservations/{pending_id}/{action}",
                json=body,
                headers=clients.headers("treasury"),
            ),
            f"toll {action}",
        )
        if result["status"] != "CREATED":
            raise ApiError(f"toll {action} refused: {result['status']}")
        with lock:
            totals["authorised"] += 1
            if trip.settled_micros:
                totals["settled"] += 1
                totals["revenue"] += trip.settled_micros
            else:
                totals["voided"] += 1

    ctx.map(f"tolls ({label})", work, one)
    fig.set("tolls_authorised", totals["authorised"])
    fig.set("tolls_settled", totals["settled"])
    fig.set("tolls_voided", totals["voided"])
    fig.set("toll_revenue_micros", totals["revenue"])


def tolls_morning(ctx: DemoContext, fig: PhaseFigures) -> None:
    _tolls(ctx, fig, 0, "morning trips")


def tolls_evening(ctx: DemoContext, fig: PhaseFigures) -> None:
    _tolls(ctx, fig, 1, "evening trips")


def settle_rewards(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The day's micro-rewards as the ledger holds them: the incentive account's outflow (read by
    the operator, `GET /ledger/accounts/{id}`) against what the gateway reported per batch."""
    from civitas.demo.server import INCENTIVE_ACCOUNT_ID

    clients = clients_of(ctx)
    account = expect_json(
        ctx.http.get(f"/ledger/accounts/{INCENTIVE_ACCOUNT_ID}", headers=clients.headers("treasury")),
        "incentive account",
    )
    reported = int(ctx.state.get("rewards_reported_micros", 0))
    paid = int(account["debits_posted"])
    fig.set("rewards_reported_micros", reported)
    fig.set("rewards_paid_micros", paid)
    fig.set("rewards_match", paid == reported)
    if paid != reported:
        raise DemoError(f"rewards in the ledger ({paid}) differ from the gateway's reports ({reported})")


WITNESSES = ("witness.university.example", "witness.civic-trust.example")


def _cosign(ctx: DemoContext, fig: PhaseFigures, label: str) -> None:
    """Two independent witnesses fetch the latest checkpoint, check it extends what they cosigned
    before (consistency proof), and cosign it; the result must verify with a quorum of both."""
    from ledger import note
    from ledger.witness import Witness, WitnessConflictError, verify_checkpoint

    log_key = expect_json(ctx.http.get("/ledger/log-key"), "log key")["verifier_key"]
    witnesses: list[Witness] = ctx.state.get("witnesses") or []
    if not witnesses:
        directory = ctx.server.settings.data_dir / "witnesses"
        directory.mkdir(exist_ok=True)
        for name in WITNESSES:
            witnesses.append(
                Witness(
                    name,
                    SigningKey.generate(),
                    directory / f"{name}.json",
                    [log_key],
                    clock_s=seconds_of(ctx),
                )
            )
        ctx.state["witnesses"] = witnesses
    origin = note.NoteVerifier.parse(log_key).name
    with ctx.track(f"witnesses ({label})", len(witnesses)) as bar:
        checkpoint = ctx.http.get("/ledger/checkpoint")
        checkpoint.raise_for_status()
        text = checkpoint.text
        size = note.parse_checkpoint(note.parse_note(text).text).size
        lines = []
        for w in witnesses:
            head = w.head(origin)
            old = head[0] if head else 0
            try:
                lines.append(w.add_checkpoint(text, old, _consistency(ctx, old, size)))
            except WitnessConflictError as exc:
                lines.append(w.add_checkpoint(text, exc.known_size, _consistency(ctx, exc.known_size, size)))
            bar.advance()
    cosigned = note.add_signatures(text, lines)
    verify_checkpoint(cosigned, log_key, [w.verifier_key for w in witnesses], quorum=len(witnesses))
    fig.set("witnesses", len(witnesses))
    fig.set("tree_size", size)
    fig.set("cosignatures", len(lines))
    fig.set("quorum_verified", True)


def _consistency(ctx: DemoContext, old: int, new: int) -> list[bytes]:
    import base64

    if not 0 < old < new:
        return []
    body = expect_json(
        ctx.http.get("/ledger/proofs/consistency", params={"old_size": old, "new_size": new}),
        "consistency proof",
    )
    return [base64.b64decode(h) for h in body["proof"]]


def witness_noon(ctx: DemoContext, fig: PhaseFigures) -> None:
    ctx.clock.advance_to(12 * HOUR_NS + 45 * 60 * NS)
    _cosign(ctx, fig, "noon")


def witness_night(ctx: DemoContext, fig: PhaseFigures) -> None:
    ctx.clock.advance_to(23 * HOUR_NS)
    _cosign(ctx, fig, "night")


def audit_ledger(ctx: DemoContext, fig: PhaseFigures) -> None:
    """Run the operator's `civitas ledger audit` on the demo's settings: replay every transfer,
    recompute balances, the Merkle log and verify the latest checkpoint with the log key."""
    import io
    import json

    from civitas.cli_ledger import run_audit

    out = io.StringIO()
    with ctx.track("audit: replaying the ledger", 1) as bar:
        code = run_audit(ctx.server.settings, as_json=True, out=out)
        bar.advance()
    report = json.loads(out.getvalue())
    fig.set("accounts", int(report["accounts"]))
    fig.set("transfers", int(report["transfers"]))
    fig.set("tree_size", int(report["tree_size"]))
    fig.set("audit_passed", code == 0 and bool(report["ok"]))
    if code != 0 or not report["ok"]:
        raise DemoError("ledger audit failed: " + "; ".join(report["problems"][:5]))
