#!/usr/bin/env bash
# run_scaling.sh - the scaling tables of docs/BENCHMARKS.md: runs
# `pgbank bench --json` R times per configuration and prints, per table, the
# median of every figure (the machine is shared and noisy: medians, never
# single runs).  Raw results go to OUT/results.jsonl (one JSON object per
# run, with "sweep" and "run" added); bench/summarize.py turns them into the
# markdown tables, and can be re-run on the file alone.
#
#   bench/run_scaling.sh [--pgbank PATH] [--runs R] [--duration T]
#                        [--out DIR] [--sweeps LIST] [--max-accounts N] [--journal]
#                        [-- EXTRA PGBANK OPTIONS (e.g. --data-dir DIR, --db URL)]
#
# Every run is `pgbank bench --no-journal`: pgbank runs the SQL pgbench's
# scripts run.  --journal measures with pgbank's journal (bench's default).
#
# Sweeps (comma-separated in --sweeps; default: all but batch):
#   clients     atomic, 10,000 accounts, clients 1 4 16 64 256, vs pgbench
#   accounts    atomic, 16 clients, accounts 1 100 10k 1M 10M, vs pgbench
#   strategies  for-update and atomic (depth 1, 4, 16), 16 clients, 10k
#               accounts, and atomic on one hot account
#   zipf        atomic, 16 clients, 1M accounts, zipf, vs pgbench
#   batch       batch, the targets' configurations (see BENCHMARKS.md)
#   lanes       batch with the journal, 16 clients, vs pgbench: 10,000
#               accounts with the default lanes and with --lanes 1, one hot
#               account, 1M accounts by Zipf (run with --journal)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBANK=${PGBANK:-$HERE/../build/pgbank}
RUNS=3
DURATION=10
OUT=
SWEEPS=clients,accounts,strategies,zipf
MAX_ACCOUNTS=10000000
EXTRA=()
JOURNAL=--no-journal

while [ $# -gt 0 ]; do
    case $1 in
    --pgbank) PGBANK=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --sweeps) SWEEPS=$2; shift 2 ;;
    --max-accounts) MAX_ACCOUNTS=$2; shift 2 ;;
    --journal) JOURNAL=--journal; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_scaling.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ -x "$PGBANK" ] || { echo "run_scaling.sh: no pgbank at $PGBANK (--pgbank PATH)" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/pgbank-scaling.XXXXXX")}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
echo "run_scaling.sh: results in $RESULTS" >&2

# one SWEEP ARGS...: R runs of `pgbank bench --json ARGS`, appended to the
# results with the sweep's name and the run's number.  A failed run is
# recorded as {"sweep":..., "error":...} and the sweep goes on.
one() {
    local sweep=$1 run out err rc
    shift
    for run in $(seq 1 "$RUNS"); do
        echo "run_scaling.sh: [$sweep] run $run/$RUNS: pgbank bench $*" >&2
        err=$OUT/last.err
        rc=0
        out=$("$PGBANK" "${EXTRA[@]}" bench --json "$JOURNAL" --duration "$DURATION" "$@" 2>"$err") || rc=$?
        if [ -z "$out" ] || ! printf '%s' "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; then
            python3 -c 'import json,sys; print(json.dumps({"sweep":sys.argv[1],"run":int(sys.argv[2]),"args":sys.argv[3],"exit":int(sys.argv[4]),"error":open(sys.argv[5]).read()[-500:]}))' \
                "$sweep" "$run" "$*" "$rc" "$err" >>"$RESULTS"
            tail -3 "$err" >&2
            continue
        fi
        printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(sweep=sys.argv[1], run=int(sys.argv[2]), exit=int(sys.argv[3])); print(json.dumps(d))' \
            "$sweep" "$run" "$rc" >>"$RESULTS"
    done
}

has() { case ",$SWEEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

if has clients; then
    for c in 1 4 16 64 256; do
        one clients --strategy atomic --clients "$c" --accounts 10000 --vs-pgbench
    done
fi
if has accounts; then
    for n in 1 100 10000 1000000 10000000; do
        if [ "$n" -gt "$MAX_ACCOUNTS" ]; then
            echo "run_scaling.sh: [accounts] $n accounts skipped (--max-accounts $MAX_ACCOUNTS)" >&2
            continue
        fi
        one accounts --strategy atomic --clients 16 --accounts "$n" --vs-pgbench
    done
fi
if has strategies; then
    one strategies --strategy for-update --clients 16 --accounts 10000
    for d in 1 4 16; do
        one strategies --strategy atomic --clients 16 --depth "$d" --accounts 10000
    done
    one strategies --strategy for-update --clients 16 --accounts 1
    one strategies --strategy atomic --clients 16 --accounts 1
fi
if has zipf; then
    one zipf --strategy atomic --clients 16 --accounts 1000000 --distribution zipf --vs-pgbench
fi
if has batch; then
    one batch --strategy batch --clients 16 --depth 64 --accounts 10000 --vs-pgbench
    one batch --strategy batch --clients 16 --depth 64 --accounts 1 --vs-pgbench
    one batch --strategy batch --clients 64 --depth 16 --accounts 10000
    for d in 1 4 16 64 256; do
        one batch --strategy batch --clients 16 --depth "$d" --accounts 10000
    done
fi
if has lanes; then
    one lanes --strategy batch --clients 16 --accounts 10000 --vs-pgbench
    one lanes --strategy batch --clients 16 --accounts 10000 --lanes 1 --vs-pgbench
    one lanes --strategy batch --clients 16 --accounts 1 --vs-pgbench
    one lanes --strategy batch --clients 16 --accounts 1000000 --distribution zipf --vs-pgbench
fi
python3 "$HERE/summarize.py" "$RESULTS"
