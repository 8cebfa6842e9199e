"""Load a pipes file on top of the shipped catalogue, and check it.

Order: the catalogue files (souverain/sovereignty/data/catalogue/*.yaml, by name), then
the user's file. Evidence, entities, hops and templates merge by id; for entities and
hops the merge is fact by fact, so a user overrides one fact of a catalogue hop (with its
own evidence) without restating the rest. Routes come from the user's file only; a route
with `template: X` gets X's fields under its own, and X's hops after its own.

Everything a schema cannot say is checked here, and reported as `file:line: key: why`:
references to entities, hops, evidence and criteria; ISO country codes; LEI check digits;
cycles in `runs_on`/`subprocessors`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml
from stdnum import lei as stdnum_lei
from stdnum.exceptions import ValidationError

from souverain import yamlfile
from souverain.errors import ConfigError
from souverain.sovereignty.custody import conflict_text, hop_custody
from souverain.sovereignty.facts import COUNTRY_LEAVES, Facts, Lookup, Trace, flatten
from souverain.sovereignty.flows import add_recipients
from souverain.sovereignty.rules import DATA, Rules, load_rules
from souverain.sovereignty.schema import Entity, Evidence, Hop, Id, Requirements, Route, TelemetryFlow

SECTIONS: dict[str, type[msgspec.Struct]] = {
    "evidence": Evidence,
    "entities": Entity,
    "hops": Hop,
    "templates": Route,
    "routes": Route,
}


class _Skeleton(msgspec.Struct, forbid_unknown_fields=True):
    version: int = 1
    requirements: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    entities: dict[str, Any] = {}
    hops: dict[str, Any] = {}
    templates: dict[str, Any] = {}
    routes: dict[str, Any] = {}


@dataclass
class _Source:
    name: str
    root: yaml.Node | None
    raw: dict[str, Any]
    items: dict[str, dict[str, Any]]  # section → id → typed struct
    requirements: Requirements


@dataclass
class Pipes:
    """A merged, checked set of pipes, ready to analyse."""

    entities: dict[str, Facts]
    hops: dict[str, Facts]
    entity_names: dict[str, str]
    hop_titles: dict[str, str]
    hop_roles: dict[str, str]
    notes: dict[str, str]  # "entity:x" / "hop:y" → note
    evidence: dict[str, Evidence]
    templates: dict[str, Route]
    routes: dict[str, Route]
    requirements: Requirements
    sources: tuple[str, ...]
    rules: Rules
    where: dict[str, str] = field(default_factory=dict)  # "routes.x" → "file:line", for messages

    def entity_name(self, entity_id: str | None) -> str:
        if entity_id is None:
            return "none"
        return self.entity_names.get(entity_id) or entity_id


def templates_as_routes(pipes: Pipes) -> Pipes:
    """The same pipes with every catalogue template as a route (to report on the catalogue)."""
    return dataclasses.replace(pipes, routes=dict(pipes.templates))


def catalogue_sources() -> list[tuple[str, str]]:
    """(name, text) of each shipped catalogue file, in load order."""
    folder = resources.files(DATA).joinpath("catalogue")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return [(f"catalogue/{f.name}", f.read_text(encoding="utf-8")) for f in files]


def load_pipes(path: str | os.PathLike | None, *, catalogue: bool = True, rules: Rules | None = None) -> Pipes:
    """Read a pipes file (None: the catalogue alone) and merge it onto the catalogue."""
    texts = catalogue_sources() if catalogue else []
    if path is not None:
        source = Path(path)
        try:
            texts.append((str(source), source.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return build(texts, rules or load_rules())


def parse_pipes(
    text: str, filename: str = "pipes.yaml", *, catalogue: bool = True, rules: Rules | None = None
) -> Pipes:
    return build([*(catalogue_sources() if catalogue else []), (filename, text)], rules or load_rules())


def build(texts: list[tuple[str, str]], rules: Rules) -> Pipes:
    sources = [_read(name, text) for name, text in texts]
    user = sources[-1] if sources and not sources[-1].name.startswith("catalogue/") else None
    _check_catalogue_ids(sources)
    evidence: dict[str, Evidence] = {}
    for src in sources:
        evidence.update(src.items["evidence"])
    entities: dict[str, Facts] = {}
    hops: dict[str, Facts] = {}
    names: dict[str, str] = {}
    titles: dict[str, str] = {}
    roles: dict[str, str] = {}
    notes: dict[str, str] = {}
    origin: dict[str, _Source] = {}  # "hops.x" → the source that last touched it
    for src in sources:
        for eid, ent in src.items["entities"].items():
            entities.setdefault(eid, {}).update(flatten(ent, evidence, src.name))
            names[eid] = ent.name or names.get(eid, "")
            notes[f"entity:{eid}"] = ent.note or notes.get(f"entity:{eid}", "")
            origin[f"entities.{eid}"] = src
        for hid, hop in src.items["hops"].items():
            hops.setdefault(hid, {}).update(flatten(hop, evidence, src.name))
            titles[hid] = hop.title or titles.get(hid, "")
            if hop.role is not msgspec.UNSET:
                roles[hid] = hop.role
            notes[f"hop:{hid}"] = hop.note or notes.get(f"hop:{hid}", "")
            origin[f"hops.{hid}"] = src
    for rid, sender in add_recipients(hops, titles, roles).items():
        origin[f"hops.{rid}"] = origin[f"hops.{sender}"]
    templates_raw: dict[str, dict] = {}
    for src in sources:
        for tid, raw in src.raw.get("templates", {}).items():
            templates_raw[tid] = _deep_merge(templates_raw.get(tid, {}), raw)
    templates = {tid: msgspec.convert(raw, Route) for tid, raw in templates_raw.items()}
    routes: dict[str, Route] = {}
    where: dict[str, str] = {}
    if user is not None:
        for rid, raw in user.raw.get("routes", {}).items():
            routes[rid] = _resolve_route(rid, raw, templates_raw, user)
            where[f"routes.{rid}"] = f"{user.name}:{yamlfile.line_of(user.root, ['routes', rid])}"
    pipes = Pipes(
        entities=entities,
        hops=hops,
        entity_names=names,
        hop_titles=titles,
        hop_roles=roles,
        notes=notes,
        evidence=evidence,
        templates=templates,
        routes=routes,
        requirements=user.requirements if user else Requirements(),
        sources=tuple(s.name for s in sources),
        rules=rules,
        where=where,
    )
    _check(pipes, sources, origin, user)
    return pipes


def _read(name: str, text: str) -> _Source:
    root, data = yamlfile.compose(text, name)
    skeleton = yamlfile.convert(data, _Skeleton, root, name, hint="docs/pipes.md")
    if skeleton.version != 1:
        raise ConfigError(
            yamlfile.error(root, name, ["version"], f"unsupported pipes schema version {skeleton.version}; expected 1")
        )
    items: dict[str, dict[str, Any]] = {}
    for section, type_ in SECTIONS.items():
        items[section] = {}
        for key, value in (data.get(section) or {}).items():
            yamlfile.convert(key, Id, root, name, [section, key], hint="docs/pipes.md")
            items[section][key] = yamlfile.convert(
                value if value is not None else {}, type_, root, name, [section, key], hint="docs/pipes.md"
            )
    requirements = yamlfile.convert(
        data.get("requirements") or {}, Requirements, root, name, ["requirements"], hint="docs/pipes.md"
    )
    raw = {
        section: {k: (v if v is not None else {}) for k, v in (data.get(section) or {}).items()} for section in SECTIONS
    }
    return _Source(name, root, raw, items, requirements)


def _check_catalogue_ids(sources: list[_Source]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for src in sources:
        if not src.name.startswith("catalogue/"):
            continue
        for section in ("evidence", "entities", "hops", "templates"):
            for key in src.items[section]:
                if (section, key) in seen:
                    raise ConfigError(
                        yamlfile.error(src.root, src.name, [section, key], f"also defined in {seen[(section, key)]}")
                    )
                seen[(section, key)] = src.name


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_route(rid: str, raw: dict, templates: dict[str, dict], src: _Source) -> Route:
    template_id = raw.get("template")
    if template_id is None:
        return yamlfile.convert(raw, Route, src.root, src.name, ["routes", rid], hint="docs/pipes.md")
    if template_id not in templates:
        known = ", ".join(sorted(templates)) or "none"
        raise ConfigError(
            yamlfile.error(
                src.root, src.name, ["routes", rid, "template"], f"no template {template_id!r} (known: {known})"
            )
        )
    template = templates[template_id]
    merged = _deep_merge(
        {k: v for k, v in template.items() if k != "hops"}, {k: v for k, v in raw.items() if k != "hops"}
    )
    own = list(raw.get("hops") or [])
    merged["hops"] = own + [h for h in template.get("hops") or [] if h not in own]
    return yamlfile.convert(merged, Route, src.root, src.name, ["routes", rid], hint="docs/pipes.md")


def _check(pipes: Pipes, sources: list[_Source], origin: dict[str, _Source], user: _Source | None) -> None:
    rules = pipes.rules
    iso = rules.zones["iso3166"]

    def fail(key: str, path: str, msg: str) -> None:
        src = origin[key]
        section, ident = key.split(".", 1)
        parts = [int(p) if p.isdigit() else p for p in path.split(".")] if path else []
        steps: list[str | int] = [section, ident, *parts]
        raise ConfigError(yamlfile.error(src.root, src.name, steps, msg))

    def country_ok(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        for code in values:
            if isinstance(code, str) and code not in ("EU", "ANY") and code not in iso:
                hint = " (the United Kingdom is GB)" if code == "UK" else " (Greece is GR)" if code == "EL" else ""
                return f"{code!r} is not an ISO 3166-1 alpha-2 country code{hint}"
        return None

    for kind, table in (("entities", pipes.entities), ("hops", pipes.hops)):
        for oid, facts in table.items():
            key = f"{kind}.{oid}"
            for path, fact in facts.items():
                for ev in fact.evidence:
                    if ev not in pipes.evidence:
                        fail(key, path, f"no evidence {ev!r} in the evidence table")
                if not fact.known or fact.value is None:
                    continue
                if path.rsplit(".", 1)[-1] in COUNTRY_LEAVES and (problem := country_ok(fact.value)):
                    fail(key, path, problem)
                targets = _references(kind, path, fact.value)
                for target_kind, target in targets:
                    table_ = pipes.entities if target_kind == "entities" else pipes.hops
                    if target not in table_:
                        fail(key, path, f"no {target_kind[:-1] if target_kind == 'hops' else 'entity'} {target!r}")
                if path == "ids.lei":
                    try:
                        stdnum_lei.validate(str(fact.value))
                    except ValidationError:
                        fail(key, path, f"{fact.value!r} is not a valid LEI (ISO 17442 check digits)")
                if path == "telemetry":
                    for i, flow in enumerate(fact.value):
                        if isinstance(flow.countries, list) and (problem := country_ok(flow.countries)):
                            fail(key, f"telemetry.{i}.countries", problem)
                        operator = pipes.hops.get(flow.to or "", {}).get("operator")
                        if (
                            flow.destination
                            and operator is not None
                            and operator.known
                            and operator.value != flow.destination
                        ):
                            fail(
                                key,
                                f"telemetry.{i}.destination",
                                f"{flow.destination!r}, but hop {flow.to!r} is run by {operator.value!r}",
                            )
        for oid in table:
            if kind == "hops" and oid not in pipes.hop_roles:
                fail(f"hops.{oid}", "", "missing required key `role`")
    _check_cycles(pipes, fail)
    _check_custody(pipes, sources)
    if user is None:
        return
    criteria = rules.criteria
    for i, crit in enumerate(user.requirements.criteria or ()):
        if crit not in criteria:
            raise ConfigError(
                yamlfile.error(user.root, user.name, ["requirements", "criteria", i], f"no criterion {crit!r}")
            )
    for rid, route in pipes.routes.items():
        for i, hop in enumerate(route.hops):
            if hop not in pipes.hops:
                raise ConfigError(yamlfile.error(user.root, user.name, ["routes", rid, "hops", i], f"no hop {hop!r}"))
        if not route.hops:
            raise ConfigError(
                yamlfile.error(user.root, user.name, ["routes", rid], "a route needs at least one hop (or a template)")
            )
        for i, crit in enumerate((route.requires.criteria if route.requires else None) or ()):
            if crit not in criteria:
                raise ConfigError(
                    yamlfile.error(
                        user.root, user.name, ["routes", rid, "requires", "criteria", i], f"no criterion {crit!r}"
                    )
                )


def _references(kind: str, path: str, value: Any) -> list[tuple[str, str]]:
    """The (table, id) pairs a fact refers to."""
    if kind == "entities" and path == "parent_chain":
        return [("entities", v) for v in value]
    if kind == "entities" and path == "ultimate_parent":
        return [("entities", value)]
    if kind == "hops":
        if path in ("operator", "contracting_entity", "keys.custodian", "model.provider"):
            return [("entities", value)]
        if path == "runs_on":
            return [("hops", value)]
        if path == "subprocessors":
            return [("hops", v) for v in value]
        if path == "telemetry":
            flows = [f for f in value if isinstance(f, TelemetryFlow)]
            return [("entities", f.destination) for f in flows if f.destination] + [
                ("hops", f.to) for f in flows if f.to
            ]
    return []


def _check_custody(pipes: Pipes, sources: list[_Source]) -> None:
    """Key facts that cannot all be true are refused, naming both (see custody.py): read
    with every stated fact counted, so that no confidence floor can hide one of the two."""
    roots = {s.name: s.root for s in sources}
    lookup = Lookup(pipes.entities, pipes.hops, everything=True)

    def where(hop: str, path: str) -> str:
        origin = pipes.hops[hop][path].origin
        return f"{origin}:{yamlfile.line_of(roots.get(origin), ['hops', hop, *path.split('.')])}: hops.{hop}.{path}"

    for hop in pipes.hops:
        conflicts = hop_custody(Trace(lookup), hop).conflicts
        if conflicts:
            c = conflicts[0]
            first, second = where(hop, c.first.path), where(hop, c.second.path)
            raise ConfigError(f"{first}: contradicts {second} ({conflict_text(c)})")


def _check_cycles(pipes: Pipes, fail) -> None:
    def children(hid: str) -> list[str]:
        facts = pipes.hops[hid]
        out = []
        runs_on = facts.get("runs_on")
        if runs_on is not None and runs_on.known and runs_on.value:
            out.append(runs_on.value)
        subs = facts.get("subprocessors")
        if subs is not None and subs.known and subs.value:
            out.extend(subs.value)
        return out

    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(hid: str, stack: list[str]) -> None:
        state[hid] = 1
        for child in children(hid):
            if state.get(child) == 1:
                cycle = " → ".join([*stack[stack.index(child) :], child]) if child in stack else f"{hid} → {child}"
                fail(f"hops.{hid}", "runs_on" if pipes.hops[hid].get("runs_on") else "subprocessors", f"cycle: {cycle}")
            if state.get(child) is None:
                visit(child, [*stack, child])
        state[hid] = 2

    for hid in pipes.hops:
        if hid not in state:
            visit(hid, [hid])
