# cli_hostile_caller.sh - the database as the boundary, tried from outside as an
# operator and an attacker would: `pgbank init --app-role`, then the
# application role calling pgbank's functions with psql (bad arguments,
# shifted arrays, a look-alike planted in public), a valid call, a change
# made with psql outside pgbank, and `pgbank audit`.  In a database of its
# own, dropped at the end.
. "$(dirname "$0")/cli_lib.sh"

DB=pgbank_boundarytest
APP=pgbank_app_cli
export PGOPTIONS='--client-min-messages=warning'
URL=$(test_db_url) || { echo "no URL for the tests' database" >&2; exit 1; }
drop_all() {
    psql "$URL" -Xq -c "drop database if exists $DB" -c "drop role if exists $APP" >/dev/null
}
drop_all
trap 'drop_all; rm -rf "$T"' EXIT
psql "$URL" -Xq -c "create database $DB" >/dev/null || exit 1
server_params || { echo "psql cannot reach the tests' database" >&2; exit 1; }
OWNER="host=$SRV_HOST port=$SRV_PORT user=$SRV_USER dbname=$DB"
AS_APP="host=$SRV_HOST port=$SRV_PORT user=$APP dbname=$DB"

# psql_state CONNINFO SQL: prints the SQLSTATE of SQL (00000 on success).
psql_state() {
    local out
    out=$(psql "$1" -Xq -v VERBOSITY=verbose -c "$2" 2>&1)
    case "$out" in
    *ERROR:*) printf '%s' "$out" | sed -n 's/.*ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -n 1 ;;
    *) echo 00000 ;;
    esac
}

sum_and_rows() {
    psql "$OWNER" -XAtq -c "select (select sum(balance) from accounts) || '/' ||
                                   (select count(*) from pgbank_journal)"
}

init_makes_an_application_role() {
    expect_exit 0 "$PGBANK" --db "$OWNER" init --app-role "$APP"
    expect_out_has "role \"$APP\" may move money only through pgbank's functions"
    expect_exit 0 "$PGBANK" --db "$OWNER" init --app-role "$APP" --json
    check_json 'assert d["status"] == "ok" and d["app_role"] == "'"$APP"'" and d["schema_version"] >= 5, d'
    # Refused for the owner itself: restricting it would take its rights.
    expect_exit 3 "$PGBANK" --db "$OWNER" init --app-role "$SRV_USER"
    expect_err_has "it is the role running pgbank init"
    expect_exit 2 "$PGBANK" --db "$OWNER" init --app-role ""
}

the_application_role_cannot_cheat_through_the_functions() {
    local a before state
    a=$("$PGBANK" --db "$OWNER" account open --balance 100) || { fail "no account"; return; }
    before=$(sum_and_rows)
    for call in \
        "select * from pgbank_batch('{0}', '{$a}', '{NULL}', '{-1000}')" \
        "select * from pgbank_batch('{3}', '{$a}', '{$a}', '{10}')" \
        "select * from pgbank_batch('[2:3]={0,0}', '[2:3]={$a,$a}', '[2:3]={NULL,NULL}', '[2:3]={50,7}')" \
        "select * from pgbank_batch_one(1::smallint, $a, -5)" \
        "select * from pgbank_batch_one(7::smallint, $a, 5)"; do
        state=$(psql_state "$AS_APP" "$call")
        [ "$state" = 22023 ] || fail "expected SQLSTATE 22023, got '$state' for: $call"
    done
    [ "$(psql_state "$AS_APP" "update accounts set balance = 1000000")" = 42501 ] ||
        fail "the application role could write the table"
    [ "$(sum_and_rows)" = "$before" ] || fail "money or journal moved: $before -> $(sum_and_rows)"
}

a_look_alike_planted_in_public_never_runs() {
    local a
    psql "$OWNER" -Xq -v ON_ERROR_STOP=1 <<'SQL' || { fail "could not plant"; return; }
create table public.planted_ran (what text);
grant insert on public.planted_ran to public;
create function public.cardinality(bigint[]) returns int language plpgsql as
  $$begin insert into public.planted_ran values ('cardinality'); return 1; end$$;
create function public.array_ndims(bigint[]) returns int language plpgsql as
  $$begin insert into public.planted_ran values ('array_ndims'); return 1; end$$;
SQL
    a=$("$PGBANK" --db "$OWNER" account open --balance 100) || { fail "no account"; return; }
    [ "$(psql_state "$AS_APP" "select * from pgbank_batch('{0,0}', '{$a,$a}', '{NULL,NULL}', '{5,5}')")" = 00000 ] ||
        fail "a valid batch failed"
    run psql "$OWNER" -XAtq -c "select count(*) from public.planted_ran"
    expect_out 0
    run psql "$OWNER" -XAtq -c "select rolsuper from pg_roles where rolname = '$APP'"
    expect_out f
    expect_balance_db "$a" 90
    psql "$OWNER" -Xq -c "drop function public.cardinality(bigint[]); drop function public.array_ndims(bigint[]); drop table public.planted_ran" >/dev/null
}

expect_balance_db() {
    run "$PGBANK" --db "$OWNER" balance "$1"
    [ "$RC" -eq 0 ] && [ "$OUT" = "$2" ] || fail "expected balance $2"
}

the_application_role_moves_money_with_keys() {
    local a
    a=$("$PGBANK" --db "$OWNER" account open --balance 100) || { fail "no account"; return; }
    expect_exit 0 "$PGBANK" --db "$AS_APP" withdraw "$a" 30 --strategy batch --key cli-app-1
    expect_out "withdrew 30 from account $a, new balance 70"
    expect_exit 0 "$PGBANK" --db "$AS_APP" withdraw "$a" 30 --strategy batch --key cli-app-1 --json
    check_json 'assert d["replayed"] is True and d["balance"] == 70, d'
    expect_balance_db "$a" 70
}

a_change_made_with_psql_is_journaled_as_external() {
    local a
    a=$("$PGBANK" --db "$OWNER" account open --balance 100) || { fail "no account"; return; }
    psql "$OWNER" -Xq -c "update accounts set balance = balance - 3 where id = $a" ||
        fail "psql could not update"
    expect_exit 0 "$PGBANK" --db "$OWNER" history "$a" --json
    check_json 'e = d["entries"][0]; assert e["op"] == "external" and e["amount"] == -3 and e["role"] == "'"$SRV_USER"'" and e["application"] == "psql", e'
    expect_exit 0 "$PGBANK" --db "$OWNER" audit
    expect_out_has "external changes     1 (net -3), made outside pgbank by $SRV_USER (psql) x 1"
    expect_out_has "audit: ok"
    expect_exit 0 "$PGBANK" --db "$OWNER" audit --json
    check_json 'assert d["status"] == "ok" and d["external"] == 1 and d["external_net"] == -3, d'
}

scenario init_makes_an_application_role
scenario the_application_role_cannot_cheat_through_the_functions
scenario a_look_alike_planted_in_public_never_runs
scenario the_application_role_moves_money_with_keys
scenario a_change_made_with_psql_is_journaled_as_external
finish
