# cli_race.sh - `pgbank race` reproduces the seed's summary table: in
# deterministic mode explicit and begin go wrong in every scenario (double
# spend, lost update, contention), for-update and atomic never; it does so
# in a schema of its own, so the user's bank is left as it was and its audit
# holds, also when the lab is interrupted or killed; --plot draws a PNG with
# gnuplot (or exits 2 up front without it); bad input exits 2 before
# anything runs.
. "$(dirname "$0")/cli_lib.sh"

# check_race CODE: check_json with `res` = the last stdout's results keyed by
# (strategy, scenario).
check_race() {
    check_json "$1" 'res = {(x["strategy"], x["scenario"]): x for x in doc["results"]}
SCENARIOS = ("double spend", "lost update", "contention")'
}

race_json() {
    expect_exit 0 "$PGBANK" race --json --runs 3 --duration 0.2 "$@"
    expect_json
}

unsafe_strategies_go_wrong_in_every_scenario() {
    race_json --strategies explicit,begin
    check_race '
for s in ("explicit", "begin"):
    for sc in SCENARIOS:
        r = res[(s, sc)]
        assert r["runs"] == 3, (s, sc, r)
        assert r["anomalous_runs"] >= 1, ("no race seen", s, sc, r)
        assert r["money_lost"] > 0, ("no money lost", s, sc, r)
        assert r["verdict"] == "race observed", (s, sc, r)
        assert r["failed"] == 0, (s, sc, r)
    assert res[(s, "double spend")]["overdraft_runs"] >= 1, s
'
}

safe_strategies_never_lose_or_create_money() {
    race_json --strategies for-update,atomic
    check_race '
for s in ("for-update", "atomic"):
    for sc in SCENARIOS:
        r = res[(s, sc)]
        assert r["runs"] == 3, (s, sc, r)
        assert r["anomalous_runs"] == 0, ("race seen", s, sc, r)
        assert r["money_lost"] == 0 and r["money_created"] == 0, (s, sc, r)
        assert r["overdraft_runs"] == 0, (s, sc, r)
        assert r["verdict"] == "none observed in 3 runs", (s, sc, r)
        assert r["failed"] == 0, (s, sc, r)
        assert r["ops_per_sec"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"], (s, sc, r)
    assert res[(s, "double spend")]["succeeded"] == 3, s      # one per run
    assert res[(s, "double spend")]["refused"] == 3 * 9, s
    assert res[(s, "lost update")]["succeeded"] == 3 * 50, s
'
}

every_strategy_is_measured_by_default() {
    race_json --runs 1 --duration 0.1
    check_race '
names = {s for s, _ in res}
assert {"explicit", "begin", "for-update", "atomic"} <= names, names
for s in names:
    for sc in SCENARIOS:
        assert (s, sc) in res, (s, sc)
'
}

the_table_names_scenarios_and_unsafe_strategies() {
    expect_exit 0 "$PGBANK" race --runs 1 --duration 0.1 --strategies explicit,atomic
    for word in "double spend" "lost update" "contention" "race observed" \
        "none observed in 1 run" "UNSAFE FOR MONEY" "row lock" "p50/p99"; do
        [ "$word" = "row lock" ] && continue # for-update was not asked for
        expect_out_has "$word"
    done
}

# The first 4 bytes of file $1, in hex.
magic() {
    head -c 4 "$1" | od -An -tx1 | tr -d ' \n'
}

plot_draws_a_png() {
    if ! command -v gnuplot >/dev/null 2>&1 && [ -z "${PGBANK_GNUPLOT:-}" ]; then
        fail "gnuplot is not installed (apt-get install gnuplot-nox; .ci/run installs it)"
        return
    fi
    expect_exit 0 "$PGBANK" race --runs 1 --duration 0.1 --plot "$T/race.png"
    expect_out_has "double spend" # the measurement is printed as ever
    expect_err_has "plot written to $T/race.png"
    [ -s "$T/race.png" ] || fail "no plot was drawn"
    [ "$(magic "$T/race.png")" = 89504e47 ] || fail "the plot is not a PNG file"
    # The path never reaches gnuplot's script: quotes and backslashes are
    # only characters of a file name.
    local odd="$T/r a\"c'e\\.png"
    expect_exit 0 "$PGBANK" race --json --runs 1 --duration 0.1 --strategies explicit,atomic \
        --plot "$odd"
    expect_json
    [ "$(magic "$odd")" = 89504e47 ] || fail "no PNG at a path with quotes"
    # gnuplot failing after the measurement: said, the exit code and the
    # file stay as they were, no temporary file is left.
    printf 'keep' >"$T/kept.png"
    PGBANK_GNUPLOT=$(type -P false) TMPDIR=$T expect_exit 0 "$PGBANK" race --runs 1 \
        --duration 0.1 --strategies atomic --plot "$T/kept.png"
    expect_err_has "could not draw the plot: gnuplot failed"
    [ "$(cat "$T/kept.png")" = keep ] || fail "a failed plot may not touch the file"
    local tmp
    for tmp in "$T"/pgbank-plot-*; do
        [ ! -e "$tmp" ] || fail "a temporary file was left behind: $tmp"
    done
}

plot_without_gnuplot_exits_2_before_running() {
    local abs=$PGBANK
    case $abs in /*) ;; *) abs=$PWD/$abs ;; esac
    expect_exit 2 env -u PGBANK_GNUPLOT PATH=/nonexistent "$abs" race --runs 1 \
        --plot "$T/none.png"
    expect_err_has "gnuplot not found: install gnuplot-nox to draw plots"
    [ -z "$OUT" ] || fail "nothing may be run"
    [ ! -e "$T/none.png" ] || fail "no plot file may be left behind"
    PGBANK_GNUPLOT=/nonexistent/gnuplot expect_exit 2 "$PGBANK" race --plot "$T/none.png"
    expect_err_has "gnuplot not found"
    for f in "$T/no/such/dir/x.png" "$T" ""; do
        expect_exit 2 "$PGBANK" race --plot "$f"
        [ -z "$OUT" ] || fail "nothing may be run"
    done
    expect_err_has "needs a file name"
}

bad_input_exits_2_and_runs_nothing() {
    local args
    for args in "--runs 0" "--runs x" "--strategies nope" "--strategies explicit,,atomic" \
        "--mode x" "--clients 1" "--hot-clients 0" "--duration 0" "--duration 1s" "extra"; do
        # shellcheck disable=SC2086
        expect_exit 2 "$PGBANK" race $args
        [ -z "$OUT" ] || fail "nothing may be printed on stdout"
    done
    expect_exit 2 "$PGBANK" race --strategies nope
    expect_err_has "unknown strategy 'nope'"
    expect_exit 0 "$PGBANK" race --help
    expect_out_has "Usage: pgbank race"
    expect_out_has "Example"
    expect_out_has "--plot FILE.png"
}

# --- The user's bank -----------------------------------------------------------

# USER_DB: a database of this test's own beside the tests' database, holding a
# bank that a user made (accounts, sequential withdrawals with every seed
# strategy, a deposit): its audit holds.  psql is what sees it from outside.
make_user_bank() {
    command -v psql >/dev/null 2>&1 || { fail "psql is missing (apt-get install postgresql-client-15)"; return 1; }
    server_params || { fail "psql cannot reach the tests' database"; return 1; }
    local admin="host=$SRV_HOST port=$SRV_PORT user=$SRV_USER dbname=$SRV_DB" db=pgbank_race_bank s a
    psql "$admin" -XAtq -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" ||
        { fail "could not create database $db"; return 1; }
    USER_DB="host=$SRV_HOST port=$SRV_PORT user=$SRV_USER dbname=$db"
    expect_exit 0 "$PGBANK" --db "$USER_DB" init
    for s in explicit begin for-update atomic; do
        a=$("$PGBANK" --db "$USER_DB" account open --balance 100) || { fail "no account"; return 1; }
        expect_exit 0 "$PGBANK" --db "$USER_DB" withdraw "$a" 30 --strategy "$s"
    done
    expect_exit 0 "$PGBANK" --db "$USER_DB" deposit "$a" 5
}

drop_user_bank() {
    psql "host=$SRV_HOST port=$SRV_PORT user=$SRV_USER dbname=$SRV_DB" -XAtq \
        -c "DROP DATABASE IF EXISTS pgbank_race_bank" >/dev/null
}

# The user's accounts and journal, summed: one line.
bank_state() {
    psql "$USER_DB" -XAtq -c "SELECT (SELECT count(*) || ' ' || sum(balance) FROM accounts)
        || ' / ' || (SELECT count(*) || ' ' || sum(amount) || ' ' || max(seq) FROM pgbank_journal)"
}

# How many lab schemas the database $1 holds.
lab_schemas() {
    psql "$1" -XAtq -c "SELECT count(*) FROM pg_namespace WHERE nspname ~ '^pgbank_race_[0-9]+$'"
}

the_users_bank_is_untouched_and_its_audit_holds() {
    make_user_bank || return
    local before after
    before=$(bank_state)
    expect_exit 0 "$PGBANK" --db "$USER_DB" audit
    expect_exit 0 "$PGBANK" --db "$USER_DB" race --json --runs 2 --duration 0.1
    # the unsafe strategies lost money, in the lab's schema
    check_race 'assert res[("explicit", "double spend")]["money_lost"] > 0, res'
    expect_exit 0 "$PGBANK" --db "$USER_DB" audit
    expect_out_has "audit: ok"
    expect_out_has "mismatched accounts  0"
    after=$(bank_state)
    [ -n "$before" ] && [ "$before" = "$after" ] ||
        fail "the user's accounts or journal changed: '$before' became '$after'"
    [ "$(lab_schemas "$USER_DB")" = 0 ] || fail "a lab schema was left behind"
    drop_user_bank
}

# Starts `pgbank race` for long in the background (RACE_PID), and waits
# until its schema exists.
start_long_race() {
    "$PGBANK" --db "$1" race --runs 100000 --duration 0.2 >"$T/race.out" 2>"$T/race.err" &
    RACE_PID=$!
    local i
    for i in $(seq 100); do
        [ "$(lab_schemas "$1")" = 1 ] && return 0
        sleep 0.1
    done
    fail "the lab's schema never appeared"
    return 1
}

an_interrupted_race_drops_its_schema_and_exits_130() {
    make_user_bank || return
    local before sig want rc
    before=$(bank_state)
    for sig in INT TERM; do
        start_long_race "$USER_DB" || { kill -KILL "$RACE_PID"; return; }
        sleep 1 # mid-run
        kill -"$sig" "$RACE_PID"
        rc=0
        wait "$RACE_PID" || rc=$?
        want=130
        [ "$sig" = TERM ] && want=143
        [ "$rc" = "$want" ] || fail "SIG$sig: exit $rc, expected $want ($(tail -c 300 "$T/race.err"))"
        grep -q "interrupted by SIG$sig" "$T/race.err" || fail "SIG$sig: not said on stderr"
        [ ! -s "$T/race.out" ] || fail "SIG$sig: an interrupted lab reports nothing"
        [ "$(lab_schemas "$USER_DB")" = 0 ] || fail "SIG$sig: the lab's schema was left behind"
    done
    [ "$(bank_state)" = "$before" ] || fail "the user's bank changed"
    expect_exit 0 "$PGBANK" --db "$USER_DB" audit
    drop_user_bank
}

a_killed_race_leaves_a_schema_the_next_run_drops() {
    make_user_bank || return
    local before i
    before=$(bank_state)
    start_long_race "$USER_DB" || { kill -KILL "$RACE_PID"; return; }
    kill -KILL "$RACE_PID"
    wait "$RACE_PID" 2>/dev/null
    [ "$(lab_schemas "$USER_DB")" = 1 ] || fail "a killed lab cannot drop its schema"
    # Its server processes go when they notice, and take its lock with them.
    for i in $(seq 100); do
        [ "$(psql "$USER_DB" -XAtq -c "SELECT count(*) FROM pg_stat_activity
            WHERE application_name LIKE 'pgbank-race-%'")" = 0 ] && break
        sleep 0.1
    done
    expect_exit 0 "$PGBANK" --db "$USER_DB" race --runs 1 --duration 0.1 --strategies atomic
    expect_err_has "left by a lab run that was killed"
    [ "$(lab_schemas "$USER_DB")" = 0 ] || fail "the killed run's schema is still there"
    [ "$(bank_state)" = "$before" ] || fail "the user's bank changed"
    expect_exit 0 "$PGBANK" --db "$USER_DB" audit
    drop_user_bank
}

scenario unsafe_strategies_go_wrong_in_every_scenario
scenario safe_strategies_never_lose_or_create_money
scenario every_strategy_is_measured_by_default
scenario the_table_names_scenarios_and_unsafe_strategies
scenario plot_draws_a_png
scenario plot_without_gnuplot_exits_2_before_running
scenario the_users_bank_is_untouched_and_its_audit_holds
scenario an_interrupted_race_drops_its_schema_and_exits_130
scenario a_killed_race_leaves_a_schema_the_next_run_drops
scenario bad_input_exits_2_and_runs_nothing
finish
