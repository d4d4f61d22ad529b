#!/usr/bin/env bash
# citus_2pc_recovery.sh - how long in-doubt two-phase transactions hold
# their rows on a Citus cluster (docs/SCALING.md, "Running a cluster for
# tests").  Six psql sessions run transfers between random rows of a
# distributed table of 100 rows (most of them between two workers, so
# Citus commits them with two-phase commit) while, every 0.1 s, half of
# the workers' Citus connections and a fifth of the sessions are
# terminated.  The workers' pg_prepared_xacts is sampled every 0.2 s during
# the load and until it is empty; the oldest prepared transaction seen is
# how long a failed commit held its rows.  The table's total must not move.
#
# Usage: bench/citus_2pc_recovery.sh URL [SECONDS]
#   URL       the coordinator (scripts/citus-cluster.sh url DIR)
#   SECONDS   of load (default 30)
#
# The interval in force is the coordinator's citus.recover_2pc_interval; to
# compare, e.g.:
#   psql URL -c "ALTER SYSTEM SET citus.recover_2pc_interval = '60s'" -c "SELECT pg_reload_conf()"
# and ALTER SYSTEM RESET afterwards.  The table bench_2pc is dropped at the end.
set -uo pipefail

[ $# -ge 1 ] || { sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
URL=$1 D=${2:-30}
export PGOPTIONS='-c client_min_messages=warning'
q() { psql -XAtq "$URL" -c "$1"; }

q "DROP TABLE IF EXISTS bench_2pc" >/dev/null
q "CREATE TABLE bench_2pc (id int PRIMARY KEY, balance bigint NOT NULL)" >/dev/null || exit 1
q "SELECT create_distributed_table('bench_2pc', 'id')" >/dev/null || exit 1
q "INSERT INTO bench_2pc SELECT g, 1000000 FROM generate_series(1, 100) g" >/dev/null || exit 1
trap 'q "DROP TABLE IF EXISTS bench_2pc" >/dev/null; kill $(jobs -p) 2>/dev/null' EXIT

end=$((SECONDS + D))
# Transfers in id order (lower id first), one per line, forever.
transfers() {
    local a b
    while :; do
        a=$((RANDOM % 100 + 1)) b=$((RANDOM % 100 + 1))
        [ "$a" -lt "$b" ] || continue
        echo "BEGIN; UPDATE bench_2pc SET balance = balance - 1 WHERE id = $a;" \
             "UPDATE bench_2pc SET balance = balance + 1 WHERE id = $b; COMMIT;"
    done
}
for _ in 1 2 3 4 5 6; do
    (while [ $SECONDS -lt $end ]; do
        transfers | PGAPPNAME=bench_2pc timeout $((end - SECONDS + 1)) psql -Xq "$URL" >/dev/null 2>&1
    done) &
done
(while [ $SECONDS -lt $end ]; do
    q "SELECT * FROM run_command_on_workers(\$\$SELECT count(pg_terminate_backend(pid))
         FROM pg_stat_activity WHERE application_name LIKE 'citus_internal%'
         AND backend_type = 'client backend' AND pid <> pg_backend_pid()
         AND query NOT LIKE '%pg_terminate_backend%' AND random() < 0.5\$\$)" >/dev/null 2>&1
    q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE application_name = 'bench_2pc' AND random() < 0.2" >/dev/null 2>&1
    sleep 0.1
done) &

oldest=0 most=0
while :; do
    r=$(q "SELECT coalesce(sum(split_part(result, ' ', 1)::int), 0) || ' ' ||
             coalesce(max(split_part(result, ' ', 2)::numeric), 0)
           FROM run_command_on_workers(\$\$SELECT count(*) || ' ' || coalesce(round(extract(epoch
             FROM max(now() - prepared))::numeric, 1), 0) FROM pg_prepared_xacts\$\$)
           WHERE success" 2>/dev/null)
    if [ -n "$r" ]; then
        n=${r% *} age=${r#* }
        [ "$n" -le "$most" ] || most=$n
        awk -v a="$age" -v o="$oldest" 'BEGIN { exit !(a > o) }' && oldest=$age
        [ $SECONDS -lt "$end" ] || [ "$n" != 0 ] || break
    fi
    [ $SECONDS -lt $((end + 120)) ] || { echo "prepared transactions still there 120 s after the load" >&2; break; }
    sleep 0.2
done
wait
total=$(q "SELECT sum(balance) FROM bench_2pc")
echo "citus.recover_2pc_interval $(q 'SHOW citus.recover_2pc_interval'): in-doubt transactions" \
     "at most $most at once, the oldest ${oldest} s old; all resolved $((SECONDS - end)) s after" \
     "the load; total $total (100000000 expected)"
[ "$total" = 100000000 ]
