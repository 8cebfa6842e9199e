"""The limits uvicorn does not enforce itself, on the gateway's own socket.

uvicorn (with httptools) closes an idle kept-alive connection (`timeout_keep_alive`, set
from `hardening.idle_timeout_s`), and nothing else: measured on uvicorn 0.54, a
connection that sends nothing, headers or a body one byte every few seconds stays open
for ever, headers have no size or count limit, and connections are accepted until the
process runs out of file descriptors. `GuardedProtocol` adds, per connection:

- a deadline for the request line and headers (`header_timeout_s`), from the moment the
  connection opens or, on a kept-alive connection, from the next request's first byte;
- a bound on their size and count (`max_header_bytes`, `max_headers`): a 431;
- a minimum average body rate after a grace period (`body_min_rate_bytes_s`,
  `body_grace_s`); it also bounds how long a body is read and discarded after an early
  answer (a 413), so that the client reads that answer instead of a reset;
- a cap on open connections (`max_connections`): one past it gets a 503 and is closed.

`raise_open_files` lifts the process's soft open-file limit towards the hard one, so
that the cap, not the OS, is what a flood of connections meets first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import sys
from collections.abc import Callable
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from souverain.config.schema import HardeningConfig

log = logging.getLogger("souverain.api")

# File descriptors the process needs besides client connections: databases, the
# ledger, model files, upstream connections, logs.
RESERVED_FILES = 256


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; `send_400_response` answers it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines and size limits (module docstring)."""

    def __init__(self, *args: Any, limits: HardeningConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # parsed: request line and complete headers
        self._raw_header_bytes = 0  # received while the headers are incomplete
        self._header_count = 0
        self._in_headers = False
        self._headers_ended = False  # set when a chunk completed the headers
        self._body_since = 0.0
        self._body_bytes = 0
        self._body_done = True
        self._close_after_body = False

    # -- connection ------------------------------------------------------------------
    # uvicorn's protocol declares BaseTransport; a TCP server always hands over a Transport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            log.warning(
                "refused a connection: %d open, the limit is %d",
                len(self.connections) - 1,
                self._limits.max_connections,
            )
            self._answer(503, "The gateway has too many open connections; try again shortly.", retry_after=True)
            return
        self._in_headers = True
        self._arm(self._limits.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        received = self._raw_header_bytes + len(data) if self._in_headers else 0
        self._headers_ended = False
        super().data_received(data)
        if self._headers_ended:
            # Headers ended within this chunk: the rest is body (or a whole request, whose
            # completion set `_in_headers` again for the next one); not header bytes.
            self._raw_header_bytes = 0
        elif self._in_headers and self.parser is not None and not self.transport.is_closing():
            # Headers still incomplete: every byte so far is header bytes. httptools keeps
            # a header it has not finished in memory, so count them before it ends.
            self._raw_header_bytes = received
            if received > self._limits.max_header_bytes:
                self._answer(431, _too_long(self._limits))

    # -- parser callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = self._raw_header_bytes = self._header_count = 0
        if self._timer is None:  # a kept-alive connection's next request
            self._arm(self._limits.header_timeout_s, self._headers_late)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_headers:
            raise _Refused(431, f"Requests may carry at most {self._limits.max_headers} headers.")
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._headers_ended = True
        self._raw_header_bytes = 0
        self._disarm()
        self._body_since, self._body_bytes, self._body_done = self.loop.time(), 0, False
        self._arm(self._limits.body_grace_s, self._body_check)
        super().on_headers_complete()
        if self.cycle is not None:
            # a stand-in with the transport's methods that closes without resetting (see the class)
            self.cycle.transport = _LingeringClose(self)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._body_done = True
        self._in_headers = True  # what comes next is the next request's headers
        super().on_message_complete()
        if self._close_after_body:
            self.transport.close()

    def close_after_body(self) -> None:
        """Close now if the request's body has all arrived; else once it has (read and
        discarded), or when it is too slow. Closing while the client still sends would
        reset the connection, and the client would report that instead of our answer
        (a 413 to `Connection: close`, say)."""
        if self._body_done or self.transport.is_closing():
            self.transport.close()
        else:
            self._close_after_body = True

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers every parser error with a 400; a limit of ours with its own status."""
        refused = _refused_cause()
        if refused is None:
            super().send_400_response(msg)
        else:
            self._answer(refused.status, refused.message)

    # -- limits ----------------------------------------------------------------------
    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self._limits.max_header_bytes:
            raise _Refused(431, _too_long(self._limits))

    def _headers_late(self) -> None:
        self._timer = None
        log.info(
            "closed a connection from %s: no complete request headers within %g s",
            _peer(self.client),
            self._limits.header_timeout_s,
        )
        self.transport.close()

    def _body_check(self) -> None:
        """Close the connection if the body arrives slower than the minimum rate; time
        while the gateway itself stopped reading (flow control) does not count."""
        self._timer = None
        now = self.loop.time()
        if self.flow is not None and self.flow.read_paused:
            self._body_since, self._body_bytes = now, 0
            self._arm(self._limits.body_grace_s, self._body_check)
            return
        allowed = self._body_since + self._limits.body_grace_s + self._body_bytes / self._limits.body_min_rate_bytes_s
        if now < allowed:
            self._arm(allowed - now, self._body_check)
            return
        log.info(
            "closed a connection from %s: request body slower than %d bytes/s",
            _peer(self.client),
            self._limits.body_min_rate_bytes_s,
        )
        self.transport.close()

    def _answer(self, status: int, message: str, *, retry_after: bool = False) -> None:
        """A plain-text answer written straight to the socket, then close: these come
        before any request reached the application (no dialect is known yet)."""
        self._disarm()
        body = message.encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}",
            "connection: close",
        ]
        if retry_after:
            head.append("retry-after: 1")
        self.transport.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        self.transport.close()

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _LingeringClose:
    """The transport as a request's cycle sees it: `close` waits for the request's body."""

    def __init__(self, protocol: GuardedProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    def close(self) -> None:
        self._protocol.close_after_body()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _too_long(limits: HardeningConfig) -> str:
    return f"Request headers exceed the limit of {limits.max_header_bytes} bytes."


_REASONS = {431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def _refused_cause() -> _Refused | None:
    """The `_Refused` a callback raised, which httptools wraps in its callback error."""
    exc = sys.exc_info()[1]
    cause = exc.__context__ if exc is not None else None
    return cause if isinstance(cause, _Refused) else None


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"


def raise_open_files(wanted: int) -> int:
    """Lift the soft open-file limit to `wanted` (never above the hard limit, never
    lower than it is); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def server_settings(limits: HardeningConfig) -> dict[str, Any]:
    """uvicorn.Config arguments for these limits: the protocol, uvicorn's own idle
    timeout, and a connection cap that fits the process's open-file limit."""
    soft = raise_open_files(limits.max_connections + RESERVED_FILES)
    if limits.max_connections + RESERVED_FILES > soft:
        capped = max(1, soft - RESERVED_FILES)
        log.warning(
            "the open-file limit is %d: serving at most %d connections instead of hardening.max_connections (%d)",
            soft,
            capped,
            limits.max_connections,
        )
        limits = msgspec.structs.replace(limits, max_connections=capped)
    return {
        "http": functools.partial(GuardedProtocol, limits=limits),
        "timeout_keep_alive": limits.idle_timeout_s,
        # No route takes a WebSocket: an upgrade would hand the connection to a protocol
        # without these limits.
        "ws": "none",
    }
