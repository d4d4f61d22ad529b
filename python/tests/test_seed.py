"""The seed's scenario with every strategy, and the rest of the API: deposit,
transfer, balance, history, audit, echo, one Bank per event loop."""
from __future__ import annotations

import asyncio
from typing import List

import pytest
from conftest import Echo, atomic_withdrawal_echo, run, sql_scalar

import pgbank


@pytest.mark.parametrize("strategy", pgbank.STRATEGIES)
def test_withdrawing_80_from_100_leaves_20_and_a_second_80_is_refused(strategy: str) -> None:
    async def main() -> None:
        async with pgbank.Bank(strategy=strategy) as bank:
            a = await bank.open_account(balance=100)
            left = await bank.withdraw(a, 80)
            assert left == 20 and type(left) is pgbank.Balance and not left.replayed
            with pytest.raises(pgbank.InsufficientFunds) as refused:
                await bank.withdraw(a, 80)
            e = refused.value
            assert isinstance(e, ValueError) and isinstance(e, pgbank.Refused)
            assert (e.account, e.amount, e.balance, e.replayed) == (a, 80, 20, False)
            assert "insufficient funds" in str(e)
            assert await bank.balance(a) == 20
            assert await sql_scalar(bank, "SELECT balance FROM accounts WHERE id = $1", a) == 20
    run(main())


def test_the_seeds_idiom_runs_as_written_strategy_per_call_and_except_value_error() -> None:
    async def withdraw(bank: pgbank.Bank, account_id: int, amount: int) -> str:
        try:
            balance = await bank.withdraw(account_id, amount, strategy="for-update")
            return f"Withdrawal of {amount} succeeded, new balance {balance}"
        except ValueError as e:
            return f"Operation rolled back: {e}"

    async def main() -> None:
        async with pgbank.Bank() as bank:
            assert bank.strategy == "atomic"
            a = await bank.open_account(balance=100)
            assert await withdraw(bank, a, 80) == "Withdrawal of 80 succeeded, new balance 20"
            assert (await withdraw(bank, a, 80)).startswith("Operation rolled back: insufficient")
    run(main())


def test_deposit_transfer_balance_history_and_audit() -> None:
    async def main() -> None:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=100)
            b = await bank.open_account()
            assert await bank.balance(b) == 0
            assert await bank.deposit(b, 50) == 50
            t = await bank.transfer(b, a, 30)
            assert (t.balance, t.to_balance, t.replayed) == (20, 130, False)
            with pytest.raises(pgbank.InsufficientFunds) as e:
                await bank.transfer(b, a, 21)
            assert e.value.balance == 20
            with pytest.raises(pgbank.NoSuchAccount):
                await bank.withdraw(a + b + 1_000_000, 1)
            with pytest.raises(pgbank.NoSuchAccount):
                await bank.transfer(a, a + b + 1_000_000, 1)
            with pytest.raises(pgbank.NoSuchAccount):
                await bank.history(a + b + 1_000_000)
            rows = await bank.history(a)
            assert [(r.op, r.amount, r.balance_after) for r in rows] == \
                [("transfer in", 30, 130), ("open", 100, 100)]
            assert all(r.account == a and r.at for r in rows)
            assert len(await bank.history(a, limit=1)) == 1
            report = await bank.audit()
            assert report.accounts >= 2 and report.negative == 0
            assert a not in [p[0] for p in report.problems]
            assert b not in [p[0] for p in report.problems]
    run(main())


def test_echo_true_prints_every_statement_with_its_parameters_to_stderr(capfd) -> None:
    async def main() -> List[str]:
        async with pgbank.Bank(echo=True, connections=1) as bank:
            a = await bank.open_account(balance=100)
            await bank.withdraw(a, 80)
            return await atomic_withdrawal_echo(bank, a, 80)
    want = run(main())
    err = capfd.readouterr().err
    assert all(w in err for w in want), (want, err)


def test_echo_with_a_callable_receives_each_line() -> None:
    echo = Echo()

    async def main() -> None:
        async with pgbank.Bank(echo=echo, connections=1, strategy="for-update") as bank:
            a = await bank.open_account(balance=100)
            await bank.withdraw(a, 30)
    run(main())
    text = "\n".join(echo.lines)
    assert "FOR UPDATE" in text and "BEGIN" in text and "COMMIT" in text, text


def test_a_bank_belongs_to_the_loop_it_opened_in() -> None:
    async def main() -> None:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=10)

            def elsewhere() -> None:
                asyncio.run(bank.withdraw(a, 1))
            with pytest.raises(pgbank.Error, match="another event loop"):
                await asyncio.to_thread(elsewhere)
            assert await bank.withdraw(a, 1) == 9  # still fine in its own loop
    run(main())


def test_a_closed_bank_refuses_operations_with_shut_down() -> None:
    async def main() -> None:
        bank = await pgbank.Bank().open()
        a = await bank.open_account(balance=10)
        await bank.close()
        await bank.close()  # twice is harmless
        with pytest.raises(pgbank.ShutDown):
            await bank.withdraw(a, 1)
        with pytest.raises(pgbank.ShutDown):
            await bank.open()
        assert "closed" in repr(bank)
    run(main())


def test_withdraw_many_returns_each_outcome_in_order() -> None:
    async def main() -> None:
        async with pgbank.Bank(strategy="batch") as bank:
            a = await bank.open_account(balance=100)
            out = await bank.withdraw_many([(a, 30), (a, 30), (a, 30), (a, 30), (a, 10)])
            assert out[:3] == [70, 40, 10]
            assert isinstance(out[3], pgbank.InsufficientFunds) and out[3].balance == 10
            assert out[4] == 0
            with pytest.raises(pgbank.InsufficientFunds):
                await bank.withdraw_many([(a, 1)], return_exceptions=False)
            assert await bank.withdraw_many([]) == []
            assert bank.stats()["batches"] >= 1
    run(main())


def test_a_module_level_bank_serves_one_asyncio_run_after_another() -> None:
    """The seed's idiom: the engine at module level, asyncio.run() per call.
    Each new loop adopts the Bank once the previous one has closed."""
    bank = pgbank.Bank()
    a = asyncio.run(bank.open_account(balance=100))
    assert asyncio.run(bank.withdraw(a, 30)) == 70
    assert asyncio.run(bank.withdraw(a, 30, strategy="for-update")) == 40
    assert [r.amount for r in asyncio.run(bank.history(a))] == [-30, -30, 100]
    asyncio.run(bank.close())
    assert "closed" in repr(bank)


def test_an_error_inside_the_completion_callback_reaches_the_awaiting_task(monkeypatch,
                                                                           caplog) -> None:
    """Nothing raises through C, and nobody waits forever: the failure is
    logged and the task gets a pgbank.Error."""
    import pgbank.bank

    class Broken(int):
        def __new__(cls, value: int) -> "Broken":
            raise RuntimeError("broken result type")

    async def main() -> None:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=100)
            monkeypatch.setattr(pgbank.bank, "Balance", Broken)
            with pytest.raises(pgbank.Error, match="internal error.*broken result type"):
                await asyncio.wait_for(bank.withdraw(a, 10), 30)
            monkeypatch.undo()
            assert await bank.withdraw(a, 10) == 80  # the first one did happen
            assert bank._callback_errors == 1
    run(main())
    assert any("completion callback" in r.getMessage() for r in caplog.records)
