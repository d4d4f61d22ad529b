# cli_bench.sh - `pgbank bench` measures and checks itself: short runs on
# 100 accounts and on one hot account report sane figures (ops > 0,
# p50 <= p99 <= p99.9, money check ok), the journal is kept unless
# --no-journal, --vs-pgbench adds pgbench's figures when pgbench is
# installed (and says so when it is not), --plot draws a PNG when gnuplot is
# installed, Ctrl-C stops it and leaves no schema, and bad input
# exits 2 before anything runs.
# No speed is asserted: the machine running the tests may be slow or busy.
. "$(dirname "$0")/cli_lib.sh"

# The fields every report carries, and what must hold of them.
SANE='
for k in ("strategy", "clients", "depth", "accounts", "duration_s", "ops", "ops_per_sec",
          "p50_ms", "p90_ms", "p99_ms", "p999_ms", "client_cpu_us_per_op", "peak_rss_mb",
          "failures", "ops_per_commit", "server_commits", "money_check"):
    assert k in d, k
assert d["ops"] > 0, d
assert d["ops_per_sec"] > 0, d
assert 0 < d["p50_ms"] <= d["p90_ms"] <= d["p99_ms"] <= d["p999_ms"], d
assert d["failures"] == 0, d
assert d["money_check"] == "ok", d
assert d["debited"] == d["ops"], d
assert d["client_cpu_us_per_op"] > 0 and d["peak_rss_mb"] > 0, d
'

have_pgbench() {
    [ -n "$(command -v pgbench)" ] && return 0
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/pgbench" ] && return 0
    compgen -G '/usr/lib/postgresql/*/bin/pgbench' >/dev/null
}

atomic_on_100_accounts_reports_sane_figures() {
    expect_exit 0 "$PGBANK" bench --json --strategy atomic --clients 4 --duration 2 --accounts 100
    expect_json
    check_json "$SANE"'
assert d["strategy"] == "atomic" and d["clients"] == 4 and d["depth"] == 1, d
assert d["accounts"] == 100 and d["duration_s"] == 2, d
# one UPDATE, one commit per withdrawal (give or take the checks own queries)
assert 0.5 <= d["ops_per_commit"] <= 1.5, d
assert "pgbench" not in d, d
'
}

one_hot_account_with_for_update_keeps_the_money_right() {
    expect_exit 0 "$PGBANK" bench --json --strategy for-update --clients 4 --duration 2 --accounts 1
    check_json "$SANE"'
assert d["strategy"] == "for-update" and d["accounts"] == 1, d
'
}

zipf_and_depth_are_reported() {
    expect_exit 0 "$PGBANK" bench --json --clients 2 --depth 4 --duration 2 --accounts 100 \
        --distribution zipf
    check_json "$SANE"'
assert d["distribution"] == "zipf" and d["depth"] == 4 and d["in_flight"] == 8, d
'
}

the_text_report_shows_percentiles_and_the_money_check() {
    expect_exit 0 "$PGBANK" bench --clients 2 --duration 1 --accounts 1
    for word in "withdrawals/s" "p50" "p99.9" "us per withdrawal" "peak RSS" \
        "withdrawals per commit" "money check: ok"; do
        expect_out_has "$word"
    done
    expect_err_has "ops/s" # the line per second
}

vs_pgbench_adds_pgbenchs_figures() {
    if ! have_pgbench; then
        expect_exit 0 "$PGBANK" bench --json --clients 2 --duration 1 --accounts 100 --vs-pgbench
        check_json 'assert d["pgbench"]["found"] is False, d'
        expect_err_has "pgbench not found"
        return
    fi
    # 10,000 accounts: ten random ids among 100 would deadlock all the time
    expect_exit 0 "$PGBANK" bench --json --clients 4 --duration 1 --accounts 10000 --vs-pgbench
    expect_json
    check_json "$SANE"'
p = d["pgbench"]
assert p["found"] is True, p
for name, per_tx in (("one_per_commit", 1), ("ten_per_commit_pipeline", 10)):
    s = p[name]
    assert s["ran"] is True, (name, s)
    assert s["ops_per_sec"] > 0 and s["p99_ms"] > 0, (name, s)
    assert abs(s["ops_per_sec"] - s["tps"] * per_tx) < 1, (name, s)
    assert s["transactions"] > 0, (name, s)
    # every committed pgbench transaction took exactly per_tx from the balances
    assert s["debited"] == s["transactions"] * per_tx, (name, s)
assert d["ratio_vs_one_per_commit"] > 0, d
assert d["ratio_vs_ten_per_commit_pipeline"] > 0, d
'
}

a_missing_pgbench_is_said_and_pgbank_still_measured() {
    PGBANK_PGBENCH=/nonexistent/pgbench expect_exit 0 "$PGBANK" bench --json --clients 2 \
        --duration 1 --accounts 10 --vs-pgbench
    check_json "$SANE"'
assert d["pgbench"]["found"] is False, d
'
    expect_err_has "pgbench not found"
}

plot_draws_a_png_or_explains_what_is_missing() {
    PGBANK_GNUPLOT=/nonexistent/gnuplot expect_exit 2 "$PGBANK" bench --duration 1 \
        --plot "$T/none.png"
    expect_err_has "gnuplot not found: install gnuplot-nox to draw plots"
    [ ! -e "$T/none.png" ] || fail "no plot file may be left behind"
    if ! command -v gnuplot >/dev/null 2>&1; then
        return
    fi
    expect_exit 0 "$PGBANK" bench --clients 2 --duration 2 --accounts 10 --plot "$T/b e'n\"ch.png"
    local magic
    magic=$(head -c 4 "$T/b e'n\"ch.png" | tail -c 3)
    [ "$magic" = "PNG" ] || fail "the plot is not a PNG file"
}

unsafe_strategies_are_labelled() {
    run "$PGBANK" bench --strategy explicit --clients 2 --duration 1 --accounts 1
    [ "$RC" -eq 0 ] || [ "$RC" -eq 1 ] || fail "expected exit 0 or 1 (money check)"
    expect_err_has "UNSAFE FOR MONEY"
}

the_users_accounts_are_not_touched() {
    local id
    id=$(open_account 500) || { fail "could not open an account"; return; }
    expect_exit 0 "$PGBANK" bench --clients 2 --duration 1 --accounts 5
    expect_err_has "in schema pgbank_bench_"
    expect_balance "$id" 500
    [ "$(bench_schemas)" = 0 ] || fail "the bench schema was left behind"
}

the_journal_is_kept_unless_no_journal() {
    expect_exit 0 "$PGBANK" bench --json --clients 2 --duration 1 --accounts 10
    check_json "$SANE"'assert d["journal"] is True, d'
    expect_exit 0 "$PGBANK" bench --json --strategy batch --clients 2 --duration 1 --accounts 10 \
        --no-journal
    check_json "$SANE"'assert d["journal"] is False and d["strategy"] == "batch", d'
    # --journal, from the days it was not the default, still says the same
    expect_exit 0 "$PGBANK" bench --json --clients 2 --duration 1 --accounts 10 --journal
    check_json 'assert d["journal"] is True, d'
    expect_exit 0 "$PGBANK" bench --clients 2 --duration 1 --accounts 10 --no-journal
    expect_out_has "no journal"
}

# How many bench schemas the tests' database holds.
bench_schemas() {
    psql "$(test_db_url)" -XAtq -c \
        "SELECT count(*) FROM pg_namespace WHERE nspname ~ '^pgbank_bench_[0-9]+$'"
}

# Ctrl-C in the middle of a minute's measurement: the load drains, nothing
# is reported, the schema is dropped, exit 130.
an_interrupted_bench_stops_and_drops_its_schema() {
    command -v psql >/dev/null 2>&1 || { fail "psql is missing (apt-get install postgresql-client-15)"; return; }
    "$PGBANK" bench --clients 2 --accounts 100 --duration 60 >"$T/bench.out" 2>"$T/bench.err" &
    local pid=$! i rc=0 t0
    for i in $(seq 300); do
        grep -q "ops/s" "$T/bench.err" && break
        sleep 0.1
    done
    [ "$(bench_schemas)" = 1 ] || fail "the bench schema is not there while it runs"
    kill -INT "$pid"
    t0=$SECONDS
    wait "$pid" || rc=$?
    [ "$rc" = 130 ] || fail "exit $rc after SIGINT, expected 130: $(cat "$T/bench.err")"
    [ $((SECONDS - t0)) -le 10 ] || fail "it took $((SECONDS - t0)) s to stop"
    grep -q "interrupted by SIGINT" "$T/bench.err" || fail "the interruption was not said"
    [ ! -s "$T/bench.out" ] || fail "an interrupted bench reports nothing"
    [ "$(bench_schemas)" = 0 ] || fail "the bench schema was left behind"
}

bad_input_exits_2_and_runs_nothing() {
    local args
    for args in "--clients 0" "--duration 0" "--accounts 0" "--strategy nope" \
        "--distribution normal" "--depth 0" "--accounts 10000001" "--duration 2s" \
        "--clients x" "--clients 1024 --depth 1024" "--journal --no-journal" "extra"; do
        # shellcheck disable=SC2086
        expect_exit 2 "$PGBANK" bench $args
        [ -z "$OUT" ] || fail "nothing may be printed on stdout"
    done
    expect_exit 2 "$PGBANK" bench --strategy nope
    expect_err_has "unknown strategy 'nope'"
    expect_exit 2 "$PGBANK" bench --distribution normal
    expect_err_has "unknown distribution 'normal'"
    expect_exit 0 "$PGBANK" bench --help
    expect_out_has "Usage: pgbank bench"
    expect_out_has "Examples"
    expect_out_has "--vs-pgbench"
}

scenario atomic_on_100_accounts_reports_sane_figures
scenario one_hot_account_with_for_update_keeps_the_money_right
scenario zipf_and_depth_are_reported
scenario the_text_report_shows_percentiles_and_the_money_check
scenario vs_pgbench_adds_pgbenchs_figures
scenario a_missing_pgbench_is_said_and_pgbank_still_measured
scenario plot_draws_a_png_or_explains_what_is_missing
scenario unsafe_strategies_are_labelled
scenario the_users_accounts_are_not_touched
scenario the_journal_is_kept_unless_no_journal
scenario an_interrupted_bench_stops_and_drops_its_schema
scenario bad_input_exits_2_and_runs_nothing
finish
