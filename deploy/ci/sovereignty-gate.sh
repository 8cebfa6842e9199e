#!/bin/sh
# The pull-request gate for deploy/ (docs/deploy.md, "The GitOps flow").
#
#     deploy/ci/sovereignty-gate.sh BASE_DIR HEAD_DIR
#
# BASE_DIR is a checkout of the branch the pull request goes into, HEAD_DIR one of the
# pull request; nothing else is read and nothing is fetched. Exit status 1 when:
#   - a gateway configuration (every souverain.yaml under deploy/) fails
#     `souverain config check`;
#   - a pipes file under deploy/ has a route that breaks its requirements
#     (`souverain pipes check`);
#   - a change to a pipes file (under deploy/ or examples/) takes sovereignty away from a
#     route that may carry personal data: its level drops, a non-EU law reaches further,
#     or a residency facet leaves the EEA (`souverain pipes diff OLD NEW` exits 1; a
#     route that declares `personal_data: false` is reported, not blocked).
# Configurations name their secrets as ${VARIABLE}: the check gets a placeholder for
# each (never a real secret: CI has none), the cluster the real value from a Secret.
#
# SOUVERAIN is the command to run (default `souverain`), e.g. a container:
#     SOUVERAIN="podman run --rm --network=none -v $PWD:$PWD:ro -w $PWD --entrypoint souverain IMAGE"
set -eu

base=$(cd "${1:?usage: sovereignty-gate.sh BASE_DIR HEAD_DIR}" && pwd)
head=$(cd "${2:?usage: sovereignty-gate.sh BASE_DIR HEAD_DIR}" && pwd)
souverain=${SOUVERAIN:-souverain}
failed=0

fail() {
    echo "FAIL: $*"
    failed=1
}

for config in $(cd "$head" && find deploy -name souverain.yaml | sort); do
    echo "== souverain config check $config"
    placeholders=$(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$head/$config" | sort -u | sed 's/^\${\(.*\)}$/\1=ci-placeholder/' || true)
    # shellcheck disable=SC2086 # one word per NAME=value, names matched above
    env $placeholders $souverain config check "$head/$config" || fail "$config is not a valid configuration"
done

for pipes in $(cd "$head" && find deploy -name pipes.yaml | sort); do
    echo "== souverain pipes check $pipes"
    $souverain pipes check "$head/$pipes" || fail "$pipes: a route breaks its requirements"
done

for pipes in $(cd "$head" && find deploy examples -name pipes.yaml 2>/dev/null | sort); do
    old="$base/$pipes"
    [ -f "$old" ] || old=/dev/null
    echo "== souverain pipes diff $pipes"
    $souverain pipes diff "$old" "$head/$pipes" || fail "$pipes: a route that may carry personal data lost sovereignty"
done

if [ "$failed" -ne 0 ]; then
    echo "sovereignty gate: failed (see FAIL above)"
    exit 1
fi
echo "sovereignty gate: passed"
