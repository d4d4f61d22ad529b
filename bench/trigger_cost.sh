#!/usr/bin/env bash
# trigger_cost.sh - what journaling external changes costs pgbank's own
# writes: pgbench runs pgbank's own statements (the atomic strategy's
# journaled debit, and a batch of 100 withdrawals through pgbank_batch())
# on 10,000 accounts, alternately with the four pgbank_external_* triggers
# in place and dropped, RUNS times each, and prints the medians and their
# ratio.  The triggers skip pgbank's statements by a WHEN condition; what
# remains is PostgreSQL capturing the transition tables.
#
# Usage: bench/trigger_cost.sh [PGBANK] [SECONDS] [RUNS]
# Runs on the private server of $PGBANK_DATA_DIR (else pgbank's default),
# in a schema of its own (pgbank_trgcost), dropped at the end.
set -euo pipefail
PGBANK=${1:-build/pgbank}
SECS=${2:-10}
RUNS=${3:-3}
CLIENTS=16
SCHEMA=pgbank_trgcost
unset DATABASE_URL PGHOST PGHOSTADDR PGDATABASE PGSERVICE

URL=$("$PGBANK" server url)
PGBENCH=$(pg_config --bindir)/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench)
W=$(mktemp -d "${TMPDIR:-/tmp}/pgbank-trgcost.XXXXXX")
trap 'psql "$URL" -Xq -c "drop schema if exists $SCHEMA cascade" >/dev/null 2>&1; rm -rf "$W"' EXIT
export PGOPTIONS="--client-min-messages=warning -csearch_path=$SCHEMA"

psql "$URL" -Xq -c "drop schema if exists $SCHEMA cascade" -c "create schema $SCHEMA"
"$PGBANK" --db "$URL" init >/dev/null
psql "$URL" -Xq -v ON_ERROR_STOP=1 <<SQL
begin;
select set_config('pgbank.own', 'on', true);
insert into accounts (id, balance) select g, 100000000000 from generate_series(1, 10000) g;
insert into pgbank_journal (account, op, amount, balance_after)
  select id, 'open', balance, balance from accounts;
commit;
vacuum analyze accounts;
SQL

cat >"$W/atomic.sql" <<'SQL'
\set aid random(1, 10000)
WITH u AS (UPDATE accounts SET balance = balance - 1 WHERE id = :aid AND balance >= 1
           AND set_config('pgbank.own', 'on', true) = 'on' RETURNING id, balance)
INSERT INTO pgbank_journal (account, op, amount, balance_after, strategy, key)
SELECT id, 'withdraw', -1, balance, 'atomic', NULL FROM u RETURNING balance_after;
SQL
# 100 withdrawals per call, ids drawn uniformly.
cat >"$W/batch.sql" <<'SQL'
SELECT status[1] FROM pgbank_batch(array_fill(0::smallint, ARRAY[100]),
  (SELECT array_agg((1 + floor(random() * 10000))::bigint) FROM generate_series(1, 100)),
  array_fill(NULL::bigint, ARRAY[100]), array_fill(1::bigint, ARRAY[100]));
SQL

triggers() { # on|off
    if [ "$1" = off ]; then
        psql "$URL" -Xq -c "drop trigger pgbank_external_update on accounts;
          drop trigger pgbank_external_insert on accounts;
          drop trigger pgbank_external_delete on accounts;
          drop trigger pgbank_external_truncate on accounts;"
    else
        "$PGBANK" --db "$URL" init >/dev/null
    fi
}

tps() { # script
    psql "$URL" -Xq -c "vacuum accounts" -c "checkpoint" >/dev/null
    "$PGBENCH" -n -c "$CLIENTS" -j 1 -T "$SECS" -M prepared -f "$W/$1.sql" "$URL" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

for script in atomic batch; do
    : >"$W/on" ; : >"$W/off"
    for _ in $(seq "$RUNS"); do
        triggers on;  tps "$script" >>"$W/on"
        triggers off; tps "$script" >>"$W/off"
    done
    on=$(median <"$W/on"); off=$(median <"$W/off")
    per=1; [ "$script" = batch ] && per=100
    printf '%-7s withdrawals/s with triggers %10.0f  without %10.0f  ratio %.3f  (runs: on %s; off %s)\n' \
        "$script" "$(echo "$on * $per" | bc)" "$(echo "$off * $per" | bc)" \
        "$(echo "$on / $off" | bc -l)" "$(tr '\n' ' ' <"$W/on")" "$(tr '\n' ' ' <"$W/off")"
done
