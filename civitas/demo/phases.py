"""The phases of the simulated day, in order, each driving the service's HTTP API as its clients
would (see specs/demo.md).

Operator setup (registering OAuth2 clients for the issuer's staff, agencies and the analyst)
uses the library call behind `civitas clients add`; everything a citizen's wallet, a device, an
agency or an analyst does goes through HTTP on the demo's `httpx.Client`.
"""

from __future__ import annotations

from civitas.demo.clock import HOUR_NS
from civitas.demo.consent_phases import (
    give_consent,
    register_public_sensors,
    stream_afternoon,
    stream_morning,
    withdraw_consent,
)
from civitas.demo.identity_phases import check_senior_fares, issue_credentials
from civitas.demo.ledger_phases import (
    audit_ledger,
    open_accounts,
    open_city_accounts,
    settle_rewards,
    tolls_evening,
    tolls_morning,
    witness_night,
    witness_noon,
)
from civitas.demo.runner import DemoContext, Phase
from civitas.demo.state import NS, ApiError, clients_of, expect_json
from civitas.demo.summary import PhaseFigures

__all__ = ["PHASES", "publish_dashboard", "setup_city"]


ANALYTICS_RECIPIENT = "civitas-analytics"
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
    clients = clients_of(ctx)
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
            expect_json(
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


def publish_dashboard(ctx: DemoContext, fig: PhaseFigures) -> None:
    """At midnight the day is complete: the public dashboard of DP releases for it is published."""
    clients = clients_of(ctx)
    ctx.clock.advance_to(24 * HOUR_NS + 30 * NS)
    day = ctx.clock.day.isoformat()
    with ctx.track("dashboard (DP releases)", 1) as bar:
        page = ctx.http.get("/dashboard", params={"day": day})
        if page.status_code != 200:
            raise ApiError(f"dashboard: HTTP {page.status_code}")
        bar.advance()
    releases = expect_json(
        ctx.http.get("/analytics/releases", headers=clients.headers("analyst")), "releases"
    )
    budget = expect_json(
        ctx.http.get("/analytics/budget", params={"day": day}, headers=clients.headers("analyst")), "budget"
    )
    spent = budget["dataset_budget"]
    fig.set("releases", len(releases["releases"]))
    fig.set("budget_spent_rho", round(float(spent["spent_rho"]), 6))
    fig.set("budget_limit_rho", round(float(spent["limit_rho"]), 6))
    fig.set("dashboard_bytes", len(page.content))
    ctx.state["dashboard_path"] = f"/dashboard?day={day}"


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
