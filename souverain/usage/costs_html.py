"""The cost case as one self-contained HTML page (`souverain usage costs --format html`):
inline CSS and server-rendered SVG, no script, font or image from anywhere, so an
auditor can open it offline. Rendered from the JSON the API returns (costs.py's
`CostCase.to_json`), so the page and the API never disagree. Every name is escaped.

Each self-hosted route gets a chart of cost a month against tokens a month: the
deployment's fixed cost (a step each time another deployment is needed), a line per API
route, the break-even points and the period's volume marked. The chart's geometry is on
the `svg` as data attributes (`data-x-max`, `data-plot-*`), which the browser test uses to
check that a marker lies where its figure says.
"""

from __future__ import annotations

import math
from decimal import Decimal
from html import escape
from typing import Any

WIDTH, HEIGHT = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 20, 50
COLOURS = ("#c0392b", "#2471a3", "#7d3c98", "#ca6f1e", "#138d75", "#5d6d7e")
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1c2833; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #d5d8dc; padding: 0.25em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #7b241c; } .muted { color: #566573; }
svg text { font: 12px system-ui, sans-serif; fill: #1c2833; }
svg .axis { stroke: #1c2833; stroke-width: 1; } svg .grid { stroke: #e5e8e8; stroke-width: 1; }
svg .self-hosted { stroke: #1e8449; stroke-width: 3; fill: none; }
svg .api { stroke-width: 2; fill: none; }
svg .volume { stroke: #566573; stroke-width: 1.5; stroke-dasharray: 6 4; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at least `value` (a round axis end)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def short(tokens: float) -> str:
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if tokens >= size:
            return f"{tokens / size:.3g}{unit}"
    return f"{tokens:g}"


def chart(route: dict[str, Any], currency: str) -> str:
    """The SVG for one self-hosted route."""
    per_month = float(route["monthly_cost"]["total"])
    capacity = route["capacity_tokens_per_month"]
    volume = route["tokens_per_month"]
    apis = [a for a in route["against"] if a["per_million"] is not None and Decimal(a["per_million"]) > 0]
    candidates = [volume * 1.2]
    candidates += [a["break_even_tokens_per_month"] * 2 for a in apis if a["break_even_tokens_per_month"]]
    if capacity:
        candidates.append(capacity * 1.1)
    x_max = nice_max(max(candidates))

    def fixed(x: float) -> float:
        steps = 1 if not capacity or x <= 0 else max(1, math.ceil(x / capacity))
        return per_month * steps

    y_top = max([fixed(x_max)] + [float(a["per_million"]) * x_max / 1e6 for a in apis])
    y_max = nice_max(y_top * 1.05)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + x / x_max * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - min(y, y_max) / y_max * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cost-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" data-route="{_e(route["route"])}" '
        f'data-x-max="{x_max:g}" data-y-max="{y_max:g}" data-plot-left="{LEFT}" data-plot-top="{TOP}" '
        f'data-plot-width="{plot_w}" data-plot-height="{plot_h}">',
        f"<title>Cost a month against tokens a month, {_e(route['route'])}</title>",
    ]
    for i in range(6):
        x, y = x_max * i / 5, y_max * i / 5
        out.append(f'<line class="grid" x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + plot_h}"/>')
        out.append(f'<line class="grid" x1="{LEFT}" y1="{py(y):.1f}" x2="{LEFT + plot_w}" y2="{py(y):.1f}"/>')
        out.append(
            f'<text class="tick x-tick" x="{px(x):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{short(x)}</text>'
        )
        out.append(f'<text class="tick y-tick" x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>')
    out.append(
        f'<text class="axis-label" x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">tokens a month</text>'
    )
    out.append(
        f'<text class="axis-label" x="14" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2})">{_e(currency)} a month</text>'
    )
    # self-hosted: flat, one step up each time another deployment is needed
    points: list[tuple[float, float]] = []
    edges = [0.0]
    if capacity:
        k = 1
        while k * capacity < x_max:
            edges.append(float(k * capacity))
            k += 1
    edges.append(x_max)
    for a, b in zip(edges, edges[1:], strict=False):
        level = fixed(b)
        points += [(a, level), (b, level)]
    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    out.append(
        f'<polyline class="self-hosted" data-route="{_e(route["route"])}" points="{path}">'
        f"<title>{_e(route['route'])}: {per_month:,.2f} {_e(currency)} a month per deployment</title></polyline>"
    )
    out.append(
        f'<text class="line-label self-hosted-label" x="{LEFT + 6}" y="{py(per_month) - 6:.1f}" fill="#1e8449">'
        f"self-hosted {_e(route['route'])}</text>"
    )
    for i, a in enumerate(apis):
        colour = COLOURS[i % len(COLOURS)]
        end_x = min(x_max, y_max / float(a["per_million"]) * 1e6)
        out.append(
            f'<line class="api" data-route="{_e(a["route"])}" stroke="{colour}" x1="{px(0):.1f}" y1="{py(0):.1f}" '
            f'x2="{px(end_x):.1f}" y2="{py(float(a["per_million"]) * end_x / 1e6):.1f}">'
            f"<title>{_e(a['route'])}: {_e(a['per_million'])} {_e(currency)} a million tokens</title></line>"
        )
        out.append(
            f'<text class="line-label api-label" x="{px(end_x) - 4:.1f}" '
            f'y="{py(float(a["per_million"]) * end_x / 1e6) - 6:.1f}" text-anchor="end" fill="{colour}">'
            f"{_e(a['route'])}</text>"
        )
        be = a["break_even_tokens_per_month"]
        if be:
            out.append(
                f'<circle class="break-even" data-route="{_e(a["route"])}" data-tokens="{be}" cx="{px(be):.1f}" '
                f'cy="{py(per_month):.1f}" r="6" fill="{colour}" stroke="#fff" stroke-width="1.5">'
                f"<title>break-even with {_e(a['route'])}: {be:,} tokens a month</title></circle>"
            )
            out.append(
                f'<text class="break-even-label" x="{px(be) + 8:.1f}" y="{py(per_month) - 8:.1f}">'
                f"break-even {short(be)}</text>"
            )
    if volume:
        out.append(
            f'<line class="volume" data-tokens="{volume}" x1="{px(volume):.1f}" y1="{TOP}" '
            f'x2="{px(volume):.1f}" y2="{TOP + plot_h}"><title>this period: {volume:,} tokens a month</title></line>'
        )
        out.append(
            f'<text class="volume-label" x="{px(volume) + 4:.1f}" y="{TOP + 12}">this period {short(volume)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _route(route: dict[str, Any], currency: str) -> str:
    name = _e(route["route"])
    cur = _e(currency)
    t = route["tokens"]
    rows = [
        ("monthly cost of the deployment", f"{_e(route['monthly_cost']['total'])} {cur}"),
        *(
            (f"&nbsp;&nbsp;{_e(part)}", f"{_e(v)} {cur}")
            for part, v in route["monthly_cost"].items()
            if part != "total"
        ),
        ("cost over the period (used or not)", f"{_e(route['period_cost'])} {cur}"),
        ("charged to the period's requests", f"{_e(route['charged_to_requests'])} {cur}"),
        ("requests answered", _e(route["requests"])),
        ("tokens (input / output / cached)", f"{t['total']:,} ({t['input']:,} / {t['output']:,} / {t['cached']:,})"),
        ("tokens a month at this rate", f"{route['tokens_per_month']:,}"),
    ]
    if route["tokens_per_second"] is not None:
        rows.append(
            ("throughput while busy", f"{route['tokens_per_second']:g} tokens/s ({_e(route['throughput_source'])})")
        )
        rows.append(("capacity at full use", f"{route['capacity_tokens_per_month']:,} tokens a month"))
    if route["utilisation"] is not None:
        rows.append(("utilisation", f"{Decimal(route['utilisation']) * 100:.1f}%"))
    if route["cost_per_million"] is not None:
        rows.append(("cost a million tokens", f"{_e(route['cost_per_million'])} {cur}"))
    parts = [f'<section class="route" data-route="{name}"><h2>Self-hosted route {name}</h2>', "<table>"]
    parts += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows]
    parts.append("</table>")
    if route["against"]:
        parts.append(
            '<table class="against"><tr><th>API route</th><th>the same tokens</th><th>a million tokens</th>'
            "<th>saving by self-hosting</th><th>break-even, tokens a month</th></tr>"
        )
        for a in route["against"]:
            be = a["break_even_tokens_per_month"]
            parts.append(
                f'<tr data-route="{_e(a["route"])}"><td>{_e(a["route"])}</td><td>{_e(a["cost"] or "no data")}</td>'
                f"<td>{_e(a['per_million'] or 'no data')}</td><td>{_e(a['saving'] or 'no data')}</td>"
                f"<td>{f'{be:,}' if be is not None else _e(a.get('no_break_even', 'no data'))}</td></tr>"
            )
        parts.append("</table>")
        parts.append(chart(route, currency))
    if route["sensitivity"]:
        parts.append('<h3>Cost a million tokens by utilisation</h3><table class="sensitivity"><tr><th>use</th>')
        parts += [f"<th>{Decimal(s['utilisation']) * 100:.0f}%</th>" for s in route["sensitivity"]]
        parts.append(f"</tr><tr><td>{cur}</td>")
        parts += [f"<td>{_e(s['cost_per_million'])}</td>" for s in route["sensitivity"]]
        parts.append("</tr></table>")
    parts.append("</section>")
    return "\n".join(parts)


def html(data: dict[str, Any]) -> str:
    currency = data["currency"]
    title = f"The cost case, {data['since']} to {data['until']}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{data["days"]} days of traffic from the usage records; costs in {_e(currency)}; '
        f"a month is {data['hours_per_month']} hours. The self-hosted cost is fixed (one more deployment "
        "each time the volume passes its capacity); an API route's cost grows with every token. Break-even: "
        "the monthly volume at which both cost the same.</p>",
    ]
    body += [_route(r, currency) for r in data["self_hosted"]]
    body += [f'<p class="note">{_e(n)}</p>' for n in data["notes"]]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
