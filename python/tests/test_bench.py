"""python/bench.py: the seed's SQLAlchemy code and pgbank from Python on the
same server in the same run, every phase money-checked, the schema dropped."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import PYTHON_DIR, run, sql_scalar

import pgbank


def test_a_short_bench_run_measures_every_contestant_and_checks_the_money() -> None:
    p = subprocess.run([sys.executable, str(PYTHON_DIR / "bench.py"), "--duration", "0.5",
                        "--accounts", "200", "--tasks", "4", "--depth", "8", "--json"],
                       env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["money_check"] == "ok"
    rows = out["rows"]
    assert [(r["workload"], r["contestant"]) for r in rows] == [
        (w, c) for w in ("uniform 200", "hot account")
        for c in ("seed", "atomic", "batch", "batch-many")]
    for r in rows:
        assert r["ops"] > 0 and r["failures"] == 0 and r["money_check"] == "ok", r
        assert r["ops_per_sec"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["cpu_us_per_op"] > 0 and r["x_seed_ops"] > 0
        assert r["in_flight"] == (32 if r["contestant"] == "batch-many" else 4)
    assert all(r["x_seed_ops"] == 1.0 for r in rows if r["contestant"] == "seed")
    assert {t["target"] for t in out["targets"]} == {
        "batch >= 50x the seed's withdrawals/s", "atomic >= 5x the seed's withdrawals/s",
        "atomic: Python CPU per withdrawal <= 1/20 of the seed's"}
    assert "setting up 200 accounts in schema pgbank_pybench" in p.stderr


def test_the_bench_leaves_no_schema_behind_and_prints_a_table() -> None:
    p = subprocess.run([sys.executable, str(PYTHON_DIR / "bench.py"), "--duration", "0.2",
                        "--accounts", "50", "--tasks", "2", "--depth", "2"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[1].split()[:4] == ["workload", "code", "in", "flight"]
    assert sum("seed: SQLAlchemy ORM withdraw_atomic" in line for line in lines) == 2
    assert lines[-1].startswith("money check: ok")

    async def schemas() -> int:
        async with pgbank.Bank() as bank:
            return await sql_scalar(bank, "SELECT count(*) FROM pg_namespace "
                                          "WHERE nspname = 'pgbank_pybench'")
    assert run(schemas()) == 0
