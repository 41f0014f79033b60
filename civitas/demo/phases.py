"""The phases of the simulated day, each driving the service's HTTP API as its clients would.

Operator setup (registering OAuth2 clients for the issuer's staff, agencies and the analyst)
uses the library call behind `civitas clients add`; everything a citizen's wallet, a device, an
agency or an analyst does goes through HTTP on the demo's `httpx.Client`.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from nacl.signing import SigningKey

from civitas.demo.city import AFTERNOON, MORNING, Citizen, DeviceSpec
from civitas.demo.clock import HOUR_NS, SECOND_NS
from civitas.demo.runner import DemoContext, DemoError, Phase
from civitas.demo.summary import PhaseFigures

__all__ = ["PHASES", "ApiError"]

NS = SECOND_NS
WALLET_COPIES = 3  # single-use copies per credential: account opening, a fare check, one spare
SENIOR_FARE_RULE = 'senior_fare = resident_of == "civitas" and age_over_65'
PREDICATES = frozenset({"age_over_18", "age_over_65", "resident_of", "concession"})
ANALYTICS_RECIPIENT = "civitas-analytics"
MAX_BATCH_READINGS = 10_000


class ApiError(DemoError):
    """The service answered a demo request with an unexpected status."""


def _json(response: httpx.Response, step: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    if response.status_code not in ok:
        raise ApiError(f"{step}: HTTP {response.status_code}: {response.text[:400]}")
    return response.json()


def _b64u(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --------------------------------------------------------------------------------------------
# shared state


@dataclass
class DeviceState:
    spec: DeviceSpec
    key: SigningKey
    device_id: str
    client_id: str
    secret: str


@dataclass
class CitizenState:
    citizen: Citizen
    wallet: Any = None  # identity.wallet.Wallet
    credentials: dict[str, Any] = field(default_factory=dict)  # configuration id -> StoredCredential


class Clients:
    """The demo's OAuth2 clients by role, and their access tokens (renewed before they expire)."""

    def __init__(self, ctx: DemoContext) -> None:
        self.ctx = ctx
        self.credentials: dict[str, tuple[str, str]] = {}
        self._tokens: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def register(self, role: str, scopes: str) -> str:
        """What `civitas clients add --name <role> --scopes <scopes>` does."""
        from civitas.clients import add_client

        client, secret = add_client(self.ctx.server.engine, f"demo {role}", scopes, clock=self.ctx.clock)
        self.credentials[role] = (client.client_id, secret)
        return client.client_id

    def add(self, role: str, client_id: str, secret: str) -> None:
        self.credentials[role] = (client_id, secret)

    def client_id(self, role: str) -> str:
        return self.credentials[role][0]

    def token(self, role: str) -> str:
        now = self.ctx.clock()
        with self._lock:
            cached = self._tokens.get(role)
            if cached is not None and cached[1] - 60 * NS > now:
                return cached[0]
        client_id, secret = self.credentials[role]
        body = _json(
            self.ctx.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            ),
            f"token for {role}",
        )
        token = str(body["access_token"])
        with self._lock:
            self._tokens[role] = (token, now + int(body.get("expires_in", 300)) * NS)
        return token

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


def _clients(ctx: DemoContext) -> Clients:
    clients: Clients | None = ctx.state.get("clients")
    if clients is None:
        clients = ctx.state["clients"] = Clients(ctx)
    return clients


def _citizens(ctx: DemoContext) -> list[CitizenState]:
    states: list[CitizenState] | None = ctx.state.get("citizens")
    if states is None:
        states = ctx.state["citizens"] = [CitizenState(c) for c in ctx.city.citizens]
    return states


def _devices(ctx: DemoContext) -> dict[str, DeviceState]:
    devices: dict[str, DeviceState] = ctx.state.setdefault("devices", {})
    return devices


def _seconds(ctx: DemoContext) -> Any:
    return lambda: ctx.clock() // NS


# --------------------------------------------------------------------------------------------
# operator setup


AGENCY_ROLES = {
    "issuer": "identity:issue",
    "transit": "identity:verify",
    "operator": "consent:admin",
    "utility": "sensors:read",
    "environment": "sensors:read",
    "transport": "sensors:read",
    "analyst": "analytics:query",
}
RECIPIENTS = {
    "utility": ("Civitas Energy (utility)", ["dpv:ServiceOptimisation"]),
    "environment": ("Environment Office", ["dpv:PublicBenefit"]),
    "transport": ("Transport Authority", ["dpv:ImprovePublicServices"]),
}


def setup_city(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The operator registers the issuer's staff, the agencies and the analyst as OAuth2 clients,
    and the agencies as data recipients with their declared purposes."""
    clients = _clients(ctx)
    with ctx.track("setup: agencies", len(AGENCY_ROLES)) as bar:
        for role, scopes in AGENCY_ROLES.items():
            clients.register(role, scopes)
            bar.advance()
    fig.set("oauth_clients", len(AGENCY_ROLES))
    recipients: dict[str, str] = {role: clients.client_id(role) for role in RECIPIENTS}
    recipients["statistics"] = str(
        getattr(ctx.server.settings, "analytics_recipient", None) or ANALYTICS_RECIPIENT
    )
    ctx.state["recipients"] = recipients
    if ctx.has("POST /consent/recipients"):
        declared = {**RECIPIENTS, "statistics": ("City Statistics Office", ["dpv:ProvideOfficialStatistics"])}
        for role, (name, purposes) in declared.items():
            _json(
                ctx.http.post(
                    "/consent/recipients",
                    json={"client_id": recipients[role], "name": name, "purposes": purposes},
                    headers=clients.headers("operator"),
                ),
                "register recipient",
            )
        fig.set("data_recipients", len(declared))
    fig.set("citizens", len(ctx.city.citizens))
    fig.set("devices", sum(1 for _ in ctx.city.devices()))


# --------------------------------------------------------------------------------------------
# identity: OpenID4VCI issuance into wallets


def issue_credentials(ctx: DemoContext, fig: PhaseFigures) -> None:
    """Issuer staff create one offer per citizen and credential type; each citizen's wallet redeems
    it over OpenID4VCI (pre-authorized code + tx_code, nonce, batch of single-use copies)."""
    from identity.wallet import Wallet

    meta = _json(ctx.http.get("/.well-known/openid-credential-issuer"), "issuer metadata")
    configs: dict[str, Any] = meta["credential_configurations_supported"]
    claim_names = {
        cid: [c["path"][0] for c in conf.get("credential_metadata", {}).get("claims", []) if c.get("path")]
        for cid, conf in configs.items()
    }
    ctx.state["credential_configurations"] = list(configs)
    wallets_dir = ctx.server.settings.data_dir / "wallets"
    wallets_dir.mkdir(exist_ok=True)
    clients = _clients(ctx)
    counts = {"offers": 0, "issued": 0, "copies": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        c = state.citizen
        state.wallet = Wallet.create(
            wallets_dir / f"citizen-{c.index}.wallet",
            f"demo-{ctx.options.seed}-{c.index}",
            kdf_profile="test",
            http=ctx.http,
            clock=_seconds(ctx),
        )
        raw = c.raw_claims()
        for cid, names in claim_names.items():
            claims = {k: raw[k] for k in names if k in raw and k not in PREDICATES}
            offer = _json(
                ctx.http.post(
                    "/identity/offers",
                    json={
                        "credential_configuration_id": cid,
                        "subject_ref": f"citizen-{c.index}",
                        "claims": claims,
                    },
                    headers=clients.headers("issuer"),
                ),
                "create offer",
            )
            stored = state.wallet.receive(
                offer["credential_offer"], tx_code=offer.get("tx_code"), batch_size=WALLET_COPIES
            )
            state.credentials[cid] = stored
            with lock:
                counts["offers"] += 1
                counts["issued"] += 1
                counts["copies"] += len(stored.copies)

    ctx.map("credentials (OID4VCI)", _citizens(ctx), one)
    fig.set("credential_types", len(configs))
    fig.set("offers", counts["offers"])
    fig.set("credentials_issued", counts["issued"])
    fig.set("credential_copies", counts["copies"])


# --------------------------------------------------------------------------------------------
# identity: OpenID4VP eligibility checks by the transit agency


def check_senior_fares(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The transit agency asks some citizens to prove senior-fare eligibility (resident and 65+);
    each wallet presents over OpenID4VP (DCQL, direct_post); the agency reads the decision."""
    from identity.wallet import WalletError

    clients = _clients(ctx)
    rule = _json(
        ctx.http.post(
            "/identity/eligibility-rules", json={"rule": SENIOR_FARE_RULE}, headers=clients.headers("transit")
        ),
        "register eligibility rule",
    )
    checked = {c.index for c in ctx.city.fare_checks(ctx.clock.day)}
    states = [s for s in _citizens(ctx) if s.citizen.index in checked and s.wallet is not None]
    counts = {"eligible": 0, "not_eligible": 0, "presentations_refused": 0, "declined": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        created = _json(
            ctx.http.post(
                "/identity/presentation-requests",
                json={"rule": rule["name"]},
                headers=clients.headers("transit"),
            ),
            "presentation request",
        )
        request = state.wallet.fetch_request(created["request_uri"])
        if not state.wallet.preview(request):
            with lock:
                counts["declined"] += 1
            return
        try:
            state.wallet.respond(request)
        except WalletError:
            with lock:
                counts["presentations_refused"] += 1
        result = _json(
            ctx.http.get(
                f"/identity/presentation-requests/{created['id']}/result", headers=clients.headers("transit")
            ),
            "presentation result",
        )
        with lock:
            if result.get("status") == "completed" and result.get("accepted") and result.get("eligible"):
                counts["eligible"] += 1
            elif result.get("status") == "completed" and result.get("accepted"):
                counts["not_eligible"] += 1
            elif result.get("status") == "completed":
                counts["presentations_refused"] += 0  # counted above when the wallet was told

    ctx.map("senior fares (OID4VP)", states, one)
    fig.set("citizens_checked", len(states))
    fig.set("presentations_verified", counts["eligible"] + counts["not_eligible"])
    fig.set("eligible", counts["eligible"])
    fig.set("refused_not_eligible", counts["not_eligible"])
    fig.set("presentations_refused", counts["presentations_refused"])
    fig.set("declined_by_wallet", counts["declined"])


# --------------------------------------------------------------------------------------------
# consent: devices and readings


def register_public_sensors(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The operator registers the city's public sensors; each becomes an OAuth2 client."""
    clients = _clients(ctx)
    specs = [d for d in ctx.city.devices() if d.kind == "public"]
    devices = _devices(ctx)

    def one(spec: DeviceSpec) -> None:
        key = SigningKey.generate()
        body = _json(
            ctx.http.post(
                "/sensors/devices",
                json={
                    "public_key": _b64u(bytes(key.verify_key)),
                    "kind": "public",
                    "name": f"city sensor {spec.device_key}",
                    "serial": spec.device_key,
                },
                headers=clients.headers("operator"),
            ),
            "register public sensor",
        )
        devices[spec.device_key] = DeviceState(
            spec, key, body["device_id"], body["client_id"], body["client_secret"]
        )
        clients.add(f"device:{spec.device_key}", body["client_id"], body["client_secret"])

    ctx.map("public sensors", specs, one)
    fig.set("public_sensors", len(specs))


def _stream_window(ctx: DemoContext, fig: PhaseFigures, window: tuple[int, int], label: str) -> None:
    """Every registered device sends the readings of one window as signed batches (the clock is
    first moved past the window's end, so no reading is from the future)."""
    from consent.batches import Batch, Reading, sign_batch

    ctx.clock.advance_to(window[1] + 30 * NS)
    clients = _clients(ctx)
    devices = sorted(_devices(ctx).values(), key=lambda d: d.spec.device_key)
    totals: dict[str, int] = {}
    lock = threading.Lock()

    def one(device: DeviceState) -> None:
        readings = device.spec.readings(window)
        if not readings:
            return
        headers = clients.headers(f"device:{device.spec.device_key}")
        for part in range(0, len(readings), MAX_BATCH_READINGS):
            chunk = readings[part : part + MAX_BATCH_READINGS]
            batch_id = uuid.uuid5(uuid.NAMESPACE_URL, f"civitas-demo:{device.device_id}:{label}:{part}").int
            batch = Batch(
                batch_id,
                device.device_id,
                ctx.clock(),
                tuple(Reading(r.stream, ctx.clock.at(r.offset_ns), r.value, r.lat, r.lon) for r in chunk),
            )
            envelope = sign_batch(batch, device.key).to_envelope()
            result = _json(
                ctx.http.post("/sensors/readings", json=envelope, headers=headers), "send readings"
            )
            kind = device.spec.kind
            with lock:
                for key in ("readings", "accepted", "dropped", "reward_micros"):
                    totals[key] = totals.get(key, 0) + int(result.get(key, 0))
                totals[f"{kind}_accepted"] = totals.get(f"{kind}_accepted", 0) + int(result["accepted"])
                totals["batches"] = totals.get("batches", 0) + 1

    ctx.map(f"readings ({label})", devices, one)
    fig.set("batches", totals.get("batches", 0))
    fig.set("readings_sent", totals.get("readings", 0))
    fig.set("readings_accepted", totals.get("accepted", 0))
    fig.set("readings_dropped", totals.get("dropped", 0))
    fig.set("personal_accepted", totals.get("personal_accepted", 0))
    fig.set("public_accepted", totals.get("public_accepted", 0))
    fig.set("rewards_paid_micros", totals.get("reward_micros", 0))


def stream_morning(ctx: DemoContext, fig: PhaseFigures) -> None:
    _stream_window(ctx, fig, MORNING, "morning")


def stream_afternoon(ctx: DemoContext, fig: PhaseFigures) -> None:
    _stream_window(ctx, fig, AFTERNOON, "afternoon")


# --------------------------------------------------------------------------------------------
# ledger: the city's accounts and independent witnesses

CITY_LEDGER = 1
CITY_ACCOUNT_CODE = 10
FUND_CODE = 100
INCENTIVE_BUDGET_PER_CITIZEN_MICROS = 5_000_000


def _transfer_id(*parts: object) -> int:
    return uuid.uuid5(uuid.NAMESPACE_URL, "civitas-demo:" + ":".join(str(p) for p in parts)).int


def open_city_accounts(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The operator opens the city's treasury, incentive and toll accounts and funds the incentive
    budget that pays the citizens' micro-rewards (`POST /ledger/accounts`, `POST /ledger/transfers`)."""
    from civitas.demo.server import INCENTIVE_ACCOUNT_ID, TOLL_ACCOUNT_ID, TREASURY_ACCOUNT_ID

    clients = _clients(ctx)
    clients.register("treasury", "ledger:admin ledger:write ledger:read")
    dmnec = 1 << 1  # DEBITS_MUST_NOT_EXCEED_CREDITS: the incentive budget cannot be overspent
    accounts = ((TREASURY_ACCOUNT_ID, 0), (INCENTIVE_ACCOUNT_ID, dmnec), (TOLL_ACCOUNT_ID, 0))
    for account_id, flags in accounts:
        _json(
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
    body = _json(
        ctx.http.post(
            "/ledger/transfers",
            json={
                "transfers": [
                    {
                        "id": str(_transfer_id("fund-incentives")),
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


WITNESSES = ("witness.university.example", "witness.civic-trust.example")


def _cosign(ctx: DemoContext, fig: PhaseFigures, label: str) -> None:
    """Two independent witnesses fetch the latest checkpoint, check it extends what they cosigned
    before (consistency proof), and cosign it; the result must verify with a quorum of both."""
    from ledger import note
    from ledger.witness import Witness, WitnessConflictError, verify_checkpoint

    log_key = _json(ctx.http.get("/ledger/log-key"), "log key")["verifier_key"]
    witnesses: list[Witness] = ctx.state.get("witnesses") or []
    if not witnesses:
        directory = ctx.server.settings.data_dir / "witnesses"
        directory.mkdir(exist_ok=True)
        for name in WITNESSES:
            witnesses.append(
                Witness(
                    name, SigningKey.generate(), directory / f"{name}.json", [log_key], clock_s=_seconds(ctx)
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
    body = _json(
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


# --------------------------------------------------------------------------------------------
# analytics


def publish_dashboard(ctx: DemoContext, fig: PhaseFigures) -> None:
    """At midnight the day is complete: the public dashboard of DP releases for it is published."""
    clients = _clients(ctx)
    ctx.clock.advance_to(24 * HOUR_NS + 30 * NS)
    day = ctx.clock.day.isoformat()
    with ctx.track("dashboard (DP releases)", 1) as bar:
        page = ctx.http.get("/dashboard", params={"day": day})
        if page.status_code != 200:
            raise ApiError(f"dashboard: HTTP {page.status_code}")
        bar.advance()
    releases = _json(ctx.http.get("/analytics/releases", headers=clients.headers("analyst")), "releases")
    budget = _json(
        ctx.http.get("/analytics/budget", params={"day": day}, headers=clients.headers("analyst")), "budget"
    )
    spent = budget["dataset_budget"]
    fig.set("releases", len(releases["releases"]))
    fig.set("budget_spent_rho", round(float(spent["spent_rho"]), 6))
    fig.set("budget_limit_rho", round(float(spent["limit_rho"]), 6))
    fig.set("dashboard_bytes", len(page.content))
    ctx.state["dashboard_path"] = f"/dashboard?day={day}"


# --------------------------------------------------------------------------------------------
# ledger audit


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


PHASES: tuple[Phase, ...] = (
    Phase("setup", "Operator setup", "service", ("POST /oauth/token",), setup_city),
    Phase(
        "credentials",
        "Credentials (OID4VCI)",
        "identity",
        ("POST /identity/offers", "POST /identity/credential"),
        issue_credentials,
        after=("setup",),
    ),
    Phase(
        "ledger",
        "City accounts (ledger)",
        "ledger",
        ("POST /ledger/accounts", "POST /ledger/transfers"),
        open_city_accounts,
        after=("setup",),
    ),
    Phase(
        "sensors",
        "Public sensors",
        "consent",
        ("POST /sensors/devices",),
        register_public_sensors,
        after=("setup",),
    ),
    Phase(
        "morning",
        "Readings 07:00-12:00",
        "consent",
        ("POST /sensors/readings",),
        stream_morning,
        after=("sensors",),
    ),
    Phase(
        "fares",
        "Senior fares (OID4VP)",
        "identity",
        ("POST /identity/presentation-requests", "POST /identity/presentation-responses"),
        check_senior_fares,
        after=("credentials",),
    ),
    Phase(
        "witness-noon",
        "Witnesses cosign (noon)",
        "ledger",
        ("GET /ledger/checkpoint", "GET /ledger/log-key", "GET /ledger/proofs/consistency"),
        witness_noon,
    ),
    Phase(
        "afternoon",
        "Readings 13:00-22:00",
        "consent",
        ("POST /sensors/readings",),
        stream_afternoon,
        after=("sensors",),
    ),
    Phase(
        "witness-night",
        "Witnesses cosign (night)",
        "ledger",
        ("GET /ledger/checkpoint", "GET /ledger/log-key", "GET /ledger/proofs/consistency"),
        witness_night,
    ),
    Phase(
        "dashboard",
        "Dashboard (DP)",
        "analytics",
        ("GET /dashboard", "GET /analytics/budget"),
        publish_dashboard,
        after=("setup",),
    ),
    Phase("audit", "Ledger audit", "ledger", ("GET /ledger/checkpoint",), audit_ledger),
)
