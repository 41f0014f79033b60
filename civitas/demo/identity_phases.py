"""Identity phases: OpenID4VCI issuance into the citizens' wallets, and the transit agency's
senior-fare checks over OpenID4VP."""

from __future__ import annotations

import threading
from typing import Any

from civitas.demo.runner import DemoContext
from civitas.demo.state import CitizenState, citizens_of, clients_of, expect_json, seconds_of
from civitas.demo.summary import PhaseFigures

__all__ = ["check_senior_fares", "issue_credentials"]


WALLET_COPIES = 2  # single-use SD-JWT copies per credential: a fare check and a spare (BBS is reusable)
SENIOR_FARE_RULE = 'senior_fare = resident_of == "civitas" and age_over_65'
PREDICATES = frozenset({"age_over_18", "age_over_65", "resident_of", "concession"})


def issue_credentials(ctx: DemoContext, fig: PhaseFigures) -> None:
    """Issuer staff create one offer per citizen and credential type; each citizen's wallet redeems
    it over OpenID4VCI (pre-authorized code + tx_code, nonce, batch of single-use copies)."""
    from identity.wallet import Wallet

    meta = expect_json(ctx.http.get("/.well-known/openid-credential-issuer"), "issuer metadata")
    configs: dict[str, Any] = meta["credential_configurations_supported"]
    claim_names = {
        cid: [c["path"][0] for c in conf.get("credential_metadata", {}).get("claims", []) if c.get("path")]
        for cid, conf in configs.items()
    }
    ctx.state["credential_configurations"] = list(configs)
    wallets_dir = ctx.server.settings.data_dir / "wallets"
    wallets_dir.mkdir(exist_ok=True)
    clients = clients_of(ctx)
    counts = {"offers": 0, "issued": 0, "copies": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        c = state.citizen
        state.wallet = Wallet.create(
            wallets_dir / f"citizen-{c.index}.wallet",
            f"demo-{ctx.options.seed}-{c.index}",
            kdf_profile="test",
            http=ctx.http,
            clock=seconds_of(ctx),
        )
        raw = c.raw_claims()
        for cid, names in claim_names.items():
            claims = {k: raw[k] for k in names if k in raw and k not in PREDICATES}
            offer = expect_json(
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

    ctx.map("credentials (OID4VCI)", citizens_of(ctx), one)
    fig.set("credential_types", len(configs))
    fig.set("offers", counts["offers"])
    fig.set("credentials_issued", counts["issued"])
    fig.set("credential_copies", counts["copies"])


def check_senior_fares(ctx: DemoContext, fig: PhaseFigures) -> None:
    """The transit agency asks some citizens to prove senior-fare eligibility (resident and 65+);
    each wallet presents over OpenID4VP (DCQL, direct_post); the agency reads the decision."""
    from identity.wallet import WalletError

    clients = clients_of(ctx)
    rule = expect_json(
        ctx.http.post(
            "/identity/eligibility-rules", json={"rule": SENIOR_FARE_RULE}, headers=clients.headers("transit")
        ),
        "register eligibility rule",
    )
    checked = {c.index for c in ctx.city.fare_checks(ctx.clock.day)}
    states = [s for s in citizens_of(ctx) if s.citizen.index in checked and s.wallet is not None]
    counts = {"eligible": 0, "not_eligible": 0, "presentations_refused": 0, "declined": 0}
    lock = threading.Lock()

    def one(state: CitizenState) -> None:
        created = expect_json(
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
        result = expect_json(
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
