"""How llama.cpp is built for the embedded engine: the one place that says so.

Run by `make install` as a plain script (`python souverain/engines/llama_build.py
install`), before the package's own dependencies are installed, so it uses the standard
library only. `make image` runs it too (`... wheel` prints the cached wheel's path,
building it first if needed): the image installs the very wheel `make install` did.

Why these flags
---------------
llama-cpp-python compiles llama.cpp from source. Left to its defaults it builds with
`GGML_NATIVE=ON` (`-march=native`): the library then holds whatever the build machine's
CPU offers, so a wheel or image built on one server can crash with SIGILL on another,
and on Sapphire Rapids guests it turned on AMX code that crashed in `llama_decode`.

Instead the build is portable and still fast:

- `GGML_NATIVE=OFF`: nothing depends on the build machine's CPU. The core libraries
  (libllama, libggml, libggml-base) are compiled for the architecture's baseline
  (x86-64, armv8-a), so they load on any CPU of the architecture.
- `GGML_BACKEND_DL=ON` with `GGML_CPU_ALL_VARIANTS=ON`: the matrix code (the ggml CPU
  backend) is compiled once per CPU generation (x86-64: x64, SSE4.2, Sandy Bridge, Ivy
  Bridge, Piledriver, Haswell, Skylake-X, Cannon Lake, Cascade Lake, Ice Lake, Cooper
  Lake, Zen 4, Alder Lake, Sapphire Rapids; aarch64: armv8.0 to armv9.2 with DOTPROD,
  FP16, SVE, I8MM, SVE2, SME), each as its own loadable module. At run time the engine
  worker loads the best one that both the CPU *and the operating system* allow
  (`souverain/engines/cpu.py`): ggml's own choice reads CPUID only, which in a VM can
  report features (AVX-512 state, AMX tiles) that the guest kernel has not enabled.
- `CMAKE_INSTALL_BINDIR=llama_cpp/lib`: llama-cpp-python installs only the libraries it
  knows by name; the variant modules are installed by ggml into the "binary" directory,
  which this puts beside libllama.so inside the wheel.
- `LLAVA_BUILD=OFF`: the multimodal library is not used by the gateway (media parts
  are refused or routed, never decoded here); skipping it saves build time.
- `GGML_OPENMP=OFF`: ggml's own thread pool instead of libgomp, whose idle threads spin
  and whose shared library would be one more thing to ship in the image.

The wheel is built once per (lock hash, flags, machine, Python) and kept in the user's
cache (`~/.cache/souverain/llama-wheels/KEY/`), never in pip's own wheel cache, which
keys on the source archive alone and would hand a wheel built with other flags back.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_BACKEND_DL=ON",
    "-DGGML_CPU_ALL_VARIANTS=ON",
    "-DGGML_OPENMP=OFF",
    "-DCMAKE_INSTALL_BINDIR=llama_cpp/lib",
    "-DLLAVA_BUILD=OFF",
    "-DCMAKE_BUILD_TYPE=Release",
)
PACKAGE = "llama-cpp-python"
LOCK = Path(__file__).resolve().parents[2] / "requirements" / "main.lock"


def locked_requirement(lock: Path = LOCK) -> str:
    """The llama-cpp-python block of the lock file: `name==version` and its hashes."""
    text = lock.read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(PACKAGE)}==\S+(?: \\\n\s+--hash=\S+)+", text, re.MULTILINE)
    if not found:
        raise SystemExit(f"{lock} pins no {PACKAGE} with hashes")
    return found.group(0)


def build_key(requirement: str) -> str:
    """What the wheel depends on: the pinned source, the flags, the machine, Python."""
    parts = [requirement, " ".join(CMAKE_ARGS), platform.machine(), sys.implementation.cache_tag or ""]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "souverain" / "llama-wheels"


def wheel(requirement: str, key: str) -> Path:
    """The built wheel for this key, building it (minutes) if it is not cached."""
    folder = cache_dir() / key
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "llama.txt"
        req.write_text(requirement + "\n", encoding="utf-8")
        env = dict(os.environ, CMAKE_ARGS=" ".join(CMAKE_ARGS), FORCE_CMAKE="1")
        print(
            f"building {requirement.split()[0]} with {' '.join(CMAKE_ARGS)} (20 to 30 minutes on 2 cores)", flush=True
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-cache-dir",
                "--require-hashes",
                "-r",
                str(req),
                "-w",
                tmp,
            ],
            env=env,
            check=True,
        )
        built = sorted(Path(tmp).glob("llama_cpp_python-*.whl"))
        if not built:
            raise SystemExit("pip built no llama-cpp-python wheel")
        target = folder / built[-1].name
        os.replace(built[-1], target)
    return target


def install(venv_python: str) -> None:
    """Install the portable build into the virtualenv of `venv_python`, unless the
    build installed there already has this key."""
    requirement = locked_requirement()
    key = build_key(requirement)
    marker = Path(venv_python).absolute().parent.parent / ".llama-build"  # the venv, not its base Python
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
        return
    built = wheel(requirement, key)
    subprocess.run(
        [venv_python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--force-reinstall", str(built)],
        check=True,
    )
    marker.write_text(key + "\n", encoding="utf-8")
    print(f"llama-cpp-python installed from {built}", flush=True)


def built_wheel() -> Path:
    """The portable wheel for the lock (built if not cached yet): what `make image` puts
    into the image, so the image runs the same llama.cpp build as `make install`."""
    requirement = locked_requirement()
    return wheel(requirement, build_key(requirement))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "install":
        install(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "wheel":
        print(built_wheel())
    elif len(sys.argv) == 2 and sys.argv[1] == "flags":
        print(" ".join(CMAKE_ARGS))
    else:
        raise SystemExit("usage: llama_build.py install VENV_PYTHON | wheel | flags")
