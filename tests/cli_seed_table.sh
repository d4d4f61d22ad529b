# cli_seed_table.sh - pgbank on a schema holding only the seed's own table,
# accounts(id integer primary key, balance integer not null), named by --db
# (its search_path): no init is run and nothing else gets created.  psql
# sets the stage; on Citus the table is distributed by id, as its owner
# would.
. "$(dirname "$0")/cli_lib.sh"

NS=pgbank_seedtest
export PGOPTIONS='--client-min-messages=warning' # psql: no NOTICEs
URL=$(test_db_url) || { echo "no URL for the tests' database" >&2; exit 1; }

psql "$URL" -Xq -c "drop schema if exists $NS cascade" -c "create schema $NS" >/dev/null || exit 1
trap 'psql "$URL" -Xq -c "drop schema if exists $NS cascade" >/dev/null; rm -rf "$T"' EXIT
server_params || { echo "psql cannot reach the tests' database" >&2; exit 1; }
SEED="host=$SRV_HOST port=$SRV_PORT user=$SRV_USER dbname=$SRV_DB options='-csearch_path=$NS'"
psql "$SEED" -Xq -v ON_ERROR_STOP=1 -c \
    'create table accounts(id integer primary key, balance integer not null)' || exit 1
distribute_if_citus "$SEED" accounts id || exit 1

set_balance() {
    psql "$SEED" -Xq -c "delete from accounts; insert into accounts values (1, $1)" ||
        fail "psql could not reset account 1"
}

balance_reads_the_seed_table() {
    set_balance 100
    expect_exit 0 "$PGBANK" --db "$SEED" balance 1
    expect_out 100
}

every_strategy_runs_the_seed_scenario() {
    local s
    for s in explicit begin for-update atomic; do
        set_balance 100
        expect_exit 0 "$PGBANK" --db "$SEED" withdraw 1 80 --strategy "$s"
        expect_out "withdrew 80 from account 1, new balance 20"
        expect_exit 1 "$PGBANK" --db "$SEED" withdraw 1 80 --strategy "$s"
        expect_out "rolled back: insufficient funds (balance 20, requested 80)"
        expect_exit 0 env DATABASE_URL="$SEED" "$PGBANK" balance 1
        expect_out 20
    done
}

amounts_beyond_an_integer_column_are_invalid() {
    set_balance 100
    expect_exit 2 "$PGBANK" --db "$SEED" withdraw 1 3000000000
    expect_exit 1 "$PGBANK" --db "$SEED" withdraw 2 5
    expect_out "rolled back: no such account 2"
    expect_exit 0 "$PGBANK" --db "$SEED" balance 1
    expect_out 100
}

nothing_but_the_seed_table_exists_afterwards() {
    run psql "$SEED" -XAtc "select string_agg(c.relname, ',' order by c.relname)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = '$NS'
          and c.relkind in ('r', 'v', 'S', 'p')"
    expect_out accounts
}

scenario balance_reads_the_seed_table
scenario every_strategy_runs_the_seed_scenario
scenario amounts_beyond_an_integer_column_are_invalid
scenario nothing_but_the_seed_table_exists_afterwards
finish
