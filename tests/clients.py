"""Client threads that keep a gateway's replicas busy and keep every answer
(tests/test_replicas.py, tests/test_usage_replicas.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
from conftest import Server


@dataclass(frozen=True, slots=True)
class Answer:
    replica: int  # which of the replicas answered
    status: int
    code: str  # the error's code; "" for a 200
    index: int | None  # the ledger index its headers name


class Clients:
    """`threads` clients sending `body` round-robin to the replicas until `finish` or
    `limit` answers. A request that gets no answer (its replica was killed) is counted in
    `failed`, not kept."""

    def __init__(
        self, replicas: list[Server], token: str, body: dict[str, Any], threads: int, limit: int = 10**9
    ) -> None:
        self.replicas, self.token, self.body, self.limit = replicas, token, body, limit
        self.answers: list[Answer] = []
        self.failed = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                replica = n % len(self.replicas)
                n += 1
                try:
                    r = client.post(
                        f"{self.replicas[replica].url}/v1/chat/completions", json=self.body, headers=headers
                    )
                except httpx.HTTPError:
                    with self.lock:
                        self.failed += 1
                    continue
                code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else ""
                index = r.headers.get("x-souverain-ledger-index")
                with self.lock:
                    self.answers.append(Answer(replica, r.status_code, code, int(index) if index else None))
                    if len(self.answers) >= self.limit:
                        self.stop.set()

    def count(self, status: int | None = None, code: str | None = None) -> int:
        with self.lock:
            return sum(
                1 for a in self.answers if (status is None or a.status == status) and (code is None or a.code == code)
            )

    def by_replica(self) -> list[int]:
        with self.lock:
            return [sum(1 for a in self.answers if a.replica == n) for n in range(len(self.replicas))]

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)
