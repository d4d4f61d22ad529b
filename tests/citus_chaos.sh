#!/usr/bin/env bash
# citus_chaos.sh - `pgbank chaos` on a Citus cluster: keyed withdrawals,
# deposits and transfers against the coordinator while the run's backends
# are terminated and, a third of the way in, worker 1 is restarted
# (scripts/citus-cluster.sh restart-worker).  The run must end with
# chaos's own verdict (nothing lost, created or unanswered, every key
# applied once when acknowledged, its audit holding), and `pgbank audit` of
# the run's schema (kept for it, then dropped) must hold afterwards.  Meanwhile the workers'
# pg_prepared_xacts is sampled (through the coordinator,
# run_command_on_workers) to report how long in-doubt two-phase
# transactions held their locks.  One line per check, as the other tests;
# exit 0 when all passed.  scripts/test-citus.sh runs it.
#
# Usage: tests/citus_chaos.sh PGBANK CLUSTER_DIR [DURATION]
#   PGBANK        the pgbank command (build/pgbank)
#   CLUSTER_DIR   a running cluster of scripts/citus-cluster.sh
#   DURATION      seconds of load (default 12)
set -uo pipefail

[ $# -ge 2 ] || { sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
PGBANK=$1 DIR=$2 DURATION=${3:-12}
here=$(cd "$(dirname "$0")" && pwd)
CLUSTER=$here/../scripts/citus-cluster.sh
URL=$("$CLUSTER" url "$DIR") || exit 1
T=$(mktemp -d /tmp/pgbank-citus-chaos.XXXXXX) || exit 1
sampler='' schema=''
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    [ -z "$sampler" ] || kill "$sampler" 2>/dev/null
    [ -z "$schema" ] || psql -XAtq "$URL" -c "SET client_min_messages = warning" \
        -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
FAILED=0
ok() { echo "$1... ok"; }
failed() { echo "$1... FAILED: $2"; FAILED=1; }

# Every 0.2 s: per worker, how many prepared transactions and the age of
# the oldest, one line "epoch node count age" each (a restarting worker
# answers nothing).
sample_prepared() {
    while :; do
        psql -XAtq -F ' ' "$URL" -c "SELECT extract(epoch FROM clock_timestamp()), nodeport,
            split_part(result, ' ', 1), split_part(result, ' ', 2)
            FROM run_command_on_workers(\$\$SELECT count(*) || ' ' ||
                coalesce(round(extract(epoch FROM max(now() - prepared))::numeric, 1), 0)
                FROM pg_prepared_xacts\$\$) WHERE success" 2>/dev/null
        sleep 0.2
    done
}

sample_prepared >"$T/prepared" &
sampler=$!

t0=$(date +%s%N)
"$PGBANK" --db "$URL" chaos --duration "$DURATION" --clients 8 --accounts 10 \
    --faults terminate --keep --json >"$T/chaos.json" 2>"$T/chaos.err" &
chaos=$!
sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 3 }')"
if "$CLUSTER" restart-worker "$DIR" 1 >"$T/restart.out" 2>&1; then
    ok "worker 1 restarts in the middle of the run ($(cat "$T/restart.out"))"
else
    failed "worker 1 restarts in the middle of the run" "$(cat "$T/restart.out")"
fi
wait "$chaos"
rc=$?
t1=$(date +%s%N)
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
sampler=''
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')

if [ "$rc" -eq 0 ]; then
    ok "pgbank chaos with terminations and a worker restart exits 0 (${elapsed}s for ${DURATION}s of load)"
else
    failed "pgbank chaos with terminations and a worker restart exits 0" \
        "exit $rc after ${elapsed}s; stdout: $(cat "$T/chaos.json"); stderr: $(cat "$T/chaos.err")"
fi

if verdict=$(python3 - "$T/chaos.json" <<'EOF' 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "ok", r
assert r["audit"] == "ok", r
assert r["money_lost"] == 0 and r["money_created"] == 0, r
assert r["negative_balances"] == 0 and r["ops_without_result"] == 0, r
assert r["unknown"] == r["unknown_resolved"], r
assert r["acknowledged"] + r["refused"] == r["ops"], r
assert r["faults_terminate"] >= 1 and r["faults_crash"] == 0, r
print("%d operations, %d acknowledged, %d refused, %d unknown outcomes resolved by their key, "
      "%d terminations" % (r["ops"], r["acknowledged"], r["refused"], r["unknown_resolved"],
                           r["faults_terminate"]))
EOF
); then
    ok "nothing lost, created or unanswered, every key applied once: $verdict"
else
    failed "nothing lost, created or unanswered, every key applied once" "$verdict"
fi

schema=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["schema"])' \
    "$T/chaos.json" 2>/dev/null)
case $schema in
pgbank_chaos_[0-9]*)
    if out=$("$PGBANK" --db "$URL?options=-csearch_path%3D$schema" audit 2>&1); then
        ok "pgbank audit of the run's schema $schema holds ($(printf '%s\n' "$out" | tail -n 1))"
    else
        failed "pgbank audit of the run's schema $schema holds" "$out"
    fi
    ;;
*)
    schema=''
    failed "pgbank audit of the run's schema holds" "the report names no schema"
    ;;
esac

# The in-doubt two-phase transactions seen on the workers.
awk '{ n = $3 + 0; a = $4 + 0; if (n > maxn) maxn = n; if (a > maxa) maxa = a; s++ }
     END { printf "in-doubt two-phase transactions on the workers: at most %d at once, the oldest %.1f s old (%d samples; citus.recover_2pc_interval = %s)\n",
                  maxn, maxa, s, recover }' \
    recover="$(psql -XAtq "$URL" -c 'SHOW citus.recover_2pc_interval' 2>/dev/null)" "$T/prepared"
n=$(psql -XAtq "$URL" -c "SELECT coalesce(sum(result::int), 0) FROM run_command_on_workers(
        'SELECT count(*) FROM pg_prepared_xacts') WHERE success")
if [ "$n" = 0 ]; then
    ok "no prepared transaction is left on the workers"
else
    failed "no prepared transaction is left on the workers" "$n left"
fi
exit "$FAILED"
