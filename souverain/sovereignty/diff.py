"""What changed between two analyses of the same pipes: for review in a pull request.

A route *loses sovereignty* when its level drops, when a non-EU law's worst-case reach on
it grows, or when a residency facet that was in the EEA no longer is (or is no longer
known to be). `souverain pipes diff` exits 1 when that happens to a route that may carry
personal data, so a GitOps pipeline can require a second pair of eyes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from souverain.sovereignty.results import SEVERITY, Analysis, CountrySet, RouteProfile
from souverain.terms import ASPECTS

_EEA_RANK = {"yes": 2, "unknown": 1, "no": 0}


class Change(msgspec.Struct, frozen=True):
    what: str  # "level", "law:us-cloud-act", "residency:processing", "verdict:snc-19.6-b", "csf_seal"
    old: str
    new: str
    worse: bool


class RouteDiff(msgspec.Struct, frozen=True, kw_only=True):
    route: str
    status: Literal["added", "removed", "changed", "unchanged"]
    personal_data: str
    lost_sovereignty: bool = False
    changes: tuple[Change, ...] = ()


class PipesDiff(msgspec.Struct, frozen=True, kw_only=True):
    routes: tuple[RouteDiff, ...]

    @property
    def blocking(self) -> list[RouteDiff]:
        """Routes that may carry personal data and lost sovereignty."""
        return [r for r in self.routes if r.lost_sovereignty and r.personal_data != "no"]


def diff(old: Analysis, new: Analysis) -> PipesDiff:
    out: list[RouteDiff] = []
    for name in sorted(set(old.routes) | set(new.routes), key=lambda n: (n not in new.routes, n)):
        if name not in old.routes:
            p = new.routes[name].profile
            out.append(
                RouteDiff(
                    route=name,
                    status="added",
                    personal_data=p.personal_data,
                    changes=(Change("level", "", p.level_name, False),),
                )
            )
        elif name not in new.routes:
            out.append(RouteDiff(route=name, status="removed", personal_data=old.routes[name].profile.personal_data))
        else:
            out.append(_route(name, old.routes[name].profile, new.routes[name].profile))
    return PipesDiff(routes=tuple(out))


def _route(name: str, a: RouteProfile, b: RouteProfile) -> RouteDiff:
    changes: list[Change] = []
    if a.level != b.level:
        changes.append(
            Change("level", f"{a.level_name} ({int(a.level)})", f"{b.level_name} ({int(b.level)})", b.level < a.level)
        )
    if a.non_eu_access != b.non_eu_access:
        changes.append(
            Change(
                "non_eu_access",
                a.non_eu_access,
                b.non_eu_access,
                _access_rank(b.non_eu_access) > _access_rank(a.non_eu_access),
            )
        )
    old_laws = {law.law: law for law in a.laws}
    new_laws = {law.law: law for law in b.laws}
    for law in sorted(set(old_laws) | set(new_laws)):
        before, after = old_laws.get(law), new_laws.get(law)
        shown_a = f"{before.status} (worst {before.worst})" if before else "none"
        shown_b = f"{after.status} (worst {after.worst})" if after else "none"
        if shown_a != shown_b:
            worse = SEVERITY.get(after.worst if after else "none", 0) > SEVERITY.get(
                before.worst if before else "none", 0
            )
            changes.append(Change(f"law:{law}", shown_a, shown_b, worse))
    for facet in ASPECTS:
        fa, fb = getattr(a.residency, facet), getattr(b.residency, facet)
        if (fa.countries, fa.possible, fa.in_eea) != (fb.countries, fb.possible, fb.in_eea):
            changes.append(
                Change(f"residency:{facet}", _show(fa), _show(fb), _EEA_RANK[fb.in_eea] < _EEA_RANK[fa.in_eea])
            )
    for crit in sorted(set(a.verdicts) | set(b.verdicts)):
        va, vb = a.verdicts.get(crit, "absent"), b.verdicts.get(crit, "absent")
        if va != vb:
            changes.append(Change(f"verdict:{crit}", va, vb, va == "pass" and vb != "not_applicable"))
    if a.csf_seal != b.csf_seal:
        worse = (b.csf_seal if b.csf_seal is not None else -1) < (a.csf_seal if a.csf_seal is not None else -1)
        changes.append(Change("csf_seal", str(a.csf_seal), str(b.csf_seal), worse))
    lost = any(
        c.worse for c in changes if c.what == "level" or c.what.startswith("law:") or c.what in ("non_eu_access",)
    ) or any(
        c.worse
        for c in changes
        if c.what.startswith("residency:") and c.what.split(":")[1] in ("processing", "storage", "fallback")
    )
    return RouteDiff(
        route=name,
        status="changed" if changes else "unchanged",
        personal_data=b.personal_data,
        lost_sovereignty=lost,
        changes=tuple(changes),
    )


def _show(f: CountrySet) -> str:
    possible = f" (+{', '.join(f.possible)}?)" if f.possible else ""
    return f"{', '.join(f.countries) or 'none'}{possible} [in EEA: {f.in_eea}]"


def _access_rank(value: str) -> int:
    return {"no": 0, "residual": 1, "unknown": 2, "yes": 3}[value]


def to_text(d: PipesDiff, markdown: bool = False) -> str:
    out: list[str] = ["## Pipes diff", ""] if markdown else []
    for r in d.routes:
        if r.status == "unchanged":
            continue
        flag = " — LOST SOVEREIGNTY" if r.lost_sovereignty else ""
        personal = f" (personal data: {r.personal_data})"
        out.append(f"{'### ' if markdown else ''}{r.route}: {r.status}{flag}{personal}")
        for c in r.changes:
            mark = "▼" if c.worse else "•"
            out.append(f"{'- ' if markdown else '  '}{mark} {c.what}: {c.old or '—'} → {c.new}")
        out.append("")
    if not any(r.status != "unchanged" for r in d.routes):
        out.append("No route changed.")
    blocking = d.blocking
    if blocking:
        out.append(
            f"{len(blocking)} route(s) that may carry personal data lost sovereignty: {', '.join(r.route for r in blocking)}."
        )
    return "\n".join(out).rstrip() + "\n"
