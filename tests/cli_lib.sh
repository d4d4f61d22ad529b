# cli_lib.sh - the CLI tests' tiny harness, sourced by tests/cli_*.sh.
#
#   run CMD...            runs CMD; sets RC, OUT (stdout), ERR (stderr)
#   expect_exit CODE CMD...  runs CMD and requires exit CODE
#   expect_out TEXT       the last stdout is exactly TEXT
#   expect_out_has TEXT   the last stdout contains TEXT (also expect_err_has)
#   expect_nowhere TEXT   neither stdout nor stderr contains TEXT
#   expect_json           the last stdout is valid JSON
#   check_json CODE [PRE] runs Python CODE on the last stdout's JSON object,
#                         bound to d (and r, doc); PRE runs first (e.g. to
#                         index it); an AssertionError fails the scenario
#   open_account N        opens an account holding N, prints its id
#   expect_balance ID N   the account holds exactly N
#   test_db_url           the tests' database's URL (for psql and --db)
#   server_params         SRV_HOST/PORT/USER/DB of the tests' database
#   distribute_if_citus CONNINFO TABLE COLUMN
#                         on a Citus coordinator, distributes a table the
#                         test made itself by COLUMN, as its owner would
#   external_database     true when the tests run against a database named
#                         by PGBANK_TEST_DATABASE_URL, not the throwaway server
#   on_citus              true when the tests' database is a Citus coordinator
#                         (where docs/SCALING.md says what differs on purpose)
#   scenario FUNCTION     runs FUNCTION, prints "function... ok" or FAILED
#   private_scenario FUNCTION
#                         a scenario about the private server itself: runs
#                         as scenario does, or against a named database
#                         prints "function... not applicable (...)"
#   finish                exits non-zero when any scenario failed
#
# Every failure prints the command, its exit code and both outputs.
set -u

PGBANK=${1:?usage: $0 PATH_TO_PGBANK}
T=$(mktemp -d "${TMPDIR:-/tmp}/pgbank-cli-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

RC=0 OUT='' ERR='' CMD='' SCENARIO_FAILED=0 FAILED=0

run() {
    CMD=$(printf '%q ' "$@")
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

fail() {
    SCENARIO_FAILED=1
    {
        echo "  FAIL: $*"
        echo "    command: $CMD"
        echo "    exit:    $RC"
        echo "    stdout:  $OUT"
        echo "    stderr:  $ERR"
    } >&2
}

expect_exit() {
    local want=$1
    shift
    run "$@"
    [ "$RC" -eq "$want" ] || fail "expected exit $want, got $RC"
}

expect_out() {
    [ "$OUT" = "$1" ] || fail "expected stdout '$1'"
}

expect_out_has() {
    case "$OUT" in *"$1"*) ;; *) fail "expected '$1' in stdout" ;; esac
}

expect_err_has() {
    case "$ERR" in *"$1"*) ;; *) fail "expected '$1' in stderr" ;; esac
}

expect_nowhere() {
    case "$OUT$ERR" in *"$1"*) fail "'$1' must not be printed" ;; esac
}

# The last stdout is valid JSON (checked by python3 when present).
expect_json() {
    if command -v python3 >/dev/null 2>&1; then
        printf '%s' "$OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' \
            2>/dev/null || fail "stdout is not valid JSON"
    else
        case "$OUT" in "{"*"}") ;; *) fail "stdout is not a JSON object" ;; esac
    fi
}

# Opens an account holding $1 and prints its id.
open_account() {
    local id
    id=$("$PGBANK" account open --balance "$1") || return 1
    case "$id" in '' | *[!0-9]*) echo "bad account id '$id'" >&2; return 1 ;; esac
    echo "$id"
}

# expect_balance ID N: the account holds exactly N.
expect_balance() {
    run "$PGBANK" balance "$1"
    [ "$RC" -eq 0 ] && [ "$OUT" = "$2" ] || fail "expected balance $2"
}

# True when the tests run against a database named from outside
# (PGBANK_TEST_DATABASE_URL, which with_server.sh also hands the pgbank
# command as DATABASE_URL), false on the throwaway private server.
external_database() {
    [ -n "${PGBANK_TEST_DATABASE_URL:-}" ]
}

# True when the tests' database is a Citus coordinator (the extension
# citus is installed); asked once, then remembered.
on_citus() {
    if [ -z "${ON_CITUS:-}" ]; then
        ON_CITUS=$(psql "$(test_db_url)" -XAtq -c \
            "select count(*) from pg_extension where extname = 'citus'") || {
            echo "cli_lib.sh: psql cannot ask the tests' database for Citus" >&2
            exit 1
        }
    fi
    [ "$ON_CITUS" != 0 ]
}

# On a Citus coordinator, distributes TABLE (a table the test made itself,
# a seed table say) by COLUMN, as its owner would; elsewhere does nothing.
distribute_if_citus() {
    psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "DO \$d\$BEGIN
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_distributed_table('$2', '$3'); END IF; END\$d\$" >/dev/null
}

# Prints the URL of the tests' database: the named one, or the throwaway
# server's (`pgbank server url`).
test_db_url() {
    if external_database; then
        printf '%s\n' "$PGBANK_TEST_DATABASE_URL"
    else
        "$PGBANK" server url
    fi
}

# Sets SRV_HOST, SRV_PORT, SRV_USER, SRV_DB: where the tests' database
# listens (psql asks it).  Returns non-zero when psql fails.
server_params() {
    local url row
    url=$(test_db_url) || return 1
    row=$(psql "$url" -XAtq -F ' ' -c "select coalesce(host(inet_server_addr()),
        btrim(split_part(current_setting('unix_socket_directories'), ',', 1), ' \"')),
        current_setting('port'), current_user, current_database()") || return 1
    read -r SRV_HOST SRV_PORT SRV_USER SRV_DB <<<"$row"
    [ -n "$SRV_DB" ]
}

scenario() {
    SCENARIO_FAILED=0
    "$1"
    if [ "$SCENARIO_FAILED" -eq 0 ]; then
        echo "$1... ok"
    else
        echo "$1... FAILED"
        FAILED=1
    fi
}

# A scenario about the private server itself (its commands, its
# directory, crashing it): against a database named from outside there is
# none, and the scenario says so instead of running, counted neither as
# passed nor as failed.
private_scenario() {
    if external_database; then
        echo "$1... not applicable (it needs the private server; the tests run against" \
             "the database named by PGBANK_TEST_DATABASE_URL)"
    else
        scenario "$1"
    fi
}

finish() {
    exit "$FAILED"
}

# check_json CODE [PRE]: the last stdout's JSON object is d (also r and doc);
# PRE (optional Python) runs first; CODE's AssertionError, a missing field
# or a malformed object fails the scenario with its message.
check_json() {
    local py why
    py=$(command -v python3 || true)
    [ -n "$py" ] || py=/usr/bin/python3
    if [ ! -x "$py" ]; then
        fail "python3 is required to read pgbank's --json (apt-get install python3)"
        return
    fi
    why=$(printf '%s' "$OUT" | "$py" -c '
import json, sys
d = r = doc = json.load(sys.stdin)
exec(sys.argv[2])
try:
    exec(sys.argv[1])
except AssertionError as e:
    print("assertion failed:", e)
    sys.exit(1)
except KeyError as e:
    print("missing field:", e)
    sys.exit(1)
' "$1" "${2:-}" 2>&1) || fail "$why"
}
