#!/usr/bin/env bash
# citus_vs_one.sh - pgbank on one PostgreSQL against pgbank on a Citus
# cluster on the same machine (docs/SCALING.md, "Measured here"): the same
# `pgbank bench` run on the private server and on the cluster's
# coordinator, alternately, RUNS times each, with every server's CPU time
# per withdrawal and the two-phase commits the cluster made.
#
# Usage: bench/citus_vs_one.sh PGBANK CLUSTER_DIR [SECONDS] [RUNS] -- BENCH_ARGS...
#   PGBANK        the pgbank program (build/pgbank)
#   CLUSTER_DIR   a running cluster of scripts/citus-cluster.sh
#   BENCH_ARGS    for pgbank bench, e.g. --strategy batch --accounts 10000
#
# A server's CPU is its postmaster's user + system time, its children's
# that have ended (cutime, cstime) and its live children's, read from
# /proc when bench's measurement starts (its accounts ready) and SECS
# later; divided by the withdrawals bench reports.  The two-phase commits
# are the rows the coordinator added to pg_dist_transaction over the same
# window (one per worker that prepared; Citus's 2PC recovery is paused
# during a cluster run so that none is removed, and restored after).
# Prints one JSON line per run, then medians.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,/^set/s/^# \{0,1\}//p' "$0" | sed '$d' >&2; exit 2; }
PGBANK=$1 DIR=$2
shift 2
SECS=10 RUNS=3
[ $# -gt 0 ] && [ "$1" != -- ] && { SECS=$1; shift; }
[ $# -gt 0 ] && [ "$1" != -- ] && { RUNS=$1; shift; }
[ "${1:-}" = -- ] && shift
HERE=$(cd "$(dirname "$0")" && pwd)
URL=$("$HERE/../scripts/citus-cluster.sh" url "$DIR")
HZ=$(getconf CLK_TCK)

# The postmaster pid of a data directory (first line of postmaster.pid).
pm_of() { head -n 1 "$1/postmaster.pid"; }
# CPU seconds of a postmaster and everything under it.
cpu_of() {
    python3 - "$1" "$HZ" <<'PY'
import os, sys
pm, hz = int(sys.argv[1]), int(sys.argv[2])
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
f = fields(pm)
total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            c = fields(int(d))
        except OSError:
            continue
        if int(c[1]) == pm:
            total += int(c[11]) + int(c[12])
print(total / hz)
PY
}
nodes=()
for n in coordinator worker1 worker2; do
    [ -f "$DIR/$n/postmaster.pid" ] || { echo "citus_vs_one.sh: no running $n in $DIR" >&2; exit 1; }
    nodes+=("$DIR/$n")
done
PRIV=$("$PGBANK" server start >/dev/null && "$PGBANK" server status --json 2>/dev/null |
       python3 -c 'import json,sys; print(json.load(sys.stdin).get("data_dir",""))' || true)
[ -n "$PRIV" ] && [ -f "$PRIV/pgdata/postmaster.pid" ] || {
    echo "citus_vs_one.sh: could not find the private server's data directory" >&2; exit 1; }

one() { # where  pids...
    local where=$1 out
    shift
    local before=() after=() i errf outf pid
    errf=$(mktemp) outf=$(mktemp)
    if [ "$where" = cluster ]; then
        "$PGBANK" --db "$URL" bench --json --duration "$SECS" "${BENCH[@]}" >"$outf" 2>"$errf" &
    else
        "$PGBANK" bench --json --duration "$SECS" "${BENCH[@]}" >"$outf" 2>"$errf" &
    fi
    pid=$!
    local twopc_before=0 twopc_after=0
    # The measurement starts once the accounts are ready (bench says so)
    # and lasts SECS: the servers' CPU is read at those two moments, so
    # neither the setup nor the schema's removal is counted.
    while ! grep -q "ready in" "$errf" && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    [ "$where" = cluster ] && twopc_before=$(twopc)
    for p in "$@"; do before+=("$(cpu_of "$p")"); done
    sleep "$SECS"
    for p in "$@"; do after+=("$(cpu_of "$p")"); done
    [ "$where" = cluster ] && twopc_after=$(twopc)
    wait "$pid" || true
    out=$(cat "$outf")
    rm -f "$errf" "$outf"
    local cpus=""
    for i in "${!before[@]}"; do cpus+="${cpus:+,}$(python3 -c "print(round(${after[$i]} - ${before[$i]}, 3))")"; done
    printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin); where = sys.argv[1]; cpus = [float(x) for x in sys.argv[2].split(",")]
ops = d["ops"] or 1
print(json.dumps({"where": where, "strategy": d["strategy"], "accounts": d["accounts"],
                  "ops_per_sec": d["ops_per_sec"], "p50_ms": d["p50_ms"], "p99_ms": d["p99_ms"],
                  "money_check": d["money_check"], "server_cpu_s": cpus,
                  "server_cpu_us_per_op": [round(c * 1e6 / ops, 1) for c in cpus],
                  "client_cpu_us_per_op": d["client_cpu_us_per_op"],
                  "prepared_per_sec": round(int(sys.argv[3]) / float(sys.argv[4]), 1)}))' \
        "$where" "$cpus" "$((twopc_after - twopc_before))" "$SECS"
}
# Rows in pg_dist_transaction: one per worker per two-phase commit, kept
# while recovery is paused.
twopc() { psql "$URL" -XAtq -c "SELECT count(*) FROM pg_dist_transaction"; }
recovery=$(psql "$URL" -XAtq -c "SHOW citus.recover_2pc_interval")
restore_recovery() {
    psql "$URL" -XAtq -c "ALTER SYSTEM SET citus.recover_2pc_interval = '$recovery'" \
        -c "SELECT pg_reload_conf()" >/dev/null
}
psql "$URL" -XAtq -c "ALTER SYSTEM SET citus.recover_2pc_interval = -1" \
    -c "SELECT pg_reload_conf()" >/dev/null
BENCH=("$@")
RES=$(mktemp)
trap 'rm -f "$RES"; restore_recovery' EXIT
for r in $(seq 1 "$RUNS"); do
    one one "$(pm_of "$PRIV/pgdata")" | tee -a "$RES"
    one cluster "$(pm_of "${nodes[0]}")" "$(pm_of "${nodes[1]}")" "$(pm_of "${nodes[2]}")" | tee -a "$RES"
done
python3 - "$RES" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for where in ("one", "cluster"):
    rs = [r for r in rows if r["where"] == where]
    if not rs:
        continue
    med = lambda k: statistics.median(r[k] for r in rs)
    cpu = [statistics.median(r["server_cpu_us_per_op"][i] for r in rs)
           for i in range(len(rs[0]["server_cpu_us_per_op"]))]
    names = ["server"] if where == "one" else ["coordinator", "worker1", "worker2"]
    print(f"{where}: {len(rs)} runs, median {med('ops_per_sec'):,.0f} ops/s, p99 {med('p99_ms')} ms, "
          "server CPU µs/op " + ", ".join(f"{n} {c}" for n, c in zip(names, cpu)) +
          (f", {med('prepared_per_sec')} prepared transactions/s on the workers"
           if where == "cluster" else "") +
          f", money {'ok' if all(r['money_check'] == 'ok' for r in rs) else 'FAILED'}")
PY
