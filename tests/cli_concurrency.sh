# cli_concurrency.sh - ten separate pgbank processes withdraw 80 from the
# same account of 100 at once: with a safe strategy exactly one succeeds.
. "$(dirname "$0")/cli_lib.sh"

# race STRATEGY: prints the exit codes of 10 simultaneous withdrawals,
# sorted, then checks the balance.
race() {
    local s=$1 id i
    id=$(open_account 100) || { fail "could not open an account"; return; }
    local pids=()
    for i in 0 1 2 3 4 5 6 7 8 9; do
        "$PGBANK" withdraw "$id" 80 --strategy "$s" >"$T/race.$i.out" 2>"$T/race.$i.err" &
        pids+=($!)
    done
    local ok=0 refused=0 other=0 rc
    for i in 0 1 2 3 4 5 6 7 8 9; do
        wait "${pids[$i]}"
        rc=$?
        case $rc in 0) ok=$((ok + 1)) ;; 1) refused=$((refused + 1)) ;;
        *) other=$((other + 1)); cat "$T/race.$i.err" >&2 ;; esac
    done
    CMD="10 x pgbank withdraw $id 80 --strategy $s"
    RC="ok=$ok refused=$refused other=$other" OUT=$(cat "$T"/race.*.out) ERR=''
    [ "$ok" -eq 1 ] && [ "$refused" -eq 9 ] ||
        fail "expected exactly one success and nine refusals"
    expect_balance "$id" 20
}

ten_processes_with_for_update_take_80_once() { race for-update; }
ten_processes_with_atomic_take_80_once() { race atomic; }
ten_processes_with_serializable_take_80_once() { race serializable; }

scenario ten_processes_with_for_update_take_80_once
scenario ten_processes_with_atomic_take_80_once
scenario ten_processes_with_serializable_take_80_once
finish
