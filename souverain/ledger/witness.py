"""A C2SP tlog-witness: cosigns a log's checkpoints after checking they extend what it saw.

    POST <prefix>/add-checkpoint           body: old <size>\\n [proof lines] \\n <checkpoint>
    GET  <prefix>/<hex sha256(origin)>/checkpoint

The witness keeps, per known log origin, the latest checkpoint it cosigned (SQLite). The
size check and the update happen in one `BEGIN IMMEDIATE` transaction, and the new state is
committed before the reply, as the spec requires, so two concurrent requests cannot roll
the witness back. Status codes are the spec's: 404 unknown origin, 403 no valid trusted
log signature, 400 old > new or a malformed body, 409 old size is not ours (body: our size),
422 the proof does not verify (or a size-0 checkpoint has a non-empty root).

`WitnessClient` is the log's side, used by the integrator.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from souverain.ledger import merkle
from souverain.ledger.checkpoint import Checkpoint
from souverain.ledger.note import (
    CosignatureSigner,
    CosignatureVerifier,
    NoteError,
    Signature,
    Verifier,
    b64,
    open_note,
    parse_note,
    parse_signature_lines,
    unb64,
)
from souverain.state.migrate import use_wal

MAX_BODY = 64 * 1024
MAX_PROOF_LINES = 63
SIZE_TYPE = "text/x.tlog.size"

SCHEMA = """
CREATE TABLE IF NOT EXISTS witness_logs (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL, updated REAL NOT NULL
);
"""


class WitnessError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    """The witness's logic, apart from HTTP so it can be tested and embedded."""

    def __init__(self, signer: CosignatureSigner, logs: Mapping[str, Sequence[Verifier]], state: str | Path) -> None:
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self._db = sqlite3.connect(state, isolation_level=None, check_same_thread=False, timeout=30)
        use_wal(self._db)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def add_checkpoint(self, body: bytes) -> Reply:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Reply(400, "body is not UTF-8\n")
        head, sep, note = text.partition("\n\n")
        if not sep:
            return Reply(400, "no empty line between the proof and the checkpoint\n")
        lines = head.split("\n")
        if (
            not lines[0].startswith("old ")
            or not lines[0][4:].isdigit()
            or (lines[0][4:].startswith("0") and lines[0] != "old 0")
        ):
            return Reply(400, "first line must be `old <size>`\n")
        old = int(lines[0][4:])
        if len(lines) - 1 > MAX_PROOF_LINES:
            return Reply(400, "too many consistency proof lines\n")
        try:
            proof = [unb64(line) for line in lines[1:]]
            parsed = parse_note(note)
            checkpoint = Checkpoint.parse(parsed.text)
        except NoteError as exc:
            return Reply(400, f"{exc}\n")
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            return Reply(404, "unknown log origin\n")
        try:
            open_note(parsed, keys)
        except NoteError as exc:
            return Reply(403, f"{exc}\n")
        if old > checkpoint.size:
            return Reply(400, "old size is larger than the checkpoint's\n")
        if checkpoint.size == 0 and checkpoint.root != merkle.EMPTY_ROOT:
            return Reply(422, "a size-0 checkpoint must have the empty root\n")
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT size, root FROM witness_logs WHERE origin = ?", (checkpoint.origin,)
                ).fetchone()
                size, root = (row[0], bytes(row[1])) if row else (0, merkle.EMPTY_ROOT)
                if old != size:
                    db.execute("ROLLBACK")
                    return Reply(409, f"{size}\n", SIZE_TYPE)
                problem = self._check(old, root, checkpoint, proof)
                if problem:
                    db.execute("ROLLBACK")
                    return Reply(422, problem + "\n")
                cosignature = Signature(self.signer.name, self.signer.key_id, self.signer.sign(parsed.text.encode()))
                kept = [s for s in parsed.signatures if any(s.name == k.name and s.key_id == k.key_id for k in keys)]
                stored = parsed.text + "\n" + "".join(s.line() for s in kept) + cosignature.line()
                db.execute(
                    "INSERT OR REPLACE INTO witness_logs (origin, size, root, note, updated) VALUES (?, ?, ?, ?, ?)",
                    (checkpoint.origin, checkpoint.size, checkpoint.root, stored, time.time()),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return Reply(200, cosignature.line())

    @staticmethod
    def _check(old: int, old_root: bytes, checkpoint: Checkpoint, proof: list[bytes]) -> str | None:
        if old == 0:
            return "a proof from size 0 must be empty" if proof else None
        if old == checkpoint.size:
            if proof:
                return "a proof between equal sizes must be empty"
            return None if old_root == checkpoint.root else "same size, different root: the log forked"
        try:
            merkle.verify_consistency(old, checkpoint.size, old_root, checkpoint.root, proof)
        except merkle.ProofError as exc:
            return f"consistency proof does not verify: {exc}"
        return None

    def latest(self, origin_hash: str) -> str | None:
        for origin in self.logs:
            if hashlib.sha256(origin.encode()).hexdigest() == origin_hash:
                with self._lock:
                    row = self._db.execute("SELECT note FROM witness_logs WHERE origin = ?", (origin,)).fetchone()
                return row[0] if row else None
        return None

    def close(self) -> None:
        self._db.close()


def create_witness_app(witness: Witness) -> Starlette:
    """The witness's HTTP surface (submission and monitoring prefix both at the root)."""

    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("body too large\n", status_code=413)
        reply = await anyio.to_thread.run_sync(witness.add_checkpoint, body)
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

    async def checkpoint(request: Request) -> Response:
        note = witness.latest(request.path_params["origin_hash"])
        if note is None:
            return PlainTextResponse("never cosigned a checkpoint of that log\n", status_code=404)
        return PlainTextResponse(note, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/{origin_hash:str}/checkpoint", checkpoint, methods=["GET"]),
        ]
    )


class WitnessClient:
    """The log's side of add-checkpoint: remembers the witness's size, follows a 409, and
    keeps only cosignatures that verify under the configured witness key."""

    def __init__(
        self, url: str, verifier: CosignatureVerifier, *, timeout: float = 5.0, http: httpx.Client | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.verifier = verifier
        self.size: int | None = None
        self._http = http or httpx.Client(timeout=timeout)

    def cosign(self, note: str, size: int, proof: Callable[[int], list[bytes]]) -> list[Signature]:
        old = self.size if self.size is not None and self.size <= size else 0
        for _ in range(3):
            lines = [b64(h) for h in (proof(old) if 0 < old < size else [])]
            body = "".join(line + "\n" for line in [f"old {old}", *lines]) + "\n" + note
            try:
                reply = self._http.post(self.url + "/add-checkpoint", content=body.encode())
            except httpx.HTTPError as exc:
                raise WitnessError(f"unreachable: {exc}") from None
            if reply.status_code == 409 and reply.headers.get("content-type", "").startswith(SIZE_TYPE):
                theirs = int(reply.text.strip() or 0)
                if theirs > size:
                    raise WitnessError(f"witness has seen size {theirs}, larger than ours ({size})")
                old = theirs
                continue
            if reply.status_code != 200:
                raise WitnessError(f"HTTP {reply.status_code}: {reply.text.strip()[:200]}")
            text = parse_note(note).text.encode()
            good = [
                s
                for s in parse_signature_lines(reply.text)
                if s.name == self.verifier.name
                and s.key_id == self.verifier.key_id
                and self.verifier.verify(text, s.signature)
            ]
            if not good:
                raise WitnessError("reply holds no valid cosignature by the configured witness key")
            self.size = size
            return good
        raise WitnessError("witness kept answering 409")

    def close(self) -> None:
        self._http.close()
