"""What the spine holds for the `account` stage: budgets admitted before the call, the
cost of each request, and its usage row written off the response's path.

    grant = await accounting.admit(principal, options, input_tokens, output_cap)
    ...                                          # dispatch, restore
    cost = accounting.cost(route, model, deployment, tokens, seconds)   # into the ledger entry
    accounting.book(booking, ledger_index)      # row + settlement, queued

Durability. The ledger entry (durable before the answer is released) carries the tenant,
key, route, model, class, status, tokens and the cost, so the ledger is the durable queue:
the writer thread inserts queued rows in batches (keyed by ledger index: never twice),
and `fill` rebuilds any row missing for an entry older than `FILL_GRACE_S` from the entry
itself (a process killed with rows in its queue loses only their reasoning and cached
token breakdown, never the row or its cost). Requests recorded without a ledger
(`ledger.enabled: false`) have no such net: their queued rows go with the process.

A reservation not settled (the process died between the two) stays counted at its worst
case until its window ends: the error is always on the side of spending less.
"""

from __future__ import annotations

import logging
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from souverain.auth import Principal
from souverain.errors import BudgetExceeded, BudgetUnavailable
from souverain.usage.budgets import Admissions, Claim, Counters, CounterStoreDown, Exceeded
from souverain.usage.config import Budget, UsageConfig
from souverain.usage.prices import Catalogue, Tokens, micros
from souverain.usage.store import Pruned, Row, UsageDb, day_of

if TYPE_CHECKING:
    from souverain.ledger import Ledger

log = logging.getLogger("souverain.usage")
FILL_GRACE_S = 10.0
FILL_EVERY_S = 10.0
MAINTAIN_EVERY_S = 3600.0  # partitions made ahead, old rows pruned
FLUSH_S = 0.1
PERIOD_NAMES = {"hour": "hour's", "day": "day's", "month": "month's"}


@dataclass(slots=True)
class Grant:
    """What `admit` reserved: each claim and what it stands for."""

    claims: list[Claim]
    used: list[int]


@dataclass(frozen=True, slots=True)
class Booking:
    """One recorded request, as the account stage hands it over."""

    principal: Principal
    cost_centre: str
    model: str
    route: str
    data_class: str
    status: int
    tokens: Tokens
    cost: Decimal
    grant: Grant | None
    time: float


def window(period: str, now: float) -> tuple[int, int]:
    """The UTC calendar window holding `now`: (start, end) in epoch seconds."""
    if period == "minute":
        start = int(now // 60 * 60)
        return start, start + 60
    if period == "hour":
        start = int(now // 3600 * 3600)
        return start, start + 3600
    if period == "day":
        start = int(now // 86400 * 86400)
        return start, start + 86400
    t = datetime.fromtimestamp(now, UTC)
    first = datetime(t.year, t.month, 1, tzinfo=UTC)
    following = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp()), int(following.timestamp())


class Accounting:
    def __init__(
        self,
        config: UsageConfig,
        open_db: Callable[[], UsageDb],
        counters: Counters | None,
        ledger: Ledger | None = None,
    ) -> None:
        self.config = config
        self.catalogue = Catalogue(config)
        self.currency = config.currency
        self.open_db = open_db
        self.counters = counters
        self.ledger = ledger
        self.budgets: dict[tuple[str, str], list[Budget]] = {}
        for budget in config.budgets:
            self.budgets.setdefault(budget.scope(), []).append(budget)
        self._queue: queue.Queue[Booking | tuple[Booking, int | None] | None] = queue.Queue()
        self.admissions = Admissions(counters) if counters is not None else None
        self._minute = 0  # the minute `_shapes` holds the claims' shapes of (see `claims`)
        self._shapes: dict[tuple[str, str, str, str], list[tuple[str, str, str, int, int, int]]] = {}
        self._writer: threading.Thread | None = None
        self.written = 0  # rows this process inserted (for benchmarks and tests)

    # -- who pays --------------------------------------------------------------------
    def cost_centre(self, principal: Principal) -> str:
        return self.config.cost_centres.of(principal.key_id, principal.tenant, principal.name)

    def _applicable(self, principal: Principal, cost_centre: str) -> list[tuple[str, str, Budget]]:
        found = []
        for scope in (
            ("tenant", principal.tenant),
            ("key", principal.key_id),
            ("key", principal.name),
            ("cc", cost_centre),
        ):
            if scope[1]:
                for budget in self.budgets.get(scope, []):
                    found.append((scope[0], scope[1], budget))
        return found

    # -- admission -------------------------------------------------------------------
    def claims(self, principal: Principal, cost_centre: str, money: int, tokens: int, now: float) -> list[Claim]:
        """The counters this request must fit in, with its amounts. Which counters, their
        names, limits and windows depend on who asks and on the minute: worked out once
        per caller and minute."""
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._shapes = minute, {}
        who = (principal.tenant, principal.key_id, principal.name, cost_centre)
        shapes = self._shapes.get(who)
        if shapes is None:
            shapes = self._shapes[who] = self._shape(principal, cost_centre, now)
        amounts = {"money": money, "requests": 1, "tokens": tokens}
        return [
            Claim(scope, kind, what, start, end, limit, amounts[kind])
            for scope, kind, what, start, end, limit in shapes
            if money > 0 or kind != "money"
        ]

    def _shape(self, principal: Principal, cost_centre: str, now: float) -> list[tuple[str, str, str, int, int, int]]:
        shapes = []
        label = {"tenant": "tenant", "key": "key", "cc": "cost centre"}
        for kind, name, budget in self._applicable(principal, cost_centre):
            who = f"{label[kind]} {name}"
            if budget.money is not None:
                start, end = window(budget.period, now)
                shapes.append(
                    (
                        f"money:{kind}:{name}:{budget.period}",
                        "money",
                        f"the {PERIOD_NAMES[budget.period]} money budget of {who}",
                        start,
                        end,
                        micros(budget.money),
                    )
                )
            start, end = window("minute", now)
            if budget.requests_per_minute is not None:
                shapes.append(
                    (
                        f"requests:{kind}:{name}",
                        "requests",
                        f"the requests-per-minute limit of {who}",
                        start,
                        end,
                        budget.requests_per_minute,
                    )
                )
            if budget.tokens_per_minute is not None:
                shapes.append(
                    (
                        f"tokens:{kind}:{name}",
                        "tokens",
                        f"the tokens-per-minute limit of {who}",
                        start,
                        end,
                        budget.tokens_per_minute,
                    )
                )
        return shapes

    async def admit(
        self,
        principal: Principal,
        cost_centre: str,
        options: Sequence[tuple[str, str, str]],
        input_tokens: int,
        output_cap: int | None,
    ) -> Grant | None:
        """Reserve the worst case of this request on every budget and limit that applies:
        the dearest of `options` (route, model, deployment: the chosen route and its
        fallbacks), every input token, the whole output cap. Raises `BudgetExceeded` (429)
        or, with the store unreachable, `BudgetUnavailable` (503)."""
        if not self.budgets or self.admissions is None:
            return None
        cap = self.config.default_output_cap if output_cap is None else output_cap
        worst = max(
            (
                self.catalogue.worst_case(r, m, d, input_tokens, cap, self.config.worst_case_seconds)
                for r, m, d in options
            ),
            default=Decimal(0),
        )
        now = time.time()
        claims = self.claims(principal, cost_centre, micros(worst), input_tokens + cap, now)
        if not claims:
            return None
        for claim in claims:
            if claim.amount > claim.limit:
                raise self._refusal(claim, claim.limit - claim.amount, now, whole=True)
        try:
            used = await self.admissions.reserve(claims)
        except Exceeded as exc:
            raise self._refusal(exc.claim, exc.used, now) from None
        except CounterStoreDown as exc:
            log.error("budget store unreachable: %s", exc)
            raise BudgetUnavailable(
                "The budget store cannot be reached, so no request is admitted (budgets fail closed); retry later."
            ) from None
        return Grant(claims, used)

    def _refusal(self, claim: Claim, used: int, now: float, whole: bool = False) -> BudgetExceeded:
        wait = max(1, math.ceil(claim.reset - now))
        reset = datetime.fromtimestamp(claim.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "Retry-After": str(wait),
            "x-souverain-budget": claim.scope.rsplit(":", 1)[0] if claim.kind == "money" else claim.scope,
        }
        if claim.kind == "money":
            amount = f"{Decimal(claim.limit) / 1_000_000:f} {self.currency}"
            if whole:
                message = f"This request's worst case exceeds {claim.what} ({amount}) by itself; lower max_tokens."
            else:
                message = f"You have reached {claim.what} ({amount}); it resets at {reset}."
            return BudgetExceeded(message, type_="insufficient_quota", code="insufficient_quota", headers=headers)
        suffix = claim.kind  # requests | tokens: OpenAI's header names
        headers.update(
            {
                f"x-ratelimit-limit-{suffix}": str(claim.limit),
                f"x-ratelimit-remaining-{suffix}": str(max(0, claim.limit - used)),
                f"x-ratelimit-reset-{suffix}": f"{wait}s",
            }
        )
        if whole:
            message = f"This request's worst case ({claim.amount} tokens) exceeds {claim.what} ({claim.limit}) by itself; lower max_tokens."
        else:
            message = f"Rate limit reached: {claim.what} ({claim.limit}); retry after {wait} s."
        return BudgetExceeded(message, type_=suffix, code="rate_limit_exceeded", headers=headers)

    @staticmethod
    def rate_headers(grant: Grant | None) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` headers for an admitted request: each rate limit it
        met (the tightest of each kind), what was left after its reservation, the reset."""
        if grant is None:
            return {}
        now = time.time()
        tightest: dict[str, tuple[int, int, int]] = {}
        for claim, used in zip(grant.claims, grant.used, strict=True):
            if claim.kind in ("requests", "tokens"):
                left = max(0, claim.limit - used)
                if claim.kind not in tightest or left < tightest[claim.kind][1]:
                    tightest[claim.kind] = (claim.limit, left, claim.reset)
        headers = {}
        for kind, (limit, left, reset) in tightest.items():
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(left)
            headers[f"x-ratelimit-reset-{kind}"] = f"{max(0, math.ceil(reset - now))}s"
        return headers

    # -- after the call --------------------------------------------------------------
    def cost(self, route: str, model: str, deployment: str, tokens: Tokens, seconds: float) -> Decimal:
        return self.catalogue.cost(route, model, deployment, tokens, seconds)

    def book(self, booking: Booking, index: int | None) -> None:
        """Queue the request's row and the settlement of its reservation (never blocks).
        Without a ledger index the row gets a random negative key now, so a batch written
        again after a failure cannot write it twice."""
        self._queue.put((booking, index if index is not None else -secrets.randbits(62) - 1))

    # -- the writer --------------------------------------------------------------------
    def start(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="usage-writer", daemon=True)
            self._writer.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(30)
            self._writer = None
        if self.admissions is not None:
            self.admissions.close()
        if self.counters is not None:
            self.counters.close()

    def _run(self) -> None:
        db: UsageDb | None = None
        last_fill = 0.0
        last_expire = 0.0
        last_maintain = 0.0
        last_batch = 0.0
        stopping = False
        while not stopping:
            items: list[tuple[Booking, int | None]] = []
            try:
                item = self._queue.get(timeout=FLUSH_S)
                # One batch per FLUSH_S at most: a writer that woke for every request
                # would take the GIL from the event loop (and a transaction) per request.
                if item is not None:
                    time.sleep(max(0.0, last_batch + FLUSH_S - time.monotonic()))
                last_batch = time.monotonic()
                while True:
                    if item is None:
                        stopping = True
                    else:
                        assert isinstance(item, tuple)
                        items.append(item)
                    if len(items) >= 2000:
                        break
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                if db is None:
                    db = self.open_db()
                if items:
                    self._write(db, items)
                    items = []  # written and settled: never again, whatever fails next
                now = time.time()
                if self.ledger is not None and (stopping or now - last_fill > FILL_EVERY_S):
                    self.fill(db, now - FILL_GRACE_S)
                    last_fill = now
                if not stopping and now - last_maintain > MAINTAIN_EVERY_S:
                    try:
                        self.maintain(db, now)
                        last_maintain = now
                    except Exception as exc:  # the rows still go in (a default partition)
                        log.error("usage upkeep: %s (retried in a minute)", exc)
                        last_maintain = now - MAINTAIN_EVERY_S + 60
                if self.counters is not None and now - last_expire > 60:
                    self.counters.expire(int(now))
                    last_expire = now
            except Exception as exc:
                log.error("usage writer: %s (retrying)", exc)
                for it in reversed(items):  # nothing accepted is dropped: back to the queue
                    self._queue.put(it)
                if db is not None:
                    try:
                        db.close()
                    except Exception:
                        pass
                db = None
                if stopping:
                    break
                time.sleep(0.5)
        if db is not None:
            db.close()

    def _write(self, db: UsageDb, items: list[tuple[Booking, int | None]]) -> None:
        rows = [self.row(b, index) for b, index in items]
        self.written += db.write(rows)
        changes: list[tuple[str, int, int]] = []
        for b, _ in items:
            if b.grant is None:
                continue
            for claim in b.grant.claims:
                actual = {"money": micros(b.cost), "tokens": b.tokens.total, "requests": 1}[claim.kind]
                changes.append((claim.scope, claim.window, actual - claim.amount))
        if changes and self.counters is not None:
            try:
                self.counters.settle(changes)
            except CounterStoreDown as exc:
                # Left reserved at the worst case: counted too much, never too little.
                log.error("budget settlement lost (reservations stay at their worst case): %s", exc)

    def row(self, b: Booking, index: int | None) -> Row:
        return Row(
            idx=index if index is not None else -secrets.randbits(62) - 1,  # (book gives one)
            day=day_of(b.time),
            tenant=b.principal.tenant,
            key_id=b.principal.key_id,
            cost_centre=b.cost_centre,
            model=b.model,
            route=b.route,
            data_class=b.data_class,
            status=b.status,
            input_tokens=b.tokens.input,
            output_tokens=b.tokens.output,
            reasoning_tokens=b.tokens.reasoning,
            cached_tokens=b.tokens.cached,
            cost_micros=micros(b.cost),
        )

    def maintain(self, db: UsageDb, now: float) -> Pruned | None:
        """The store's upkeep as time passes: this month's and the next month's partitions
        made, and the rows older than `usage.retention_days` pruned (after the fill has
        given every older ledger entry its row: see `UsageDb.prune`)."""
        db.prepare(now)
        if self.config.retention_days is None:
            return None
        pruned = db.prune(self.config.retention_days, now, fed_by_ledger=self.ledger is not None)
        if pruned.rows or pruned.partitions:
            log.info(
                "usage rows before day %d pruned: %d rows, partitions %s (daily totals kept)",
                pruned.before,
                pruned.rows,
                ", ".join(pruned.partitions) or "none",
            )
        return pruned

    def fill(self, db: UsageDb, before: float) -> int:
        """Rows for ledger entries recorded before `before` that have none (their process
        died with them queued), from the entries; returns how many."""
        assert self.ledger is not None
        from souverain.ledger.entry import decode_entry

        store = self.ledger.open_store()
        try:
            mark = db.meta("filled")
            size = store.sequenced_size()
            filled = 0
            while mark < size:
                end = min(size, mark + 1000)
                entries = store.read_entries(mark, end)
                present = db.present(mark, end)
                rows = []
                new_mark = end
                for index, data in entries:
                    entry = decode_entry(data)
                    if entry.time.timestamp() >= before:
                        new_mark = index
                        break
                    if index not in present:
                        rows.append(self._from_entry(index, entry))
                filled += db.write(rows)
                db.set_meta("filled", max(db.meta("filled"), new_mark))
                if new_mark < end:
                    break
                mark = end
            # Every entry of a day before `before`'s has its row now (what `prune` waits for).
            if day_of(before) > db.meta("filled_day"):
                db.set_meta("filled_day", day_of(before))
            return filled
        finally:
            store.close()

    def _from_entry(self, index: int, entry: object) -> Row:
        from souverain.ledger.entry import Entry

        assert isinstance(entry, Entry)
        return Row(
            idx=index,
            day=day_of(entry.time.timestamp()),
            tenant=entry.tenant,
            key_id=entry.key_id,
            cost_centre=self.config.cost_centres.of(entry.key_id, entry.tenant),  # the entry holds no key name
            model=entry.model,
            route=entry.route,
            data_class=entry.data_class,
            status=entry.status,
            input_tokens=entry.prompt_tokens,
            output_tokens=entry.completion_tokens,
            reasoning_tokens=0,
            cached_tokens=0,
            cost_micros=micros(entry.cost),
        )
