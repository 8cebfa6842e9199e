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

On the request's path (`Admissions`): the reservations a process has waiting while one
call to the store is under way go together in the next call (one round trip for many),
with the same outcome as one after the other; the call is made from the event loop
without a thread where the store allows (SQLite while its write lock is free; the asyncio
clients of psycopg and redis-py). Settling is off the path (the usage writer's thread),
netted per counter: one update per counter for a batch of requests.

Counters are committed without waiting for the disk (PostgreSQL `synchronous_commit = off`;
SQLite in WAL with `synchronous=NORMAL`, Redis as configured): a database that crashes
may forget the last fraction of a second of reservations and settlements. What a request
cost is never lost that way (the ledger entry and usage row are durable); only the
counter may start lower than the rows say, by what was admitted in that instant.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

from souverain.usage.store import UsageDb

log = logging.getLogger("souverain.usage")


_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


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

    async def reserve_async(self, claims: Sequence[Claim], thread: Executor) -> list[int]:
        """`reserve`, from the event loop, the store's cheapest way that never blocks it;
        whatever must block runs on `thread`."""

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
        self._kind = ""  # sqlite | postgres, once a connection is open
        self._quick: UsageDb | None = None  # SQLite: for `_reserve_now`, on the event loop
        self._async: tuple[asyncio.AbstractEventLoop, Any] | None = None  # PostgreSQL: (loop, AsyncConnection)

    def _db(self) -> UsageDb:
        db: UsageDb | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = self._connect()
            except Exception as exc:
                raise CounterStoreDown(str(exc)) from exc
            db.relaxed()
            self._kind = db.kind
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def _drop(self) -> None:
        db = getattr(self._local, "db", None)
        self._local.db = None
        self._forget(db)

    def _forget(self, db: UsageDb | None) -> None:
        """Close a connection given up on (perhaps broken) and stop tracking it."""
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
            if db.kind == "postgres":
                return self._reserve_postgres(db, claims)
            with db.transaction():
                used = self._reserve_sqlite(db, claims)
            if self._quick is None:
                self._quick = self._open_quick()
            return used
        except Exceeded:
            raise
        except Exception as exc:
            self._drop()
            raise CounterStoreDown(str(exc)) from exc

    async def reserve_async(self, claims: Sequence[Claim], thread: Executor) -> list[int]:
        """SQLite: on the event loop when its write lock is free (`_reserve_now`), else on
        `thread`. PostgreSQL: over an asyncio connection (`_reserve_postgres_async`)."""
        used = self._reserve_now(claims)
        if used is not None:
            return used
        if self._kind == "postgres":
            return await self._reserve_postgres_async(claims, thread)
        return await asyncio.get_running_loop().run_in_executor(thread, self.reserve, claims)

    def _reserve_now(self, claims: Sequence[Claim]) -> list[int] | None:
        """SQLite: `reserve` on the calling thread (the event loop's: one local write
        transaction, tens of microseconds) if the database's write lock is free at once;
        None, having done nothing, if another writer holds it or no connection is open for
        this yet (the caller then runs `reserve` on a thread, which waits for the lock).
        This connection never checkpoints the WAL (the writer's connections do), so a
        commit here does not wait for the disk. PostgreSQL: always None (a round trip)."""
        db = self._quick
        if db is None:
            return None
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _BUSY:
                return None  # another writer holds the lock: wait for it on a thread instead
            self._drop_quick()
            raise CounterStoreDown(str(exc)) from exc
        except Exception as exc:
            self._drop_quick()
            raise CounterStoreDown(str(exc)) from exc
        try:
            used = self._reserve_sqlite(db, claims)
            db.conn.execute("COMMIT")
            return used
        except Exceeded:
            self._rollback_quick(db)
            raise
        except Exception as exc:
            self._drop_quick()  # closing the connection undoes what it had begun
            if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode & 0xFF in _BUSY:
                return None
            raise CounterStoreDown(str(exc)) from exc

    def _rollback_quick(self, db: UsageDb) -> None:
        try:
            db.conn.execute("ROLLBACK")
        except Exception:
            self._drop_quick()

    def _open_quick(self) -> UsageDb | None:
        """The connection `_reserve_now` uses (SQLite only): opened on a thread, where
        opening may wait (schema migration, the WAL switch); it never waits after."""
        db = self._connect()
        if db.kind != "sqlite":
            db.close()
            return None
        db.execute("PRAGMA busy_timeout=0")
        db.execute("PRAGMA wal_autocheckpoint=0")
        with self._lock:
            self._all.append(db)
        return db

    def _drop_quick(self) -> None:
        db, self._quick = self._quick, None
        self._forget(db)

    @staticmethod
    def _reserve_sqlite(db: UsageDb, claims: Sequence[Claim]) -> list[int]:
        """Every claim's conditional upsert, in one order, inside the caller's write
        transaction (SQLite's write lock makes it atomic across processes)."""
        used: dict[int, int] = {}
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
            used[id(claim)] = int(row[0])
        return [used[id(c)] for c in claims]

    @staticmethod
    def _reserve_postgres(db: UsageDb, claims: Sequence[Claim]) -> list[int]:
        import psycopg

        ordered = sorted(claims, key=lambda c: (c.scope, c.window))
        try:
            (used,) = db.execute(_CALL, _arrays(ordered)).fetchone()
        except psycopg.Error as exc:
            raise _exceeded(exc, ordered) from None
        return _in_order(claims, ordered, used)

    async def _reserve_postgres_async(self, claims: Sequence[Claim], thread: Executor) -> list[int]:
        """`usage_reserve()` over psycopg's asyncio connection: one round trip, no thread
        (the thread opens the usual connection once, whose parameters this one copies)."""
        import psycopg

        ordered = sorted(claims, key=lambda c: (c.scope, c.window))
        try:
            conn = await self._async_conn(thread)
            cursor = await conn.execute(_CALL, _arrays(ordered))
            (used,) = await cursor.fetchone()
        except psycopg.Error as exc:
            if exc.diag.sqlstate != "SV001":
                self._drop_async()
                raise CounterStoreDown(str(exc)) from exc
            raise _exceeded(exc, ordered) from None
        except CounterStoreDown:
            raise
        except Exception as exc:
            self._drop_async()
            raise CounterStoreDown(str(exc)) from exc
        return _in_order(claims, ordered, used)

    async def _async_conn(self, thread: Executor) -> Any:
        import psycopg

        loop = asyncio.get_running_loop()
        if self._async is not None and self._async[0] is loop and not self._async[1].closed:
            return self._async[1]
        self._drop_async()
        dsn, password, search_path = await loop.run_in_executor(thread, self._postgres_params)
        conn = await psycopg.AsyncConnection.connect(dsn, password=password, autocommit=True)
        try:
            await conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
            await conn.execute("SET synchronous_commit TO off")
        except BaseException:
            await conn.close()
            raise
        self._async = (loop, conn)
        return conn

    def _postgres_params(self) -> tuple[str, str | None, str]:
        """The DSN, password and search path of this thread's connection (migrated)."""
        db = self._db()
        try:
            (search_path,) = db.execute("SHOW search_path").fetchone()
            info = db.conn.info
            return info.dsn, info.password or None, str(search_path)
        except Exception as exc:
            self._drop()
            raise CounterStoreDown(str(exc)) from exc

    def _drop_async(self) -> None:
        held, self._async = self._async, None
        if held is not None:
            try:
                held[1].pgconn.finish()  # its loop may be gone: closed without awaiting
            except Exception:
                pass

    def settle(self, changes: Sequence[tuple[str, int, int]]) -> None:
        net = _net(changes)
        if not net:
            return
        db = self._db()
        try:
            with db.transaction():
                for (scope, window), delta in sorted(net.items()):
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
        self._quick = None
        self._drop_async()
        with self._lock:
            dbs, self._all = self._all, []
        for db in dbs:
            try:
                db.close()
            except Exception:
                pass


_CALL = "SELECT usage_reserve(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[])"


def _arrays(ordered: Sequence[Claim]) -> tuple[str, str, str, str]:
    """`usage_reserve()`'s arguments, the claims' scopes, windows, amounts and limits, as
    PostgreSQL array literals sent as text: psycopg's adaptation of Python lists looks
    into every list on every call, half the client's CPU for this statement (112 against
    58 µs a call, measured). The literal is PostgreSQL's array input syntax: each element
    in double quotes, with `"` and backslash escaped by a backslash."""
    quoted = ('"' + c.scope.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in ordered)
    return (
        "{" + ",".join(quoted) + "}",
        "{" + ",".join(str(int(c.window)) for c in ordered) + "}",
        "{" + ",".join(str(int(c.amount)) for c in ordered) + "}",
        "{" + ",".join(str(int(c.limit)) for c in ordered) + "}",
    )


def _exceeded(exc: Exception, ordered: Sequence[Claim]) -> Exception:
    """`usage_reserve()`'s refusal (SQLSTATE SV001, detail "claim:used") as `Exceeded`;
    any other error as it is."""
    diag = getattr(exc, "diag", None)
    if diag is None or diag.sqlstate != "SV001":
        return exc
    which, found = (diag.message_detail or "1:0").split(":")
    return Exceeded(ordered[int(which) - 1], int(found))


def _in_order(claims: Sequence[Claim], ordered: Sequence[Claim], used: Sequence[int]) -> list[int]:
    by_claim = {id(c): int(u) for c, u in zip(ordered, used, strict=True)}
    return [by_claim[id(c)] for c in claims]


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

        self._url = url
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script: Any = self._client.register_script(_RESERVE)
        # redis-py's asyncio client, for `reserve_async`: bound to the loop it was made on
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_script: Any = None

    @staticmethod
    def _key(scope: str, window: int) -> str:
        return f"souverain:budget:{scope}:{window}"

    def reserve(self, claims: Sequence[Claim]) -> list[int]:
        ordered, keys, args = self._call(claims)
        try:
            result = self._script(keys=keys, args=args)
        except Exception as exc:
            raise CounterStoreDown(str(exc)) from exc
        return self._used(claims, ordered, result)

    async def reserve_async(self, claims: Sequence[Claim], thread: Executor) -> list[int]:
        """The same script, sent by redis-py's asyncio client: one round trip, no thread."""
        ordered, keys, args = self._call(claims)
        try:
            loop = asyncio.get_running_loop()
            if self._loop is not loop:
                import redis.asyncio

                client = redis.asyncio.Redis.from_url(self._url, socket_timeout=2, socket_connect_timeout=2)
                self._async_script, self._loop = client.register_script(_RESERVE), loop
            result = await self._async_script(keys=keys, args=args)
        except Exception as exc:
            raise CounterStoreDown(str(exc)) from exc
        return self._used(claims, ordered, result)

    def _call(self, claims: Sequence[Claim]) -> tuple[list[Claim], list[str], list[int]]:
        ordered = sorted(claims, key=lambda c: (c.scope, c.window))
        args: list[int] = []
        for c in ordered:
            args += [c.amount, c.limit, max(60, c.reset - c.window + 3600)]
        return ordered, [self._key(c.scope, c.window) for c in ordered], args

    @staticmethod
    def _used(claims: Sequence[Claim], ordered: list[Claim], result: Any) -> list[int]:
        if result and int(result[0]) < 0:
            raise Exceeded(ordered[-int(result[0]) - 1], int(result[1]))
        order = {id(c): int(u) for c, u in zip(ordered, result, strict=True)}
        return [order[id(c)] for c in claims]

    def settle(self, changes: Sequence[tuple[str, int, int]]) -> None:
        try:
            pipe = self._client.pipeline()
            for (scope, window), delta in _net(changes).items():
                pipe.incrby(self._key(scope, window), delta)
            pipe.execute()
        except Exception as exc:
            raise CounterStoreDown(str(exc)) from exc

    def expire(self, before: int) -> None:
        pass  # keys expire by themselves

    def close(self) -> None:
        self._client.close()


@dataclass(slots=True)
class _Waiting:
    claims: Sequence[Claim]
    future: asyncio.Future[list[int]]


class Admissions:
    """One process's reservations, batched as the ledger's sequencer batches its entries:
    while a call to the store is under way, the requests that arrive wait and go together
    in the next call, so a busy process makes one round trip for many requests.

    A batch is reserved as one request whose amounts are the sums, all or none. If it
    fits, each request's figures are the running totals, exactly as if they had been
    reserved one after the other in arrival order; if it does not (a limit is near), its
    requests are reserved one at a time, each admitted or refused on its own as without
    batching. Either way a counter never passes its limit at admission.

    The call is the store's `reserve_async` (no thread where the store can avoid one);
    what must block runs on this process's budgets thread. A request whose caller went
    away before its reservation came back has it released at once."""

    def __init__(self, counters: Counters, max_batch: int = 256) -> None:
        self._counters = counters
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="usage-budgets")
        self._pending: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        self.calls = 0  # calls to the store (tests and benchmarks)

    async def reserve(self, claims: Sequence[Claim]) -> list[int]:
        """Like `Counters.reserve`: each counter's value after, or `Exceeded` or
        `CounterStoreDown`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._pending.append(_Waiting(claims, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await future

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                results = await self._reserve([w.claims for w in batch])
            except BaseException as exc:  # cancelled (the loop ends), or a bug: nobody is left waiting
                for w in batch + self._pending:
                    if not w.future.done():
                        w.future.set_exception(CounterStoreDown(f"reservation interrupted: {exc!r}"))
                self._pending = []
                raise
            for w, result in zip(batch, results, strict=True):
                if w.future.cancelled():
                    if not isinstance(result, BaseException):
                        self._release(w.claims)
                elif isinstance(result, BaseException):
                    w.future.set_exception(result)
                else:
                    w.future.set_result(result)

    async def _reserve(self, requests: list[Sequence[Claim]]) -> list[list[int] | Exception]:
        merged = _merge(requests)
        try:
            # A counter not yet in the store is created without a look at its limit, so
            # a sum already over one is never sent.
            over = next((c for c in merged if c.amount > c.limit), None)
            if over is not None:
                raise Exceeded(over, 0)
            used = await self._call(merged)
        except Exceeded as exc:
            if len(requests) > 1:  # near a limit: each on its own, in arrival order
                return [(await self._reserve([claims]))[0] for claims in requests]
            key = (exc.claim.scope, exc.claim.window)
            claim = next(c for c in requests[0] if (c.scope, c.window) == key)
            return [Exceeded(claim, exc.used)]
        except CounterStoreDown as exc:
            return [exc] * len(requests)
        return _split(requests, merged, used)

    async def _call(self, claims: list[Claim]) -> list[int]:
        self.calls += 1
        return await self._counters.reserve_async(claims, self._executor)

    def _release(self, claims: Sequence[Claim]) -> None:
        changes = [(c.scope, c.window, -c.amount) for c in claims]
        try:
            self._executor.submit(self._settle_quietly, changes)
        except RuntimeError:
            pass  # shut down: the reservation stays at its worst case until its window ends

    def _settle_quietly(self, changes: list[tuple[str, int, int]]) -> None:
        try:
            self._counters.settle(changes)
        except CounterStoreDown as exc:
            log.error("releasing an abandoned reservation failed (it stays at its worst case): %s", exc)


def _net(changes: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """The changes summed per counter, those that add up to nothing left out: one update
    per counter for a whole batch of settlements."""
    net: dict[tuple[str, int], int] = {}
    for scope, window, delta in changes:
        net[scope, window] = net.get((scope, window), 0) + delta
    return {key: delta for key, delta in net.items() if delta}


def _merge(requests: Sequence[Sequence[Claim]]) -> list[Claim]:
    """One claim per counter (scope, window): the sum of the amounts, the lowest limit."""
    if len(requests) == 1 and len({(c.scope, c.window) for c in requests[0]}) == len(requests[0]):
        return list(requests[0])
    sums: dict[tuple[str, int], tuple[Claim, int, int]] = {}
    for claims in requests:
        for c in claims:
            key = (c.scope, c.window)
            seen = sums.get(key)
            sums[key] = (c, c.amount, c.limit) if seen is None else (seen[0], seen[1] + c.amount, min(seen[2], c.limit))
    return [
        c if (amount, limit) == (c.amount, c.limit) else replace(c, amount=amount, limit=limit)
        for c, amount, limit in sums.values()
    ]


def _split(
    requests: Sequence[Sequence[Claim]], merged: Sequence[Claim], used: Sequence[int]
) -> list[list[int] | Exception]:
    """Each request's figures after a merged reservation: what each counter stood at right
    after that request's own amount, requests taken in order."""
    after = {(c.scope, c.window): u for c, u in zip(merged, used, strict=True)}
    results: list[list[int] | Exception] = []
    for claims in reversed(requests):
        figures = [0] * len(claims)
        for j in reversed(range(len(claims))):
            key = (claims[j].scope, claims[j].window)
            figures[j] = after[key]
            after[key] -= claims[j].amount
        results.append(figures)
    results.reverse()
    return results
