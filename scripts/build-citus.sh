#!/usr/bin/env bash
# build-citus.sh - builds and installs Citus for the system's PostgreSQL 15
# when it is not installed there yet (`make citus` runs it).  Quiet when it
# is.  The recipe is ../shared/vendor/README.md's: the source tarball,
# unpacked into a temporary directory, the PostgreSQL 15.20 patch applied,
# `./configure --without-libcurl && make -j$(nproc) && make install`.
#
# Usage: scripts/build-citus.sh [--force]
#
#   --force   build and install even when Citus is installed already
#             (after a PostgreSQL update, say)
#
# Environment:
#   CITUS_SRC     the source: a .tar.gz, or an unpacked tree (copied into the
#                 temporary directory first; never built in place).  Default:
#                 ../shared/vendor/citus-13.2.2-src.tar.gz beside the checkout.
#   CITUS_PATCH   the patch for PostgreSQL 15.20 (default: the vendor one).
#                 Applied when it applies, left out when the source has it
#                 already; a source it fits neither way is built as it is.
#   PG_CONFIG     PostgreSQL's pg_config (default /usr/lib/postgresql/15/bin/pg_config)
#   DESTDIR       install into a staging directory instead of the system
#
# Run as root to install into the system (scripts/deps.sh citus installs
# the build packages first: `make citus` does).  The build log is kept only
# when the build fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
checkout=${here%/scripts}
vendor=$checkout/../shared/vendor

force=0
for a in "$@"; do
    case $a in
    --force) force=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-citus.sh: unknown argument '$a'" >&2
       echo "Try 'scripts/build-citus.sh --help'." >&2
       exit 2 ;;
    esac
done

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || {
    echo "build-citus.sh: $PG_CONFIG not found: install PostgreSQL 15 (scripts/deps.sh citus) or set PG_CONFIG" >&2
    exit 1
}
libdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
pgversion=$("$PG_CONFIG" --version)
destdir=${DESTDIR:-}

if [ "$force" -eq 0 ] && [ -f "$destdir$libdir/citus.so" ] &&
    [ -f "$destdir$sharedir/extension/citus.control" ]; then
    exit 0 # installed: nothing to say
fi

src=${CITUS_SRC:-$vendor/citus-13.2.2-src.tar.gz}
patchfile=${CITUS_PATCH:-$vendor/citus-13.2.2-pg15.20.patch}
if [ ! -e "$src" ]; then
    echo "build-citus.sh: no Citus source at $src: set CITUS_SRC to a tarball or an unpacked" \
         "tree (../shared/vendor/README.md says where it comes from)" >&2
    exit 1
fi
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ] && [ ! -w "$libdir" ]; then
    echo "build-citus.sh: installing into $libdir needs root: run 'sudo make citus'" \
         "(or set DESTDIR to stage the install)" >&2
    exit 1
fi

started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/pgbank-citus-build.XXXXXX")
log=$work/build.log
keep_log=0
cleanup() {
    if [ "$keep_log" -eq 1 ]; then
        cp "$log" "${TMPDIR:-/tmp}/pgbank-citus-build.log" 2>/dev/null &&
            echo "build-citus.sh: the whole log is in ${TMPDIR:-/tmp}/pgbank-citus-build.log" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    keep_log=1
    echo "build-citus.sh: $1 failed; the end of the log:" >&2
    tail -n 40 "$log" >&2
    exit 1
}

echo "building Citus from $src for $pgversion (a few minutes)"
if [ -d "$src" ]; then
    cp -a "$src/." "$work/src" 2>>"$log" || fail "copying $src"
else
    mkdir "$work/src"
    tar -xzf "$src" -C "$work/src" --strip-components=1 >>"$log" 2>&1 || fail "unpacking $src"
fi
cd "$work/src"
[ -x configure ] || { echo "build-citus.sh: $src holds no Citus source (no configure)" >&2; exit 1; }

if [ -f "$patchfile" ]; then
    if patch -p1 --forward --dry-run -s <"$patchfile" >>"$log" 2>&1; then
        patch -p1 --forward -s <"$patchfile" >>"$log" 2>&1 || fail "patch"
    elif patch -p1 --reverse --dry-run -s <"$patchfile" >>"$log" 2>&1; then
        echo "  the source has $(basename "$patchfile") already"
    else
        echo "  $(basename "$patchfile") does not fit this source; building it as it is"
    fi
else
    echo "  no patch at $patchfile; building the source as it is"
fi

jobs=$(nproc 2>/dev/null || echo 2)
PG_CONFIG=$PG_CONFIG ./configure --without-libcurl >>"$log" 2>&1 || fail "./configure"
make -j"$jobs" >>"$log" 2>&1 || fail "make"
make install ${destdir:+DESTDIR="$destdir"} >>"$log" 2>&1 || fail "make install"

[ -f "$destdir$libdir/citus.so" ] || { keep_log=1; echo "build-citus.sh: make install left no $destdir$libdir/citus.so" >&2; exit 1; }
took=$(($(date +%s) - started))
echo "installed Citus into $destdir$libdir in $((took / 60))m $((took % 60))s"
