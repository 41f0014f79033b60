"""The phases of the simulated day, each driving the service's HTTP API as its clients would.

Operator setup (registering OAuth2 clients, issuers' staff, agencies and devices) uses the same
library calls the `civitas` CLI makes; everything a citizen, device, agency or analyst does goes
through HTTP.
"""

from __future__ import annotations

from civitas.demo.runner import DemoContext, Phase
from civitas.demo.summary import PhaseFigures

__all__ = ["PHASES"]


def audit_ledger(ctx: DemoContext, fig: PhaseFigures) -> None:
    """Replay the ledger (what `civitas ledger audit` does) and report whether it balances."""
    from ledger import Ledger

    with ctx.track("audit: replaying the ledger", 1) as bar:
        ledger = Ledger.open(ctx.server.settings.resolved_database_url)
        try:
            report = ledger.audit()
        finally:
            ledger.close()
        bar.advance()
    fig.set("accounts", report.accounts)
    fig.set("transfers", report.transfers)
    fig.set("tree_size", report.tree_size)
    fig.set("audit_passed", report.ok)
    if not report.ok:
        raise RuntimeError("ledger audit failed: " + "; ".join(report.problems[:5]))


PHASES: tuple[Phase, ...] = (
    Phase("audit", "Ledger audit", "ledger", ("GET /ledger/checkpoint",), audit_ledger),
)
