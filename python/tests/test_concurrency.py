"""The race the seed is about, from asyncio: many tasks withdrawing at once."""
from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from typing import Any, List

import pytest
from conftest import PYTHON_DIR, UNSAFE, run, sql_scalar

import pgbank

sys.path.insert(0, str(PYTHON_DIR / "examples"))
from double_spend import ten_withdrawals  # noqa: E402


def split(results: List[Any]) -> tuple:
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, pgbank.InsufficientFunds)]
    other = [r for r in results if isinstance(r, BaseException) and r not in refused]
    return ok, refused, other


@pytest.mark.parametrize("strategy", pgbank.STRATEGIES)
def test_ten_concurrent_withdrawals_of_80_from_100(strategy: str) -> None:
    """Safe strategies: exactly one succeeds, nine are refused, 20 is left.
    explicit and begin are unsafe on purpose: whatever happened, the audit's
    money check must show it (lost updates as money lost)."""
    async def main() -> None:
        async with pgbank.Bank(strategy=strategy, connections=10) as bank:
            # The double-spend example's own code (python/examples).
            a, results, final = await ten_withdrawals(bank)
            ok, refused, other = split(results)
            assert not other, other
            assert len(ok) + len(refused) == 10
            assert all(isinstance(e, ValueError) for e in refused)
            assert final == await sql_scalar(bank, "SELECT balance FROM accounts WHERE id = $1",
                                             a)
            if strategy not in UNSAFE:
                assert (len(ok), len(refused), final) == (1, 9, 20)
                assert ok == [20]
                return
            # Each success journals -80; the balance is what the last writer
            # computed.  More than one success means updates were lost, and
            # the audit says so for this account, to the cent.
            expected = 100 - 80 * len(ok)
            report = await bank.audit()
            mine = [p for p in report.problems if p[0] == a]
            if len(ok) == 1:
                assert final == 20 and not mine
            else:
                assert final == 20 and mine == [(a, final, expected)], (ok, mine)
                assert report.money_lost >= final - expected
    run(main())


@pytest.mark.parametrize("strategy", ["atomic", "batch", "for-update"])
def test_16_tasks_times_1000_withdrawals_add_up_exactly(strategy: str) -> None:
    """16,000 withdrawals of 1 over 16 accounts holding 900 each (more is
    asked than there is): every account ends at its opening balance minus
    its successes, refusals happen only on accounts that reached 0, nothing
    else goes wrong."""
    opening, tasks, per_task, naccounts = 900, 16, 1000, 16

    async def main() -> None:
        async with pgbank.Bank(strategy=strategy, connections=8) as bank:
            accounts = [await bank.open_account(balance=opening) for _ in range(naccounts)]
            ok: Counter = Counter()
            refused: Counter = Counter()
            failures: List[BaseException] = []

            async def task(seed: int) -> None:
                rnd = random.Random(seed)
                for _ in range(per_task):
                    a = rnd.choice(accounts)
                    try:
                        left = await bank.withdraw(a, 1)
                        assert 0 <= left < opening
                        ok[a] += 1
                    except pgbank.InsufficientFunds as e:
                        assert e.balance == 0
                        refused[a] += 1
                    except pgbank.Error as e:
                        failures.append(e)

            await asyncio.gather(*(task(i) for i in range(tasks)))
            assert not failures, failures[:3]
            assert sum(ok.values()) + sum(refused.values()) == tasks * per_task
            assert sum(refused.values()) >= tasks * per_task - naccounts * opening
            for a in accounts:
                final = await bank.balance(a)
                assert final == opening - ok[a], (a, final, ok[a])
                if refused[a]:
                    assert final == 0
            assert bank.pending == 0
    run(main())
