# shellcheck shell=bash disable=SC2317  # scenarios run indirectly, through `scenario`
# cli_fixture.sh - the tests' throwaway server cannot be raced: its
# directory comes from mkdtemp (the old name, /tmp/pgbank-test-<md5 of the
# build directory>, could be guessed and planted by any local user), and
# the stop fixture removes exactly what the start fixture made.  Runs the
# fixture program itself with state files of its own, beside the suite's.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

BUILD=$(cd "$(dirname "$PGBANK")" && pwd)
FIXTURE=$BUILD/tests/pgbank_fixture
S=$T/state
PLANTED=''
trap '[ -z "$PLANTED" ] || rm -rf "$PLANTED"; [ ! -f "$S" ] || "$FIXTURE" stop "$S" >/dev/null 2>&1; rm -rf "$T"' EXIT

recorded() { head -n 1 "$S"; }

the_database_tests_run_in_a_directory_made_by_mkdtemp() {
    local base=${PGBANK_DATA_DIR%/db} old
    [[ "$PGBANK_DATA_DIR" =~ ^/tmp/pgbank-test-[A-Za-z0-9]{6}/db$ ]] ||
        fail "PGBANK_DATA_DIR is $PGBANK_DATA_DIR"
    old=/tmp/pgbank-test-$(printf '%s' "$BUILD" | md5sum | cut -c1-10)
    [ "$base" != "$old" ] || fail "the predictable name is still used"
    [ "$(stat -c %u "$base")" = "$(id -u)" ] || fail "$base is not ours"
    [ $(($(stat -c '%#a' "$base") & 7)) -eq 0 ] || fail "others may enter $base"
}

a_directory_planted_at_the_old_predictable_name_is_left_alone() {
    local old=/tmp/pgbank-test-$(printf '%s' "$BUILD" | md5sum | cut -c1-10)
    if [ -e "$old" ]; then
        fail "$old exists already (left by an older pgbank?): remove it and run again"
        return
    fi
    PLANTED=$old
    mkdir -m 755 "$old" && ln -s /etc "$old/db"
    [ "$(id -u)" -ne 0 ] || chown -h nobody "$old" "$old/db"
    expect_exit 0 "$FIXTURE" start "$S"
    [ "$(recorded)" != "$old/db" ] || fail "the fixture used the planted directory"
    expect_exit 0 "$FIXTURE" stop "$S"
    [ -L "$old/db" ] && [ "$(stat -c %a "$old")" = 755 ] || fail "the planted directory changed"
    rm -rf "$old"
    PLANTED=''
}

two_starts_make_two_directories_and_the_first_is_removed() {
    local first second
    expect_exit 0 "$FIXTURE" start "$S"
    first=$(recorded)
    expect_exit 0 "$FIXTURE" start "$S" # as after a killed run
    second=$(recorded)
    [ "$first" != "$second" ] || fail "the same directory twice: $first"
    [ ! -e "${first%/db}" ] || fail "the first directory ${first%/db} was not removed"
    expect_exit 0 "$FIXTURE" stop "$S"
    [ ! -e "${second%/db}" ] || fail "${second%/db} was not removed"
}

stop_removes_nothing_the_start_did_not_make() {
    local f
    f=$(mktemp -d /tmp/pgbank-test-XXXXXX) # the right name, not the right directory
    touch "$f/keep"
    printf '%s/db\n%s %s\n' "$f" "$(stat -c %d "$f")" "$(($(stat -c %i "$f") + 1))" >"$S"
    expect_exit 1 "$FIXTURE" stop "$S"
    expect_err_has "not the directory this fixture made"
    [ -f "$f/keep" ] || fail "a directory the fixture did not make was removed"
    printf '/etc/db\n%s\n' "$(stat -c '%d %i' /etc)" >"$S"
    expect_exit 1 "$FIXTURE" stop "$S"
    [ -d /etc ] || fail "/etc is gone"
    rm -rf "$f"
}

scenario the_database_tests_run_in_a_directory_made_by_mkdtemp
scenario a_directory_planted_at_the_old_predictable_name_is_left_alone
scenario two_starts_make_two_directories_and_the_first_is_removed
scenario stop_removes_nothing_the_start_did_not_make
finish
