"""The public dashboard: one self-contained HTML page with server-rendered inline SVG charts.

No scripts, fonts or styles are fetched from anywhere: the page works offline and on a phone.
Every number is a released DP value shown with its 95% accuracy (error bars), and the page
explains the privacy guarantee in plain language.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from analytics.measurements import CONVERSION_DELTA, epsilon_of_rho
from analytics.service import Analytics
from analytics.standard import StandardRelease, publish_day

__all__ = ["Bar", "DashboardItem", "build_dashboard", "day_label", "render_dashboard", "render_unavailable"]

PALETTE: Final = ("#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7b83", "#cf222e", "#57606a")

CSS: Final = """
:root { color-scheme: light; --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --accent:#1f6feb; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:#fff; }
header { background:var(--bg); border-bottom:1px solid var(--line); padding:1rem; }
header h1 { margin:0; font-size:1.4rem; }
header p { margin:.25rem 0 0; color:var(--muted); }
main { max-width:1100px; margin:0 auto; padding:1rem; }
section { margin:1.5rem 0; }
h2 { font-size:1.15rem; margin:0 0 .5rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(300px, 1fr)); gap:1rem; }
figure.chart-card.wide { grid-column:1 / -1; }
figure.chart-card { margin:0; border:1px solid var(--line); border-radius:8px; padding:.75rem; background:#fff; min-width:0; }
figure.chart-card figcaption { font-weight:600; margin-bottom:.25rem; }
figure.chart-card p { margin:.25rem 0 0; color:var(--muted); font-size:.85rem; }
svg.chart { width:100%; height:auto; display:block; }
figure.wide > svg.chart { max-width:760px; }
svg.chart text { font-size:11px; fill:var(--muted); }
svg.chart.h text { font-size:11px; }
svg.chart text.label { fill:var(--ink); }
svg.chart .axis { stroke:var(--line); stroke-width:1; }
svg.chart .err { stroke:#24292f; stroke-width:1.2; }
.multiples { display:grid; grid-template-columns:repeat(auto-fit, minmax(250px, 1fr)); gap:.75rem; }
.multiples h3 { font-size:.95rem; margin:.25rem 0; }
.table-wrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:.95rem; }
th, td { text-align:right; padding:.4rem .6rem; border-bottom:1px solid var(--line); white-space:nowrap; }
th:first-child, td:first-child { text-align:left; }
td .pm { color:var(--muted); font-size:.85em; }
.privacy { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:1rem; }
.privacy p { margin:.5rem 0; }
.params { font-size:.9rem; color:var(--muted); }
footer { color:var(--muted); font-size:.85rem; padding:1rem; text-align:center; }
@media (max-width: 480px) {
  body { font-size:15px; } main { padding:.5rem; }
  th, td { padding:.3rem .35rem; } th { white-space:normal; font-size:.85rem; }
  td .pm { display:block; }
}
"""


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    low: float | None
    high: float | None
    accuracy: float | None


@dataclass(frozen=True)
class DashboardItem:
    spec: StandardRelease
    release: dict[str, Any]


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _digits(spec: StandardRelease, cells: Sequence[dict[str, Any]] = ()) -> int:
    if spec.statistic == "count":
        return 0
    if spec.statistic == "mean":
        return 1
    values = [
        abs(float(e["display"]))
        for c in cells
        for e in c.get("estimates", [])
        if e.get("display") is not None
    ]
    return 0 if values and max(values) >= 1000 else 2


def _estimate(cell: dict[str, Any], statistic: str) -> dict[str, Any] | None:
    for e in cell.get("estimates", []):
        if e.get("statistic") == statistic:
            return dict(e)
    return None


def _bar(cell: dict[str, Any], statistic: str, label: str) -> Bar:
    e = _estimate(cell, statistic)
    if e is None or e.get("display") is None:
        return Bar(label, None, None, None, None)
    value = float(e["display"])
    if statistic == "mean":
        interval = e.get("interval_90")
        low, high = (float(interval[0]), float(interval[1])) if interval else (None, None)
        return Bar(label, value, low, high, None)
    accuracy = e.get("accuracy_95")
    if accuracy is None:
        return Bar(label, value, None, None, None)
    raw = float(e["value"])
    return Bar(label, value, max(raw - float(accuracy), 0.0), raw + float(accuracy), float(accuracy))


def _nice_max(x: float) -> float:
    if x <= 0 or not math.isfinite(x):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(x))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= x:
            return float(step * magnitude)
    return float(10 * magnitude)


def _hbar_svg(bars: Sequence[Bar], key: str, unit: str, digits: int) -> str:
    width, left, right, row = 420, 64, 104, 26
    height = row * len(bars) + 30
    top = max([b.high or 0.0 for b in bars] + [b.value or 0.0 for b in bars])
    vmax = _nice_max(top)
    plot = width - left - right

    def x(v: float) -> float:
        return left + plot * max(0.0, min(v, vmax)) / vmax

    parts = [
        f'<svg class="chart h" data-chart="{key}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(key)} chart" preserveAspectRatio="xMinYMin meet">'
    ]
    for i in range(5):
        gx = left + plot * i / 4
        parts.append(f'<line class="axis" x1="{gx:.1f}" y1="4" x2="{gx:.1f}" y2="{height - 22}"/>')
        parts.append(
            f'<text x="{gx:.1f}" y="{height - 8}" text-anchor="middle">{_fmt(vmax * i / 4, 0 if vmax >= 10 else 2)}</text>'
        )
    parts.append(f'<g class="series" data-series="{html.escape(key)}">')
    for i, b in enumerate(bars):
        y = 6 + i * row
        parts.append(
            f'<text class="label" x="{left - 6}" y="{y + row / 2}" text-anchor="end" dominant-baseline="middle">'
            f"{html.escape(b.label)}</text>"
        )
        if b.value is None:
            continue
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect class="bar" data-value="{b.value}" x="{left}" y="{y + 5}" width="{max(x(b.value) - left, 1):.1f}" '
            f'height="{row - 12}" fill="{color}" fill-opacity="0.8"><title>{html.escape(b.label)}: '
            f"{_fmt(b.value, digits)} {html.escape(unit)}</title></rect>"
        )
        if b.low is not None and b.high is not None:
            cy = y + row / 2 - 1
            parts.append(
                f'<g class="errorbar"><line class="err" x1="{x(b.low):.1f}" y1="{cy}" x2="{x(b.high):.1f}" y2="{cy}"/>'
                f'<line class="err" x1="{x(b.low):.1f}" y1="{cy - 5}" x2="{x(b.low):.1f}" y2="{cy + 5}"/>'
                f'<line class="err" x1="{x(b.high):.1f}" y1="{cy - 5}" x2="{x(b.high):.1f}" y2="{cy + 5}"/></g>'
            )
        pm = f" ± {_fmt(b.accuracy, digits)}" if b.accuracy is not None else ""
        parts.append(
            f'<text class="label" x="{width - right + 6}" y="{y + row / 2}" dominant-baseline="middle">'
            f"{_fmt(b.value, digits)}{pm}</text>"
        )
    parts.append("</g></svg>")
    return "".join(parts)


def _vbar_svg(
    bars: Sequence[Bar],
    key: str,
    series: str,
    unit: str,
    digits: int,
    vmax: float,
    color: str,
    width: int = 360,
    height: int = 170,
) -> str:
    left, bottom, top_pad = 40, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    n = max(len(bars), 1)
    slot = plot_w / n

    def y(v: float) -> float:
        return top_pad + plot_h * (1 - max(0.0, min(v, vmax)) / vmax)

    parts = [
        f'<svg class="chart" data-chart="{html.escape(key)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(series)}" preserveAspectRatio="xMinYMin meet">'
    ]
    for i in range(5):
        gy = top_pad + plot_h * i / 4
        parts.append(f'<line class="axis" x1="{left}" y1="{gy:.1f}" x2="{width - 8}" y2="{gy:.1f}"/>')
        parts.append(
            f'<text x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end">{_fmt(vmax * (4 - i) / 4, 0 if vmax >= 10 else 2)}</text>'
        )
    parts.append(f'<g class="series" data-series="{html.escape(series)}">')
    for i, b in enumerate(bars):
        x0 = left + i * slot
        if i % 6 == 0:
            parts.append(
                f'<text x="{x0 + slot / 2:.1f}" y="{height - 8}" text-anchor="middle">{html.escape(b.label)}</text>'
            )
        if b.value is None:
            continue
        parts.append(
            f'<rect class="bar" data-value="{b.value}" x="{x0 + slot * 0.15:.1f}" y="{y(b.value):.1f}" '
            f'width="{slot * 0.7:.1f}" height="{max(y(0) - y(b.value), 0.5):.1f}" fill="{color}" fill-opacity="0.75">'
            f"<title>{html.escape(series)} {html.escape(b.label)}: {_fmt(b.value, digits)}"
            f"{' ± ' + _fmt(b.accuracy, digits) if b.accuracy is not None else ''} {html.escape(unit)}</title></rect>"
        )
        if b.low is not None and b.high is not None:
            cx = x0 + slot / 2
            parts.append(
                f'<g class="errorbar"><line class="err" x1="{cx:.1f}" y1="{y(b.low):.1f}" x2="{cx:.1f}" y2="{y(b.high):.1f}"/>'
                f'<line class="err" x1="{cx - 3:.1f}" y1="{y(b.high):.1f}" x2="{cx + 3:.1f}" y2="{y(b.high):.1f}"/></g>'
            )
    parts.append(
        f'<line class="axis" x1="{left}" y1="{y(0):.1f}" x2="{width - 8}" y2="{y(0):.1f}"/></g></svg>'
    )
    return "".join(parts)


def _hour_label(iso: str) -> str:
    return iso[11:13] + "h" if len(iso) >= 13 else iso


def _figure(item: DashboardItem, body: str, extra_class: str = "") -> str:
    privacy = item.release["privacy"]
    note = (
        f"Error bars: 95% accuracy from OpenDP{' (mean: 90% interval from the sum and count)' if item.spec.statistic == 'mean' else ''}. "
        f"Privacy loss of this release: ρ = {privacy['rho']:.3g} (ε = {privacy['epsilon']:.2f} at δ = {privacy['epsilon_delta']:.0e})."
    )
    return (
        f'<figure class="chart-card {extra_class}" data-release="{html.escape(item.release["id"])}" '
        f'data-key="{html.escape(item.spec.key)}"><figcaption>{html.escape(item.spec.title)}</figcaption>'
        f"<p>{html.escape(item.spec.description)}</p>{body}<p>{html.escape(note)}</p></figure>"
    )


def _chart(item: DashboardItem) -> str:
    spec, release = item.spec, item.release
    cells = release["cells"]
    digits = _digits(spec, cells)
    if spec.chart == "bars":
        bars = [_bar(c, spec.statistic, str(c.get("district", ""))) for c in cells]
        return _figure(item, _hbar_svg(bars, spec.key, spec.unit_label, digits))
    if spec.chart == "hours":
        bars = [_bar(c, spec.statistic, _hour_label(str(c.get("hour", "")))) for c in cells]
        vmax = _nice_max(max([b.high or 0.0 for b in bars] + [1e-9]))
        return _figure(
            item,
            _vbar_svg(
                bars, spec.key, "city", spec.unit_label, digits, vmax, PALETTE[0], width=720, height=230
            ),
            "wide",
        )
    # district-hours: small multiples on one shared scale
    districts: dict[str, list[Bar]] = {}
    for c in cells:
        districts.setdefault(str(c.get("district", "")), []).append(
            _bar(c, spec.statistic, _hour_label(str(c.get("hour", ""))))
        )
    vmax = _nice_max(max([b.high or 0.0 for bars in districts.values() for b in bars] + [1e-9]))
    panels = "".join(
        f'<div class="panel"><h3>{html.escape(name)}</h3>'
        f"{_vbar_svg(bars, spec.key, name, spec.unit_label, digits, vmax, PALETTE[i % len(PALETTE)])}</div>"
        for i, (name, bars) in enumerate(districts.items())
    )
    return _figure(item, f'<div class="multiples">{panels}</div>', "wide")


def _district_table(items: Sequence[DashboardItem]) -> str:
    columns = [i for i in items if i.spec.chart == "bars"]
    if not columns:
        return ""
    names: list[str] = []
    for item in columns:
        for c in item.release["cells"]:
            if str(c.get("district")) not in names:
                names.append(str(c.get("district")))
    head = "".join(
        f"<th>{html.escape(i.spec.title.split(':')[0])} ({html.escape(i.spec.unit_label)})</th>"
        for i in columns
    )
    rows = []
    for name in names:
        tds = []
        for item in columns:
            cell = next((c for c in item.release["cells"] if str(c.get("district")) == name), None)
            bar = _bar(cell, item.spec.statistic, name) if cell else Bar(name, None, None, None, None)
            digits = _digits(item.spec, item.release["cells"])
            if bar.accuracy is not None:
                extra = f' <span class="pm">± {_fmt(bar.accuracy, digits)}</span>'
            elif bar.low is not None and bar.high is not None:
                extra = f' <span class="pm">[{_fmt(bar.low, digits)}–{_fmt(bar.high, digits)}]</span>'
            else:
                extra = ""
            tds.append(f"<td>{_fmt(bar.value, digits)}{extra}</td>")
        rows.append(f"<tr><td>{html.escape(name)}</td>{''.join(tds)}</tr>")
    return (
        '<section><h2>Districts at a glance</h2><div class="table-wrap"><table id="district-table">'
        f"<thead><tr><th>District</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        "<p class='params'>± is the 95% accuracy stated by OpenDP; brackets are 90% intervals for means.</p></section>"
    )


def _privacy_section(
    items: Sequence[DashboardItem], total_rho: float, total_epsilon: float, delta: float
) -> str:
    rows = "".join(
        f"<li>{html.escape(i.spec.title)}: ρ = {i.release['privacy']['rho']:.3g}; at most "
        f"{i.release['query']['bounds']['rows_per_cell']} readings per person per cell, "
        f"{i.release['query']['bounds']['cells_per_unit']} cells per person</li>"
        for i in items
    )
    return f"""<section class="privacy" id="privacy"><h2>How your privacy is protected</h2>
<p>These figures are computed from readings citizens agreed to share, but no figure reveals anything
about any one person. Before counting, each person's contribution is capped (a few readings per
district and hour), and then carefully calibrated random noise is added to every number. The noise is
large enough to hide whether any single person's data — all of their devices together — was used at
all, and small enough that city-wide patterns stay clear.</p>
<p>The error bars show how far each number may be from the exact (capped) figure: 19 times out of 20
the truth lies within them. Small negative counts can occur before rounding; displayed counts are
clamped at zero and rounded, which does not weaken the protection.</p>
<p>Formally, the day's releases together satisfy zero-concentrated differential privacy with
ρ = {total_rho:.3g} per person, which implies (ε = {total_epsilon:.2f}, δ = {delta:.0e})-differential
privacy. Each day's data has its own budget; analysts draw on the same daily budget, which
the city caps, and once it is spent no further figures about that day are released.</p>
<ul class="params">{rows}</ul>
<p class="params">Computed with OpenDP; the noise is Gaussian (discrete Gaussian for counts).</p></section>"""


def render_dashboard(
    *,
    day_label: str,
    items: Sequence[DashboardItem],
    total_rho: float,
    total_epsilon: float,
    epsilon_delta: float,
    generated_ns: int,
) -> str:
    charts = "".join(_chart(i) for i in items)
    generated = dt.datetime.fromtimestamp(generated_ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Civitas city dashboard — {html.escape(day_label)}</title>
<style>{CSS}</style></head>
<body><header><h1>Civitas city dashboard</h1>
<p>{html.escape(day_label)} (UTC) · differentially private statistics · no individual can be singled out</p></header>
<main>
<section><h2>The day in figures</h2><div class="grid" id="charts">{charts}</div></section>
{_district_table(items)}
{_privacy_section(items, total_rho, total_epsilon, epsilon_delta)}
</main>
<footer>Generated {html.escape(generated)} · every number is a differentially private release with its stated accuracy.</footer>
</body></html>"""


def render_unavailable(day_label: str, reason: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Civitas city dashboard — {html.escape(day_label)}</title><style>{CSS}</style></head>
<body><header><h1>Civitas city dashboard</h1><p>{html.escape(day_label)} (UTC)</p></header>
<main><section class="privacy"><h2>No figures for this day</h2><p>{html.escape(reason)}</p></section></main>
</body></html>"""


def day_label(day_start_ns: int) -> str:
    return dt.datetime.fromtimestamp(day_start_ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%d")


def build_dashboard(analytics: Analytics, day_start_ns: int) -> str:
    """Publish (or re-serve) the day's standard releases and render the page.

    Raises BudgetExceeded when the day's budget cannot cover a release not yet made.
    """
    outcomes = publish_day(analytics, day_start_ns)
    items = [DashboardItem(spec, outcome.release.body) for spec, outcome in outcomes]
    total_rho = sum(float(i.release["privacy"]["rho"]) for i in items)
    return render_dashboard(
        day_label=day_label(day_start_ns),
        items=items,
        total_rho=total_rho,
        total_epsilon=epsilon_of_rho(total_rho, CONVERSION_DELTA),
        epsilon_delta=CONVERSION_DELTA,
        generated_ns=analytics.clock(),
    )
