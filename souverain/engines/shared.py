"""Where gateway processes on one machine meet the engine workers they share.

Every gateway process that uses one state directory (several `souverain serve` on one
host, and the gateway's worker processes) reaches a model's engine worker at the same
Unix socket, `STATE/engines/<slug>.sock`, so the model is loaded once. Which gateway
process starts and supervises the worker is decided by an advisory `flock` on
`<slug>.lock`: the holder owns the worker; the others follow, reading the worker's health
on the socket and the owner's status file (`<slug>.json`: state, reason, variant,
restarts). The kernel drops the lock when its holder dies; its worker dies with it
(the worker is started with a parent-death signal), and a follower takes the lock and
starts a new worker.

A model with no state directory (a gateway built in-process, in tests) gets a private
directory of its own, shared with no one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from souverain.locks import try_lock

log = logging.getLogger("souverain.engines.shared")
# sockaddr_un.sun_path is 108 bytes on Linux, the terminating NUL included
_MAX_SOCKET_PATH = 107


class Slot:
    """One model's socket, lock and status file."""

    def __init__(self, model: str, state_dir: Path | None) -> None:
        slug = hashlib.sha256(model.encode()).hexdigest()[:16]
        folder = state_dir.absolute() / "engines" if state_dir is not None else None
        if folder is not None and len(str(folder / f"{slug}.sock")) > _MAX_SOCKET_PATH:
            log.warning(
                "model %s: %s is too long a path for a Unix socket; its engine worker is not shared "
                "with other gateway processes",
                model,
                folder,
            )
            folder = None
        self.shared = folder is not None
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="souverain-engine-"))  # mode 0700
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder = folder
        self.socket = str(folder / f"{slug}.sock")
        self._lock_path = folder / f"{slug}.lock"
        self._status_path = folder / f"{slug}.json"
        self._lock_fd: int | None = None

    @property
    def owned(self) -> bool:
        return self._lock_fd is not None

    def try_own(self) -> bool:
        """Take the lock if no other live process holds it."""
        if self._lock_fd is not None:
            return True
        self._lock_fd = try_lock(self._lock_path)
        return self._lock_fd is not None

    def publish(self, status: dict[str, Any]) -> None:
        """The owner's view of the worker, for the followers (written atomically)."""
        if not self.shared:
            return
        tmp = self._status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status), encoding="utf-8")
        os.replace(tmp, self._status_path)

    def read(self) -> dict[str, Any]:
        try:
            status = json.loads(self._status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None
        if not self.shared:
            shutil.rmtree(self.folder, ignore_errors=True)
