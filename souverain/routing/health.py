"""Route health: a circuit breaker and an in-flight count per deployment.

The breaker opens after `failures` consecutive failures and stays open for `cooldown_s`;
then one request (or health probe) may pass (half-open): success closes it, failure opens
it again. An engine that restarts its own process (the embedded engine's worker) says
when it last became ready; a breaker opened before that judged a process that is gone,
and is closed. This state is the only mutable part of routing, and it lives on the gateway
instance; `decide` only reads a snapshot of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from souverain.routing.decide import Health


@dataclass
class Breaker:
    failures_to_open: int = 3
    cooldown_s: float = 10.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def available(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if now - self.opened_at >= self.cooldown_s and not self.probing:
            return True  # half-open: let one through
        return False

    def started(self, now: float) -> None:
        if self.opened_at is not None and now - self.opened_at >= self.cooldown_s:
            self.probing = True

    def success(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self, now: float) -> None:
        self.failures += 1
        self.probing = False
        if self.failures >= self.failures_to_open or self.opened_at is not None:
            self.opened_at = now


@dataclass
class HealthBook:
    failures_to_open: int = 3
    cooldown_s: float = 10.0
    breakers: dict[str, Breaker] = field(default_factory=dict)
    outstanding: dict[str, int] = field(default_factory=dict)

    def _breaker(self, deployment: str) -> Breaker:
        if deployment not in self.breakers:
            self.breakers[deployment] = Breaker(self.failures_to_open, self.cooldown_s)
        return self.breakers[deployment]

    def snapshot(
        self, deployments: Iterable[str], ready_since: Mapping[str, float], now: float | None = None
    ) -> dict[str, Health]:
        now = time.monotonic() if now is None else now
        health = {}
        for d in deployments:
            breaker = self._breaker(d)
            if breaker.opened_at is not None and breaker.opened_at < ready_since.get(d, 0.0):
                breaker.success()  # the engine restarted after the failures that opened it
            health[d] = Health(breaker.available(now), self.outstanding.get(d, 0))
        return health

    def begin(self, deployment: str) -> None:
        self._breaker(deployment).started(time.monotonic())
        self.outstanding[deployment] = self.outstanding.get(deployment, 0) + 1

    def probed(self, deployment: str, ok: bool, now: float | None = None) -> None:
        """An active health check's result: a failure counts like a failed request; a
        success closes an open breaker (the probe was its trial request)."""
        breaker = self._breaker(deployment)
        if ok:
            if breaker.opened_at is not None:
                breaker.success()
        else:
            breaker.failure(time.monotonic() if now is None else now)

    def end(self, deployment: str, ok: bool) -> None:
        self.outstanding[deployment] = max(0, self.outstanding.get(deployment, 1) - 1)
        breaker = self._breaker(deployment)
        if ok:
            breaker.success()
        else:
            breaker.failure(time.monotonic())
