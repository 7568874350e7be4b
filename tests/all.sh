#!/usr/bin/env bash
# Every test of botflow, as the README's test command: the Rust workspace, then the suites that
# run outside cargo. Each step installs what it needs when it is missing, and fails rather than
# skipping when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL server binaries for the PostgreSQL backend's tests (installed when missing).
bash tests/postgres.sh
cargo test --workspace
# The builder UI: type check, bundle rebuilt and compared with the committed one, and the
# Playwright suite in Debian's Chromium against the real `botflow serve --demo`.
bash crates/ui/web/test.sh
# The HTTP API fuzzed from its generated OpenAPI document against the real `serve --demo`.
bash tests/schemathesis.sh
