# cli_withdraw.sh - the seed's scenario through the command line, for every
# strategy; the output forms (--json, --echo) and the server commands.
. "$(dirname "$0")/cli_lib.sh"

STRATEGIES="explicit begin for-update atomic serializable"

# withdraw_twice STRATEGY: 100 - 80 succeeds, a second 80 is refused.
withdraw_twice() {
    local s=$1 id
    id=$(open_account 100) || { fail "could not open an account"; return; }
    expect_exit 0 "$PGBANK" withdraw "$id" 80 --strategy "$s"
    expect_out "withdrew 80 from account $id, new balance 20"
    expect_balance "$id" 20
    expect_exit 1 "$PGBANK" withdraw "$id" 80 --strategy="$s"
    expect_out "rolled back: insufficient funds (balance 20, requested 80)"
    expect_balance "$id" 20
}

every_strategy_withdraws_80_once_from_100() {
    for s in $STRATEGIES; do
        withdraw_twice "$s"
    done
}

the_default_strategy_is_atomic() {
    local id
    id=$(open_account 100) || { fail "could not open an account"; return; }
    expect_exit 0 "$PGBANK" --json withdraw "$id" 30
    expect_out_has '"strategy":"atomic"'
}

unsafe_strategies_warn_on_stderr() {
    local id s
    id=$(open_account 100) || { fail "could not open an account"; return; }
    for s in explicit begin; do
        expect_exit 0 "$PGBANK" withdraw "$id" 1 --strategy "$s"
        expect_err_has "unsafe for money"
    done
    for s in for-update atomic serializable; do
        expect_exit 0 "$PGBANK" withdraw "$id" 1 --strategy "$s"
        [ -z "$ERR" ] || fail "a safe strategy printed something on stderr"
    done
    expect_balance "$id" 95
}

options_go_before_or_after_the_command() {
    local id
    id=$(open_account 50) || { fail "could not open an account"; return; }
    expect_exit 0 "$PGBANK" --json withdraw --strategy for-update "$id" 10
    expect_out_has '"balance":40'
    expect_exit 0 "$PGBANK" withdraw "$id" 10 --json --strategy=atomic
    expect_out_has '"balance":30'
    expect_exit 0 "$PGBANK" balance -- "$id"
    expect_out 30
}

echo_prints_the_sql_of_a_withdrawal() {
    local id
    id=$(open_account 100) || { fail "could not open an account"; return; }
    expect_exit 0 "$PGBANK" --echo withdraw "$id" 10
    expect_out "withdrew 10 from account $id, new balance 90"
    if on_citus; then
        # the guarded UPDATE runs on the account's worker (docs/SCALING.md)
        expect_err_has "pgbank_atomic_one(\$1::smallint, \$2::bigint, \$3::bigint)  -- \$1=0, \$2=$id, \$3=10"
    else
        expect_err_has "UPDATE accounts SET balance = balance - \$2"
        expect_err_has "\$1=$id, \$2=10"
    fi
    expect_exit 0 "$PGBANK" withdraw "$id" 10 --strategy for-update --echo
    expect_err_has "FOR UPDATE"
    expect_exit 0 "$PGBANK" withdraw "$id" 10
    [ -z "$ERR" ] || fail "without --echo nothing goes to stderr"
}

json_output_is_one_parseable_object() {
    local id
    expect_exit 0 "$PGBANK" --json account open --balance 100
    expect_json
    expect_out_has '"status":"ok"'
    id=$(printf '%s' "$OUT" | sed -n 's/.*"account":\([0-9]*\).*/\1/p')
    [ -n "$id" ] || { fail "no account id in the JSON"; return; }
    expect_exit 0 "$PGBANK" --json withdraw "$id" 80
    expect_json
    expect_out "{\"status\":\"ok\",\"account\":$id,\"amount\":80,\"balance\":20,\"strategy\":\"atomic\"}"
    expect_exit 1 "$PGBANK" --json withdraw "$id" 80 --strategy for-update
    expect_json
    expect_out_has '"status":"insufficient funds"'
    expect_out_has '"requested":80'
    expect_out_has '"balance":20'
    expect_exit 0 "$PGBANK" --json balance "$id"
    expect_json
    expect_out_has '"balance":20'
    expect_exit 1 "$PGBANK" --json withdraw 987654321 5
    expect_json
    expect_out_has '"status":"no such account"'
    expect_exit 2 "$PGBANK" --json withdraw "$id" 'x"y'
    expect_json
}

init_is_idempotent_and_says_so() {
    expect_exit 0 "$PGBANK" init
    expect_out_has "schema version"
    expect_exit 0 "$PGBANK" init
    expect_exit 0 "$PGBANK" --json init
    expect_json
}

pg_variables_name_the_database_instead_of_the_private_server() {
    local id
    id=$(open_account 64) || { fail "could not open an account"; return; }
    server_params || { fail "psql cannot reach the tests' database"; return; }
    # DATABASE_URL (set when the tests run against a named database) would
    # come first: unset, the PG* variables decide.
    expect_exit 0 env -u DATABASE_URL PGHOST="$SRV_HOST" PGPORT="$SRV_PORT" PGUSER="$SRV_USER" \
        PGDATABASE="$SRV_DB" PGBANK_DATA_DIR="$T/unused" "$PGBANK" balance "$id"
    expect_out 64
    [ ! -e "$T/unused" ] || fail "the private server was started anyway"
    expect_exit 3 env -u DATABASE_URL PGHOST=127.0.0.1 PGPORT=1 PGBANK_DATA_DIR="$T/unused" \
        "$PGBANK" balance "$id"
    expect_err_has "could not connect to the database"
}

server_commands_report_the_private_server() {
    expect_exit 0 "$PGBANK" server status
    expect_out_has "running"
    expect_out_has "$PGBANK_DATA_DIR"
    expect_exit 0 "$PGBANK" server url
    expect_out_has "postgresql://"
    expect_exit 0 "$PGBANK" server start
    expect_out_has "$PGBANK_DATA_DIR"
    expect_exit 1 "$PGBANK" server status --data-dir "$T/never-started"
    expect_out_has "not initialised"
    expect_exit 0 "$PGBANK" --json server status
    expect_json
}

scenario every_strategy_withdraws_80_once_from_100
scenario the_default_strategy_is_atomic
scenario unsafe_strategies_warn_on_stderr
scenario options_go_before_or_after_the_command
scenario echo_prints_the_sql_of_a_withdrawal
scenario json_output_is_one_parseable_object
scenario init_is_idempotent_and_says_so
scenario pg_variables_name_the_database_instead_of_the_private_server
private_scenario server_commands_report_the_private_server
finish
