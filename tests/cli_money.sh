# cli_money.sh - deposit, transfer, idempotency keys, history and audit
# through the command line.  They run in a schema of their own (moneytest,
# in the tests' database, so that on Citus its tables are as distributed as
# the tests' own), because the audit checks the whole accounts table, and
# the last scenario breaks it on purpose.
. "$(dirname "$0")/cli_lib.sh"

STRATEGIES="explicit begin for-update atomic serializable batch"
# Nothing listens there: a command that tried to connect would exit 3.
NOWHERE=postgresql://alice@127.0.0.1:1/db

server_params || { echo "psql cannot reach the tests' database" >&2; exit 1; }
ADMIN=$(test_db_url) || { echo "no URL for the tests' database" >&2; exit 1; }
MDB="host=$SRV_HOST port=$SRV_PORT user=$SRV_USER dbname=$SRV_DB options='-csearch_path=moneytest'"

admin_sql() {
    PGOPTIONS='-c client_min_messages=warning' psql "$ADMIN" -XAtq -v ON_ERROR_STOP=1 -c "$1" >/dev/null
}

drop_moneytest() {
    admin_sql 'DROP SCHEMA IF EXISTS moneytest CASCADE'
}
trap 'drop_moneytest; rm -rf "$T"' EXIT

drop_moneytest && admin_sql 'CREATE SCHEMA moneytest' &&
    "$PGBANK" --db "$MDB" init >/dev/null ||
    { echo "could not create the schema moneytest" >&2; exit 1; }

# pgbank on moneytest.
pgb() {
    "$PGBANK" --db "$MDB" "$@"
}

# Opens an account in moneytest holding $1 and prints its id.
open_money_account() {
    local id
    id=$(pgb account open --balance "$1") || return 1
    case "$id" in '' | *[!0-9]*) echo "bad account id '$id'" >&2; return 1 ;; esac
    echo "$id"
}

expect_money_balance() {
    run pgb balance "$1"
    [ "$RC" -eq 0 ] && [ "$OUT" = "$2" ] || fail "expected balance $2 in account $1"
}

# The scenario of the issue, step by step, on the embedded default's server.
deposit_transfer_keys_history_and_audit_add_up() {
    local a b
    a=$(open_money_account 100) && b=$(open_money_account 0) ||
        { fail "could not open the accounts"; return; }
    expect_exit 0 pgb deposit "$b" 50
    expect_out "deposited 50 to account $b, new balance 50"
    expect_exit 0 pgb transfer "$a" "$b" 30
    expect_out "transferred 30 from account $a to account $b, balances 70 and 80"
    expect_exit 1 pgb transfer "$a" "$b" 500
    expect_out "rolled back: insufficient funds (balance 70, requested 500)"
    expect_exit 2 pgb transfer "$a" "$a" 5
    expect_err_has "cannot transfer from account $a to itself"
    expect_exit 0 pgb withdraw "$a" 10 --key K
    expect_out "withdrew 10 from account $a, new balance 60"
    expect_exit 0 pgb withdraw "$a" 10 --key K
    expect_out "withdrew 10 from account $a, new balance 60 (replayed: key K was already used)"
    expect_exit 1 pgb withdraw "$a" 11 --key K
    expect_out "rejected: conflict (key already used for withdraw of 10 on account $a)"
    expect_money_balance "$a" 60
    expect_money_balance "$b" 80
    expect_exit 0 pgb history "$a"
    expect_out_has "withdraw"
    expect_out_has "transfer out"
    expect_out_has "open"
    expect_exit 0 pgb history "$b"
    expect_out_has "transfer in"
    expect_out_has "deposit"
    expect_exit 0 pgb audit
    expect_out_has "mismatched accounts  0"
    [ "$(printf '%s\n' "$OUT" | tail -n 1)" = "audit: ok" ] || fail "the last line is not 'audit: ok'"
    expect_exit 0 pgb withdraw "$a" 1 --strategy serializable
    expect_out "withdrew 1 from account $a, new balance 59"
    expect_exit 0 pgb audit
}

every_strategy_deposits_transfers_and_refuses() {
    local s a b
    for s in $STRATEGIES; do
        a=$(open_money_account 100) && b=$(open_money_account 0) ||
            { fail "could not open the accounts"; return; }
        expect_exit 0 pgb deposit "$a" 20 --strategy "$s"
        expect_out "deposited 20 to account $a, new balance 120"
        expect_exit 0 pgb transfer "$a" "$b" 45 --strategy "$s"
        expect_out "transferred 45 from account $a to account $b, balances 75 and 45"
        expect_exit 1 pgb transfer "$a" "$b" 76 --strategy "$s"
        expect_out "rolled back: insufficient funds (balance 75, requested 76)"
        expect_exit 1 pgb transfer "$a" 987654321 5 --strategy "$s"
        expect_out "rolled back: no such account 987654321"
        expect_exit 1 pgb transfer 987654321 "$b" 5 --strategy "$s"
        expect_out "rolled back: no such account 987654321"
        expect_exit 1 pgb deposit 987654321 5 --strategy "$s"
        expect_out "rolled back: no such account 987654321"
        expect_money_balance "$a" 75
        expect_money_balance "$b" 45
    done
    expect_exit 0 pgb audit
}

unsafe_strategies_warn_for_deposits_and_transfers_too() {
    local a b s
    a=$(open_money_account 100) && b=$(open_money_account 0) ||
        { fail "could not open the accounts"; return; }
    for s in explicit begin; do
        expect_exit 0 pgb deposit "$a" 1 --strategy "$s"
        expect_err_has "unsafe for money"
        expect_exit 0 pgb transfer "$a" "$b" 1 --strategy "$s"
        expect_err_has "unsafe for money"
    done
    expect_exit 0 pgb transfer "$a" "$b" 1 --strategy for-update
    [ -z "$ERR" ] || fail "a safe strategy printed something on stderr"
}

a_replayed_key_repeats_the_original_outcome_and_its_exit_code() {
    local a b
    a=$(open_money_account 50) && b=$(open_money_account 0) ||
        { fail "could not open the accounts"; return; }
    # A refusal is remembered: the replay refuses again, even after the
    # balance would allow it.
    expect_exit 1 pgb withdraw "$a" 80 --key too-much
    expect_out "rolled back: insufficient funds (balance 50, requested 80)"
    expect_exit 0 pgb deposit "$a" 100 --key top-up
    expect_exit 1 pgb withdraw "$a" 80 --key too-much
    expect_out "rolled back: insufficient funds (balance 50, requested 80) (replayed: key too-much was already used)"
    expect_exit 0 pgb deposit "$a" 100 --key top-up
    expect_out "deposited 100 to account $a, new balance 150 (replayed: key top-up was already used)"
    expect_exit 0 pgb transfer "$a" "$b" 30 --key rent --strategy for-update
    expect_out "transferred 30 from account $a to account $b, balances 120 and 30"
    expect_exit 0 pgb transfer "$a" "$b" 30 --key rent
    expect_out "transferred 30 from account $a to account $b, balances 120 and 30 (replayed: key rent was already used)"
    if on_citus; then
        # On Citus a key is unique per account (docs/SCALING.md): the same
        # key from another account is an operation of its own.
        expect_exit 0 pgb transfer "$b" "$a" 30 --key rent
        expect_out "transferred 30 from account $b to account $a, balances 0 and 150"
        expect_exit 0 pgb transfer "$b" "$a" 30 --key rent
        expect_out "transferred 30 from account $b to account $a, balances 0 and 150 (replayed: key rent was already used)"
    else
        expect_exit 1 pgb transfer "$b" "$a" 30 --key rent
        expect_out "rejected: conflict (key already used for transfer of 30 from account $a to $b)"
    fi
    expect_exit 1 pgb deposit "$a" 30 --key rent
    expect_out_has "rejected: conflict"
    expect_exit 0 pgb --json withdraw "$a" 5 --key json-key
    expect_json
    expect_out_has '"replayed":false'
    expect_exit 0 pgb --json withdraw "$a" 5 --key json-key
    expect_json
    expect_out_has '"replayed":true'
    expect_out_has '"key":"json-key"'
    expect_exit 1 pgb --json withdraw "$a" 6 --key json-key
    expect_json
    expect_out_has '"status":"conflict"'
    if on_citus; then
        expect_money_balance "$a" 145
        expect_money_balance "$b" 0
    else
        expect_money_balance "$a" 115
        expect_money_balance "$b" 30
    fi
    expect_exit 0 pgb audit
}

bad_keys_and_same_account_transfers_exit_2_before_connecting() {
    local long
    long=$(printf 'k%.0s' $(seq 201))
    expect_exit 2 "$PGBANK" --echo --db "$NOWHERE" transfer 1 1 5
    expect_err_has "cannot transfer from account 1 to itself"
    expect_nowhere "connect"
    expect_exit 2 "$PGBANK" --json --db "$NOWHERE" transfer 3 3 5
    expect_json
    expect_out_has '"status":"invalid input"'
    expect_exit 2 "$PGBANK" --db "$NOWHERE" deposit 1 5 --key ''
    expect_err_has "non-empty key"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" transfer 1 2 5 --key "$long"
    expect_err_has "at most 200"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" transfer 1 2
    expect_err_has "missing AMOUNT"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" transfer 1
    expect_err_has "missing TO and AMOUNT"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" deposit 1 0
    expect_err_has "invalid amount '0'"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" transfer 1 x 5
    expect_err_has "invalid account id 'x'"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" deposit 1 5 --strategy yolo
    expect_err_has "unknown strategy 'yolo'"
}

every_strategy_name_is_accepted_on_every_money_command() {
    local a b s
    a=$(open_money_account 1000) && b=$(open_money_account 0) ||
        { fail "could not open the accounts"; return; }
    for s in $STRATEGIES; do
        expect_exit 0 pgb --json withdraw "$a" 1 --strategy "$s"
        expect_out_has "\"strategy\":\"$s\""
        expect_exit 0 pgb --json deposit "$a" 1 --strategy "$s"
        expect_json
        expect_exit 0 pgb --json transfer "$a" "$b" 1 --strategy "$s"
        expect_json
        expect_out_has "\"to_account\":$b"
    done
}

# A serializable transaction whose row another transaction changed and
# committed meanwhile fails with 40001 and is retried: psql holds the row
# lock until pgbank's UPDATE waits on it, then commits.
serializable_says_how_often_it_retried() {
    local a n psql_pid w activity
    a=$(open_money_account 100) || { fail "could not open an account"; return; }
    mkfifo "$T/fifo"
    psql "$MDB" -XAtq <"$T/fifo" >"$T/psql.out" 2>&1 &
    psql_pid=$!
    exec 3>"$T/fifo"
    echo "BEGIN; UPDATE accounts SET balance = balance WHERE id = $a; SELECT 'locked';" >&3
    for _ in $(seq 100); do grep -q locked "$T/psql.out" && break; sleep 0.1; done
    pgb withdraw "$a" 1 --strategy serializable >"$T/ser.out" 2>"$T/ser.err" &
    w=$!
    # On Citus the row lock is waited for on the worker holding the row,
    # which citus_stat_activity shows with the coordinator's sessions.
    activity=pg_stat_activity
    on_citus && activity=citus_stat_activity
    n=0
    for _ in $(seq 200); do
        n=$(psql "$MDB" -XAtq -c "SELECT count(*) FROM $activity
            WHERE wait_event_type = 'Lock' AND datname = current_database()")
        [ "$n" -ge 1 ] && break
        sleep 0.05
    done
    echo "COMMIT;" >&3
    exec 3>&-
    wait "$w"
    RC=$? OUT=$(cat "$T/ser.out") ERR=$(cat "$T/ser.err") CMD="pgbank withdraw $a 1 --strategy serializable"
    wait "$psql_pid"
    rm -f "$T/fifo"
    [ "$n" -ge 1 ] || { fail "pgbank never waited on the row lock"; return; }
    [ "$RC" -eq 0 ] || fail "expected exit 0"
    expect_out "withdrew 1 from account $a, new balance 99 (after 1 retry)"
    expect_money_balance "$a" 99
}

history_lists_newest_first_with_signed_amounts() {
    local a b
    a=$(open_money_account 100) && b=$(open_money_account 0) ||
        { fail "could not open the accounts"; return; }
    pgb withdraw "$a" 10 --key h1 >/dev/null &&
        pgb deposit "$a" 5 --strategy for-update >/dev/null &&
        pgb transfer "$a" "$b" 20 >/dev/null || { fail "setup failed"; return; }
    expect_exit 0 pgb history "$a"
    [ "$(printf '%s\n' "$OUT" | sed -n 2p | awk '{print $1, $2, $3}')" = "seq time op" ] ||
        fail "no header line"
    printf '%s\n' "$OUT" | sed -n 3p | grep -q 'transfer out  *-20  *75  *atomic  *-$' ||
        fail "the newest entry is not the transfer out"
    printf '%s\n' "$OUT" | sed -n 4p | grep -q 'deposit  *+5  *95  *for-update' ||
        fail "the second entry is not the deposit"
    printf '%s\n' "$OUT" | sed -n 5p | grep -q 'withdraw  *-10  *90  *atomic  *h1$' ||
        fail "the third entry is not the keyed withdrawal"
    printf '%s\n' "$OUT" | sed -n 6p | grep -q 'open  *+100  *100' ||
        fail "the oldest entry is not the opening"
    expect_exit 0 pgb history "$a" --limit 2
    [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 4 ] || fail "--limit 2 did not print two entries"
    expect_out_has "(the newest 2; --limit 0 shows all)"
    expect_exit 0 pgb --json history "$a" --limit 0
    expect_json
    expect_out_has "{\"status\":\"ok\",\"account\":$a,\"entries\":[{\"seq\":"
    expect_out_has '"op":"transfer out","amount":-20,"balance_after":75,"strategy":"atomic","key":""}'
    expect_out_has '"op":"open","amount":100,"balance_after":100'
    expect_exit 0 pgb --json history "$b"
    expect_out_has '"op":"transfer in","amount":20,"balance_after":20'
    expect_exit 1 pgb history 987654321
    expect_err_has "no such account 987654321"
    expect_exit 1 pgb --json history 987654321
    expect_json
    expect_out_has '"status":"no such account"'
    expect_exit 2 "$PGBANK" --db "$NOWHERE" history "$a" --limit -1
    expect_err_has "invalid --limit"
    expect_exit 2 "$PGBANK" --db "$NOWHERE" history 0
    expect_exit 2 "$PGBANK" --db "$NOWHERE" history
    expect_exit 3 "$PGBANK" --db "$NOWHERE" history 1
    expect_err_has "could not connect"
}

# A balance changed behind the journal's back (triggers off, as a careless
# restore would do it): the audit must catch it and name the account.
# (pgbank race did this to the bank once; it works in a schema of its own.)
the_audit_fails_when_a_balance_disagrees_with_its_journal_and_names_it() {
    local id
    expect_exit 0 pgb audit
    id=$(open_money_account 100) || { fail "could not open an account"; return; }
    expect_exit 0 pgb withdraw "$id" 80
    psql "$MDB" -XAtq -v ON_ERROR_STOP=1 -c "SET session_replication_role = replica" \
        -c "UPDATE accounts SET balance = 100 WHERE id = $id" >/dev/null ||
        { fail "could not change the balance behind the journal"; return; }
    expect_exit 1 pgb audit
    expect_out_has "audit: FAILED"
    expect_out_has "journal says"
    [ "$(printf '%s\n' "$OUT" | tail -n 1)" = "audit: FAILED" ] || fail "the last line is not 'audit: FAILED'"
    printf '%s\n' "$OUT" | grep -Eq "^ +$id +100 +20 +\+80$" ||
        fail "account $id is not listed as 100, journal 20, +80"
    expect_exit 1 pgb --json audit
    expect_json
    expect_out_has '"status":"failed"'
    expect_out_has "{\"account\":$id,\"balance\":100,\"journal_says\":20,\"difference\":80"
    expect_out_has '"money_created":0'
}

audit_exits_3_when_the_database_cannot_be_read() {
    expect_exit 3 "$PGBANK" --db "$NOWHERE" audit
    expect_err_has "could not connect"
    expect_exit 3 "$PGBANK" --json --db "$NOWHERE" audit
    expect_json
    expect_exit 2 "$PGBANK" --db "$NOWHERE" audit extra
}

help_shows_the_new_commands_and_options() {
    local cmd
    expect_exit 0 "$PGBANK" --help
    for word in deposit transfer history audit --unnamed-statements; do
        expect_out_has "$word"
    done
    for cmd in withdraw deposit transfer; do
        expect_exit 0 "$PGBANK" "$cmd" --help
        expect_out_has "--key KEY"
        expect_out_has "serializable"
        expect_out_has "batch"
        expect_out_has "Example"
    done
    expect_exit 0 "$PGBANK" history --help
    expect_out_has "--limit N"
    expect_exit 0 "$PGBANK" audit --help
    expect_out_has "audit: FAILED"
}

unnamed_statements_move_money_too() {
    local a b
    a=$(open_money_account 100) && b=$(open_money_account 0) ||
        { fail "could not open the accounts"; return; }
    expect_exit 0 pgb --unnamed-statements transfer "$a" "$b" 40 --strategy for-update
    expect_out "transferred 40 from account $a to account $b, balances 60 and 40"
    expect_exit 0 pgb withdraw "$a" 10 --unnamed-statements --key un1
    expect_exit 0 pgb withdraw "$a" 10 --unnamed-statements --key un1
    expect_out_has "replayed"
    expect_exit 2 pgb --unnamed-statements=yes withdraw "$a" 1
    expect_money_balance "$a" 50
}

scenario deposit_transfer_keys_history_and_audit_add_up
scenario every_strategy_deposits_transfers_and_refuses
scenario unsafe_strategies_warn_for_deposits_and_transfers_too
scenario a_replayed_key_repeats_the_original_outcome_and_its_exit_code
scenario bad_keys_and_same_account_transfers_exit_2_before_connecting
scenario every_strategy_name_is_accepted_on_every_money_command
scenario serializable_says_how_often_it_retried
scenario history_lists_newest_first_with_signed_amounts
scenario unnamed_statements_move_money_too
scenario help_shows_the_new_commands_and_options
scenario audit_exits_3_when_the_database_cannot_be_read
scenario the_audit_fails_when_a_balance_disagrees_with_its_journal_and_names_it
finish
