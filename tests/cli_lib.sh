# cli_lib.sh - the CLI tests' tiny harness, sourced by tests/cli_*.sh.
#
#   run CMD...            runs CMD; sets RC, OUT (stdout), ERR (stderr)
#   expect_exit CODE CMD...  runs CMD and requires exit CODE
#   expect_out TEXT       the last stdout is exactly TEXT
#   expect_out_has TEXT   the last stdout contains TEXT (also expect_err_has)
#   expect_nowhere TEXT   neither stdout nor stderr contains TEXT
#   expect_json           the last stdout is valid JSON
#   open_account N        opens an account holding N, prints its id
#   expect_balance ID N   the account holds exactly N
#   server_params         SRV_HOST/PORT/USER/DB of the throwaway server
#   scenario FUNCTION     runs FUNCTION, prints "function... ok" or FAILED
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

# Sets SRV_HOST, SRV_PORT, SRV_USER, SRV_DB: where the throwaway private
# server listens (psql asks it).  Returns non-zero when psql fails.
server_params() {
    local url row
    url=$("$PGBANK" server url) || return 1
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

finish() {
    exit "$FAILED"
}
