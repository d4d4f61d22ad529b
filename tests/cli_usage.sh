# cli_usage.sh - pgbank explains itself, and refuses bad usage and invalid
# input with exit 2 before anything reaches the database.
. "$(dirname "$0")/cli_lib.sh"

# Every command `pgbank --help` lists (so new ones are covered too).
COMMANDS=$("$PGBANK" --help | sed -n '/^Commands:/,/^$/p' | awk '/^  [a-z]/ { print $1 }')
BAD_AMOUNTS=(0 -5 abc 99999999999999999999999 ' 5' '+5' '' 1.5 5x)
BAD_IDS=(0 -1 abc 99999999999999999999999 ' 1' '+1' '')
# Nothing listens there: a command that tried to connect would exit 3.
NOWHERE=postgresql://alice@127.0.0.1:1/db

help_lists_commands_options_and_exit_codes() {
    expect_exit 0 "$PGBANK" --help
    for word in server init account balance withdraw help --db --data-dir --echo --json "Exit codes" \
        "0  done" "1  refused" "2  bad usage" "3  database"; do
        expect_out_has "$word"
    done
    expect_exit 0 "$PGBANK" -h
    expect_out_has "Usage: pgbank"
}

every_command_has_help_with_an_example() {
    for cmd in $COMMANDS; do
        expect_exit 0 "$PGBANK" "$cmd" --help
        expect_out_has "Usage: pgbank $cmd"
        expect_out_has "Example"
        expect_exit 0 "$PGBANK" help "$cmd"
        expect_out_has "Usage: pgbank $cmd"
    done
    expect_exit 0 "$PGBANK" withdraw 1 80 -h
    expect_out_has "--strategy"
}

version_is_printed() {
    expect_exit 0 "$PGBANK" --version
    expect_out "pgbank 0.1.0"
    expect_exit 0 "$PGBANK" -V
    expect_out "pgbank 0.1.0"
    # A global option: after the command too, as --help says.
    expect_exit 0 "$PGBANK" withdraw 1 5 --version
    expect_out "pgbank 0.1.0"
}

unknown_command_exits_2_with_usage() {
    expect_exit 2 "$PGBANK" frobnicate
    expect_err_has "unknown command 'frobnicate'"
    expect_err_has "Usage: pgbank"
    expect_exit 2 "$PGBANK"
    expect_exit 2 "$PGBANK" help frobnicate
}

unknown_option_exits_2_and_names_it() {
    expect_exit 2 "$PGBANK" withdraw 1 5 --frob
    expect_err_has "unknown option '--frob'"
    expect_err_has "Try 'pgbank withdraw --help'."
    expect_exit 2 "$PGBANK" --frob balance 1
    expect_err_has "unknown option '--frob'"
    expect_exit 2 "$PGBANK" balance 1 --strategy atomic
    expect_exit 2 "$PGBANK" --echo=yes balance 1
}

missing_and_extra_arguments_exit_2() {
    expect_exit 2 "$PGBANK" withdraw 1
    expect_err_has "missing AMOUNT"
    expect_err_has "Try 'pgbank withdraw --help'."
    expect_exit 2 "$PGBANK" withdraw 1 5 6
    expect_err_has "unexpected argument '6'"
    expect_exit 2 "$PGBANK" balance
    expect_err_has "missing ACCOUNT"
    expect_exit 2 "$PGBANK" withdraw 1 5 --strategy
    expect_err_has "'--strategy' needs a value"
    expect_exit 2 "$PGBANK" withdraw 1 5 --strategy=yolo
    expect_err_has "unknown strategy 'yolo'"
    expect_exit 2 "$PGBANK" account
    expect_exit 2 "$PGBANK" account close
    expect_exit 2 "$PGBANK" server reboot
    expect_exit 2 "$PGBANK" init now
    expect_exit 2 "$PGBANK" --db '' balance 1
}

invalid_amounts_exit_2_and_leave_the_balance_alone() {
    local id amount strategy
    id=$(open_account 100) || { fail "could not open an account"; return; }
    for strategy in explicit begin for-update atomic; do
        for amount in "${BAD_AMOUNTS[@]}"; do
            expect_exit 2 "$PGBANK" withdraw "$id" "$amount" --strategy "$strategy"
            expect_err_has "invalid amount '$amount'"
        done
    done
    expect_exit 2 "$PGBANK" withdraw "$id" abc
    expect_err_has "not a whole number"
    expect_exit 2 "$PGBANK" withdraw "$id" 99999999999999999999999
    expect_err_has "out of range"
    expect_exit 2 "$PGBANK" withdraw "$id" 0
    expect_err_has "must be positive"
    expect_exit 2 "$PGBANK" withdraw "$id" -5
    expect_err_has "must be positive"
    expect_exit 2 "$PGBANK" account open --balance -1
    expect_exit 2 "$PGBANK" account open --balance=abc
    expect_balance "$id" 100
}

invalid_input_is_refused_before_connecting() {
    local amount id
    for amount in "${BAD_AMOUNTS[@]}"; do
        expect_exit 2 "$PGBANK" --echo --db "$NOWHERE" withdraw 1 "$amount"
        case "$ERR" in *[Ss][Ee][Ll][Ee][Cc][Tt]* | *UPDATE* | *connect*)
            fail "something was sent for amount '$amount'" ;;
        esac
    done
    for id in "${BAD_IDS[@]}"; do
        expect_exit 2 "$PGBANK" --db "$NOWHERE" withdraw "$id" 5
        expect_err_has "invalid account id '$id'"
        expect_exit 2 "$PGBANK" --db "$NOWHERE" balance "$id"
    done
}

unknown_account_is_refused_with_exit_1() {
    expect_exit 1 "$PGBANK" withdraw 987654321 5
    expect_out "rolled back: no such account 987654321"
    expect_exit 1 "$PGBANK" withdraw 987654321 5 --strategy explicit
    expect_out "rolled back: no such account 987654321"
    expect_exit 1 "$PGBANK" balance 987654321
    expect_err_has "no such account 987654321"
}

# PGBANK_PARSE_ONLY=1: every command stops once its command line is parsed
# and validated: exit 0 (or 2), no server started, nothing sent, no file.
parse_only_runs_nothing() {
    local cmd line none=$T/parse-only-data-dir
    for cmd in $COMMANDS; do
        case $cmd in
        server) line="server start" ;;
        init) line="init --app-role bank_app" ;;
        account) line="account open --balance 5" ;;
        balance | history) line="$cmd 1" ;;
        withdraw | deposit) line="$cmd 1 5" ;;
        transfer) line="transfer 1 2 5" ;;
        race | bench) line="$cmd --plot $T/parse-only.png" ;;
        audit | chaos | help) line=$cmd ;;
        *) fail "no parse-only command line for '$cmd': add one here"; continue ;;
        esac
        # shellcheck disable=SC2086  # $line is words
        expect_exit 0 env PGBANK_PARSE_ONLY=1 PGBANK_DATA_DIR="$none" "$PGBANK" $line
        expect_err_has "command line accepted"
        # shellcheck disable=SC2086
        expect_exit 0 env PGBANK_PARSE_ONLY=1 "$PGBANK" --db "$NOWHERE" $line
    done
    [ ! -e "$none" ] || fail "PGBANK_PARSE_ONLY created $none"
    [ ! -e "$T/parse-only.png" ] || fail "PGBANK_PARSE_ONLY wrote the plot"
    expect_exit 2 env PGBANK_PARSE_ONLY=1 "$PGBANK" withdraw 1 0
    expect_err_has "invalid amount '0'"
    expect_exit 2 env PGBANK_PARSE_ONLY=1 "$PGBANK" race --runs 0
    expect_exit 2 env PGBANK_PARSE_ONLY=1 "$PGBANK" bench --strategy yolo
    expect_exit 2 env PGBANK_PARSE_ONLY=1 "$PGBANK" server reboot
}

scenario help_lists_commands_options_and_exit_codes
scenario every_command_has_help_with_an_example
scenario version_is_printed
scenario unknown_command_exits_2_with_usage
scenario unknown_option_exits_2_and_names_it
scenario missing_and_extra_arguments_exit_2
scenario invalid_amounts_exit_2_and_leave_the_balance_alone
scenario invalid_input_is_refused_before_connecting
scenario unknown_account_is_refused_with_exit_1
scenario parse_only_runs_nothing
finish
