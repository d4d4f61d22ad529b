# cli_pgbouncer.sh - pgbank through PgBouncer in transaction pooling mode,
# with --unnamed-statements: the withdraw tests for every strategy, money
# beyond withdrawals; the race lab, which needs a schema of its own, says it
# cannot run behind a transaction pooler.  PgBouncer (Debian's package)
# runs in a temporary directory of its own, listening only on a unix socket
# there, in front of the throwaway server; it is always stopped and the
# directory removed.  Without pgbouncer installed the test FAILS: CI installs
# it (apt-get install pgbouncer).
. "$(dirname "$0")/cli_lib.sh"

STRATEGIES="explicit begin for-update atomic serializable batch"

if ! command -v pgbouncer >/dev/null 2>&1; then
    echo "FAILED: pgbouncer is not installed; this test needs it" \
         "(apt-get install pgbouncer)" >&2
    exit 1
fi
server_params || { echo "FAILED: psql cannot reach the throwaway server" >&2; exit 1; }

# PgBouncer refuses to run as root.  As root the private server runs as its
# data directory's owner (postgres), whose socket directory only that owner
# may enter: PgBouncer runs as the same account.
RUN_AS=()
BOUNCER_USER=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    BOUNCER_USER=$(stat -c %U "$PGBANK_DATA_DIR")
    if [ "$BOUNCER_USER" = root ]; then
        echo "FAILED: the throwaway server's directory is owned by root" >&2
        exit 1
    fi
    RUN_AS=(setpriv --reuid="$BOUNCER_USER" --regid="$(stat -c %G "$PGBANK_DATA_DIR")"
            --init-groups)
fi

# Short, under /tmp: a unix socket path must stay below 108 bytes.
B=$(mktemp -d /tmp/pgbank-bouncer.XXXXXX)
BOUNCER_PID=''
stop_bouncer() {
    if [ -n "$BOUNCER_PID" ]; then
        kill "$BOUNCER_PID" 2>/dev/null
        wait "$BOUNCER_PID" 2>/dev/null
        BOUNCER_PID=''
    fi
    rm -rf "$B"
}
trap 'stop_bouncer; rm -rf "$T"' EXIT

# Room for many clients at once, as an application behind it would have.
cat >"$B/pgbouncer.ini" <<EOF
[databases]
pgbank = host=$SRV_HOST port=$SRV_PORT dbname=$SRV_DB user=$SRV_USER

[pgbouncer]
listen_addr =
listen_port = 6432
unix_socket_dir = $B
auth_type = trust
auth_file = $B/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 60
reserve_pool_size = 0
logfile = $B/pgbouncer.log
pidfile = $B/pgbouncer.pid
EOF
printf '"%s" ""\n' "$SRV_USER" >"$B/userlist.txt"
[ "$(id -u)" -ne 0 ] || chown -R "$BOUNCER_USER" "$B"

"${RUN_AS[@]}" pgbouncer "$B/pgbouncer.ini" >"$T/bouncer.out" 2>&1 &
BOUNCER_PID=$!
for _ in $(seq 100); do
    [ -S "$B/.s.PGSQL.6432" ] && break
    kill -0 "$BOUNCER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ ! -S "$B/.s.PGSQL.6432" ]; then
    echo "FAILED: pgbouncer did not start" >&2
    cat "$T/bouncer.out" "$B/pgbouncer.log" >&2 2>/dev/null
    exit 1
fi

BDB="host=$B port=6432 dbname=pgbank user=$SRV_USER"

# pgbank through PgBouncer, with unnamed statements.
via() {
    "$PGBANK" --unnamed-statements --db "$BDB" "$@"
}

open_via() {
    local id
    id=$(via account open --balance "$1") || return 1
    case "$id" in '' | *[!0-9]*) echo "bad account id '$id'" >&2; return 1 ;; esac
    echo "$id"
}

expect_balance_via() {
    run via balance "$1"
    [ "$RC" -eq 0 ] && [ "$OUT" = "$2" ] || fail "expected balance $2 in account $1"
}

pgbouncer_answers_on_its_socket() {
    expect_exit 0 psql "$BDB" -XAtq -c 'SELECT 1'
    expect_out 1
}

every_strategy_withdraws_and_refuses_through_pgbouncer() {
    local s id
    for s in $STRATEGIES; do
        id=$(open_via 100) || { fail "could not open an account through pgbouncer"; return; }
        expect_exit 0 via withdraw "$id" 80 --strategy "$s"
        expect_out "withdrew 80 from account $id, new balance 20"
        expect_balance_via "$id" 20
        expect_exit 1 via withdraw "$id" 80 --strategy "$s"
        expect_out "rolled back: insufficient funds (balance 20, requested 80)"
        expect_exit 1 via withdraw 987654321 5 --strategy "$s"
        expect_out "rolled back: no such account 987654321"
        expect_balance_via "$id" 20
    done
}

deposits_transfers_keys_and_history_go_through_pgbouncer() {
    local a b
    a=$(open_via 100) && b=$(open_via 0) || { fail "could not open the accounts"; return; }
    expect_exit 0 via deposit "$b" 50 --strategy for-update
    expect_out "deposited 50 to account $b, new balance 50"
    expect_exit 0 via transfer "$a" "$b" 30 --key "bouncer-$a"
    expect_out "transferred 30 from account $a to account $b, balances 70 and 80"
    expect_exit 0 via transfer "$a" "$b" 30 --key "bouncer-$a"
    expect_out_has "(replayed: key bouncer-$a was already used)"
    expect_exit 1 via transfer "$a" "$b" 31 --key "bouncer-$a"
    expect_out_has "rejected: conflict"
    expect_exit 0 via transfer "$a" "$b" 10 --strategy batch
    expect_out "transferred 10 from account $a to account $b, balances 60 and 90"
    expect_exit 0 via --json history "$b"
    expect_json
    expect_out_has '"op":"transfer in","amount":10,"balance_after":90'
    # Other tests lose money in this database on purpose: only the audit's
    # ability to run is checked here.
    run via --json audit
    [ "$RC" -eq 0 ] || [ "$RC" -eq 1 ] || fail "the audit could not run through pgbouncer"
    expect_json
}

# The race lab works in a schema of its own, chosen when its connections
# open (options=-csearch_path): PgBouncer refuses that startup parameter,
# and in transaction mode could not keep it anyway.  The lab says so, runs
# nothing and touches nothing; pointed at the server itself it runs.
the_race_lab_through_pgbouncer_refuses_and_touches_nothing() {
    local before
    before=$(psql "$BDB" -XAtq -c "SELECT count(*) || ' ' || sum(balance) FROM accounts")
    expect_exit 3 via race --runs 1 --duration 0.1 --json
    expect_json
    expect_err_has "unsupported startup parameter: options"
    expect_err_has "point --db at the server itself"
    expect_nowhere "anomalous"
    [ "$(psql "$BDB" -XAtq -c "SELECT count(*) || ' ' || sum(balance) FROM accounts")" = "$before" ] ||
        fail "the accounts behind pgbouncer changed"
    [ "$(psql "$BDB" -XAtq -c "SELECT count(*) FROM pg_namespace WHERE nspname ~ '^pgbank_race_'")" = 0 ] ||
        fail "a lab schema was left behind"
}

# Named statements outlive the client under transaction pooling: the next
# client handed the same server connection cannot prepare them again
# (PgBouncer reuses the last server connection first), and pgbank says
# what to do.  Last: it leaves named statements on the server connections.
named_statements_fail_through_pgbouncer_without_the_option() {
    local id
    id=$(open_via 100) || { fail "could not open an account"; return; }
    run "$PGBANK" --db "$BDB" withdraw "$id" 1
    expect_exit 3 "$PGBANK" --db "$BDB" withdraw "$id" 1
    expect_err_has "prepared statement"
    expect_err_has "pass --unnamed-statements"
    expect_exit 0 via withdraw "$id" 1
}

scenario pgbouncer_answers_on_its_socket
scenario every_strategy_withdraws_and_refuses_through_pgbouncer
scenario deposits_transfers_keys_and_history_go_through_pgbouncer
scenario the_race_lab_through_pgbouncer_refuses_and_touches_nothing
scenario named_statements_fail_through_pgbouncer_without_the_option
finish
