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
WALLET_COPIES = 2  # single-use SD-JWT copies per credential: a fare check and a spare (BBS is reusable)
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
    account_id: int | None = None  # the ledger account (its id derives from the ledger pseudonym)
    allowance_id: int | None = None  # delegated to the citizen's EV
    records: dict[str, str] = field(default_factory=dict)  # consent offer key -> record id


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
                totals[f"{kind}_sent"] = totals.get(f"{kind}_sent", 0) + int(result["readings"])
                totals["batches"] = totals.get("batches", 0) + 1

    ctx.map(f"readings ({label})", devices, one)
    fig.set("batches", totals.get("batches", 0))
    fig.set("readings_sent", totals.get("readings", 0))
    fig.set("readings_accepted", totals.get("accepted", 0))
    fig.set("readings_dropped", totals.get("dropped", 0))
    fig.set("personal_accepted", totals.get("personal_accepted", 0))
    fig.set("public_accepted", totals.get("public_accepted", 0))
    fig.set("rewards_paid_micros", totals.get("reward_micros", 0))
    fig.set("personal_sent", totals.get("personal_sent", 0))
    ctx.state["rewards_reported_micros"] = ctx.state.get("rewards_reported_micros", 0) + totals.get(
        "reward_micros", 0
    )


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
TOP_UP_CODE = 101
EV_TOP_UP_MICROS = 10_000_000  # the city's welcome credit for toll-ring drivers
EV_ALLOWANCE_MICROS = 6_000_000  # per day, delegated by the owner to the car's key
LEDGER_BATCH_MAX = 8_190


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


# --------------------------------------------------------------------------------------------
# citizens: sign-in, ledger accounts, consent, devices


def _sign_in(ctx: DemoContext, state: CitizenState, service: str, scope: str) -> dict[str, str]:
    """The wallet signs in to one service with a BBS presentation (`Wallet.sign_in`); the token's
    subject is the citizen's pseudonym for that service."""
    token = state.wallet.sign_in(ctx.base_url, service=service, scope=scope)
    return {"Authorization": f"Bearer {token['access_token']}"}


def open_accounts(ctx: DemoContext, fig: PhaseFigures) -> None:
    """Every citizen signs in to the ledger and opens their one pseudonymous account; EV owners
    delegate a daily toll allowance to their car's key; the city tops up EV owners' accounts."""
    from civitas.demo.server import TREASURY_ACCOUNT_ID

    devices_keys: dict[int, SigningKey] = ctx.state.setdefault("ev_keys", {})
    counts = {"accounts": 0, "allowances": 0, "sign_ins": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        c = state.citizen
        headers = _sign_in(ctx, state, "ledger", "ledger:read ledger:write")
        with lock:
            counts["sign_ins"] += 1
        body = _json(ctx.http.post("/ledger/accounts", json={}, headers=headers), "open account")
        state.account_id = int(body["account"]["id"])
        with lock:
            counts["accounts"] += body["status"] == "CREATED"
        if not c.has_ev:
            return
        key = SigningKey.generate()
        allowance_id = _transfer_id("allowance", c.index)
        _json(
            ctx.http.post(
                "/ledger/allowances",
                json={
                    "id": str(allowance_id),
                    "account_id": str(state.account_id),
                    "device_public_key": _b64u(bytes(key.verify_key)),
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

    states = _citizens(ctx)
    ctx.map("ledger accounts (sign-in)", [s for s in states if s.wallet is not None], one)
    top_ups = [
        {
            "id": str(_transfer_id("top-up", s.citizen.index)),
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
    clients = _clients(ctx)
    created = 0
    for i in range(0, len(transfers), LEDGER_BATCH_MAX):
        part = transfers[i : i + LEDGER_BATCH_MAX]
        body = _json(
            ctx.http.post("/ledger/transfers", json={"transfers": part}, headers=clients.headers("treasury")),
            step,
        )
        bad = [r["status"] for r in body["results"] if r["status"] != "CREATED"]
        if bad:
            raise ApiError(f"{step}: {len(bad)} refused ({bad[0]})")
        created += len(part)
    return created


NOTICE = {
    "id": "https://civitas.city/notices/sensor-sharing",
    "version": "2026-01",
    "sha256": "5f2b6f3c1d8e0a4b7c9d2e1f0a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d",
}


def give_consent(ctx: DemoContext, fig: PhaseFigures) -> None:
    """At 06:30 each citizen signs in to the consent service, accepts some of the city's data-sharing
    offers (`POST /consent/records`) and registers their home hub and EV (`POST /sensors/devices`)
    with their ledger account for rewards."""
    from civitas.demo.city import CONSENT_OFFERS

    ctx.clock.advance_to(6 * HOUR_NS + 30 * 60 * NS)
    recipients: dict[str, str] = ctx.state["recipients"]
    offers = {o.key: o for o in CONSENT_OFFERS}
    devices = _devices(ctx)
    ev_keys: dict[int, SigningKey] = ctx.state.get("ev_keys", {})
    clients = _clients(ctx)
    counts = {"records": 0, "devices": 0, "sign_ins": 0}
    lock = threading.Lock()
    valid_until = ctx.clock.at(365 * 24 * HOUR_NS)
    specs: dict[int, list[DeviceSpec]] = {}
    for spec in ctx.city.devices():
        if spec.owner is not None:
            specs.setdefault(spec.owner, []).append(spec)

    def one(state: CitizenState) -> None:
        c = state.citizen
        headers = _sign_in(ctx, state, "consent", "consent")
        with lock:
            counts["sign_ins"] += 1
        for key in c.consents:
            offer = offers[key]
            body = _json(
                ctx.http.post(
                    "/consent/records",
                    json={
                        "notice": NOTICE,
                        "language": "en",
                        "purposes": list(offer.purposes),
                        "categories": list(offer.categories),
                        "recipients": [recipients[offer.recipient]],
                        "jurisdiction": "AT",
                        "valid_until_ns": valid_until,
                    },
                    headers=headers,
                ),
                "give consent",
            )
            state.records[key] = body["record"]["id"]
            with lock:
                counts["records"] += 1
        for spec in specs.get(c.index, []):
            device_key = ev_keys.get(c.index) if spec.device_key.startswith("ev-") else None
            device_key = device_key or SigningKey.generate()
            payload: dict[str, Any] = {
                "public_key": _b64u(bytes(device_key.verify_key)),
                "kind": "personal",
                "name": spec.device_key,
            }
            if state.account_id is not None:
                payload["reward_account_id"] = str(state.account_id)
            body = _json(ctx.http.post("/sensors/devices", json=payload, headers=headers), "register device")
            with lock:
                devices[spec.device_key] = DeviceState(
                    spec, device_key, body["device_id"], body["client_id"], body["client_secret"]
                )
                clients.add(f"device:{spec.device_key}", body["client_id"], body["client_secret"])
                counts["devices"] += 1

    ctx.map("consent and devices", [s for s in _citizens(ctx) if s.wallet is not None], one)
    fig.set("sign_ins", counts["sign_ins"])
    fig.set("consent_records_given", counts["records"])
    fig.set("personal_devices", counts["devices"])


def withdraw_consent(ctx: DemoContext, fig: PhaseFigures) -> None:
    """At 12:30 some citizens withdraw some of their consent (`POST /consent/records/{id}/withdraw`):
    readings after that are dropped unless another consent covers them."""
    ctx.clock.advance_to(12 * HOUR_NS + 30 * 60 * NS)
    states = [s for s in _citizens(ctx) if s.citizen.withdraws and s.records]
    count = {"withdrawn": 0, "sign_ins": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        headers = _sign_in(ctx, state, "consent", "consent")
        with lock:
            count["sign_ins"] += 1
        for key in state.citizen.withdraws:
            body = _json(
                ctx.http.post(f"/consent/records/{state.records[key]}/withdraw", headers=headers),
                "withdraw consent",
            )
            if body["record"]["status"] != "withdrawn":
                raise ApiError(f"withdrawal left the record {body['record']['status']}")
            with lock:
                count["withdrawn"] += 1

    ctx.map("withdrawals", states, one)
    fig.set("sign_ins", count["sign_ins"])
    fig.set("citizens_withdrawing", len(states))
    fig.set("consent_records_withdrawn", count["withdrawn"])


# --------------------------------------------------------------------------------------------
# ledger: EV micro-tolls (two-phase) from delegated allowances


def _tolls(ctx: DemoContext, fig: PhaseFigures, trip_index: int, label: str) -> None:
    """Each EV entering the toll ring signs a pending payment (a hold) from its allowance
    (`POST /ledger/allowances/payments`); on exit the toll operator posts the actual amount or voids
    the hold of an abandoned trip (`POST /ledger/allowances/reservations/{id}/post|void`)."""
    from civitas.demo.server import TOLL_ACCOUNT_ID
    from ledger.allowances import FLAG_PENDING, PaymentRequest

    clients = _clients(ctx)
    if "ev-payments" not in clients.credentials:
        clients.register("ev-payments", "ledger:pay")
    ev_keys: dict[int, SigningKey] = ctx.state.get("ev_keys", {})
    work = []
    for state in _citizens(ctx):
        if state.allowance_id is None:
            continue
        for trip in ctx.city.trips(state.citizen):
            if trip.index == trip_index:
                work.append((state, trip))
    totals = {"authorised": 0, "settled": 0, "voided": 0, "revenue": 0}
    lock = threading.Lock()

    def one(item: tuple[CitizenState, Any]) -> None:
        state, trip = item
        pending_id = _transfer_id("toll", state.citizen.index, trip.index)
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
        result = _json(
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
                    "signature": _b64u(signature),
                },
                headers=clients.headers("ev-payments"),
            ),
            "toll hold",
        )
        if result["status"] != "CREATED":
            raise ApiError(f"toll hold refused: {result['status']}")
        resolve_id = _transfer_id("toll-exit", state.citizen.index, trip.index)
        if trip.settled_micros:
            action, body = "post", {"transfer_id": str(resolve_id), "amount_micros": str(trip.settled_micros)}
        else:
            action, body = "void", {"transfer_id": str(resolve_id)}
        result = _json(
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

    clients = _clients(ctx)
    account = _json(
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


_LOG = ("GET /ledger/checkpoint", "GET /ledger/log-key", "GET /ledger/proofs/consistency")
_SIGN_IN = ("POST /identity/citizen-sessions", "POST /identity/citizen-sessions/{session_id}/token")
_TOLLS = (
    "POST /ledger/allowances",
    "POST /ledger/allowances/payments",
    "POST /ledger/allowances/reservations/{pending_id}/post",
    "POST /ledger/allowances/reservations/{pending_id}/void",
)

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
        "accounts",
        "Citizen accounts (sign-in)",
        "ledger",
        (*_SIGN_IN, "POST /ledger/accounts", "POST /ledger/allowances"),
        open_accounts,
        after=("credentials", "ledger"),
    ),
    Phase(
        "consent",
        "Consent and devices",
        "consent",
        (*_SIGN_IN, "POST /consent/records", "POST /sensors/devices"),
        give_consent,
        after=("credentials",),
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
    Phase("tolls-morning", "Tolls (morning trips)", "ledger", _TOLLS, tolls_morning, after=("accounts",)),
    Phase(
        "fares",
        "Senior fares (OID4VP)",
        "identity",
        ("POST /identity/presentation-requests", "POST /identity/presentation-responses"),
        check_senior_fares,
        after=("credentials",),
    ),
    Phase(
        "withdrawals",
        "Consent withdrawn (12:30)",
        "consent",
        ("POST /consent/records/{record_id}/withdraw",),
        withdraw_consent,
        after=("consent",),
    ),
    Phase("witness-noon", "Witnesses cosign (noon)", "ledger", _LOG, witness_noon, after=("ledger",)),
    Phase(
        "afternoon",
        "Readings 13:00-22:00",
        "consent",
        ("POST /sensors/readings",),
        stream_afternoon,
        after=("sensors",),
    ),
    Phase("tolls-evening", "Tolls (evening trips)", "ledger", _TOLLS, tolls_evening, after=("accounts",)),
    Phase(
        "rewards",
        "Rewards (ledger)",
        "ledger",
        ("GET /ledger/accounts/{account_id}",),
        settle_rewards,
        after=("ledger", "morning", "afternoon"),
    ),
    Phase("witness-night", "Witnesses cosign (night)", "ledger", _LOG, witness_night, after=("ledger",)),
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
