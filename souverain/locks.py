"""An advisory lock held by one live process: `flock` on a file, which the kernel drops
when its holder dies, so a killed holder never blocks the next one. Used for the ledger's
integrator and for the engine worker a gateway process supervises."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def try_lock(path: str | Path) -> int | None:
    """The descriptor holding an exclusive lock on `path` (created 0600), or None if
    another process holds it. Closing the descriptor releases the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
