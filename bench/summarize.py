#!/usr/bin/env python3
"""summarize.py - medians of `pgbank bench --json` runs, as markdown tables.

    bench/summarize.py results.jsonl [more.jsonl ...]

Reads the JSON lines bench/run_scaling.sh writes (one run per line, with
"sweep" and "run" added) and prints one table per sweep: per configuration
(strategy, clients, depth, accounts, distribution) the median of each figure
over its runs, and the median of the per-run ratios to pgbench (each ratio
from pgbank and pgbench measured in the same run).  Runs that failed are
counted and listed, never silently dropped.
"""
import json
import statistics
import sys


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def spread(values):
    """ (min–max) of several runs: how noisy the machine was."""
    if len(values) < 2:
        return ""
    return f" ({min(values):,.0f}–{max(values):,.0f})"


def pgb(d, name, field):
    p = d.get("pgbench") or {}
    s = p.get(name) or {}
    return s.get(field) if s.get("ran") else None


def main(paths):
    runs, failed = [], []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                (failed if "error" in d else runs).append(d)
    sweeps = {}
    for d in runs:
        key = (d["strategy"], d["clients"], d["depth"], d["accounts"], d["distribution"],
               d.get("lanes") if d["strategy"] == "batch" else None)
        sweeps.setdefault(d.get("sweep", "-"), {}).setdefault(key, []).append(d)
    for sweep, configs in sweeps.items():
        with_pgbench = any("pgbench" in d for ds in configs.values() for d in ds)
        print(f"\n### sweep: {sweep}\n")
        head = ["strategy", "clients", "depth", "accounts", "dist", "lanes", "runs", "pgbank ops/s (min–max)",
                "p50 ms", "p99 ms", "p99.9 ms", "client CPU µs/op", "RSS MB", "ops/commit"]
        if with_pgbench:
            head += ["pgbench 1/commit ops/s", "p99 ms", "CPU µs/op",
                     "pgbench 10/commit pipeline ops/s", "p99 ms", "failed tx",
                     "ratio vs 1/commit", "ratio vs 10/commit"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for key, ds in configs.items():
            strategy, clients, depth, accounts, dist, lanes = key
            row = [strategy, str(clients), str(depth), f"{accounts:,}", dist,
                   "-" if lanes is None else str(lanes), str(len(ds)),
                   fmt(med(d["ops_per_sec"] for d in ds)) + spread([d["ops_per_sec"] for d in ds]),
                   fmt(med(d["p50_ms"] for d in ds), 3),
                   fmt(med(d["p99_ms"] for d in ds), 3),
                   fmt(med(d["p999_ms"] for d in ds), 3),
                   fmt(med(d["client_cpu_us_per_op"] for d in ds), 2),
                   fmt(med(d["peak_rss_mb"] for d in ds), 1),
                   fmt(med(d.get("ops_per_commit") for d in ds), 2)]
            if with_pgbench:
                row += [fmt(med(pgb(d, "one_per_commit", "ops_per_sec") for d in ds)),
                        fmt(med(pgb(d, "one_per_commit", "p99_ms") for d in ds), 3),
                        fmt(med(pgb(d, "one_per_commit", "client_cpu_us_per_op") for d in ds), 2),
                        fmt(med(pgb(d, "ten_per_commit_pipeline", "ops_per_sec") for d in ds)),
                        fmt(med(pgb(d, "ten_per_commit_pipeline", "p99_ms") for d in ds), 3),
                        fmt(med(pgb(d, "ten_per_commit_pipeline", "failures") for d in ds)),
                        fmt(med(d.get("ratio_vs_one_per_commit") for d in ds), 2, "×"),
                        fmt(med(d.get("ratio_vs_ten_per_commit_pipeline") for d in ds), 2, "×")]
            print("| " + " | ".join(row) + " |")
    bad = [d for d in runs if d.get("money_check") != "ok"]
    if bad:
        print(f"\n{len(bad)} run(s) failed the money check:")
        for d in bad:
            print(f"  {d.get('sweep')}: {d['strategy']} {d['clients']} clients {d['accounts']} accounts")
    if failed:
        print(f"\n{len(failed)} run(s) produced no result:")
        for d in failed:
            print(f"  {d.get('sweep')}: pgbank bench {d.get('args')} (exit {d.get('exit')}): "
                  f"{d.get('error', '').strip().splitlines()[-1:]}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
