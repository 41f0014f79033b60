"""The demo's figures: collected per phase, shown as a rich table or emitted as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["PhaseFigures", "Summary"]

Figure = int | float | str | bool


@dataclass
class PhaseFigures:
    """What one phase did: its figures in insertion order, how long it took, or why it was skipped."""

    name: str
    title: str
    figures: dict[str, Figure] = field(default_factory=dict)
    duration_s: float = 0.0
    skipped: str | None = None

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

    @property
    def dashboard_url(self) -> str:
        return f"{self.base_url}/dashboard"

    def phase(self, name: str) -> PhaseFigures | None:
        return next((p for p in self.phases if p.name == name), None)

    def figure(self, phase: str, key: str) -> Figure | None:
        p = self.phase(phase)
        return None if p is None else p.figures.get(key)

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
            "phases": {
                p.name: {**p.figures, "duration_s": round(p.duration_s, 3)}
                for p in self.phases
                if p.skipped is None
            },
            "skipped": self.skipped,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    def render(self, console: Console) -> None:
        table = Table(title=f"Civitas demo: {self.citizens:,} citizens, seed {self.seed}, day {self.day}")
        table.add_column("phase", style="bold")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("time", justify="right", style="dim")
        for p in self.phases:
            if p.skipped is not None:
                table.add_row(p.title, f"[yellow]skipped: {p.skipped}[/]", "", "")
                continue
            first = True
            for key, value in p.figures.items():
                table.add_row(
                    p.title if first else "",
                    key.replace("_", " "),
                    _format(key, value),
                    f"{p.duration_s:.1f} s" if first else "",
                )
                first = False
            if first:
                table.add_row(p.title, "", "", f"{p.duration_s:.1f} s")
            table.add_section()
        console.print(table)
        verdict = "[green]ok[/]" if self.ok else f"[red]failed[/]: {self.error}"
        console.print(f"demo {verdict} in {self.duration_s:.1f} s; data in {self.data_dir}")
        console.print(f"dashboard: {self.dashboard_url}")


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
