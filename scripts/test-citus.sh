#!/usr/bin/env bash
# test-citus.sh - pgbank's database tests against a Citus cluster: starts a
# coordinator and two workers (scripts/citus-cluster.sh) in a new mkdtemp
# directory, runs every test that applies to a database named from outside
# against the coordinator (CTest, PGBANK_TEST_DATABASE_URL, `ctest -LE
# private-server`), and always stops the cluster and removes its directory.
# First comes the chaos run that needs the cluster itself
# (tests/citus_chaos.sh: backends terminated and a worker restarted while
# pgbank chaos runs); then the tests about the private server itself are
# listed as not applicable, one line each; CTest's summary closes the
# output.  The exit code is CTest's, or 1 when only the chaos run failed.
# `make test-citus` builds Citus (make citus) and pgbank first.
#
# Usage: scripts/test-citus.sh [BUILD_DIR [CTEST_ARG...]]
#   BUILD_DIR   the configured build directory (default: build)
#   CTEST_ARG   more arguments for ctest (e.g. -R money); with any, the
#               chaos run is left out (PGBANK_CITUS_CHAOS=1 keeps it)
#
# The suite's fixture runs pgbank init on the coordinator and distributes
# pgbank's tables as docs/SCALING.md says when init left them local; when
# that fails, every test fails with it.  PGBANK_TEST_CITUS_TABLES=local,
# for work on the tests themselves, lets them run on local tables then (the
# fixture's output says so): such a run proves nothing about Citus.
set -euo pipefail

case ${1:-} in
-h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
[ -f "$build/CTestTestfile.cmake" ] || {
    echo "test-citus.sh: $build is not a configured build directory (run make first)" >&2
    exit 2
}
build=$(cd "$build" && pwd)

# The cluster's directory: a fresh mkdtemp directory, made by the account
# the servers run as (as root: postgres, or $PGBANK_SERVER_USER), holding
# the cluster's DIR, which citus-cluster.sh creates.
if [ "$(id -u)" -eq 0 ]; then
    acct=${PGBANK_SERVER_USER:-postgres}
    as_acct() { (cd / && runuser -u "$acct" -- "$@"); }
else
    as_acct() { "$@"; }
fi
parent=$(as_acct mktemp -d /tmp/pgbank-citus.XXXXXX)
dir=$parent/cluster
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    "$here/citus-cluster.sh" stop "$dir" >/dev/null 2>&1 ||
        echo "test-citus.sh: could not stop the cluster in $dir" >&2
    as_acct rm -rf "$parent"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$(date +%s)
"$here/citus-cluster.sh" start "$dir"
url=$("$here/citus-cluster.sh" url "$dir")
echo "the cluster started in $(($(date +%s) - started))s; the tests run against $url"

chaos_rc=0
if [ $# -eq 0 ] || [ "${PGBANK_CITUS_CHAOS:-}" = 1 ]; then
    echo
    echo "pgbank chaos on the cluster, with a worker restarted (tests/citus_chaos.sh):"
    "$here/../tests/citus_chaos.sh" "$build/pgbank" "$dir" "${PGBANK_CITUS_CHAOS_DURATION:-12}" ||
        chaos_rc=$?
    echo
fi

cd "$build"
# The tests that do not apply, by name, with the reason their label carries.
ctest --show-only=json-v1 -L private-server | python3 -c '
import json, sys
tests = json.load(sys.stdin)["tests"]
tests = [t for t in tests if any(p["name"] == "LABELS" and "private-server" in p["value"]
                                 for p in t.get("properties", []))]
for t in tests:
    why = ""
    for p in t.get("properties", []):
        if p["name"] == "ENVIRONMENT":
            for v in p["value"]:
                if v.startswith("PGBANK_TEST_PRIVATE_SERVER_ONLY="):
                    why = v.split("=", 1)[1]
    print("not applicable on Citus: %s (%s)" % (t["name"], why or "label private-server"))
print("%d tests not applicable on Citus (label private-server): not run, not counted" % len(tests))
'
# Scenarios about the private server inside tests that otherwise apply
# (private_scenario in tests/*.sh): their test prints them as not applicable.
n=0
while IFS=: read -r file line; do
    echo "not applicable on Citus: the scenario ${line#private_scenario } of tests/${file##*/}" \
         "(it needs the private server)"
    n=$((n + 1))
done < <(grep -H '^private_scenario ' "$here"/../tests/*.sh)
echo "$n scenarios not applicable on Citus (private_scenario): not run, not counted"
echo
rc=0
PGBANK_TEST_DATABASE_URL=$url ctest --output-on-failure -j 1 -LE private-server "$@" || rc=$?
if [ "$chaos_rc" -ne 0 ]; then
    echo "test-citus.sh: the chaos run on the cluster FAILED (tests/citus_chaos.sh, above)" >&2
    [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
