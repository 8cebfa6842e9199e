"""The HTML report: one self-contained page (inline CSS and SVG, no script, no fetch).

Each route gets its pipe drawn as a diagram: the route's hops left to right in the order
the data flows, what each one runs on or subcontracts to below it, every hop outlined by
the worst non-EU reach on it and tagged with the laws that reach it.
"""

from __future__ import annotations

import itertools
from html import escape

from souverain.sovereignty.loader import Pipes
from souverain.sovereignty.report import ACCESS_WORDS, STATUS_WORDS, VERDICT_MARK, countries, exposure_title, summary
from souverain.sovereignty.results import Analysis, NodeView, RouteAnalysis, RouteProfile
from souverain.terms import ASPECTS

W, H, GAP_X, GAP_Y, PAD = 226, 84, 34, 52, 16
STATUS_COLOUR = {"established": "#c62828", "residual": "#e65100", "unknown": "#6d6d6d", "none": "#2e7d32"}
LEVEL_COLOUR = {0: "#c62828", 1: "#e65100", 2: "#b28704", 3: "#2e7d32", 4: "#1b5e20"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d1d1f;margin:0;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:21px;margin:0}h3{font-size:16px;margin:22px 0 8px}
.meta{color:#555;font-size:12.5px}
section.route{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:20px 24px;margin:22px 0}
.badge{display:inline-block;color:#fff;border-radius:12px;padding:2px 10px;font-weight:600;font-size:12.5px;vertical-align:middle}
.pill{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap}
.pass{background:#e6f4ea;color:#1e7e34}.fail{background:#fde7e9;color:#b71c1c}.partial{background:#fff4e0;color:#a15c00}
.unknown{background:#eceff1;color:#455a64}.not_applicable{background:#f5f5f5;color:#9e9e9e}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e4e6ea;vertical-align:top}
th{background:#fafbfc;font-weight:600}
.breach{background:#fdecea;border-left:4px solid #c62828;padding:8px 12px;margin:12px 0;border-radius:4px}
.diagram{overflow-x:auto;border:1px solid #e4e6ea;border-radius:8px;background:#fcfcfd;margin-top:8px}
dl.qa{display:grid;grid-template-columns:220px 1fr;gap:6px 16px;margin:0}dl.qa dt{font-weight:600}dl.qa dd{margin:0}
dl.qa ul{margin:0;padding-left:18px}
details{margin:6px 0;border:1px solid #e4e6ea;border-radius:6px;padding:6px 10px;background:#fff}summary{cursor:pointer;font-weight:600}
.legend{font-size:12px;color:#444;margin-top:6px}.legend span{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-2px;margin-right:4px;border:2px solid}
code{font-size:12px;background:#f0f1f3;padding:0 3px;border-radius:3px}
"""


def to_html(analysis: Analysis, pipes: Pipes) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<title>Souverain pipes report</title><style>" + CSS + "</style></head><body><main>",
        "<h1>Pipes report</h1>",
        (
            f"<p class='meta'>Sources: {escape(', '.join(analysis.sources))}<br>Rules: {escape(analysis.rules_version)} "
            f"(<code>{analysis.rules_digest[:12]}</code>). Facts below <b>{escape(analysis.min_confidence)}</b> confidence, "
            "unverified and missing facts count as unknown; unknown never passes.</p>"
        ),
        _summary(analysis),
    ]
    for route in analysis.routes.values():
        parts.append(_route(route, pipes))
    if analysis.evidence:
        parts.append("<section class='route'><h2>Sources cited</h2><ul>")
        for eid, ev in analysis.evidence.items():
            parts.append(
                f"<li id='ev-{escape(eid)}'><code>{escape(eid)}</code> <span class='pill {_conf(ev.confidence)}'>{escape(ev.confidence)}</span> "
                f"{escape(ev.title or ev.source)} — {escape(ev.source)} (recorded {escape(ev.retrieved)}{', via ' + escape(ev.via) if ev.via else ''})</li>"
            )
        parts.append("</ul></section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _conf(confidence: str) -> str:
    return {"verified": "pass", "secondary": "partial", "asserted": "unknown", "unverified": "fail"}[confidence]


def _level_badge(level: int, name: str) -> str:
    return f"<span class='badge' style='background:{LEVEL_COLOUR[level]}'>level {level}: {escape(name)}</span>"


def _summary(analysis: Analysis) -> str:
    rows = []
    for name, r in analysis.routes.items():
        p = r.profile
        breaches = f"<span class='pill fail'>{len(r.breaches)}</span>" if r.breaches else "–"
        rows.append(
            f"<tr><td><a href='#route-{escape(name)}'>{escape(name)}</a><br><span class='meta'>{escape(r.title)}</span></td>"
            f"<td>{_level_badge(int(p.level), p.level_name)}</td><td>{_access(p)}</td>"
            f"<td>{escape(countries(p.residency.processing))}</td><td>{breaches}</td></tr>"
        )
    return (
        "<section class='route'><h2>Routes</h2><table><tr><th>Route</th><th>Level</th><th>Non-EU law can compel plaintext</th>"
        "<th>Processing</th><th>Breaches</th></tr>" + "".join(rows) + "</table></section>"
    )


def _access(p: RouteProfile) -> str:
    """The access pill: `residual` is its own answer (orange), with its one-line reason."""
    cls = {"yes": "fail", "residual": "partial", "no": "pass", "unknown": "unknown"}[p.non_eu_access]
    pill = f"<span class='pill {cls}'>{escape(ACCESS_WORDS[p.non_eu_access])}</span>"
    return pill + (f"<br><span class='meta'>{escape(p.non_eu_access_reason)}</span>" if p.non_eu_access != "no" else "")


def _tri(value: str, bad: str) -> str:
    cls = "unknown" if value == "unknown" else "fail" if value == bad else "pass"
    return f"<span class='pill {cls}'>{escape(value)}</span>"


def _route(r: RouteAnalysis, pipes: Pipes) -> str:
    p = r.profile
    seal = "unknown" if p.csf_seal is None else str(p.csf_seal)
    out = [f"<section class='route' id='route-{escape(r.route)}'>"]
    out.append(f"<h2>{escape(r.route)} {_level_badge(int(p.level), p.level_name)}</h2>")
    if r.title:
        out.append(f"<p><b>{escape(r.title)}</b></p>")
    out.append("<p>" + " ".join(escape(x) for x in summary(r, pipes)) + "</p>")
    facts = [
        f"Non-EU law can compel plaintext: {_access(p)}",
        f"CSF SEAL cap: <b>{seal}</b>",
        f"Personal data: <b>{escape(p.personal_data)}</b>",
        f"Profile digest <code>{p.digest[:16]}</code>",
    ]
    out.append("<p>" + " &nbsp;·&nbsp; ".join(facts) + "</p>")
    if r.endpoint or r.purpose.name:
        bits = [f"{escape(k)} <code>{escape(v)}</code>" for k, v in r.endpoint.items()]
        if r.purpose.name:
            bits.append(f"purpose: {escape(r.purpose.name)}")
        out.append(f"<p class='meta'>{' · '.join(bits)}</p>")
    for b in r.breaches:
        out.append(f"<div class='breach'><b>Breaks its requirements:</b> {escape(b)}</div>")
    out.append("<h3>The pipe</h3>")
    out.append(f"<div class='diagram'>{diagram(r, pipes)}</div>")
    out.append(_legend())
    out.append("<h3>The buyer's questions</h3><dl class='qa'>")
    for a in r.answers:
        items = "".join(f"<li>{escape(x)}</li>" for x in a.answers)
        out.append(f"<dt>{escape(a.question)}</dt><dd><ul>{items}</ul></dd>")
    out.append("</dl>")
    out.append("<h3>Why this level</h3><table><tr><th>Level</th><th>Condition</th><th>Holds</th><th>Why not</th></tr>")
    for c in r.ladder:
        why = "<br>".join(escape(x) for x in c.reasons[:8]) + (
            f"<br>… and {len(c.reasons) - 8} more" if len(c.reasons) > 8 else ""
        )
        out.append(
            f"<tr><td>{int(c.level)} {escape(c.level.label)}</td><td>{escape(c.condition)}</td><td>{_tri(c.result, bad='no')}</td><td>{why}</td></tr>"
        )
    out.append("</table>")
    out.append(_exposures(r, pipes))
    out.append("<h3>Residency</h3><table><tr><th>Facet</th><th>Countries</th><th>In the EEA</th></tr>")
    for facet in ASPECTS:
        cs = getattr(p.residency, facet)
        out.append(f"<tr><td>{facet}</td><td>{escape(countries(cs))}</td><td>{_tri(cs.in_eea, bad='no')}</td></tr>")
    out.append("</table>")
    out.append("<h3>Criteria</h3><table><tr><th>Criterion</th><th>Reference</th><th>Verdict</th><th>Why</th></tr>")
    for crit in r.criteria:
        fw = pipes.rules.frameworks[crit.framework].name
        seal_txt = f" · SEAL {crit.seal}" if crit.seal is not None else ""
        why = "<br>".join(escape(x) for x in crit.reasons[:4])
        out.append(
            f"<tr><td><code>{escape(crit.id)}</code> {escape(crit.title)}</td><td>{escape(fw)} {escape(crit.ref)}</td>"
            f"<td><span class='pill {crit.verdict}'>{escape(VERDICT_MARK[crit.verdict])}{seal_txt}</span></td><td>{why}</td></tr>"
        )
    out.append("</table>")
    if r.gaps:
        out.append("<h3>Gaps in the hop graph</h3><ul>" + "".join(f"<li>{escape(g)}</li>" for g in r.gaps) + "</ul>")
    out.append("</section>")
    return "\n".join(out)


def _exposures(r: RouteAnalysis, pipes: Pipes) -> str:
    reaching = [e for e in r.exposures if e.worst != "none"]
    out = ["<h3>Non-EU laws and transfers, hop by hop</h3>"]
    if not reaching:
        return out[0] + "<p>No hop has a non-EU reach or a transfer that is not ruled out.</p>"
    for e in reaching:
        colour = STATUS_COLOUR.get(e.status if e.status != "unknown" else "unknown")
        out.append(f"<details><summary style='color:{colour}'>{escape(exposure_title(pipes, e))}</summary><ul>")
        for s in e.steps:
            out.append(f"<li><b>{escape(s.test)}</b> ({escape(s.result)}): {escape(s.text)}</li>")
        for m in e.not_counted:
            out.append(
                f"<li><b>does not remove it:</b> {escape(m.title)}. <span class='meta'>{escape(m.why)}</span></li>"
            )
        out.append("</ul></details>")
    return "\n".join(out)


def _legend() -> str:
    items = [
        ("established non-EU reach", STATUS_COLOUR["established"]),
        ("residual (contested) reach", STATUS_COLOUR["residual"]),
        ("reach unknown", STATUS_COLOUR["unknown"]),
        ("no non-EU reach", STATUS_COLOUR["none"]),
    ]
    spans = "".join(f"<span><i class='sw' style='border-color:{c}'></i>{t}</span>" for t, c in items)
    return f"<div class='legend'>{spans}<span>dashed: reached only through an unverified fact</span><span>blue: run by the organisation</span></div>"


# ---- the diagram ------------------------------------------------------------------------


# Route hops with these roles branch off the data path rather than sit on it: the gateway
# writes to the log store, it does not forward prompts through it.
SIDE_ROLES = {
    "logging_sink": "logs to",
    "abuse_monitoring": "abuse monitoring",
    "support_access": "support access",
    "telemetry": "telemetry",
    "key_management": "keys from",
    "idp": "identity",
    "billing": "billing",
    "model_weights_source": "weights from",
}
_SHOWN = {"established": 3, "residual": 2, "unknown": 1, "none": 0}


def diagram(r: RouteAnalysis, pipes: Pipes) -> str:
    nodes = {n.hop: n for n in r.nodes}
    children: dict[str, list[str]] = {n.hop: [] for n in r.nodes}
    label: dict[str, str] = {}
    roots: list[str] = []
    for n in r.nodes:
        if n.via != "route":
            if n.parent in children:
                children[n.parent].append(n.hop)
                label[n.hop] = {"runs_on": "runs on", "flow": "data flow to"}.get(n.via, "subprocessor")
        elif n.role in SIDE_ROLES and roots:
            children[roots[-1]].append(n.hop)
            label[n.hop] = SIDE_ROLES[n.role]
        else:
            roots.append(n.hop)
    width: dict[str, int] = {}
    level: dict[str, int] = {}

    def span(hop: str, depth: int) -> int:
        level[hop] = depth
        width[hop] = max(1, sum(span(c, depth + 1) for c in children[hop]))
        return width[hop]

    x: dict[str, float] = {}

    def place(hop: str, left: float) -> None:
        x[hop] = left + (width[hop] - 1) * (W + GAP_X) / 2
        cursor = left
        for c in children[hop]:
            place(c, cursor)
            cursor += width[c] * (W + GAP_X)

    cursor = 0.0
    for root in roots:
        span(root, 0)
        place(root, cursor)
        cursor += width[root] * (W + GAP_X)
    depth = max(level.values(), default=0)
    total_w = max(cursor - GAP_X, W) + 2 * PAD
    total_h = (depth + 1) * (H + GAP_Y) - GAP_Y + 2 * PAD
    svg = [
        (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{total_w:.0f}' height='{total_h:.0f}' viewBox='0 0 {total_w:.0f} {total_h:.0f}' "
            "style='max-width:100%;height:auto;display:block' font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif' "
            "role='img' aria-label='hop diagram'>"
        ),
        (
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
            "<path d='M0,0 L10,5 L0,10 z' fill='#555'/></marker></defs>"
        ),
    ]

    def top(hop: str) -> tuple[float, float]:
        return x[hop] + PAD, level[hop] * (H + GAP_Y) + PAD

    for a, b in itertools.pairwise(roots):
        (ax, ay), (bx, by) = top(a), top(b)
        svg.append(
            f"<line x1='{ax + W:.0f}' y1='{ay + H / 2:.0f}' x2='{bx - 2:.0f}' y2='{by + H / 2:.0f}' stroke='#555' stroke-width='1.6' marker-end='url(#arrow)'/>"
        )
    for hop, kids in children.items():
        for kid in kids:
            (px, py), (cx, cy) = top(hop), top(kid)
            dash = "" if nodes[kid].certain else " stroke-dasharray='5 4'"
            svg.append(
                f"<path d='M{px + W / 2:.0f},{py + H:.0f} C{px + W / 2:.0f},{py + H + GAP_Y / 2:.0f} {cx + W / 2:.0f},{cy - GAP_Y / 2:.0f} {cx + W / 2:.0f},{cy - 2:.0f}' "
                f"fill='none' stroke='#777' stroke-width='1.4'{dash} marker-end='url(#arrow)'/>"
            )
            svg.append(
                f"<text x='{cx + W / 2 + 6:.0f}' y='{cy - GAP_Y / 2 + 4:.0f}' font-size='11' fill='#666'>{escape(label.get(kid, ''))}</text>"
            )
    for hop in x:
        svg.append(_box(nodes[hop], *top(hop), pipes))
    svg.append("</svg>")
    return "".join(svg)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _box(n: NodeView, left: float, top: float, pipes: Pipes) -> str:
    # The outline shows what is established; a reach that is only possible is grey.
    shown = max((reach.status for reach in n.laws), key=_SHOWN.__getitem__, default="none")
    colour = STATUS_COLOUR[shown if n.third_party != "unknown" or shown != "none" else "unknown"]
    fill = "#e8f0fe" if n.third_party == "no" else "#ffffff"
    dash = "" if n.certain else " stroke-dasharray='6 4'"
    title = _clip(pipes.hop_titles.get(n.hop) or n.hop, 27)
    who = _clip(n.operator_name + (" (in-house)" if n.third_party == "no" else ""), 32)
    sees = {"yes": "sees plaintext", "no": "no plaintext", "unknown": "plaintext: unknown"}[n.reach]
    out = [
        f"<g><title>{escape(n.hop)}: {escape(n.operator_name)}; worst non-EU reach: {escape(STATUS_WORDS[n.worst])}</title>",
        f"<rect x='{left:.0f}' y='{top:.0f}' width='{W}' height='{H}' rx='8' fill='{fill}' stroke='{colour}' stroke-width='2.4'{dash}/>",
        f"<text x='{left + 10:.0f}' y='{top + 19:.0f}' font-size='12.5' font-weight='600' fill='#1d1d1f'>{escape(title)}</text>",
        f"<text x='{left + 10:.0f}' y='{top + 36:.0f}' font-size='11.5' fill='#333'>{escape(who)}</text>",
        f"<text x='{left + 10:.0f}' y='{top + 52:.0f}' font-size='11' fill='#666'>{escape(n.role.replace('_', ' '))} · {sees}</text>",
    ]
    bx = left + 10
    for reach in n.laws:
        short = pipes.rules.laws[reach.law].short
        text_w = 10 + len(short) * 6.6
        badge = STATUS_COLOUR[reach.status if reach.status != "none" else "unknown"]
        out.append(f"<rect x='{bx:.0f}' y='{top + 60:.0f}' width='{text_w:.0f}' height='17' rx='8' fill='{badge}'/>")
        out.append(
            f"<text x='{bx + 4:.0f}' y='{top + 72:.0f}' font-size='10.5' font-weight='600' fill='#fff'>{escape(short)}</text>"
        )
        bx += text_w + 5
    if not n.laws:
        mark = "in-house" if n.third_party == "no" else "no non-EU reach"
        out.append(
            f"<text x='{left + 10:.0f}' y='{top + 73:.0f}' font-size='10.5' fill='{STATUS_COLOUR['none']}'>{mark}</text>"
        )
    out.append("</g>")
    return "".join(out)
