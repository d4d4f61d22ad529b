"""Cancelling the task that awaits an operation, and closing the Bank with
operations pending.  An operation handed to the engine completes exactly
once whatever happens to its task; its outcome is never dropped.

To hold an operation in flight for as long as the test needs, a second
connection (asyncpg, not pgbank) locks the account's row; the operation
waits on that lock inside the database until the blocker commits.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import asyncpg
import pytest
from conftest import asyncpg_params, run, sql_scalar

import pgbank


@asynccontextmanager
async def row_locked(bank: pgbank.Bank, account: int) -> AsyncIterator[Any]:
    """The account's row locked FOR UPDATE by another connection until the
    block ends (then committed, without changing anything)."""
    conn = await asyncpg.connect(**asyncpg_params(await bank._connection_parameters()))
    tx = conn.transaction()
    await tx.start()
    await conn.fetchval("SELECT balance FROM accounts WHERE id = $1 FOR UPDATE", account)
    try:
        yield conn
    finally:
        await tx.commit()
        await conn.close()


async def until(cond: Any, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def lock_waiters(bank: pgbank.Bank) -> int:
    """Lock requests not yet granted: on a Citus coordinator, on every node
    (a row is locked on the worker holding it)."""
    citus = await sql_scalar(bank, "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
    view = "citus_locks" if citus else "pg_locks"
    return await sql_scalar(bank, f"SELECT count(*) FROM {view} WHERE NOT granted")


async def drained(bank: pgbank.Bank) -> bool:
    return bank.pending == 0


def test_a_cancelled_withdrawal_still_completes_once_and_its_outcome_is_reported(caplog) -> None:
    async def main() -> None:
        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=100)
            waiting_before = await lock_waiters(bank)
            async with row_locked(bank, a):
                task = asyncio.create_task(bank.withdraw(a, 30))
                refused = asyncio.create_task(bank.withdraw(a, 500, strategy="for-update"))

                async def both_waiting() -> bool:
                    return await lock_waiters(bank) >= waiting_before + 2
                await until(both_waiting, "both withdrawals to wait on the row lock")
                task.cancel()
                refused.cancel()
                for t in (task, refused):
                    with pytest.raises(asyncio.CancelledError):
                        await t
                assert bank.pending == 2  # still inside the engine
                assert bank.cancelled_outcomes == []
            await until(lambda: drained(bank), "the cancelled withdrawals to complete")
            outcomes = {o.amount: o for o in bank.cancelled_outcomes}
            assert len(bank.cancelled_outcomes) == 2 and set(outcomes) == {30, 500}
            done, no = outcomes[30], outcomes[500]
            assert (done.op, done.account, done.status, done.strategy) == \
                ("withdraw", a, "ok", "atomic")
            assert done.result == 70
            assert (no.status, no.result, no.strategy) == ("insufficient funds", None,
                                                           "for-update")
            # The money moved exactly once, as reported.
            assert await bank.balance(a) == 70
            assert [r.amount for r in await bank.history(a)] == [-30, 100]
    with caplog.at_level(logging.WARNING, logger="pgbank"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if r.name == "pgbank"]
    assert len(warnings) == 2 and any("ok (result 70)" in w for w in warnings), warnings


def test_a_batch_withdrawal_cancelled_before_it_was_sent_still_runs_once() -> None:
    async def main() -> None:
        async with pgbank.Bank(strategy="batch") as bank:
            a = await bank.open_account(balance=100)
            tasks = [asyncio.create_task(bank.withdraw(a, 10)) for _ in range(5)]
            await asyncio.sleep(0)  # each task has submitted (held until the loop turns)
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            await until(lambda: drained(bank), "the cancelled batch to complete")
            assert sorted(o.result for o in bank.cancelled_outcomes) == [50, 60, 70, 80, 90]
            assert await bank.balance(a) == 50
    run(main())


def test_cancelling_many_tasks_at_random_moments_loses_no_money() -> None:
    async def main() -> None:
        async with pgbank.Bank(connections=4) as bank:
            a = await bank.open_account(balance=10_000)
            tasks = [asyncio.create_task(bank.withdraw(a, 7)) for _ in range(200)]
            await asyncio.sleep(0.005)  # every task has submitted; some have completed
            cancelled = sum(t.cancel() for t in tasks[::2])
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await until(lambda: drained(bank), "every withdrawal to complete")
            assert sum(isinstance(r, asyncio.CancelledError) for r in results) == cancelled > 0
            # Every cancelled task's withdrawal completed anyway and was
            # reported; together with the awaited ones, that is the money.
            assert len(bank.cancelled_outcomes) == cancelled
            assert all(o.status == "ok" for o in bank.cancelled_outcomes)
            awaited_ok = sum(1 for r in results if isinstance(r, int))
            assert awaited_ok + cancelled == 200
            assert await bank.balance(a) == 10_000 - 7 * 200
    run(main())


def test_closing_with_operations_pending_completes_them_as_the_c_api_says() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        watched_before = len(loop._selector.get_map())  # type: ignore[attr-defined]
        bank = await pgbank.Bank(connections=2).open()
        a = await bank.open_account(balance=100)
        b = await bank.open_account(balance=100)
        waiting_before = await lock_waiters(bank)
        async with row_locked(bank, a):
            # In flight on connection 1: waits at its read, before any write.
            read = asyncio.create_task(bank.withdraw(a, 10, strategy="for-update"))
            # In flight on connection 2: its single UPDATE (the write) is sent.
            written = asyncio.create_task(bank.withdraw(a, 20))
            # No connection left: queued, never sent.
            queued = asyncio.create_task(bank.withdraw(b, 30))

            async def two_waiting() -> bool:
                return await lock_waiters(bank) >= waiting_before + 2
            await until(two_waiting, "two withdrawals to wait on the row lock")
            assert bank.pending == 3
            # Batch: held by the Bank until the loop turns; closed before that.
            held = asyncio.create_task(bank.withdraw(b, 40, strategy="batch"))
            await asyncio.sleep(0)
            assert bank.pending == 4
            await bank.close()
            assert bank.pending == 0
            with pytest.raises(pgbank.ShutDown, match="rolled back"):
                await read
            with pytest.raises(pgbank.UnknownOutcome, match="may have been applied"):
                await written
            with pytest.raises(pgbank.ShutDown, match="before the operation ran"):
                await queued
            with pytest.raises(pgbank.ShutDown):
                await held
        # Nothing of the Bank is left in the loop.
        assert len(loop._selector.get_map()) == watched_before  # type: ignore[attr-defined]
        async with pgbank.Bank() as check:
            assert await check.balance(b) == 100  # queued and held: never ran
            # The one sent may or may not have been applied (that is what
            # "unknown outcome" means); the one stopped at its read was not.
            assert await check.balance(a) in (100, 80)
    run(main())
