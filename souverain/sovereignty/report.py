"""Reports: JSON (the full analysis), Markdown (for a pull request or a wiki page).

Both are rendered from the same `Analysis`; the HTML page lives in `report_html.py`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from souverain.sovereignty.facts import FactRef, describe
from souverain.sovereignty.loader import Pipes
from souverain.sovereignty.results import Analysis, CountrySet, Exposure, RouteAnalysis, RouteProfile
from souverain.terms import ASPECTS

VERDICT_MARK = {
    "pass": "✔ pass",
    "fail": "✖ fail",
    "partial": "~ partial",
    "unknown": "? unknown",
    "not_applicable": "– n/a",
}
STATUS_WORDS = {"none": "none", "residual": "residual (contested)", "established": "established", "unknown": "unknown"}


def to_json(analysis: Analysis) -> str:
    return msgspec.json.format(msgspec.json.encode(analysis), indent=2).decode() + "\n"


def countries(facet: CountrySet) -> str:
    shown = ", ".join(facet.countries) or "none"
    if facet.possible:
        shown += f"; possibly {', '.join(facet.possible)}"
    if not facet.complete:
        shown += " (incomplete)"
    return shown


def exposure_title(pipes: Pipes, exp: Exposure) -> str:
    law = pipes.rules.laws[exp.law]
    status = STATUS_WORDS[exp.status] + (f", at worst {exp.worst}" if exp.worst != exp.status else "")
    return f"{law.name} at {exp.hop}: {status}"


ACCESS_WORDS = {"yes": "yes (established)", "residual": "residual (contested)", "no": "no", "unknown": "unknown"}


def access_cell(profile: RouteProfile) -> str:
    """The answer to "can a non-EU law compel plaintext?" as the summary tables show it."""
    words = ACCESS_WORDS[profile.non_eu_access]
    return f"{words}: {profile.non_eu_access_reason}" if profile.non_eu_access in ("residual", "unknown") else words


def summary(r: RouteAnalysis, pipes: Pipes) -> list[str]:
    """The route in plain sentences, each derived from the profile the tables show (the
    access column, the laws, the residency table), so that no sentence can contradict them."""
    p = r.profile
    out = [f"Level: {p.level_name} ({int(p.level)})."]
    if p.non_eu_access == "no":
        out.append("No non-EU law can compel plaintext on this route.")
    elif p.non_eu_access == "yes":
        out.append(f"A non-EU law can compel plaintext: {p.non_eu_access_reason}.")
    elif p.non_eu_access == "residual":
        out.append(
            f"A non-EU law can compel plaintext only through a contested, residual reach: {p.non_eu_access_reason}."
        )
    else:
        out.append(f"Whether a non-EU law can compel plaintext is unknown; {p.non_eu_access_reason}.")
    outside, open_ = [], []
    for facet in ASPECTS:
        cs: CountrySet = getattr(p.residency, facet)
        if cs.in_eea == "no":
            outside.append(f"{facet} to {', '.join(c for c in cs.countries if not pipes.rules.in_zone(c, 'EEA'))}")
        elif cs.in_eea == "unknown":
            open_.append(facet)
    if outside:
        out.append(f"Data leaves the EEA: {'; '.join(outside)}.")
    if open_:
        out.append(f"Not known to stay in the EEA: {', '.join(open_)}.")
    if not outside and not open_:
        out.append(
            "Nothing leaves the EEA: processing, storage, fallback, admin, support and telemetry all stay in it."
        )
    return out


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(analysis: Analysis, pipes: Pipes) -> str:
    out: list[str] = ["# Pipes report", ""]
    out.append(
        f"Sources: {', '.join(analysis.sources)}. Rules: {analysis.rules_version} (`{analysis.rules_digest[:12]}`)."
    )
    out.append(
        f"Facts below `{analysis.min_confidence}` confidence, unverified facts and missing facts count as unknown; unknown never passes."
    )
    out += [
        "",
        "| Route | Level | Non-EU law can compel plaintext | Processing | Breaches |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in analysis.routes.items():
        p = r.profile
        out.append(
            f"| [{name}](#{_anchor(name)}) | {p.level_name} ({int(p.level)}) | {_cell(access_cell(p))} | "
            f"{_cell(countries(p.residency.processing))} | {len(r.breaches) or '–'} |"
        )
    for r in analysis.routes.values():
        out += ["", *_route(r, pipes)]
    if analysis.evidence:
        out += ["", "## Sources cited", ""]
        for eid, ev in analysis.evidence.items():
            out.append(
                f"- `{eid}` ({ev.confidence}, {ev.retrieved}): {ev.title or ev.source} <{ev.source}>"
                + (f" via {ev.via}" if ev.via else "")
            )
    return "\n".join(out) + "\n"


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() or c == "-" else "" for c in name.lower().replace(" ", "-"))


def _route(r: RouteAnalysis, pipes: Pipes) -> list[str]:
    p = r.profile
    out = [f"## {r.route}", ""]
    if r.title:
        out += [f"**{r.title}**", ""]
    out.append(" ".join(summary(r, pipes)))
    seal = "unknown" if p.csf_seal is None else p.csf_seal
    out.append(
        f"CSF SEAL cap (criteria a pipe can answer): {seal}. Personal data: {p.personal_data}. Profile digest `{p.digest[:16]}`."
    )
    if r.endpoint:
        out.append("Endpoint: " + ", ".join(f"{k} `{v}`" for k, v in r.endpoint.items()) + ".")
    if r.purpose.name:
        out.append(
            f"Purpose: {r.purpose.name}"
            + (f" (function {r.purpose.function_id})" if r.purpose.function_id else "")
            + "."
        )
    if r.breaches:
        out += ["", "**Breaks its requirements:**", *[f"- {b}" for b in r.breaches]]
    out += [
        "",
        "### The pipe",
        "",
        "| Hop | Role | Operator | Reached via | Rank | Sees plaintext | Non-EU reach |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in r.nodes:
        via = "route" if n.via == "route" else f"{n.via.replace('_', ' ')} of {n.parent}"
        tag = " (unverified)" if not n.certain else ""
        out.append(
            f"| {n.hop}{tag} | {n.role} | {_cell(n.operator_name)} | {via} | {n.rank} | {n.reach} | "
            f"{_cell(', '.join(f'{pipes.rules.laws[x.law].short} ({STATUS_WORDS[x.status]})' for x in n.laws) or 'none')} |"
        )
    out += ["", "### Buyer's questions", ""]
    for a in r.answers:
        out.append(f"**{a.question}**")
        out += [f"- {_cell(x)}" for x in a.answers] + [""]
    out += ["### Level", "", "| Level | Condition | Holds | Why not |", "| --- | --- | --- | --- |"]
    for c in r.ladder:
        out.append(
            f"| {c.level.label} ({int(c.level)}) | {c.condition} | {c.result} | {_cell('; '.join(c.reasons[:6]) + (' …' if len(c.reasons) > 6 else ''))} |"
        )
    reaching = [e for e in r.exposures if e.worst != "none"]
    out += ["", "### Non-EU laws and transfers, hop by hop", ""]
    if not reaching:
        out.append("No hop has a non-EU reach or a transfer that is not ruled out.")
    for e in reaching:
        out.append(f"**{exposure_title(pipes, e)}**")
        out += [f"- {s.test}: {s.result}: {_cell(s.text)}" for s in e.steps]
        out += [f"- does not remove it: {m.title}. {m.why}" for m in e.not_counted]
        out.append("")
    out += ["### Residency", "", "| Facet | Countries | In the EEA |", "| --- | --- | --- |"]
    for facet in ASPECTS:
        cs = getattr(p.residency, facet)
        out.append(f"| {facet} | {_cell(countries(cs))} | {cs.in_eea} |")
    out += ["", "### Criteria", "", "| Criterion | Reference | Verdict | Why |", "| --- | --- | --- | --- |"]
    for crit in r.criteria:
        fw = pipes.rules.frameworks[crit.framework].name
        seal = f" (SEAL {crit.seal})" if crit.seal is not None else ""
        out.append(
            f"| {crit.id}: {_cell(crit.title)} | {fw} {crit.ref} | {VERDICT_MARK[crit.verdict]}{seal} | {_cell('; '.join(crit.reasons[:4]))} |"
        )
    if r.gaps:
        out += ["", "### Gaps in the hop graph", "", *[f"- {g}" for g in r.gaps]]
    return out


def fact_line(ref: FactRef) -> str:
    ev = f" [{', '.join(ref.evidence)}]" if ref.evidence else ""
    return describe(ref) + ev
