"""The llama.cpp build is portable: the core libraries hold baseline code only, each CPU
variant holds no instruction beyond the features it is named for, and the variant the
engine loads is one this CPU and OS allow."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from souverain.engines import cpu
from souverain.engines.llama_build import CMAKE_ARGS

X86 = platform.machine() in ("x86_64", "AMD64")
LIB = cpu.lib_dir()

# Registers that only a feature's instructions use: ymm (AVX and later), zmm and the
# opmask registers (AVX-512), tmm (AMX tiles).
YMM, ZMM, TMM = re.compile(r"%ymm\d"), re.compile(r"%zmm\d|%k[1-7]\b"), re.compile(r"%tmm\d|\btile[a-z]+")


def disassembly(path: Path) -> str:
    objdump = shutil.which("objdump")
    if objdump is None:
        if os.environ.get("CI") == "true":
            pytest.fail("objdump (binutils) is missing")
        pytest.skip("objdump (binutils) is not installed")
    return subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True, check=True
    ).stdout


def test_the_build_is_the_portable_one() -> None:
    """What `make install` built: llama.cpp's CPU backend as loadable variants, one of
    them the architecture's baseline, and no `-march=native` anywhere."""
    assert "-DGGML_NATIVE=OFF" in CMAKE_ARGS and "-DGGML_CPU_ALL_VARIANTS=ON" in CMAKE_ARGS
    variants = {p.name for p in LIB.glob("libggml-cpu-*.so")}
    assert variants, f"no CPU variants in {LIB}"
    baseline = "libggml-cpu-x64.so" if X86 else "libggml-cpu-armv8.0_1.so"
    assert baseline in variants
    assert not (LIB / "libggml-cpu.so").exists(), "a single, build-machine CPU backend is installed too"


@pytest.mark.skipif(not X86, reason="register names checked are x86-64's")
@pytest.mark.parametrize("library", ["libllama.so", "libggml.so", "libggml-base.so"])
def test_core_libraries_hold_baseline_code_only(library: str) -> None:
    text = disassembly(LIB / library)
    for name, pattern in (("AVX", YMM), ("AVX-512", ZMM), ("AMX", TMM)):
        found = pattern.search(text)
        assert found is None, f"{library} uses {name} ({found.group(0) if found else ''}): it would not load everywhere"


@pytest.mark.skipif(not X86, reason="register names checked are x86-64's")
@pytest.mark.parametrize("variant", sorted(cpu.X86_VARIANTS))
def test_each_variant_uses_only_its_own_features(variant: str) -> None:
    needs = cpu.X86_VARIANTS[variant]
    text = disassembly(LIB / f"libggml-cpu-{variant}.so")
    if "avx" not in needs:
        assert not YMM.search(text), f"{variant} uses AVX registers without AVX"
    if "avx512" not in needs:
        assert not ZMM.search(text), f"{variant} uses AVX-512 without AVX-512"
    if "amx" not in needs:
        assert not TMM.search(text), f"{variant} uses AMX without AMX"
    if "avx512" in needs:
        assert ZMM.search(text), f"{variant} is named for AVX-512 but holds none: the flags did not reach it"


def test_the_variant_chosen_here_fits_this_cpu_and_os() -> None:
    choice = cpu.choose(LIB)
    features = cpu.os_features()
    table = cpu.X86_VARIANTS if X86 else cpu.ARM_VARIANTS
    allowed = cpu.allowed_variants(features, machine=platform.machine(), amx=False)
    assert choice.variant in allowed
    # the best: no allowed variant is built for more of this CPU's features
    assert all(len(table[v]) <= len(table[choice.variant]) for v in allowed)


FAKE_LIB = [f"libggml-cpu-{v}.so" for v in (*cpu.X86_VARIANTS, *cpu.ARM_VARIANTS)]
HASWELL = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2 popcnt"
SKX = HASWELL + " avx512f avx512cd avx512vl avx512dq avx512bw"
SPR = SKX + " avx512vbmi avx512_vnni avx512_bf16 avx_vnni amx_tile amx_int8 amx_bf16"


@pytest.fixture
def fake_lib(tmp_path: Path) -> Path:
    for name in FAKE_LIB:
        (tmp_path / name).write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        ("fpu sse sse2", "x86_64", "x64"),
        (HASWELL, "x86_64", "haswell"),
        (HASWELL + " avx_vnni", "x86_64", "alderlake"),
        # AVX-512 with one of its five parts not enabled by the OS: not an AVX-512 variant
        (SKX.replace(" avx512bw", ""), "x86_64", "haswell"),
        (SKX, "x86_64", "skylakex"),
        (SKX + " avx512vbmi avx512_vnni", "x86_64", "icelake"),
        # AMX present and granted: still not used unless asked for
        (SPR, "x86_64", "zen4"),
        ("fp asimd", "aarch64", "armv8.0_1"),
        ("fp asimd asimddp asimdhp", "aarch64", "armv8.2_2"),
        ("fp asimd asimddp fphp sve i8mm sve2", "aarch64", "armv8.6_2"),
    ],
)
def test_choice_follows_what_the_os_enabled(fake_lib: Path, flags: str, machine: str, expected: str) -> None:
    key = "flags" if machine == "x86_64" else "Features"
    features = cpu.os_features(f"processor\t: 0\n{key}\t\t: {flags}\n")
    assert cpu.choose(fake_lib, features, machine=machine, override="").variant == expected


def test_operator_can_force_or_exclude_a_variant(fake_lib: Path) -> None:
    features = cpu.os_features(f"flags : {SPR}\n")
    assert cpu.choose(fake_lib, features, machine="x86_64", override="sapphirerapids").variant == "sapphirerapids"
    assert cpu.choose(fake_lib, features, machine="x86_64", override="!zen4").variant == "cooperlake"
    with pytest.raises(RuntimeError, match="no such CPU variant"):
        cpu.choose(fake_lib, features, machine="x86_64", override="pentium4")


def test_threads_leave_a_core_to_the_gateway() -> None:
    assert [cpu.default_threads(n) for n in (1, 2, 4, 16)] == [1, 1, 3, 15]
    assert 1 <= cpu.default_threads() <= cpu.usable_cpus()
