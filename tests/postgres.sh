#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl) are installed, for the PostgreSQL
# backend's tests: they start a throwaway cluster per test binary from them (or use
# BOTFLOW_TEST_DATABASE_URL when it is set, and then need nothing here). Installs the Debian/Ubuntu
# `postgresql` package when they are missing; fails rather than skipping when it cannot.
set -euo pipefail
if [ -n "${BOTFLOW_TEST_DATABASE_URL:-}" ]; then
  echo "postgres: tests use BOTFLOW_TEST_DATABASE_URL"
  exit 0
fi
found() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if found; then
  echo "postgres: server binaries found"
  exit 0
fi
echo "postgres: server binaries missing; installing the postgresql package"
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "postgres: not root and no sudo: install postgresql (initdb, pg_ctl) or set BOTFLOW_TEST_DATABASE_URL" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
if ! found; then
  echo "postgres: the postgresql package installed no initdb" >&2
  exit 1
fi
echo "postgres: installed $(ls -d /usr/lib/postgresql/*/bin | head -1)"
