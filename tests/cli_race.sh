# cli_race.sh - `pgbank race` reproduces the seed's summary table: in
# deterministic mode explicit and begin go wrong in every scenario (double
# spend, lost update, contention), for-update and atomic never; --plot draws
# a PNG with gnuplot (or exits 2 up front without it); bad input exits 2
# before anything runs.
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

scenario unsafe_strategies_go_wrong_in_every_scenario
scenario safe_strategies_never_lose_or_create_money
scenario every_strategy_is_measured_by_default
scenario the_table_names_scenarios_and_unsafe_strategies
scenario plot_draws_a_png
scenario plot_without_gnuplot_exits_2_before_running
scenario bad_input_exits_2_and_runs_nothing
finish
