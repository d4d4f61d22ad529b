# cli_password.sh - connection failures are clear (exit 3) and the password
# of the connection string never appears in any output.
. "$(dirname "$0")/cli_lib.sh"

PW=S3cretPw0rd
URLS=("postgresql+asyncpg://alice:$PW@127.0.0.1:1/db"
      "postgres://alice:$PW@127.0.0.1:1/db"
      "postgresql://alice:$PW@127.0.0.1:1/db"
      "host=127.0.0.1 port=1 password=$PW")

unreachable_database_url_exits_3_without_the_password() {
    local url flags
    for url in "${URLS[@]}"; do
        for flags in "" --echo --json "--echo --json"; do
            # shellcheck disable=SC2086
            expect_exit 3 env DATABASE_URL="$url" "$PGBANK" $flags balance 1
            expect_err_has "could not connect to the database"
            expect_nowhere "$PW"
            case "$flags" in *json*) expect_json ;; esac
            # shellcheck disable=SC2086
            expect_exit 3 "$PGBANK" $flags --db "$url" withdraw 1 80 --strategy explicit
            expect_nowhere "$PW"
        done
    done
}

every_command_keeps_the_password_out() {
    local url=${URLS[0]}
    expect_exit 3 env DATABASE_URL="$url" "$PGBANK" init
    expect_nowhere "$PW"
    expect_exit 3 env DATABASE_URL="$url" "$PGBANK" --json account open --balance 5
    expect_nowhere "$PW"
    expect_exit 3 env PGPASSWORD="$PW" "$PGBANK" --echo --db "host=127.0.0.1 port=1" balance 1
    expect_nowhere "$PW"
}

malformed_connection_strings_exit_2() {
    expect_exit 2 "$PGBANK" --db mysql://x balance 1
    expect_err_has "invalid connection string"
    expect_exit 2 "$PGBANK" --db "mysql://alice:$PW@x/db" balance 1
    expect_nowhere "$PW"
    expect_exit 2 env DATABASE_URL="mysql://alice:$PW@x/db" "$PGBANK" --json balance 1
    expect_nowhere "$PW"
}

an_empty_database_url_counts_as_unset() {
    local id
    id=$(open_account 7) || { fail "could not open an account"; return; }
    expect_exit 0 env DATABASE_URL= "$PGBANK" balance "$id"
    expect_out 7
}

scenario unreachable_database_url_exits_3_without_the_password
scenario every_command_keeps_the_password_out
scenario malformed_connection_strings_exit_2
private_scenario an_empty_database_url_counts_as_unset
finish
