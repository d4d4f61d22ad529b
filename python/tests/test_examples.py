"""The examples in python/examples run against the private server and print
the seed's outcomes."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import PYTHON_DIR

import pgbank


def example(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    return subprocess.run([sys.executable, str(PYTHON_DIR / "examples" / name), *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_quickstart_withdraws_80_then_refuses_80() -> None:
    p = example("quickstart.py")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "20"
    assert re.fullmatch(r"refused: insufficient funds: account \d+ holds 20, "
                        r"the withdraw needs 80", lines[1]), lines


def test_the_seeds_four_functions_succeed_once_then_refuse() -> None:
    p = example("seed_side_by_side.py")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Withdrawal of 80 succeeded, new balance 20" in out
    assert re.search(r"Operation rolled back: insufficient funds: account \d+ holds 20", out)
    for fn in ("withdraw", "withdraw_locked", "withdraw_atomic"):
        assert re.search(rf"^{fn}\(\d+, 80\): done, balance 20$", out, re.M), out
        assert re.search(rf"^{fn}\(\d+, 80\): InsufficientFunds: insufficient funds", out,
                         re.M), out


def test_the_double_spend_with_for_update_pays_once_and_refuses_nine() -> None:
    p = example("double_spend.py")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.count("refused, InsufficientFunds (a ValueError: True)") == 9, out
    assert out.count(": ok, new balance 20") == 1, out
    assert out.splitlines()[-1] == ("for-update: 1 succeeded, 9 refused; balance 20; "
                                    "paid out 80 from 100: money check ok")


def test_the_double_spend_with_every_strategy_reports_what_happened() -> None:
    p = example("double_spend.py", "all")
    assert p.returncode == 0, p.stderr
    summary = {m[0]: m for m in re.findall(
        r"^(\S+): (\d+) succeeded, (\d+) refused; balance (\d+); paid out (\d+) from 100: "
        r"(money check ok|the bank lost (\d+))$", p.stdout, re.M)}
    assert set(summary) == set(pgbank.STRATEGIES), p.stdout
    for name, (_, ok, refused, balance, paid, check, lost) in summary.items():
        ok, refused, balance, paid = int(ok), int(refused), int(balance), int(paid)
        assert ok + refused == 10 and balance == 20 and paid == 80 * ok
        if name in pgbank.SAFE_STRATEGIES or ok == 1:
            assert ok == 1 and check == "money check ok", (name, check)
        else:  # unsafe, and it raced: every success wrote 20
            assert int(lost) == 80 * (ok - 1), (name, lost)
    assert example("double_spend.py", "no-such").returncode == 2
