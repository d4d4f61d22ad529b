"""Idempotency keys from Python: exactly once, across Banks and reconnects."""
from __future__ import annotations

import uuid

import pytest
from conftest import run

import pgbank
from pgbank import _capi


def key() -> str:
    return f"py-{uuid.uuid4()}"


def test_a_new_bank_with_the_same_key_replays_the_original_result() -> None:
    k = key()

    async def first() -> int:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=100)
            left = await bank.withdraw(a, 30, key=k)
            assert left == 70 and not left.replayed
            return a

    async def again(a: int) -> None:
        # Another Bank: another engine, other connections, same key.
        async with pgbank.Bank(strategy="for-update") as bank:
            left = await bank.withdraw(a, 30, key=k)
            assert left == 70 and left.replayed and "replayed=True" in repr(left)
            assert await bank.balance(a) == 70  # taken once
            with pytest.raises(pgbank.Conflict) as e:
                await bank.withdraw(a, 31, key=k)
            assert e.value.key == k and not isinstance(e.value, ValueError)
            assert await bank.balance(a) == 70
            rows = await bank.history(a)
            assert [(r.op, r.amount, r.key) for r in rows] == \
                [("withdraw", -30, k), ("open", 100, "")]

    a = run(first())
    run(again(a))


def test_a_refusal_is_remembered_under_its_key() -> None:
    k = key()

    async def main() -> None:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=10)
            with pytest.raises(pgbank.InsufficientFunds) as first:
                await bank.withdraw(a, 50, key=k)
            assert not first.value.replayed
            await bank.deposit(a, 100)
            with pytest.raises(pgbank.InsufficientFunds) as again:
                await bank.withdraw(a, 50, key=k)
            assert again.value.replayed and again.value.balance == 10
            assert await bank.balance(a) == 110
    run(main())


def test_keyed_transfers_and_deposits_replay_with_their_balances() -> None:
    kt, kd = key(), key()

    async def main() -> None:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=100)
            b = await bank.open_account()
            t1 = await bank.transfer(a, b, 40, key=kt)
            t2 = await bank.transfer(a, b, 40, key=kt)
            assert (t1.balance, t1.to_balance, t1.replayed) == (60, 40, False)
            assert (t2.balance, t2.to_balance, t2.replayed) == (60, 40, True)
            d1 = await bank.deposit(b, 5, key=kd, strategy="serializable")
            d2 = await bank.deposit(b, 5, key=kd, strategy="serializable")
            assert (d1, d1.replayed, d2, d2.replayed) == (45, False, 45, True)
            assert (await bank.balance(a), await bank.balance(b)) == (60, 45)
    run(main())


def test_a_keyed_batch_withdrawal_is_exactly_once_or_refused_before_sending() -> None:
    """A keyed batch operation goes alone, through pgbank_keyed(): exactly
    once, replayed after."""
    k = key()

    async def main() -> None:
        async with pgbank.Bank(strategy="batch") as bank:
            a = await bank.open_account(balance=100)
            first = await bank.withdraw(a, 1, key=k)
            again = await bank.withdraw(a, 1, key=k)
            assert (first, first.replayed, again, again.replayed) == (99, False, 99, True)
            assert await bank.balance(a) == 99
    run(main())
