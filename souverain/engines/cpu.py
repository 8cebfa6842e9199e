"""Which build of llama.cpp's CPU backend this machine can run, and loading it.

The portable build (`llama_build.py`) ships the ggml CPU backend as one module per CPU
generation (`libggml-cpu-<variant>.so`). ggml can pick one itself
(`ggml_backend_load_all`), but on x86 it asks CPUID alone, which reports what the
processor has, not what the operating system has enabled: a guest kernel may leave
AVX-512 or AMX state out of XCR0 (or refuse AMX's permission request), and code using
them then dies with SIGILL or SIGSEGV. Linux reports in /proc/cpuinfo only the features
it has enabled, so a variant is allowed when every feature it was compiled for appears
there, and among the allowed variants ggml's own score (its CPUID check) picks the best.

AMX (the `sapphirerapids` variant) is not chosen unless asked for: on a Sapphire Rapids
guest whose kernel lists `amx_tile` and grants the tile permission, llama.cpp 0.3.36's
AMX kernels still died with SIGILL on their first `tilezero` (docs/troubleshooting.md).
`SOUVERAIN_LLAMA_CPU_VARIANT` names a variant to use (`sapphirerapids` opts in to AMX)
or, as `!name,!name`, variants to leave out; the supervisor leaves out a variant that
crashed its worker with SIGILL, or before it was ever ready, on the next start.

This module is used inside the engine worker process only: loading a CPU variant that
turns out to crash takes down the worker, never the gateway.
"""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# Features each variant is compiled for (ggml/src/CMakeLists.txt, GGML_CPU_ALL_VARIANTS),
# as Linux names them in /proc/cpuinfo ("flags" on x86, "Features" on aarch64).
_X86 = {
    "sse42": ("sse4_2",),
    "avx": ("avx",),
    "f16c": ("f16c",),
    "fma": ("fma",),
    "avx2": ("avx2",),
    "bmi2": ("bmi2",),
    "avx512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "avx512_vbmi": ("avx512vbmi",),
    "avx512_vnni": ("avx512_vnni",),
    "avx512_bf16": ("avx512_bf16",),
    "avx_vnni": ("avx_vnni",),
    "amx": ("amx_tile", "amx_int8"),
}
_HASWELL = ("sse42", "avx", "f16c", "fma", "avx2", "bmi2")
_SKX = _HASWELL + ("avx512",)
X86_VARIANTS: dict[str, tuple[str, ...]] = {
    "x64": (),
    "sse42": ("sse42",),
    "sandybridge": ("sse42", "avx"),
    "ivybridge": ("sse42", "avx", "f16c"),
    "piledriver": ("sse42", "avx", "f16c", "fma"),
    "haswell": _HASWELL,
    "skylakex": _SKX,
    "cannonlake": _SKX + ("avx512_vbmi",),
    "cascadelake": _SKX + ("avx512_vnni",),
    "icelake": _SKX + ("avx512_vbmi", "avx512_vnni"),
    "cooperlake": _SKX + ("avx512_vnni", "avx512_bf16"),
    "zen4": _SKX + ("avx512_vbmi", "avx512_vnni", "avx512_bf16"),
    "alderlake": _HASWELL + ("avx_vnni",),
    "sapphirerapids": _SKX + ("avx512_vbmi", "avx512_vnni", "avx512_bf16", "amx"),
}
_ARM = {
    "dotprod": ("asimddp",),
    "fp16": ("fphp", "asimdhp"),
    "sve": ("sve",),
    "i8mm": ("i8mm",),
    "sve2": ("sve2",),
    "sme": ("sme",),
}
ARM_VARIANTS: dict[str, tuple[str, ...]] = {
    "armv8.0_1": (),
    "armv8.2_1": ("dotprod",),
    "armv8.2_2": ("dotprod", "fp16"),
    "armv8.2_3": ("dotprod", "fp16", "sve"),
    "armv8.6_1": ("dotprod", "fp16", "sve", "i8mm"),
    "armv8.6_2": ("dotprod", "fp16", "sve", "i8mm", "sve2"),
    "armv9.2_1": ("dotprod", "fp16", "sve", "i8mm", "sme"),
    "armv9.2_2": ("dotprod", "fp16", "sve", "i8mm", "sve2", "sme"),
}
ENV_OVERRIDE = "SOUVERAIN_LLAMA_CPU_VARIANT"
BASELINES = ("x64", "armv8.0_1")  # what every CPU of the architecture runs


@dataclass(frozen=True)
class Choice:
    variant: str
    path: Path
    reason: str
    """One line: why this variant, and what was left out."""


def os_features(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU features Linux has enabled, from /proc/cpuinfo's first processor."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _enabled(name: str, features: frozenset[str], machine: str) -> bool:
    """An x86 name needs every flag it lists (AVX-512 is five); an aarch64 name lists
    spellings of one feature, any of which will do."""
    if machine in ("x86_64", "AMD64"):
        return all(f in features for f in _X86[name])
    return any(f in features for f in _ARM[name])


def allowed_variants(features: frozenset[str], *, machine: str, amx: bool) -> list[str]:
    """Variants whose every compiled-for feature the OS has enabled, in build order."""
    if machine in ("x86_64", "AMD64"):
        table = X86_VARIANTS
    elif machine in ("aarch64", "arm64"):
        table = ARM_VARIANTS
    else:
        return []
    return [
        variant
        for variant, needs in table.items()
        if all(_enabled(n, features, machine) for n in needs) and ("amx" not in needs or amx)
    ]


def choose(
    lib_dir: Path, features: frozenset[str] | None = None, *, machine: str | None = None, override: str | None = None
) -> Choice:
    """The CPU variant to load from `lib_dir`, and why."""
    machine = machine or platform.machine()
    features = os_features() if features is None else features
    override = os.environ.get(ENV_OVERRIDE, "") if override is None else override
    present = {p.name[len("libggml-cpu-") : -3]: p for p in lib_dir.glob("libggml-cpu-*.so")}
    if not present:
        raise RuntimeError(f"no llama.cpp CPU backend in {lib_dir}: llama-cpp-python was not built by `make install`")
    allowed = [v for v in allowed_variants(features, machine=machine, amx=False) if v in present]
    name, excluded = parse_override(override)
    if name:
        if name not in present:
            raise RuntimeError(f"{ENV_OVERRIDE}={name}: no such CPU variant (built: {', '.join(sorted(present))})")
        return Choice(name, present[name], f"{name}, forced by {ENV_OVERRIDE}")
    allowed = [v for v in allowed if v not in excluded]
    if not allowed:
        raise RuntimeError(
            f"no llama.cpp CPU variant fits this {machine} CPU (OS-enabled features: "
            f"{' '.join(sorted(features)) or 'unknown'})"
        )
    best = allowed[-1] if machine not in ("x86_64", "AMD64") else _best_x86(allowed)
    notes = []
    if "amx_tile" in features and machine in ("x86_64", "AMD64"):
        notes.append(f"AMX present, not used unless {ENV_OVERRIDE}=sapphirerapids")
    if excluded:
        notes.append(f"excluded by {ENV_OVERRIDE}: {', '.join(sorted(excluded))}")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return Choice(best, present[best], f"{best}: needs {', '.join(_needs(best, machine)) or 'baseline only'}{tail}")


def parse_override(override: str) -> tuple[str, set[str]]:
    """`SOUVERAIN_LLAMA_CPU_VARIANT`: the variant forced ('' for none), and those left out."""
    parts = [p.strip() for p in override.split(",") if p.strip()]
    forced = [p for p in parts if not p.startswith("!")]
    return (forced[0] if forced else ""), {p[1:] for p in parts if p.startswith("!")}


def _needs(variant: str, machine: str) -> tuple[str, ...]:
    return (X86_VARIANTS if machine in ("x86_64", "AMD64") else ARM_VARIANTS).get(variant, ())


def _best_x86(allowed: list[str]) -> str:
    """ggml scores x86 variants by the features they use, each a power of two in this
    order (cpu-feats.cpp); the highest sum wins."""
    order = (
        "fma",
        "f16c",
        "sse42",
        "bmi2",
        "avx",
        "avx2",
        "avx_vnni",
        "avx512",
        "avx512_vbmi",
        "avx512_bf16",
        "avx512_vnni",
        "amx",
    )

    def score(v: str) -> int:
        return sum(1 << i for i, name in enumerate(order) if name in X86_VARIANTS[v])

    return max(allowed, key=score)


def lib_dir() -> Path:
    """Where llama-cpp-python keeps its shared libraries (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-cpp-python is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def load(choice: Choice) -> None:
    """Register the chosen CPU backend with ggml. Call once, before loading a model.

    The call goes through libllama's handle, so it reaches the libggml that libllama was
    linked against: a wheel holds libggml.so and libggml.so.0 as two copies of one file,
    and registering with the other copy would leave libllama without a backend."""
    from llama_cpp import llama_cpp as bindings

    fn = bindings._lib.ggml_backend_load
    fn.argtypes = [ctypes.c_char_p]
    fn.restype = ctypes.c_void_p
    if not fn(str(choice.path).encode()):
        raise RuntimeError(f"ggml could not load its CPU backend {choice.path}")


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota
    (a container limited to 2 CPUs on a 64-core host sees 64 in os.cpu_count())."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def default_threads(cpus: int | None = None) -> int:
    """Generation threads when `n_threads` is not set: every usable CPU but one, which is
    left to the gateway (HTTP, privacy scanner, ledger). llama.cpp's threads wait for each
    other at every step, so one thread that shares its core with the gateway slows them
    all: on 2 cores, 2 threads fell from 122 to 6.7 tokens/s while another process used
    a core (docs/benchmarks.md, "Engine threads")."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, cpus - 1)


def summary(features: frozenset[str] | None = None) -> str:
    """One line for an error message: the CPU's model and the features that decide the
    variant, as the OS reports them."""
    features = os_features() if features is None else features
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    names = _X86 if platform.machine() in ("x86_64", "AMD64") else _ARM
    known = sorted({f for flags in names.values() for f in flags} & features)
    return f"CPU {model or platform.machine()}, OS-enabled features: {' '.join(known) or 'baseline only'}"
