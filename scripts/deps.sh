#!/usr/bin/env bash
# deps.sh - installs the Debian packages a make target needs, when missing.
#
# Usage: scripts/deps.sh [--check] GROUP...
#
# Groups (a target names the ones it needs; `make test` runs `deps.sh test`):
#   build     compiler, CMake, libpq and the PostgreSQL 15 server programs
#   demo      build, and what `make demo` draws with
#   test      build, and every tool the test suite runs: psql, pgbouncer,
#             gnuplot, libuv (the adapter's test), Python with pytest,
#             SQLAlchemy and asyncpg (the Python package and its comparison)
#   sanitize  test, and clang's runtime for the fuzzers and LeakSanitizer
#   citus     test, and what building Citus from ../shared/vendor needs
#
# Nothing missing: silent, exit 0.  Something missing and we are root: the
# packages are installed quietly (one line says which).  Not root: one line
# with the `sudo apt-get install` command to run, and exit 2 before anything
# else runs.  --check only reports (exit 2 when something is missing).
# On a system without dpkg the names are printed as a hint and nothing stops.
set -euo pipefail

pkgs_build=(gcc make cmake pkg-config libpq-dev postgresql-15 postgresql-client-15)
pkgs_demo=(gnuplot-nox)
pkgs_test=(procps pgbouncer gnuplot-nox libuv1-dev python3 python3-pytest python3-sqlalchemy
           python3-asyncpg)
pkgs_sanitize=(clang libclang-rt-14-dev)
pkgs_citus=(postgresql-server-dev-15 libkrb5-dev liblz4-dev libzstd-dev patch)

check_only=0
groups=()
for a in "$@"; do
    case $a in
    --check) check_only=1 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    build | demo | test | sanitize | citus) groups+=("$a") ;;
    *) echo "deps.sh: unknown group '$a' (build, demo, test, sanitize, citus)" >&2; exit 2 ;;
    esac
done
[ ${#groups[@]} -gt 0 ] || groups=(build)

want=()
add() { want+=("$@"); }
for g in "${groups[@]}"; do
    add "${pkgs_build[@]}"
    case $g in
    demo) add "${pkgs_demo[@]}" ;;
    test) add "${pkgs_test[@]}" ;;
    sanitize) add "${pkgs_test[@]}" "${pkgs_sanitize[@]}" ;;
    citus) add "${pkgs_test[@]}" "${pkgs_citus[@]}" ;;
    esac
done
# One of each, in order.
mapfile -t want < <(printf '%s\n' "${want[@]}" | awk '!seen[$0]++')

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; make sure these (or their equivalents) are installed:" \
         "${want[*]}" >&2
    exit 0
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$check_only" -eq 1 ]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "pgbank: missing Debian packages; install them first:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 2
fi

echo "pgbank: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/pgbank-apt.XXXXXX")
trap 'rm -f "$log"' EXIT
# A fresh machine's package lists may be stale or empty: refresh them first.
if ! apt-get update -qq >"$log" 2>&1 ||
   ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "pgbank: could not install ${missing[*]} (apt-get failed, above)" >&2
    exit 2
fi
