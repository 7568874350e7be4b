#!/usr/bin/env bash
# The builder UI's checks, run by tests/all.sh: install what is missing (Debian's Chromium, the
# npm packages), type check, rebuild the bundle and require it to equal the committed one, build
# the botflow binary, and run the Playwright suite against the real `botflow serve --demo`.
set -euo pipefail
export NO_COLOR=1 FORCE_COLOR=0
WEB="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$WEB/../../.." && pwd)"
REBUILD="npm --prefix crates/ui/web ci && npm --prefix crates/ui/web run build"
cd "$WEB"

step() { printf '\n== ui: %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  step "installing Debian's chromium"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# npm ci when node_modules is missing or was installed from another package-lock.json.
LOCK_HASH="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.botflow-lock-hash 2>/dev/null)" != "$LOCK_HASH" ]; then
  step "npm ci"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  echo "$LOCK_HASH" > node_modules/.botflow-lock-hash
fi

step "API types generated from the OpenAPI document"
npm run --silent gen:api >/dev/null
if ! git -C "$ROOT" diff --exit-code --stat -- crates/ui/web/src/api/schema.d.ts; then
  echo "crates/ui/web/src/api/schema.d.ts is stale: run \`npm --prefix crates/ui/web run gen:api\` and commit it" >&2
  exit 1
fi

step "type check"
npm run --silent typecheck

step "unit tests (Vitest: pointer mapping, ports, setIn, layout)"
npm run --silent test:unit

step "rebuild the bundle and compare it with the committed one"
npm run --silent build >/dev/null 2>&1 || npm run build
if ! git -C "$ROOT" diff --exit-code --stat -- crates/ui/dist || [ -n "$(git -C "$ROOT" status --porcelain -- crates/ui/dist)" ]; then
  git -C "$ROOT" status --short -- crates/ui/dist >&2
  echo "crates/ui/dist differs from a build of crates/ui/web: run \`$REBUILD\` and commit crates/ui/dist" >&2
  exit 1
fi

step "build botflow"
if [ -z "${BOTFLOW_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q -p botflow-cli)
  export BOTFLOW_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/botflow"
fi

step "browser suite (Playwright on $(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
start=$(date +%s)
npx playwright test
echo "ui: browser suite took $(( $(date +%s) - start ))s"
