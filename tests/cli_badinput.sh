# cli_badinput.sh - bad input everywhere: every command listed by
# `pgbank --help` meets malformed amounts and account ids, unknown options,
# missing and extra arguments and malformed connection strings, and must
# answer with one line naming the problem and exit 2 (3 for a database it
# cannot reach), never crash, and never change anything.  Then failures
# outside pgbank: no server, no schema, a table of the wrong shape, a
# read-only server: exit 3 with a clear message, nothing changed.
. "$(dirname "$0")/cli_lib.sh"

if ! command -v psql >/dev/null 2>&1; then
    echo "cli_badinput.sh: psql is required to shape the test schemas" >&2
    exit 1
fi

# Every command `pgbank --help` lists.
COMMANDS=$("$PGBANK" --help | awk '/^Commands:/ { f = 1; next } f && NF == 0 { exit } f { print $1 }')

# A command's call with value slots: {A} an account id, {B} another one,
# {N} an amount (> 0), {Z} a balance (>= 0).  Commands not listed here get
# their slots from their usage line (ACCOUNT, FROM, TO, AMOUNT); commands
# without money values get the generic checks only.
template() {
    case $1 in
    withdraw) echo "withdraw {A} {N}" ;;
    deposit) echo "deposit {A} {N}" ;;
    transfer) echo "transfer {A} {B} {N}" ;;
    balance) echo "balance {A}" ;;
    history) echo "history {A}" ;;
    account) echo "account open --balance {Z}" ;;
    server | init | race | chaos | bench | audit | help) echo "" ;;
    *)
        "$PGBANK" "$1" --help 2>/dev/null | sed -n '1s/^Usage: pgbank //p' |
            awk '{ out = ""; acc = 0
                   for (i = 1; i <= NF; i++) {
                       t = $i; if (t ~ /^\[/) break
                       if (t == "AMOUNT") t = "{N}"
                       else if (t == "TO") t = "{B}"
                       else if (t ~ /^(ACCOUNT|FROM|ID)$/) t = (acc++ ? "{B}" : "{A}")
                       out = out (out == "" ? "" : " ") t }
                   if (out ~ /\{/) print out }'
        ;;
    esac
}

BAD_NUMBERS=(0 -1 abc 1e3 ' 5' '5 ' '+5' '' 99999999999999999999999 0x10
    '5;DROP TABLE accounts' 9223372036854775808 -0 1.5 $'5\n' '٥')

# run_clean CODE CMD...: exit CODE, and no crash (signal, sanitizer report).
run_clean() {
    local want=$1
    shift
    run "$@"
    [ "$RC" -lt 128 ] || fail "crashed (exit $RC)"
    case "$OUT$ERR" in *Sanitizer* | *"runtime error:"*) fail "sanitizer report" ;; esac
    [ "$RC" -eq "$want" ] || fail "expected exit $want, got $RC"
}

# The problem on one line (plus at most the "Try 'pgbank ... --help'" hint),
# nothing on stdout unless it is a JSON object.
one_line() {
    local lines
    lines=$(printf '%s\n' "$ERR" | grep -vc -e "^Try 'pgbank" -e "^pgbank: warning: strategy")
    [ -n "$ERR" ] || fail "no message on stderr"
    [ "$lines" -le 1 ] || fail "the message spans $lines lines"
    case "$OUT" in "" | "{"*"}") ;; *) fail "stdout must stay empty" ;; esac
}

# fill TEMPLATE SLOT VALUE: the call's words, one per line, with SLOT set to
# VALUE and every other slot valid.
fill() {
    local w
    for w in $1; do
        case $w in
        "$2") printf '%s\0' "$3" ;;
        "{A}") printf '%s\0' "$K" ;;
        "{B}") printf '%s\0' "$K2" ;;
        "{N}") printf '%s\0' 1 ;;
        "{Z}") printf '%s\0' 0 ;;
        *) printf '%s\0' "$w" ;;
        esac
    done
}

K=$(open_account 1000) || { echo "cannot open an account" >&2; exit 1; }
K2=$(open_account 0) || { echo "cannot open an account" >&2; exit 1; }
URL=$(test_db_url) || { echo "no URL for the tests' database" >&2; exit 1; }
UNREACHABLE='host=/nonexistent port=1 password=S3cret'

# The journal of K as it stands (empty when there is no history command).
journal_of_k() {
    case " $(echo $COMMANDS) " in
    *" history "*) "$PGBANK" --json history "$K" --limit 0 2>&1 ;;
    esac
}
JOURNAL_K=$(journal_of_k)

nothing_changed() {
    expect_balance "$K" 1000
    expect_balance "$K2" 0
    [ "$(journal_of_k)" = "$JOURNAL_K" ] || fail "the journal of account $K changed"
}

the_help_lists_commands() {
    [ "$(printf '%s\n' "$COMMANDS" | wc -w)" -ge 5 ] || fail "commands not found in --help"
    case " $(echo $COMMANDS) " in *" withdraw "*) ;; *) fail "withdraw not listed" ;; esac
}

every_command_refuses_unknown_options_and_extra_arguments() {
    local cmd t args
    for cmd in $COMMANDS; do
        run_clean 2 "$PGBANK" "$cmd" --no-such-option
        expect_err_has "'--no-such-option'"
        one_line
        run_clean 2 "$PGBANK" "$cmd" --json --no-such-option
        case "$OUT" in "" | "{"*"}") ;; *) fail "stdout must stay empty or JSON" ;; esac
        run_clean 2 "$PGBANK" "$cmd" --db
        one_line
        run_clean 0 "$PGBANK" "$cmd" --help
        expect_out_has "Usage: pgbank"
        t=$(template "$cmd")
        if [ -n "$t" ]; then
            mapfile -d '' args < <(fill "$t" none none)
            run_clean 2 "$PGBANK" "${args[@]}" extra
            expect_err_has "'extra'"
            one_line
            # Each missing argument (a template with an option: the command
            # alone, whose rest is optional past its subcommand).
            case " $t " in *" --"*) args=("$cmd" x) ;; esac
            while [ "${#args[@]}" -gt 1 ]; do
                unset 'args[${#args[@]}-1]'
                run_clean 2 "$PGBANK" "${args[@]}"
                one_line
            done
        else
            run_clean 2 "$PGBANK" "$cmd" extra1 extra2 extra3 extra4 extra5
            one_line
        fi
    done
    nothing_changed
}

bad_amounts_and_account_ids_exit_2_before_anything_is_sent() {
    local cmd t slot v args db
    for cmd in $COMMANDS; do
        t=$(template "$cmd")
        [ -n "$t" ] || continue
        for slot in "{A}" "{B}" "{N}" "{Z}"; do
            case " $t " in *" $slot "*) ;; *) continue ;; esac
            for v in "${BAD_NUMBERS[@]}"; do
                [ "$slot" = "{Z}" ] && [ "$v" = 0 -o "$v" = -0 ] && continue
                mapfile -d '' args < <(fill "$t" "$slot" "$v")
                run_clean 2 "$PGBANK" "${args[@]}"
                one_line # control characters are shown as '?': one line always
                case $v in
                *$'\n'*) expect_err_has "'${v//$'\n'/?}'" ;;
                *) expect_err_has "'$v'" ;;
                esac
                # Refused before connecting: an unreachable database changes
                # nothing about the answer.
                for db in "$UNREACHABLE" "mysql://x"; do
                    run_clean 2 "$PGBANK" --db "$db" "${args[@]}"
                    expect_nowhere S3cret
                done
                run_clean 2 "$PGBANK" --json "${args[@]}"
                case "$OUT" in "" | "{"*"}") ;; *) fail "stdout must stay empty or JSON" ;; esac
            done
        done
        mapfile -d '' args < <(fill "$t" none none)
        if "$PGBANK" "$cmd" --help | grep -q -- "--strategy"; then
            for v in nope '' 'atomic;' ATOMIC; do
                run_clean 2 "$PGBANK" "${args[@]}" --strategy "$v"
                one_line
            done
        fi
        if "$PGBANK" "$cmd" --help | grep -q -- "--key"; then
            for v in '' "$(printf 'k%.0s' {1..201})"; do
                run_clean 2 "$PGBANK" "${args[@]}" --key "$v"
                one_line
            done
        fi
        if "$PGBANK" "$cmd" --help | grep -q -- "--limit"; then
            for v in -1 abc 1e3 '' ' 5' 0x10 99999999999999999999999; do
                run_clean 2 "$PGBANK" "${args[@]}" --limit "$v"
                one_line
            done
        fi
    done
    nothing_changed
}

malformed_connection_strings_exit_2_unreachable_ones_3() {
    local cmd t args db
    for cmd in $COMMANDS; do
        case $cmd in help | server) continue ;; esac
        t=$(template "$cmd")
        if [ -n "$t" ]; then
            mapfile -d '' args < <(fill "$t" none none)
        else
            args=("$cmd")
        fi
        [ "$cmd" = chaos ] && args+=(--duration 1)
        [ "$cmd" = race ] && args+=(--runs 1 --duration 0.1)
        for db in 'mysql://x' 'postgresql://[bad' "host='unterminated" '=x' 'host=/tmp sslmode=bogus' 'host=/tmp port=abc' \
            'postgresql://alice:S3cret@[::1'; do
            run_clean 2 "$PGBANK" --db "$db" "${args[@]}"
            expect_err_has "invalid connection string"
            expect_nowhere S3cret
            one_line
        done
        run_clean 3 timeout 120 "$PGBANK" --db "$UNREACHABLE" "${args[@]}"
        expect_err_has "/nonexistent"
        expect_nowhere S3cret
        run_clean 3 timeout 120 "$PGBANK" --json --db "$UNREACHABLE" "${args[@]}"
        expect_nowhere S3cret
        case "$OUT" in "" | "{"*"}") ;; *) fail "stdout must stay empty or JSON" ;; esac
    done
    nothing_changed
}

# each_call CODE DB REGEX: every money command, called validly against DB,
# exits CODE and says what REGEX (grep -E) matches.
each_call() {
    local code=$1 db=$2 text=$3 cmd t args
    for cmd in $COMMANDS; do
        t=$(template "$cmd")
        [ -n "$t" ] || continue
        mapfile -d '' args < <(fill "$t" none none)
        run_clean "$code" "$PGBANK" --db "$db" "${args[@]}"
        printf '%s\n' "$ERR" | grep -Eq -- "$text" || fail "expected /$text/ in stderr"
    done
}

a_server_that_is_down_exits_3() {
    mkdir -p "$T/nosrv"
    each_call 3 "host=$T/nosrv port=5432 user=pgbank dbname=pgbank" "could not connect"
    run_clean 3 "$PGBANK" --db "host=$T/nosrv port=5432" init
    expect_err_has "could not"
    nothing_changed
}

a_missing_schema_says_run_pgbank_init() {
    psql -XAtq "$URL" -c "CREATE SCHEMA IF NOT EXISTS empty_schema" >/dev/null ||
        fail "psql could not create empty_schema"
    each_call 3 "$URL?options=-csearch_path%3Dempty_schema" "run 'pgbank init'"
    each_call 3 "$URL?options=-csearch_path%3Dno_such_schema" "run 'pgbank init'"
    [ "$(psql -XAtq "$URL" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'empty_schema'")" = 0 ] ||
        fail "something was created in empty_schema"
    psql -XAtq "$URL" -c "DROP SCHEMA empty_schema" >/dev/null
    nothing_changed
}

a_table_of_the_wrong_shape_exits_3() {
    local db="$URL?options=-csearch_path%3Dbadshape"
    psql -XAtq "$URL" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS badshape CASCADE; CREATE SCHEMA badshape;
        CREATE TABLE badshape.accounts (id text, balance text);
        INSERT INTO badshape.accounts VALUES ('$K', '100')" >/dev/null ||
        fail "psql could not create badshape"
    each_call 3 "$db" "accounts|journal"
    run_clean 3 "$PGBANK" --db "$db" init
    expect_err_has "wrong shape"
    [ "$(psql -XAtq "$URL" -c "SELECT string_agg(id || '=' || balance, ',') FROM badshape.accounts")" = "$K=100" ] ||
        fail "the misshapen table changed"
    [ "$(psql -XAtq "$URL" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'badshape'")" = 1 ] ||
        fail "init created tables beside the misshapen one"
    psql -XAtq "$URL" -c "SET client_min_messages = warning; DROP SCHEMA badshape CASCADE" >/dev/null
    nothing_changed
}

# On Citus a read-only session on the coordinator does not make the workers
# read-only: Citus delegates the batch strategy's routed function to the
# worker holding the account, and it writes there.  A read-only cluster is
# the database made read-only, which Citus does on every node
# (docs/SCALING.md); it is undone the same way, in a transaction that may
# write on every node.
citus_read_only() {
    local v=$1
    psql "$URL?options=-cdefault_transaction_read_only%3Doff" -Xq -v ON_ERROR_STOP=1 \
        -c "BEGIN" -c "SET LOCAL citus.propagate_set_commands = 'local'" \
        -c "SET LOCAL transaction_read_only = off" \
        -c "ALTER DATABASE \"$(psql "$URL" -XAtq -c 'select current_database()')\" $v" \
        -c "COMMIT" >/dev/null
}

a_read_only_server_refuses_and_nothing_changes() {
    local db="$URL?options=-cdefault_transaction_read_only%3Don" s strategies
    if on_citus; then
        db=$URL
        citus_read_only "SET default_transaction_read_only = on" ||
            { fail "could not make the cluster's database read-only"; return; }
    fi
    strategies=$("$PGBANK" withdraw --help | awk '/^ +(explicit|begin|for-update|atomic|serializable|batch) /{ print $1 }')
    [ -n "$strategies" ] || strategies=atomic
    for s in $strategies; do
        run_clean 3 "$PGBANK" --db "$db" withdraw "$K" 10 --strategy "$s"
        expect_err_has "read-only"
        one_line
    done
    run_clean 3 "$PGBANK" --db "$db" account open --balance 5
    expect_err_has "read-only"
    # Reads still work.
    run_clean 0 "$PGBANK" --db "$db" balance "$K"
    expect_out 1000
    if on_citus; then
        citus_read_only "RESET default_transaction_read_only" ||
            fail "could not make the cluster's database writable again"
    fi
    nothing_changed
}

scenario the_help_lists_commands
scenario every_command_refuses_unknown_options_and_extra_arguments
scenario bad_amounts_and_account_ids_exit_2_before_anything_is_sent
scenario malformed_connection_strings_exit_2_unreachable_ones_3
scenario a_server_that_is_down_exits_3
scenario a_missing_schema_says_run_pgbank_init
scenario a_table_of_the_wrong_shape_exits_3
scenario a_read_only_server_refuses_and_nothing_changes
finish
