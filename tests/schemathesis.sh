#!/usr/bin/env bash
# Fuzzes the HTTP API from its generated OpenAPI document with schemathesis: builds and starts
# the real `botflow serve --demo` on a free port, runs `st run` with every check and every phase
# (examples, coverage, fuzzing, stateful through the document's links), a fixed seed and a bounded
# number of examples, stops the server, and fails on any failure or error.
#
# schemathesis is installed with pip, at the pinned version, into a virtualenv under the cargo
# target directory the first time (set SCHEMATHESIS_VENV to put it elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
target_dir="${CARGO_TARGET_DIR:-target}"
venv="${SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "schemathesis.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    if ! { command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1 \
        && python3 -c 'import ensurepip' 2>/dev/null; }; then
        # A bare Debian has python3 without venv/ensurepip: install them (CI runs as root).
        apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build -q -p botflow-cli
botflow="$target_dir/debug/botflow"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

: >"$work/server.log"
# Port 0: the system picks a free port, which the server prints on its first line.
BOTFLOW_LISTEN=127.0.0.1:0 BOTFLOW_DATA_DIR="$work/data" "$botflow" serve --demo \
    >"$work/server.log" 2>&1 &
server_pid=$!
base_url=""
for _ in $(seq 1 300); do
    base_url="$(sed -n 's/^botflow listening on \(http:[^ ]*\).*/\1/p' "$work/server.log")"
    [[ -n "$base_url" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.1
done
[[ -n "$base_url" ]] || { echo "schemathesis.sh: the server did not start"; cat "$work/server.log"; exit 1; }
echo "schemathesis.sh: botflow serve --demo on $base_url"

status=0
# Run from the scratch folder: nothing schemathesis writes lands in the work tree.
config="$PWD/tests/schemathesis.toml"
st="$(cd "$venv/bin" && pwd)/st"
hooks="$PWD/tests/schemathesis_hooks.py"
(cd "$work" && SCHEMATHESIS_HOOKS="$hooks" "$st" --config-file "$config" run "$base_url/api/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --header "Authorization: Bearer demo-admin-token" \
    --no-color \
    --report junit --report-dir "$work/report") || status=$?
if [[ $status -ne 0 ]]; then
    echo "schemathesis.sh: schemathesis reported failures or errors (exit $status); server log tail:"
    tail -n 20 "$work/server.log"
fi
exit $status
