"""Budget and limit counters, shared by every replica: reserve the worst case before the
call, settle to the actual figure after.

A `Claim` is one counter a request must fit in: a money budget (micro-units per hour, day
or month), requests per minute, tokens per minute, of one tenant, key or cost centre, in
one fixed window. `reserve` adds every claim's amount at once or none: each counter is
raised only where the sum stays within its limit (a conditional upsert, a row lock in
PostgreSQL, SQLite's write lock, a Lua script in Redis), all in one transaction, in one
order (no deadlock). So however many replicas admit requests, a counter never passes its
limit at admission; only settling a request that used more than it reserved can, by at
most that request's excess.

A store that cannot be reached raises `CounterStoreDown`: the caller refuses (fail closed).

Counters are commited without waiting for the disk (PostgreSQL `synchronous_commit = off`;
SQLite in WAL with `synchronous=NORMAL`, Redis as configured): a database that crashes
may forget the last fraction of a second of reservations and settlements. What a request
cost is never lost that way (the ledger entry and usage row are durable); only the
counter may start lower than the rows say, by what was admitted in that instant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from souverain.usage.store import UsageDb


@dataclass(frozen=True, slots=True)
class Claim:
    scope: str  # e.g. "money:tenant:acme", "requests:key:k1", "tokens:cc:research"
    kind: str  # money | requests | tokens
    what: str  # for people: "the month's money budget of tenant acme"
    window: int  # start of the window, seconds since the epoch
    reset: int  # end of the window
    limit: int
    amount: int


class Exceeded(Exception):
    def __init__(self, claim: Claim, used: int) -> None:
        super().__init__(claim.what)
        self.claim = claim
        self.used = used


class CounterStoreDown(Exception):
    """The counters cannot be read or written."""


class Counters(Protocol):
    def reserve(self, claims: Sequence[Claim]) -> list[int]:
        """Add every claim's amount, or none (raise `Exceeded` for the first that does not
        fit); returns each counter's value after."""

    def settle(self, changes: Sequence[tuple[str, int, int]]) -> None:
        """Add (scope, window, delta) to counters: the actual figure minus the reserved."""

    def expire(self, before: int) -> None:
        """Forget windows that ended before `before`."""

    def close(self) -> None: ...


class StateCounters:
    """Counters in the usage part of the state: SQLite or PostgreSQL. One connection per
    thread (`connect` opens one)."""

    def __init__(self, connect: Callable[[], UsageDb]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._all: list[UsageDb] = []
        self._lock = threading.Lock()

    def _db(self) -> UsageDb:
        db: UsageDb | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = self._connect()
            except Exception as exc:
                raise CounterStoreDown(str(exc)) from exc
            db.relaxed()
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def _drop(self) -> None:
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with self._lock:
                if db in self._all:
                    self._all.remove(db)
            try:
                db.close()
            except Exception:
                pass

    def reserve(self, claims: Sequence[Claim]) -> list[int]:
        db = self._db()
        try:
            used = []
            if db.kind == "postgres":
                return self._reserve_postgres(db, claims)
            with db.transaction():
                for claim in sorted(claims, key=lambda c: (c.scope, c.window)):
                    row = db.execute(
                        "INSERT INTO usage_counters VALUES (%s, %s, %s) ON CONFLICT (scope, win) DO UPDATE "
                        "SET used = usage_counters.used + EXCLUDED.used "
                        "WHERE usage_counters.used + EXCLUDED.used <= %s RETURNING used",
                        (claim.scope, claim.window, claim.amount, claim.limit),
                    ).fetchone()
                    if row is None:
                        found = db.execute(
                            "SELECT used FROM usage_counters WHERE scope = %s AND win = %s", (claim.scope, claim.window)
                        ).fetchone()
                        raise Exceeded(claim, int(found[0]) if found else 0)
                    used.append((claim, int(row[0])))
            order = {id(c): u for c, u in used}
            return [order[id(c)] for c in claims]
        except Exceeded:
            raise
        except Exception as exc:
            self._drop()
            raise CounterStoreDown(str(exc)) from exc

    @staticmethod
    def _reserve_postgres(db: UsageDb, claims: Sequence[Claim]) -> list[int]:
        import psycopg

        ordered = sorted(claims, key=lambda c: (c.scope, c.window))
        try:
            (used,) = db.execute(
                "SELECT usage_reserve(%s, %s, %s, %s)",
                (
                    [c.scope for c in ordered],
                    [c.window for c in ordered],
                    [c.amount for c in ordered],
                    [c.limit for c in ordered],
                ),
            ).fetchone()
        except psycopg.Error as exc:
            if exc.diag.sqlstate != "SV001":
                raise
            which, found = (exc.diag.message_detail or "1:0").split(":")
            raise Exceeded(ordered[int(which) - 1], int(found)) from None
        by_claim = {id(c): int(u) for c, u in zip(ordered, used, strict=True)}
        return [by_claim[id(c)] for c in claims]

    def settle(self, changes: Sequence[tuple[str, int, int]]) -> None:
        db = self._db()
        try:
            with db.transaction():
                for scope, window, delta in sorted(changes):
                    if delta:
                        db.execute(
                            "UPDATE usage_counters SET used = used + %s WHERE scope = %s AND win = %s",
                            (delta, scope, window),
                        )
        except Exception as exc:
            self._drop()
            raise CounterStoreDown(str(exc)) from exc

    def expire(self, before: int) -> None:
        db = self._db()
        try:
            # Minute windows go once they end; money windows (a month at most) after 40 days.
            db.execute(
                "DELETE FROM usage_counters WHERE (win < %s AND scope NOT LIKE 'money:%%') OR win < %s",
                (before - 60, before - 40 * 86400),
            )
        except Exception as exc:
            self._drop()
            raise CounterStoreDown(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            dbs, self._all = self._all, []
        for db in dbs:
            try:
                db.close()
            except Exception:
                pass


# KEYS: the counters' names; ARGV: amount, limit, ttl for each, in turn. All or none.
_RESERVE = """
local used = {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[3 * i - 2])
  local limit = tonumber(ARGV[3 * i - 1])
  local now = tonumber(redis.call('GET', key) or '0')
  if now + amount > limit then
    return {-i, now}
  end
  used[i] = now + amount
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, tonumber(ARGV[3 * i - 2]))
  redis.call('EXPIRE', key, tonumber(ARGV[3 * i]))
end
return used
"""


class RedisCounters:
    """Counters in Redis (`usage.budget_store: {kind: redis, url: ...}`): one key per
    (scope, window), reserved by one Lua script (atomic on the server), expiring after
    its window."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script: Any = self._client.register_script(_RESERVE)

    @staticmethod
    def _key(scope: str, window: int) -> str:
        return f"souverain:budget:{scope}:{window}"

    def reserve(self, claims: Sequence[Claim]) -> list[int]:
        ordered = sorted(claims, key=lambda c: (c.scope, c.window))
        args: list[int] = []
        for c in ordered:
            args += [c.amount, c.limit, max(60, c.reset - c.window + 3600)]
        try:
            result = self._script(keys=[self._key(c.scope, c.window) for c in ordered], args=args)
        except Exception as exc:
            raise CounterStoreDown(str(exc)) from exc
        if result and int(result[0]) < 0:
            raise Exceeded(ordered[-int(result[0]) - 1], int(result[1]))
        order = {id(c): int(u) for c, u in zip(ordered, result, strict=True)}
        return [order[id(c)] for c in claims]

    def settle(self, changes: Sequence[tuple[str, int, int]]) -> None:
        try:
            pipe = self._client.pipeline()
            for scope, window, delta in changes:
                if delta:
                    pipe.incrby(self._key(scope, window), delta)
            pipe.execute()
        except Exception as exc:
            raise CounterStoreDown(str(exc)) from exc

    def expire(self, before: int) -> None:
        pass  # keys expire by themselves

    def close(self) -> None:
        self._client.close()
