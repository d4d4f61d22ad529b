"""Bad input raises InvalidInput before anything is sent: echo shows no
statement, no connection is opened, no balance changes."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, List

import pytest
from conftest import Echo, atomic_withdrawal_echo, run

import pgbank
from pgbank import _capi

BAD_AMOUNTS: List[Any] = [80.0, 1.5, True, False, 0, -1, -80, 2**63, 2**70, "80", b"80", None,
                          Decimal("80"), [80]]
BAD_ACCOUNTS: List[Any] = ["1", 1.0, True, None, 2**63, -(2**63) - 1, Decimal(1)]
BAD_KEYS: List[Any] = ["", "x" * 201, "é" * 101, "a\0b", b"key", 5]


def bad_calls(bank: pgbank.Bank, a: int, b: int) -> List[Callable[[], Any]]:
    calls: List[Callable[[], Any]] = []
    for m in BAD_AMOUNTS:
        calls += [lambda m=m: bank.withdraw(a, m), lambda m=m: bank.deposit(a, m),
                  lambda m=m: bank.transfer(a, b, m),
                  lambda m=m: bank.withdraw_many([(a, 1), (a, m)])]
        if not (isinstance(m, int) and not isinstance(m, bool) and 0 <= m < 2**63):
            calls.append(lambda m=m: bank.open_account(m))
    for x in BAD_ACCOUNTS:
        calls += [lambda x=x: bank.withdraw(x, 1), lambda x=x: bank.balance(x),
                  lambda x=x: bank.transfer(a, x, 1), lambda x=x: bank.history(x)]
    for k in BAD_KEYS:
        calls.append(lambda k=k: bank.withdraw(a, 1, key=k))
    calls += [
        lambda: bank.open_account(-1),
        lambda: bank.withdraw(a, 1, strategy="ATOMIC"),
        lambda: bank.withdraw(a, 1, strategy="for_update"),
        lambda: bank.withdraw(a, 1, strategy=None or 3),
        lambda: bank.transfer(a, a, 1),
        lambda: bank.history(a, limit=-1),
        lambda: bank.history(a, limit=1.0),
    ]
    return calls


async def check_all_refused(bank: pgbank.Bank, a: int, b: int) -> int:
    n = 0
    for call in bad_calls(bank, a, b):
        with pytest.raises(pgbank.InvalidInput) as e:
            await call()
        assert isinstance(e.value, ValueError)
        n += 1
    return n


def test_a_fresh_bank_sends_nothing_and_connects_nowhere_on_bad_input() -> None:
    echo = Echo()

    async def main() -> None:
        async with pgbank.Bank(echo=echo, connections=1) as bank:
            n = await check_all_refused(bank, 1, 2)
            assert n > 100
            assert echo.lines == []
            assert bank.pending == 0 and bank._watch == {}  # no socket was ever opened
    run(main())


def test_after_real_work_bad_input_still_sends_nothing_and_changes_nothing() -> None:
    echo = Echo()

    async def main() -> None:
        async with pgbank.Bank(echo=echo, connections=1) as bank:
            a = await bank.open_account(balance=100)
            b = await bank.open_account(balance=100)
            assert await bank.withdraw(a, 1) == 99
            want = await atomic_withdrawal_echo(bank, a, 1)
            assert any(all(w in line for w in want) for line in echo.lines), echo.lines
            sent = len(echo.lines)
            await check_all_refused(bank, a, b)
            assert len(echo.lines) == sent, echo.lines[sent:]
            assert (await bank.balance(a), await bank.balance(b)) == (99, 100)
    run(main())


@pytest.mark.parametrize("kw", [dict(connections=0), dict(connections=1025),
                                dict(connections=True), dict(strategy="fast"),
                                dict(url=5), dict(pipeline_depth=0), dict(connect_timeout=0),
                                dict(batch_max=-1), dict(url="postgresql://h:notaport/db")])
def test_bad_bank_arguments_raise_invalid_input(kw: dict) -> None:
    with pytest.raises(pgbank.InvalidInput):
        pgbank.Bank(**kw)
