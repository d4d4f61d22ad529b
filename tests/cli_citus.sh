#!/usr/bin/env bash
# cli_citus.sh - every pgbank command on a Citus cluster, as a user runs it:
# init (twice), accounts, every strategy's withdrawals, deposits and
# transfers within and between shards, refusals (exit 1), keys, history,
# audit, and the race lab, whose verdicts must be those of one server.
#
# Needs a Citus coordinator in PGBANK_TEST_DATABASE_URL (the suite's
# external mode sets it); exits 77 (skipped, tests/citus.cmake) without
# one.  Works in a schema of its own, dropped at the end.
# Usage: cli_citus.sh PATH_TO_PGBANK
. "$(dirname "$0")/cli_lib.sh"

URL=${PGBANK_TEST_DATABASE_URL:-}
if [ -z "$URL" ]; then
    echo "PGBANK_TEST_DATABASE_URL is not set: no Citus cluster to test (skipped)"
    exit 77
fi
PSQL=psql
command -v psql >/dev/null 2>&1 || PSQL=${PGBANK_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql
SCHEMA=pgbank_test_cli_citus
sql() { "$PSQL" "$URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
if [ "$(sql "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")" != 1 ]; then
    echo "the database of PGBANK_TEST_DATABASE_URL has no Citus (skipped)"
    exit 77
fi
sql "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE;
     CREATE SCHEMA $SCHEMA" || exit 1
trap 'sql "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE"; rm -rf "$T"' EXIT
# Every command below reaches the cluster through DATABASE_URL, in SCHEMA.
sep='?'
case $URL in *\?*) sep='&' ;; esac
export DATABASE_URL="$URL${sep}options=-csearch_path%3D$SCHEMA"

# Each account's shard and the port of the worker holding it ("id shard
# port" lines; Citus joins no distributed table on another column, so the
# pairs are picked here).
placements() {
    local ports
    ports=$(sql "SELECT shardid, nodeport FROM citus_shards
                  WHERE table_name = '$SCHEMA.accounts'::regclass") || return 1
    sql "SELECT id, get_shard_id_for_distribution_column('$SCHEMA.accounts', id)
           FROM $SCHEMA.accounts ORDER BY id" |
        awk -F'|' 'NR == FNR { port[$1] = $2; next } { print $1, $2, port[$2] }' \
            <(printf '%s\n' "$ports") -
}
# Two accounts on one shard.
pick_accounts() {
    placements | awk '{ if ($2 in first) { print first[$2], $1; exit } first[$2] = $1 }'
}
# Two accounts on two workers.
pick_far() {
    placements | awk 'NR == 1 { a = $1; p = $3; next } $3 != p { print a, $1; exit }'
}

init_distributes_and_runs_again() {
    expect_exit 0 "$PGBANK" init
    expect_exit 0 "$PGBANK" init
    expect_exit 0 "$PGBANK" init --distributed
    [ "$(sql "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text IN
        ('$SCHEMA.accounts', '$SCHEMA.pgbank_journal', '$SCHEMA.pgbank_keys')")" = 3 ] ||
        fail "accounts, the journal and the keys must be distributed"
    for _ in $(seq 40); do open_account 1000 >/dev/null || fail "account open failed"; done
}

every_strategy_moves_money_within_and_between_shards() {
    local s a b c d
    read -r a b <<<"$(pick_accounts)"
    read -r c d <<<"$(pick_far)"
    [ -n "$b" ] && [ -n "$d" ] || { fail "no accounts to pick ($a $b / $c $d)"; return; }
    for s in explicit begin for-update atomic serializable batch; do
        expect_exit 0 "$PGBANK" withdraw "$a" 10 --strategy "$s"
        expect_exit 0 "$PGBANK" deposit "$b" 10 --strategy "$s"
        expect_exit 0 "$PGBANK" transfer "$a" "$b" 5 --strategy "$s"
        expect_exit 0 "$PGBANK" transfer "$c" "$d" 5 --strategy "$s"
        expect_exit 0 "$PGBANK" transfer "$d" "$c" 3 --strategy "$s"
        expect_exit 1 "$PGBANK" withdraw "$a" 100000 --strategy "$s"
        expect_out_has "insufficient funds"
        expect_exit 1 "$PGBANK" transfer "$c" "$d" 100000 --strategy "$s"
        expect_exit 1 "$PGBANK" withdraw 999999 1 --strategy "$s"
    done
    expect_balance "$a" $((1000 - 6 * 15))
    expect_balance "$b" $((1000 + 6 * 15))
    expect_balance "$c" $((1000 - 6 * 2))
    expect_balance "$d" $((1000 + 6 * 2))
}

keys_replay_and_conflict() {
    local s c d
    read -r c d <<<"$(pick_far)"
    for s in atomic for-update batch; do
        expect_exit 0 "$PGBANK" transfer "$c" "$d" 7 --key "t-$s" --strategy "$s"
        expect_exit 0 "$PGBANK" transfer "$c" "$d" 7 --key "t-$s" --strategy "$s"
        expect_out_has "replayed"
        expect_exit 1 "$PGBANK" transfer "$c" "$d" 8 --key "t-$s" --strategy "$s"
        expect_out_has "conflict"
        expect_exit 1 "$PGBANK" withdraw "$c" 100000 --key "r-$s" --strategy "$s"
        expect_exit 1 "$PGBANK" withdraw "$c" 100000 --key "r-$s" --strategy "$s"
        expect_out_has "replayed"
    done
}

history_walks_the_chain_and_audit_holds() {
    local c d
    read -r c d <<<"$(pick_far)"
    expect_exit 0 "$PGBANK" history "$c"
    expect_out_has "open"
    expect_out_has "transfer out"
    expect_out_has "batch"
    expect_exit 0 "$PGBANK" history "$d" --limit 2
    [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 4 ] || fail "expected two entries"
    expect_exit 1 "$PGBANK" history 999999
    expect_exit 0 "$PGBANK" audit
    expect_out_has "audit: ok"
}

race_verdicts_are_those_of_one_server() {
    expect_exit 0 "$PGBANK" race --runs 2 --duration 1 --json
    check_json '
by = {(x["strategy"], x["scenario"]): x for x in d["results"]}
for (s, sc), x in by.items():
    if s in ("explicit", "begin"):
        continue
    assert x["anomalous_runs"] == 0, (s, sc, x)
assert any(x["anomalous_runs"] > 0 for (s, sc), x in by.items() if s in ("explicit", "begin"))
'
    expect_exit 0 "$PGBANK" audit
}

# An atomic withdrawal or deposit of one account runs on its worker through
# pgbank_atomic_one() and commits there alone: the coordinator records no
# two-phase commit for it (pg_dist_transaction, with Citus's recovery
# paused so that nothing is removed meanwhile), while one atomic transfer
# between two workers, the control, records one.
atomic_commits_on_its_worker_without_two_phase_commit() {
    local a c d interval before after i
    read -r a _ <<<"$(pick_accounts)"
    read -r c d <<<"$(pick_far)"
    expect_exit 0 "$PGBANK" --echo withdraw "$a" 2 --strategy atomic
    expect_err_has "pgbank_atomic_one("
    interval=$(sql "SHOW citus.recover_2pc_interval")
    sql "ALTER SYSTEM SET citus.recover_2pc_interval = -1" && sql "SELECT pg_reload_conf()" \
        >/dev/null || { fail "could not pause Citus's 2PC recovery"; return; }
    sleep 1
    sql "SELECT recover_prepared_transactions()" >/dev/null
    before=$(sql "SELECT count(*) FROM pg_dist_transaction")
    for i in 1 2 3 4 5 6 7 8 9 10; do
        expect_exit 0 "$PGBANK" withdraw "$a" 1 --strategy atomic
        expect_exit 0 "$PGBANK" deposit "$a" 1 --strategy atomic
    done
    expect_exit 1 "$PGBANK" withdraw "$a" 100000 --strategy atomic
    expect_out_has "insufficient funds (balance"
    after=$(sql "SELECT count(*) FROM pg_dist_transaction")
    [ "$after" = "$before" ] ||
        fail "21 one-account atomic operations made $((after - before)) two-phase commits"
    expect_exit 0 "$PGBANK" transfer "$c" "$d" 1 --strategy atomic
    [ "$(sql "SELECT count(*) FROM pg_dist_transaction")" -gt "$after" ] ||
        fail "the control (a transfer between workers) recorded no two-phase commit"
    sql "ALTER SYSTEM SET citus.recover_2pc_interval = '$interval'" &&
        sql "SELECT pg_reload_conf()" >/dev/null || fail "could not restore Citus's 2PC recovery"
    [ "$(sql "SELECT count(*) FROM $SCHEMA.pgbank_journal
               WHERE account = $a AND strategy = 'atomic' AND op IN ('withdraw', 'deposit')")" \
        -ge 21 ] || fail "the atomic operations are not journaled as atomic"
    expect_exit 0 "$PGBANK" audit
}

# The seed's own table (id integer): adopted while local, widened to bigint
# and distributed by init; one the owner distributed already is refused,
# with what to do, and nothing is made.
the_seed_table_is_adopted_when_local_and_refused_when_distributed() {
    local seed=${SCHEMA}_seed db
    db="$URL${sep}options=-csearch_path%3D$seed"
    sql "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $seed CASCADE;
         CREATE SCHEMA $seed;
         CREATE TABLE $seed.accounts (id integer PRIMARY KEY, balance integer NOT NULL);
         INSERT INTO $seed.accounts VALUES (1, 100)" || { fail "psql could not set up"; return; }
    expect_exit 0 "$PGBANK" --db "$db" init
    [ "$(sql "SELECT format_type(atttypid, NULL) FROM pg_attribute
               WHERE attrelid = '$seed.accounts'::regclass AND attname = 'id'")" = bigint ] ||
        fail "id was not widened to bigint"
    [ "$(sql "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text IN
        ('$seed.accounts', '$seed.pgbank_journal', '$seed.pgbank_keys')")" = 3 ] ||
        fail "the adopted table and the journal are not distributed"
    expect_exit 0 "$PGBANK" --db "$db" withdraw 1 80 --strategy batch
    expect_out "withdrew 80 from account 1, new balance 20"
    expect_exit 1 "$PGBANK" --db "$db" withdraw 1 80 --strategy atomic
    expect_exit 0 "$PGBANK" --db "$db" audit
    sql "SET client_min_messages = warning; DROP SCHEMA $seed CASCADE; CREATE SCHEMA $seed;
         CREATE TABLE $seed.accounts (id integer PRIMARY KEY, balance integer NOT NULL);
         SELECT create_distributed_table('$seed.accounts', 'id')" >/dev/null ||
        { fail "psql could not set up"; return; }
    expect_exit 3 "$PGBANK" --db "$db" init
    expect_err_has "is distributed already with id integer"
    expect_err_has "undistribute_table"
    [ "$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = '$seed'::regnamespace
               AND relname LIKE 'pgbank%'")" = 0 ] || fail "the refused init made something"
    sql "SET client_min_messages = warning; DROP SCHEMA $seed CASCADE" >/dev/null
}

scenario init_distributes_and_runs_again
scenario the_seed_table_is_adopted_when_local_and_refused_when_distributed
scenario every_strategy_moves_money_within_and_between_shards
scenario keys_replay_and_conflict
scenario history_walks_the_chain_and_audit_holds
scenario atomic_commits_on_its_worker_without_two_phase_commit
scenario race_verdicts_are_those_of_one_server
finish
