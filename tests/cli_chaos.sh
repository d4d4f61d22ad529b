# cli_chaos.sh - `pgbank chaos` on the throwaway private server: keyed
# withdrawals, deposits and transfers from 16 clients while backends are
# terminated and the server is crash-stopped and restarted (against a
# database named from outside, which cannot be crashed, backends are
# terminated only and the crash scenarios say they do not apply); the run must
# end with nothing lost, created or unanswered, every key applied exactly
# once when acknowledged, and the audit holding.  Unkeyed, an unknown
# outcome is final and applied at most once, a database error applied
# never.  Bad usage exits 2.
. "$(dirname "$0")/cli_lib.sh"

COMMON='
for k in ("money_lost", "money_created", "negative_balances", "ops_without_result",
          "applied_not_acknowledged", "acknowledged_not_applied", "applied_twice", "torn",
          "conflicts", "no_such_account", "invalid"):
    assert r[k] == 0, (k, r[k], r)
assert r["audit"] == "ok", r
assert r["status"] == "ok", r
assert r["faults"] == r["faults_terminate"] + r["faults_crash"], r
'
# Keyed: every unknown outcome was resolved by resubmitting its key (one
# operation may meet several: a crash right after a restart finds it in
# flight again; each is counted, and each resolved).
INVARIANTS="$COMMON"'
assert r["mode"] == "keyed", r
assert r["unknown"] == r["unknown_resolved"], r
assert r["unknown_ops"] <= r["unknown"] and (r["unknown_ops"] == 0) == (r["unknown"] == 0), r
assert r["acknowledged"] + r["refused"] == r["ops"], r
'

keyed_operations_survive_terminations_and_crashes() {
    expect_exit 0 "$PGBANK" chaos --duration 8 --json
    expect_json
    check_json "$INVARIANTS"'
assert r["ops"] >= 500, ("too few operations", r["ops"])
assert r["faults_terminate"] >= 1, ("no backend was terminated", r)
assert r["faults_crash"] >= 1, ("the server never crashed", r)
assert r["backends_terminated"] >= 1, r
assert r["fault_failures"] == 0, r
assert r["db_errors"] + r["unknown"] >= 1, ("the faults were never felt", r)
assert r["retried"] >= 1, ("nothing was resubmitted", r)
'
}

on_a_named_database_only_backends_are_terminated() {
    local url
    url=$(test_db_url) || { fail "no URL for the tests' database"; return; }
    expect_exit 0 "$PGBANK" --db "$url" chaos --duration 3 --clients 4 --accounts 3 --json
    check_json "$INVARIANTS"'
assert r["faults_crash"] == 0, r
assert r["faults_terminate"] >= 1, r
'
    expect_exit 2 "$PGBANK" --db "$url" chaos --duration 1 --faults crash
    expect_err_has "needs the private server"
}

unkeyed_operations_are_never_sent_twice() {
    expect_exit 0 "$PGBANK" chaos --duration 6 --unkeyed --json
    expect_json
    check_json "$COMMON"'
assert r["mode"] == "unkeyed", r
# an unknown outcome is final without a key: an answer, never resubmitted
assert r["acknowledged"] + r["refused"] + r["unknown"] == r["ops"], r
assert 0 <= r["unknown_applied"] <= r["unknown"], r
assert r["unknown_resolved"] == 0 and r["replayed"] == 0, r
assert r["faults_terminate"] >= 1 and r["faults_crash"] >= 1, r
assert r["db_errors"] + r["unknown"] >= 1, ("the faults were never felt", r)
'
}

without_faults_every_operation_is_answered_once() {
    # Enough operations to mean something: 100 in 2 s on the private server;
    # on a named database (a Citus coordinator, whose keyed single-account
    # path crosses the coordinator, docs/SCALING.md) at least 10.
    local least=100
    external_database && least=10
    expect_exit 0 "$PGBANK" chaos --duration 2 --faults none --accounts 2 --seed 7 --json
    check_json "$INVARIANTS"'
assert r["faults"] == 0 and r["unknown"] == 0 and r["seed"] == 7, r
assert r["ops"] >= '"$least"', r
'
}

the_report_names_every_figure() {
    expect_exit 0 "$PGBANK" chaos --duration 1 --faults terminate --clients 2
    for word in "submitted" "acknowledged" "refused" "unknown outcomes" \
        "resubmissions" "backend terminations" "server crashes" "money" \
        "lost 0, created 0" "negative balances 0" "0 operations without" \
        "audit        holds"; do
        expect_out_has "$word"
    done
}

the_run_leaves_no_schema_behind() {
    local url n
    command -v psql >/dev/null 2>&1 || { fail "psql is missing (apt-get install postgresql-client-15)"; return; }
    url=$(test_db_url) || { fail "no URL for the tests' database"; return; }
    n=$(psql -XAtq "$url" -c "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgbank_chaos_%'")
    [ "$n" = 0 ] || fail "$n chaos schemas left behind"
}

bad_usage_exits_2_and_runs_nothing() {
    local args
    for args in "--duration 0" "--duration x" "--duration 1s" "--duration -1" \
        "--clients 0" "--clients 257" "--clients abc" "--accounts 1" "--accounts 0x10" \
        "--seed -1" "--seed 1e3" "--faults nope" "--faults terminate,,crash" \
        "--drain-timeout 0" "--keep=1" "--nope" "extra"; do
        # shellcheck disable=SC2086
        expect_exit 2 "$PGBANK" chaos $args
        [ -z "$OUT" ] || fail "nothing may be printed on stdout"
        [ "$(printf '%s\n' "$ERR" | wc -l)" -le 2 ] || fail "one line and a hint"
    done
    expect_exit 0 "$PGBANK" chaos --help
    expect_out_has "Usage: pgbank chaos"
    expect_out_has "Example"
}

private_scenario keyed_operations_survive_terminations_and_crashes
scenario on_a_named_database_only_backends_are_terminated
private_scenario unkeyed_operations_are_never_sent_twice
scenario without_faults_every_operation_is_answered_once
scenario the_report_names_every_figure
scenario the_run_leaves_no_schema_behind
scenario bad_usage_exits_2_and_runs_nothing
finish
