"""The invariant: no byte reaches an engine unless it was classified, and allowed there.

An engine says what it would send for a request (`Outbound`: the operation and the exact
JSON payload, after dialect translation and pseudonymisation); it sends only a `Sealed`.
`seal` is the one maker of `Sealed`: it encodes the payload, decodes those very bytes
again, classifies every piece of text in them (every string and key at any depth, the
seams between strings, what cannot be scanned: `privacy/payload.py`), and refuses when
their class may not travel the route. The engine then sends `Sealed.body`, byte for byte.

Headers. Besides the body, an engine sends its own (content type, the upstream's key) and
only the headers sealed with the body (`Outbound.headers`): today a W3C `traceparent`
(docs/telemetry.md), which `seal` admits only in its exact format: a version, two
hexadecimal ids and flags, with no room for text a scanner could find.

`classify` is the one rule for a payload's class, used for the request (the classify
stage) and for what is sent (here):

    class = max(routing.default_class, the caller's declared class, what the scanner
                finds, routing.unscannable_class if something could not be scanned
                and the caller declared no class)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from souverain.classes import CLASSES, DataClassName, highest
from souverain.errors import NoRoute
from souverain.privacy import Finding, Scanner
from souverain.privacy.payload import PayloadScan, scan_payload

Operation = Literal["chat", "stream", "embed"]
Memo = dict[tuple[str, str], list[Finding]]
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Rules:
    """What the class of a payload depends on besides its content."""

    floor: DataClassName = "public"  # routing.default_class
    unscannable: DataClassName = "personal"  # routing.unscannable_class
    declared: DataClassName | None = None  # the caller's declared class, if any


@dataclass(frozen=True, slots=True)
class Classified:
    data_class: DataClassName
    counts: dict[str, int]
    scan: PayloadScan
    raised_by_unscannable: bool  # the class is what it is because of unscannable content
    unscannable_counts: bool = False  # unscannable content, and no declared class to vouch for it
    fixed_class: DataClassName = "public"  # the class of the findings placeholders cannot replace

    @property
    def pseudonymisable(self) -> bool:
        """Whether placeholders can take out everything that made the class personal:
        findings only in string values, nothing unscannable in the way."""
        return (
            bool(self.scan.findings)
            and not self.unscannable_counts
            and CLASSES.index(self.fixed_class) < CLASSES.index("personal")
        )


def classify(scanner: Scanner, payload: Any, rules: Rules, memo: Memo | None = None) -> Classified:
    scan = scan_payload(scanner, payload, memo)
    found = scanner.classify(scan.all)
    classes: list[DataClassName] = [rules.floor, found.data_class.word, rules.declared or "public"]
    raised = False
    if scan.unscannable and rules.declared is None:
        raised = CLASSES.index(rules.unscannable) > CLASSES.index(highest(*classes))
        classes.append(rules.unscannable)
    data_class = highest(*classes)
    fixed = scanner.classify(scan.fixed).data_class.word if scan.fixed else "public"
    return Classified(
        data_class, dict(found.counts), scan, raised, bool(scan.unscannable) and rules.declared is None, fixed
    )


@dataclass(frozen=True, slots=True)
class Outbound:
    """What an engine would send: the operation, the exact JSON payload, and the headers
    to send with it (`SEALABLE_HEADERS` only)."""

    operation: Operation
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)


# The headers that may travel with a sealed body, each in the one form it may take:
# W3C Trace Context's `traceparent` (version 00: ids and flags, lowercase hexadecimal).
SEALABLE_HEADERS = {"traceparent": re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")}


_TOKEN = object()


class Sealed:
    """Bytes cleared to go to one route. Only `seal` makes one: the bytes it holds are
    exactly the bytes it classified."""

    __slots__ = ("body", "classified", "headers", "operation", "route")

    def __init__(
        self,
        token: object,
        operation: Operation,
        body: bytes,
        route: str,
        classified: Classified,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if token is not _TOKEN:
            raise TypeError("a Sealed payload is made by outbound.seal, which classifies it first")
        self.operation = operation
        self.body = body
        self.route = route
        self.classified = classified
        self.headers: Mapping[str, str] = dict(headers or {})  # sent with the body, as they are

    @property
    def data_class(self) -> DataClassName:
        return self.classified.data_class

    def body_for(self, operation: Operation) -> bytes:
        """The bytes to send, for an engine about to `operation`: sealed for that, or a bug."""
        if self.operation != operation:
            raise TypeError(f"a payload sealed for {self.operation} cannot be sent as {operation}")
        return self.body

    def __repr__(self) -> str:
        return f"<Sealed {self.operation} for {self.route}: {len(self.body)} bytes, {self.data_class}>"


def seal(
    outbound: Outbound,
    *,
    route: str,
    scanner: Scanner,
    rules: Rules,
    unmet: Callable[[DataClassName], list[str]],
    memo: Memo | None = None,
) -> Sealed:
    """Encode, classify the encoded bytes, and clear them for `route` if `unmet(class)`
    (why the route may not carry that class) is empty; else `NoRoute` (403), and
    nothing is sent. The headers go with them only in the form `SEALABLE_HEADERS` gives
    (anything else is a bug: `TypeError`)."""
    for name, value in outbound.headers.items():
        form = SEALABLE_HEADERS.get(name)
        if form is None or not form.fullmatch(value):
            raise TypeError(f"header {name!r} cannot be sealed in that form")
    body = _encode(outbound.payload)
    classified = classify(scanner, msgspec.json.decode(body), rules, memo)
    why = unmet(classified.data_class)
    if why:
        detail = "; ".join(why[:3])
        cause = unscannable_note(classified, rules)
        raise NoRoute(
            f"The payload for route {route!r} holds {classified.data_class} data, which that route may not carry "
            f"({detail}).{cause} Nothing was sent.",
            status=403,
            code="no_permitted_route",
        )
    return Sealed(_TOKEN, outbound.operation, body, route, classified, outbound.headers)


def unscannable_note(classified: Classified, rules: Rules) -> str:
    """A sentence for a refusal whose class came from unscannable content."""
    if not classified.raised_by_unscannable:
        return ""
    return (
        f" The request holds content that cannot be scanned ({classified.scan.where()}), which counts as "
        f"{rules.unscannable} data (routing.unscannable_class); declare a class with the x-souverain-data-class "
        "header to route it otherwise."
    )


__all__ = ["SEALABLE_HEADERS", "Classified", "Outbound", "Rules", "Sealed", "classify", "seal", "unscannable_note"]
