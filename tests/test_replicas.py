"""Three gateway replicas on one PostgreSQL, under concurrent load, as on a cluster: three
`souverain serve` processes on three ports, each with a state directory of its own (as
three pods), sharing only the database and the ledger's signing key (a mounted secret in
a cluster; a shared file-provider directory here), in front of a mock upstream.

- a key made through one works on all; revoked, it is refused by all within 1 s;
- one replica is killed with SIGKILL mid-load;
- afterwards the exported ledger verifies as one log, and every answered request has its
  entry (its index, its key, its status).

PostgreSQL is real: skipped with the reason when absent, a failure under CI=true.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import msgspec
from clients import Clients
from conftest import Server
from polling import until
from upstreams import Upstream, assistant_config, shared_state

from souverain.ledger import decode_entry
from souverain.ledger.tiles import decode_bundle, parse_tile_path

CHAT = {"model": "assistant", "messages": [{"role": "user", "content": "Say hello"}]}


def status(replica: Server, token: str) -> tuple[int, str]:
    response = httpx.post(
        f"{replica.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return response.status_code, code or ""


def refusal_times(replicas: list[Server], token: str, start: float, give_up_s: float = 10.0) -> list[float]:
    """Per replica, in parallel: probe with `token` until it is refused as revoked; the
    seconds from `start` to the moment the first refused probe was sent (a probe's answer
    may come late under load; the check happened after it was sent). A probe answered
    200 after a refusal would be a replica going back on it: that fails."""
    took = [float("inf")] * len(replicas)

    def probe(n: int) -> None:
        while time.monotonic() - start < give_up_s:
            sent = time.monotonic()
            if status(replicas[n], token) == (401, "revoked_api_key"):
                again = status(replicas[n], token) == (401, "revoked_api_key")
                took[n] = sent - start if again else float("nan")  # nan: accepted again after a refusal
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=probe, args=(n,)) for n in range(len(replicas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return took


def exported_entries(directory: Path) -> dict[int, dict]:
    entries: dict[int, dict] = {}
    for path in (directory / "tile" / "entries").rglob("*"):
        if path.is_file():
            _, index, _ = parse_tile_path(str(path.relative_to(directory)))
            for i, data in enumerate(decode_bundle(path.read_bytes())):
                entries[index * 256 + i] = msgspec.to_builtins(decode_entry(data))
    return entries


def test_three_replicas_share_keys_and_one_ledger(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    upstream = Upstream("upstream")
    config = assistant_config(upstream, state=shared_state(tmp_path, pg_dsn, pg_schema))
    replicas: list[Server] = []
    try:
        for i in range(3):  # the first migrates and makes the admin key and the log's key
            folder = tmp_path / f"replica{i}"
            folder.mkdir()
            replicas.append(Server(folder, config))
            replicas[-1].wait_ready()
        admin = replicas[0].key
        assert admin and not replicas[1].key and not replicas[2].key  # one first start for all

        # A key made through one works on all.
        made = replicas[1].cli("keys", "create", "--name", "load")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        for replica in replicas:
            until(lambda r=replica: status(r, token)[0] == 200, 1.0, f"the new key accepted by {replica.url}")

        load = Clients(replicas, token, CHAT, threads=6)
        until(lambda: load.count() >= 60, 120, "load under way")

        # Revoked through one, refused by all within 1 s, under load.
        doomed = replicas[0].cli("keys", "create", "--name", "doomed").stdout.strip()
        for replica in replicas:
            until(lambda r=replica: status(r, doomed)[0] == 200, 1.0, f"the doomed key accepted by {replica.url}")
        revoked = replicas[2].cli("keys", "revoke", doomed.split("-")[2])
        assert revoked.returncode == 0, revoked.stderr
        start = time.monotonic()
        took = refusal_times(replicas, doomed, start)
        assert all(t <= 1.0 for t in took), f"seconds from the revocation to the first refusal per replica: {took}"

        # One replica killed mid-load; the others carry on.
        before = load.count()
        replicas[1].proc.kill()
        replicas[1].proc.wait()
        until(lambda: load.count() >= before + 120, 120, "load carried on after the kill")
        load.finish()
        assert load.failed >= 1  # requests in flight to, or sent to, the killed replica
        assert all(load.by_replica()), load.by_replica()  # each replica answered, the killed one before
        print(f"answered per replica {load.by_replica()}, failed {load.failed}, revocation seen after {took} s")
        for replica in (replicas[0], replicas[2]):
            replica.stop()  # SIGTERM: a last integration round, then exit
            assert "Application shutdown complete" in replica.log.read_text(), replica.log.read_text()[-2000:]
    finally:
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.proc.kill()
                replica.proc.wait()
        upstream.stop()

    # The exported ledger verifies as one log, and every answered request has its entry.
    assert load.answers and all(a.status == 200 for a in load.answers)
    indexes = [a.index for a in load.answers]
    assert len(set(indexes)) == len(indexes), "two answers name one ledger index"
    env = {**replicas[0].env, "SOUVERAIN_STATE_DIR": str(replicas[0].state)}
    config_path = str(replicas[0].config_path)

    def ledger(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "souverain", "ledger", *args, "--config", config_path],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    vkey = ledger("key")
    assert vkey.returncode == 0, vkey.stderr
    exported = ledger("export", str(tmp_path / "export"), "--quiet")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    verified = ledger("verify", str(tmp_path / "export"), "--vkey", vkey.stdout.strip(), "--json")
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["ok"], verified.stdout + verified.stderr
    entries = exported_entries(tmp_path / "export")
    assert report["entries"] == len(entries) and sorted(entries) == list(range(len(entries)))
    load_key = token.split("-")[2]
    for index in indexes:
        assert index in entries, f"answered request with ledger index {index} has no entry"
        assert entries[index]["key_id"] == load_key and entries[index]["status"] == 200


def test_serve_workers_on_postgres_refuse_a_revoked_key(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:  # noqa: F811
    """`serve --workers 2` on PostgreSQL state: each forked process keeps its own copy of
    the keys (and its own listener); a revocation reaches both within 1 s."""
    upstream = Upstream("upstream")
    config = f"""
state: {{kind: postgres, dsn: "{pg_dsn}", schema: {pg_schema}}}
routing: {{health_interval_s: 0}}
models:
  - {{name: assistant, engine: openai_http, base_url: "http://127.0.0.1:{upstream.port}/v1"}}
"""
    server = Server(tmp_path, config, serve_args=["--workers", "2"])
    try:
        server.wait_ready()
        token = server.cli("keys", "create", "--name", "w").stdout.strip()
        until(lambda: all(status(server, token)[0] == 200 for _ in range(6)), 1.0, "the new key accepted")
        assert server.cli("keys", "revoke", token.split("-")[2]).returncode == 0
        # Six requests a round, each on a new connection: the processes accept from one
        # socket in turn as they are free, so both are asked (not guaranteed, likely).
        until(
            lambda: all(status(server, token) == (401, "revoked_api_key") for _ in range(6)),
            1.0,
            "the revoked key refused by every process",
        )
        assert "with 2 gateway processes" in server.log.read_text()
    finally:
        server.stop()
        upstream.stop()
