# shellcheck shell=bash disable=SC2317  # scenarios run indirectly, through `scenario`
# cli_upgrade.sh - the private server notices that the installed PostgreSQL
# changed under it (Debian's security update replaces the postgres program
# while the server runs; every later command needing PL/pgSQL would fail
# with "undefined symbol") and restarts itself once, saying so.  pgbank is
# pointed at a bin directory of the test's own (PGBANK_PG_BINDIR, symlinks
# to the real programs), whose postgres is then replaced as a package
# update does (a new file renamed over the old).
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

REAL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$REAL/postgres" ] || REAL=$(pg_config --bindir 2>/dev/null)
if [ ! -x "$REAL/postgres" ] || [ ! -x "$REAL/pg_ctl" ] || [ ! -x "$REAL/initdb" ]; then
    echo "FAILED: PostgreSQL's server programs not found (apt-get install postgresql)" >&2
    exit 1
fi
D=$T/d
BIN=$T/bin
mkdir -m 755 "$BIN"
for p in initdb pg_ctl postgres; do ln -s "$REAL/$p" "$BIN/$p"; done
export PGBANK_PG_BINDIR=$BIN
trap '"$PGBANK" server stop --data-dir "$D" >/dev/null 2>&1; rm -rf "$T"' EXIT

pid() { head -n 1 "$D/pgdata/postmaster.pid"; }

a_server_records_the_postgres_program_it_started_from() {
    expect_exit 0 "$PGBANK" server start --data-dir "$D"
    expect_out_has "started the private server"
    grep -q " $BIN/postgres\$" "$D/server.id" || fail "server.id does not name $BIN/postgres"
}

an_unchanged_postgres_is_reused_without_a_word() {
    local before
    before=$(pid)
    expect_exit 0 "$PGBANK" server start --data-dir "$D"
    expect_out_has "reusing"
    [ -z "$ERR" ] || fail "something was said on stderr"
    [ "$(pid)" = "$before" ] || fail "the server was restarted"
}

a_replaced_postgres_restarts_the_server_once_and_plpgsql_works() {
    local before id
    before=$(pid)
    cp "$REAL/postgres" "$BIN/postgres.new" && mv -f "$BIN/postgres.new" "$BIN/postgres"
    expect_exit 0 "$PGBANK" --data-dir "$D" init
    expect_err_has "$BIN/postgres changed under the private server in $D"
    expect_err_has "restarting the server once"
    [ "$(pid)" != "$before" ] || fail "the server was not restarted"
    id=$("$PGBANK" --data-dir "$D" account open --balance 100) || fail "account open failed"
    expect_exit 0 "$PGBANK" --data-dir "$D" withdraw "$id" 30 --strategy batch
    before=$(pid)
    expect_exit 0 "$PGBANK" --data-dir "$D" balance "$id"
    expect_out 70
    [ -z "$ERR" ] || fail "restarted again: $ERR"
    [ "$(pid)" = "$before" ] || fail "the server was restarted twice"
}

a_pgbank_pg_bindir_without_the_programs_is_named() {
    mkdir -m 755 "$T/empty"
    PGBANK_PG_BINDIR=$T/empty expect_exit 3 "$PGBANK" server start --data-dir "$T/other"
    expect_err_has "PGBANK_PG_BINDIR is $T/empty"
}

scenario a_server_records_the_postgres_program_it_started_from
scenario an_unchanged_postgres_is_reused_without_a_word
scenario a_replaced_postgres_restarts_the_server_once_and_plpgsql_works
scenario a_pgbank_pg_bindir_without_the_programs_is_named
finish
