#!/usr/bin/env bash
# demo.sh - the seed's scenario, end to end, on pgbank's private server.
#
# Usage: scripts/demo.sh [PATH_TO_PGBANK]     (make demo runs it)
#
# No database is named (no --db, no DATABASE_URL), so pgbank uses a
# PostgreSQL server of its own, started on demand.  For each of the seed's
# four strategies an account of 100 gets two withdrawals of 80: the first
# succeeds, the second is refused and rolled back.  Then the race lab, in a
# schema of its own, and the audit of the bank, which the lab leaves sound.
# Safe to run again: the server is reused and every run opens fresh
# accounts.
set -euo pipefail

PGBANK=${1:-build/pgbank}
# The database of this demo is always the private server.
unset DATABASE_URL PGHOST PGHOSTADDR PGDATABASE PGSERVICE

header() { printf '\n=== %s\n' "$*"; }
note() { printf '    %s\n' "$@"; }

# expect CODE ARGS...: shows and runs `pgbank ARGS`, requires exit CODE.
expect() {
    local want=$1 rc=0
    shift
    printf '$ pgbank %s\n' "$*"
    "$PGBANK" "$@" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "demo: 'pgbank $*' exited $rc, expected $want" >&2
        exit 1
    fi
    if [ "$rc" -ne 0 ]; then note "(exit $rc: refused, as expected)"; fi
}

# open_account BALANCE: opens an account, prints its id.
open_account() {
    printf '$ pgbank account open --balance %s\n' "$1" >&2
    "$PGBANK" account open --balance "$1"
}

header "The private server (no --db: pgbank runs a PostgreSQL of its own)"
expect 0 server start

header "The schema (idempotent)"
expect 0 init

header "The seed's account: balance 100"
seed_id=$(open_account 100)
note "account $seed_id opened"
expect 0 balance "$seed_id"

explain() {
    case $1 in
    explicit) note "seed section 2: BEGIN; SELECT; check; UPDATE SET balance = <value>; COMMIT/ROLLBACK" \
                   "UNSAFE FOR MONEY: two concurrent withdrawals can both pass the check" ;;
    begin) note "seed section 3: the same read-modify-write in a scoped transaction" \
                "UNSAFE FOR MONEY: the race remains" ;;
    for-update) note "seed section 4: SELECT ... FOR UPDATE locks the row until COMMIT" \
                     "safe: a concurrent withdrawal waits, then sees the new balance" ;;
    atomic) note "seed section 5: one UPDATE ... WHERE balance >= 80 RETURNING balance" \
                 "safe: one statement, no lock held across round trips" ;;
    esac
}

for strategy in explicit begin for-update atomic; do
    header "Strategy $strategy: withdraw 80 twice from 100"
    explain "$strategy"
    id=$(open_account 100)
    note "account $id opened"
    expect 0 withdraw "$id" 80 --strategy "$strategy"
    expect 1 withdraw "$id" 80 --strategy "$strategy"
    printf '$ pgbank balance %s\n' "$id"
    balance=$("$PGBANK" balance "$id")
    echo "$balance"
    if [ "$balance" != 20 ]; then
        echo "demo: account $id holds $balance, expected 20" >&2
        exit 1
    fi
done

# --- race lab ----------------------------------------------------------------
header "The seed's summary table, measured (pgbank race)"
note "Each scenario runs on fresh accounts, operations truly concurrent, every read" \
     "before any write; explicit and begin must lose money, the others never." \
     "(pgbank race --runs 20 for the full measurement; docs/STRATEGIES.md explains it)"
expect 0 race --runs 5 --duration 0.3
# --- end of race lab -----------------------------------------------------------

header "The audit: every balance equals its journal"
note "The race lab ran in a schema of its own (dropped at its end): the money the unsafe" \
     "strategies lost there is not in your bank, whose withdrawals above were one at a time."
expect 0 audit

header "Done"
note "The private server is still running; it is yours to use:" \
     "  psql \"\$($PGBANK server url)\"" \
     "Stop it with:" \
     "  $PGBANK server stop"
