"""The gateway's side of the embedded engine: start, watch and restart its worker process.

`WorkerEngine` is the `Engine` the pipeline sees for a `llamacpp` model. The model runs in
a worker process (`worker.py`) reached over a Unix socket in `STATE/engines/` (mode 0700;
`shared.py`). This module keeps that process alive:

- **Start**: the worker picks its CPU variant, loads the model, generates one token as a
  self-test, then says `ready` on its standard output. Until then the model is `loading`
  (503 with `Retry-After`, as before).
- **Crash** (a signal, an exit): requests in flight on this model get a 502
  (`engine_crashed`) naming the signal; new ones a 503 while the worker restarts, after
  0.5 s, then 1, 2, 4... up to 30 s between attempts (back to 0.5 s once a worker has
  stayed up a minute). A worker that crashes before it is ever ready, as on a CPU it
  cannot run on, is started again on the next best CPU variant; once none is left (or the
  variant was forced), the model is `failed` with the reason in `/readyz`, and is still
  retried with the same back-off.
- **Hang**: a worker that does not answer its health check within `hang_timeout_s` is
  killed (SIGKILL) and handled as a crash.
- **A load that fails** for a reason a restart cannot fix (no model file, an unknown chat
  format) leaves the model `failed` without restarting.

Other models and routes are never touched: each model has its own worker.

Gateway processes that share a state directory share each model's worker: one of them
supervises it, the others reach the same socket and follow its state (`shared.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from souverain import errors
from souverain.chat import ChatRequest
from souverain.config import LlamaCppModel
from souverain.engines import cpu
from souverain.engines.base import Load, LocalState
from souverain.engines.chunks import assemble
from souverain.engines.shared import Slot
from souverain.errors import EngineUnavailable, GatewayError, InvalidRequest, UpstreamError, UpstreamTimeout
from souverain.outbound import Outbound, Sealed

log = logging.getLogger("souverain.engines.supervisor")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0
HEALTH_EVERY_S = 2.0
_PR_SET_PDEATHSIG = 1
# The classes a worker may answer with; anything else becomes a 502.
_RELAYED = {c.__name__: c for c in (InvalidRequest, errors.Overloaded, EngineUnavailable, UpstreamTimeout)}


def rebuild_error(body: Any, status: int) -> GatewayError:
    """The `GatewayError` the worker raised, from its `worker.error_body`."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return UpstreamError(f"the engine worker answered {status} without an error body", code="engine_failed")
    cls = _RELAYED.get(str(err.get("class")), UpstreamError)
    headers = err.get("headers") if isinstance(err.get("headers"), dict) else None
    return cls(str(err.get("message") or "engine error"), param=err.get("param"), code=err.get("code"), headers=headers)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class WorkerEngine(LocalState, Load):
    kind = "llamacpp"

    def __init__(self, config: LlamaCppModel, state_dir: Path | None = None) -> None:
        self.config = config
        self._state = "loading"
        self._error: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Event | None = None
        self._last_exit = ""
        self._inflight = 0
        self._generated_before = 0  # tokens counted by workers that have since exited
        self._generated_now = 0
        self.restarts = 0
        self.ready_since = 0.0
        self.variant: str | None = None
        # CPU variants that crashed a worker here: left out on later starts (cpu.py)
        self.excluded: list[str] = []
        self._slot = Slot(config.name, state_dir)
        self._socket = self._slot.socket
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self._socket),
            base_url="http://engine",
            timeout=httpx.Timeout(config.token_timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            trust_env=False,
        )
        # Health checks on their own connection: a pool full of long generations must not
        # delay them past `hang_timeout_s` and get a healthy worker killed.
        self._health = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self._socket), base_url="http://engine", trust_env=False
        )
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._releasing: set[asyncio.Task[None]] = set()

    # -- Engine protocol -------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._own_or_follow())

    async def close(self) -> None:
        self._closing = True  # the worker's exit below is no crash: no restart
        await self._stop_worker()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()
        await self._health.aclose()
        self._slot.close()

    @property
    def generated_tokens(self) -> int:
        return self._generated_before + self._generated_now

    @property
    def supports_embeddings(self) -> bool:
        return self.config.embeddings

    async def probe(self) -> bool:
        return self._state == "ready"

    def outbound(self, request: ChatRequest, *, stream: bool) -> Outbound:
        # The worker always streams; `chat` assembles. The body is the worker's ChatCall.
        return Outbound("stream" if stream else "chat", {"request": msgspec.to_builtins(request)})

    def outbound_embed(self, texts: list[str]) -> Outbound:
        if not self.config.embeddings:
            raise InvalidRequest(f"model {self.config.name!r} does not serve embeddings", param="model")
        return Outbound("embed", {"texts": texts})

    async def chat(self, sealed: Sealed) -> dict[str, Any]:
        return await assemble(self._stream(sealed.body_for("chat")), self.config.name)

    async def stream(self, sealed: Sealed) -> AsyncGenerator[dict[str, Any], None]:
        async for item in self._stream(sealed.body_for("stream")):
            yield item

    async def _stream(self, body: bytes) -> AsyncGenerator[dict[str, Any], None]:
        await self._admit()
        self._inflight += 1
        try:
            try:
                async with self._client.stream("POST", "/chat", content=body) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise rebuild_error(_decode(response.content), response.status_code)
                    async for line in response.aiter_lines():
                        if not line:
                            continue
                        item = _decode(line.encode())
                        if isinstance(item, dict) and "error" in item:
                            raise rebuild_error(item, 500)
                        yield item
            except httpx.TimeoutException:
                raise UpstreamTimeout(
                    f"model {self.config.name!r} produced nothing for {self.config.token_timeout_s:g}s",
                    code="engine_timeout",
                ) from None
            except httpx.TransportError as exc:
                raise await self._lost(exc) from None
        finally:
            # Not awaited here: a stream closed because its caller went away is closed
            # inside a cancelled scope, where any await raises again and the slot would
            # never be freed.
            task = asyncio.get_running_loop().create_task(self._release())
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def embed(self, sealed: Sealed) -> tuple[list[list[float]], int]:
        body = sealed.body_for("embed")
        await self._admit()
        self._inflight += 1
        try:
            response = await self._client.post("/embed", content=body)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"model {self.config.name!r} did not answer in time", code="engine_timeout") from None
        except httpx.TransportError as exc:
            raise await self._lost(exc) from None
        finally:
            self._inflight -= 1
        data = _decode(response.content)
        if response.status_code != 200:
            raise rebuild_error(data, response.status_code)
        try:
            return data["vectors"], int(data["tokens"])
        except (KeyError, TypeError, ValueError):
            raise UpstreamError(
                "the engine worker answered embeddings in an unexpected shape", code="engine_failed"
            ) from None

    async def _release(self) -> None:
        """Free a request's slot once the worker's token count (cancelled requests
        included) is read, so `/metrics` is current when the slot shows free."""
        try:
            if self._state == "ready":
                await self._read_health(timeout=1.0)
        finally:
            self._inflight -= 1

    async def _read_health(self, *, timeout: float) -> dict[str, Any] | None:
        """The worker's `/health`, None if it does not answer 200 in time; keeps its
        token count (every request's, cancelled ones included) current."""
        try:
            response = await self._health.get("/health", timeout=timeout)
        except httpx.HTTPError:
            return None
        health = _decode(response.content) if response.status_code == 200 else None
        if not isinstance(health, dict):
            return None
        self._generated_now = int(health.get("generated_tokens") or 0)
        return health

    # -- failures ----------------------------------------------------------------------------
    async def _admit(self) -> None:
        if self._state != "ready" and not self._slot.owned:
            await self._follow()  # another process supervises the worker: ask it now
        self._refuse_unless_ready(self.config.name, self.config.retry_after_s)

    async def _lost(self, exc: Exception) -> GatewayError:
        """The connection to the worker broke: say why if the worker died (it is being
        restarted), else that the connection was lost. No worker listening at all means
        nothing was sent: a 503, as while it restarts."""
        if isinstance(exc, httpx.ConnectError):
            return EngineUnavailable(
                f"model {self.config.name!r} is restarting: its engine worker is not up",
                headers={"Retry-After": str(self.config.retry_after_s)},
            )
        exited = self._exited
        if exited is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(exited.wait(), timeout=2.0)
        if exited is not None and exited.is_set():
            return UpstreamError(
                f"the engine worker of model {self.config.name!r} {self._last_exit} during the request; "
                "it is being restarted",
                code="engine_crashed",
            )
        return UpstreamError(
            f"lost the connection to the engine worker of model {self.config.name!r} ({type(exc).__name__})",
            code="engine_crashed",
        )

    # -- supervision -------------------------------------------------------------------------
    async def _own_or_follow(self) -> None:
        """Supervise the worker if no other gateway process on this state directory
        does (`shared.py`); else follow the one that does, and take over when it dies."""
        while not self._slot.try_own():
            await self._follow()
            await asyncio.sleep(HEALTH_EVERY_S / 4)
        if self._state == "ready":  # took over from a gateway process that died
            self._set("restarting", "the gateway process that supervised the engine worker is gone; starting a new one")
        await self._supervise()

    async def _follow(self) -> None:
        """Another gateway process owns the worker: its health is ours to read."""
        status = self._slot.read()
        self.variant = status.get("variant") or self.variant
        self.restarts = int(status.get("restarts") or 0)
        health = await self._read_health(timeout=self.config.hang_timeout_s)
        if health is not None and health.get("state") == "ready":
            if self._state != "ready":
                self.ready_since = time.monotonic()
            self._state, self._error = "ready", None
            return
        state = str(status.get("state") or "loading")
        self._state = state if state in ("failed", "restarting") else "loading"
        self._error = status.get("error")

    def _set(self, state: str, error: str | None) -> None:
        self._state, self._error = state, error
        self._slot.publish(
            {"state": state, "error": error, "variant": self.variant, "restarts": self.restarts, "pid": os.getpid()}
        )

    async def _supervise(self) -> None:
        backoff = BACKOFF_FIRST_S
        while True:
            started = time.monotonic()
            outcome = await self._run_once()
            if outcome == "config" or self._closing:
                return  # a restart cannot fix it: stays failed
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff = BACKOFF_FIRST_S
            self.restarts += 1
            self._set(self._state, self._error)
            log.warning("engine worker of model %s %s; restarting in %.1fs", self.config.name, self._last_exit, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _run_once(self) -> str:
        """Run one worker until it exits. Returns `config` for a load failure that a
        restart cannot fix, else `crash`."""
        self._last_exit = ""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._socket)
        self._exited = asyncio.Event()
        self._proc = proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "souverain.engines.worker",
            "--socket",
            self._socket,
            "--model",
            self.config.name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=self._in_child,
            env=self._worker_env(),
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(msgspec.json.encode(self.config))
        proc.stdin.close()
        failed: str | None = None
        watchdog: asyncio.Task[None] | None = None
        try:
            async for raw in proc.stdout:
                event = _decode(raw)
                if not isinstance(event, dict):
                    continue
                if event.get("event") == "variant":
                    self.variant = str(event.get("variant"))
                    self._set(self._state, self._error)
                    log.info("model %s: llama.cpp CPU variant %s", self.config.name, event.get("reason"))
                elif event.get("event") == "ready":
                    self.ready_since = time.monotonic()
                    self._set("ready", None)
                    log.info("model %s ready in engine worker %d", self.config.name, proc.pid)
                    watchdog = asyncio.get_running_loop().create_task(self._watch(proc))
                elif event.get("event") == "failed":
                    failed = str(event.get("error"))
            await proc.wait()
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            self._generated_before += self._generated_now
            self._generated_now = 0
        assert proc.returncode is not None
        self._last_exit = self._last_exit or describe_exit(proc.returncode)  # the watchdog's reason stands
        self._exited.set()
        was_ready = self._state == "ready"
        fallback = self._exclude_if_cpu_fault(proc.returncode, ready=was_ready)
        if failed is not None and proc.returncode == 3:
            self._set("failed", failed)
            log.error("model %s failed to load: %s", self.config.name, failed)
            return "config"
        where = "while serving" if was_ready else "before it was ready (loading the model, or its self-test)"
        variant = f" on llama.cpp CPU variant {self.variant}" if self.variant else ""
        error = f"engine worker {self._last_exit} {where}{variant}; {cpu.summary()}"
        if was_ready:
            self._set("restarting", error)
        elif fallback:
            self._set("loading", error)  # the next start tries the next best variant
        else:
            self._set("failed", error)
            log.error("model %s cannot run on this machine: %s", self.config.name, self._error)
        return "crash"

    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.excluded and not cpu.parse_override(env.get(cpu.ENV_OVERRIDE, ""))[0]:
            extra = ",".join("!" + v for v in self.excluded)
            env[cpu.ENV_OVERRIDE] = ",".join(filter(None, [env.get(cpu.ENV_OVERRIDE, ""), extra]))
        return env

    def _exclude_if_cpu_fault(self, returncode: int, *, ready: bool) -> bool:
        """An illegal instruction, or any signal before the worker was ever ready (its
        self-test runs the CPU kernels), says this CPU variant cannot run here: the next
        worker takes the next best one. The baseline variants are never left out."""
        if returncode >= 0 or self.variant is None or self.variant in cpu.BASELINES:
            return False
        if cpu.parse_override(os.environ.get(cpu.ENV_OVERRIDE, ""))[0] or self.variant in self.excluded:
            return False
        if returncode != -signal.SIGILL and ready:
            return False
        self.excluded.append(self.variant)
        log.warning(
            "model %s: CPU variant %s crashed the engine worker (%s); the next start leaves it out",
            self.config.name,
            self.variant,
            describe_exit(returncode),
        )
        return True

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        """Kill a worker that stops answering its health check (hung in native code)."""
        while proc.returncode is None:
            await asyncio.sleep(HEALTH_EVERY_S)
            if await self._read_health(timeout=self.config.hang_timeout_s) is None and proc.returncode is None:
                self._last_exit = (
                    f"did not answer its health check within {self.config.hang_timeout_s:g}s and was killed"
                )
                log.error("engine worker of model %s is hung; killing it", self.config.name)
                proc.kill()

    def _in_child(self) -> None:
        """In the child, before exec: end with the gateway (no orphan holding the
        model's memory), and a memory cap if configured, so running out of memory ends
        the worker (a 502 and a restart), not the host's other processes."""
        if sys.platform == "linux":
            import ctypes

            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if self.config.memory_limit_mb:
            import resource

            cap = self.config.memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    async def _stop_worker(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _decode(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
