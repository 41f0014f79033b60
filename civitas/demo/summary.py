"""The demo's figures: collected per phase, shown as a rich table or emitted as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["TOTALS", "PhaseFigures", "Summary"]

Figure = int | float | str | bool

# The day in figures: each total sums the listed (phase, figure) pairs over the phases that ran;
# a total none of whose phases ran is left out (never shown as zero).
TOTALS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("credentials_issued", (("credentials", "credentials_issued"),)),
    (
        "presentations_verified",
        (
            ("accounts", "sign_ins"),
            ("consent", "sign_ins"),
            ("withdrawals", "sign_ins"),
            ("fares", "presentations_verified"),
        ),
    ),
    ("eligibility_refused", (("fares", "refused_not_eligible"),)),
    ("presentations_refused", (("fares", "presentations_refused"),)),
    ("accounts_opened", (("accounts", "accounts_opened"),)),
    ("consent_given", (("consent", "consent_records_given"),)),
    ("consent_withdrawn", (("withdrawals", "consent_records_withdrawn"),)),
    ("readings_sent", (("morning", "readings_sent"), ("afternoon", "readings_sent"))),
    ("readings_accepted", (("morning", "readings_accepted"), ("afternoon", "readings_accepted"))),
    ("readings_dropped", (("morning", "readings_dropped"), ("afternoon", "readings_dropped"))),
    ("rewards_paid_micros", (("rewards", "rewards_paid_micros"),)),
    ("tolls_paid", (("tolls-morning", "tolls_settled"), ("tolls-evening", "tolls_settled"))),
    ("tolls_voided", (("tolls-morning", "tolls_voided"), ("tolls-evening", "tolls_voided"))),
    (
        "toll_revenue_micros",
        (("tolls-morning", "toll_revenue_micros"), ("tolls-evening", "toll_revenue_micros")),
    ),
    ("ledger_transfers", (("audit", "transfers"),)),
    ("checkpoints_cosigned", (("witness-noon", "quorum_verified"), ("witness-night", "quorum_verified"))),
    ("dp_releases", (("dashboard", "releases"),)),
    ("budget_spent_rho", (("dashboard", "budget_spent_rho"),)),
    ("audit_passed", (("audit", "audit_passed"),)),
)


@dataclass
class PhaseFigures:
    """What one phase did: its figures in insertion order, how long it took, or why it was skipped."""

    name: str
    title: str
    figures: dict[str, Figure] = field(default_factory=dict)
    duration_s: float = 0.0
    skipped: str | None = None
    failed: str | None = None

    def add(self, key: str, amount: int = 1) -> None:
        current = self.figures.get(key, 0)
        if not isinstance(current, int) or isinstance(current, bool):
            raise TypeError(f"figure {key} is not a count")
        self.figures[key] = current + amount

    def set(self, key: str, value: Figure) -> None:
        self.figures[key] = value


@dataclass
class Summary:
    seed: int
    citizens: int
    day: str
    data_dir: str
    base_url: str
    phases: list[PhaseFigures] = field(default_factory=list)
    duration_s: float = 0.0
    ok: bool = True
    error: str | None = None
    serving: bool = False  # the service keeps running after the summary (--serve)

    @property
    def dashboard_url(self) -> str:
        return f"{self.base_url}/dashboard"

    def phase(self, name: str) -> PhaseFigures | None:
        return next((p for p in self.phases if p.name == name), None)

    def figure(self, phase: str, key: str) -> Figure | None:
        """A figure of a phase that completed (None if it was skipped, failed or lacks it)."""
        p = self.phase(phase)
        if p is None or p.skipped is not None or p.failed is not None:
            return None
        return p.figures.get(key)

    def totals(self) -> dict[str, Figure]:
        out: dict[str, Figure] = {}
        for name, sources in TOTALS:
            values = [v for phase, key in sources if (v := self.figure(phase, key)) is not None]
            if not values:
                continue
            if name == "audit_passed":
                out[name] = all(bool(v) for v in values)
            elif name == "checkpoints_cosigned":
                out[name] = sum(1 for v in values if v is True)
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                out[name] = sum(int(v) for v in values)
            else:
                out[name] = round(sum(float(v) for v in values), 6)
        return out

    @property
    def skipped(self) -> list[dict[str, str]]:
        return [{"phase": p.name, "reason": p.skipped} for p in self.phases if p.skipped is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "citizens": self.citizens,
            "day": self.day,
            "data_dir": self.data_dir,
            "base_url": self.base_url,
            "dashboard_url": self.dashboard_url,
            "ok": self.ok,
            "error": self.error,
            "duration_s": round(self.duration_s, 3),
            "totals": self.totals(),
            "phases": {
                p.name: {
                    **p.figures,
                    "duration_s": round(p.duration_s, 3),
                    **({"failed": p.failed} if p.failed is not None else {}),
                }
                for p in self.phases
                if p.skipped is None
            },
            "skipped": self.skipped,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    def render(self, console: Console) -> None:
        totals = Table(title="The day in figures")
        totals.add_column("figure")
        totals.add_column("value", justify="right")
        for key, value in self.totals().items():
            totals.add_row(key.replace("_micros", "").replace("_", " "), _format(key, value))
        phases = Table(title=f"Civitas demo: {self.citizens:,} citizens, seed {self.seed}, day {self.day}")
        phases.add_column("phase", style="bold", no_wrap=True)
        phases.add_column("figures")
        phases.add_column("time", justify="right", style="dim", no_wrap=True)
        for p in self.phases:
            if p.skipped is not None:
                phases.add_row(p.title, f"[yellow]skipped: {p.skipped}[/]", "")
                continue
            if p.failed is not None:
                phases.add_row(p.title, f"[red]failed: {p.failed}[/]", f"{p.duration_s:.1f} s")
                continue
            text = ", ".join(
                f"{k.replace('_micros', '').replace('_', ' ')} {_format(k, v)}" for k, v in p.figures.items()
            )
            phases.add_row(p.title, text, f"{p.duration_s:.1f} s")
        console.print(phases)
        console.print(totals)
        verdict = "[green]ok[/]" if self.ok else f"[red]failed[/]: {self.error}"
        console.print(f"demo {verdict} in {self.duration_s:.1f} s; data in {self.data_dir}")
        for s in self.skipped:
            console.print(f"[yellow]skipped[/] {s['phase']}: {s['reason']}")
        if self.serving:
            console.print(f"dashboard: {self.dashboard_url}")
        else:
            console.print(
                f"the service has stopped; `civitas demo --serve` keeps the dashboard ({self.dashboard_url}) up"
            )


def _format(key: str, value: Figure) -> str:
    if isinstance(value, bool):
        return "[green]pass[/]" if value else "[red]FAIL[/]"
    if isinstance(value, int) and key.endswith("_micros"):
        return f"{value / 1_000_000:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return value
