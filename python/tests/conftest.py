"""Shared helpers of the Python package's tests.

The tests run against a real PostgreSQL: the throwaway server of the CTest
fixture (PGBANK_DATA_DIR, the private-server resolution of pgbank.Bank()),
never a mock.  Run them with `ctest -L python` from the build directory, or
by hand:

    PGBANK_DATA_DIR=$(mktemp -d) PYTHONPATH=python /usr/bin/python3 -m pytest -v python/tests

A skipped or expected-to-fail test fails the run: nothing is counted as
passed without having run.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Awaitable, List


PYTHON_DIR = Path(__file__).resolve().parent.parent
CHECKOUT = PYTHON_DIR.parent
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

import pgbank  # noqa: E402

UNSAFE = ("explicit", "begin")


def run(coro: Awaitable[Any]) -> Any:
    """Runs one test's coroutine in a fresh event loop (no pytest-asyncio)."""
    return asyncio.run(coro)


async def open_bank(**kw: Any) -> pgbank.Bank:
    return await pgbank.Bank(**kw).open()


async def sql_scalar(bank: pgbank.Bank, query: str, *args: Any) -> Any:
    """One value read with asyncpg on the Bank's own database: a second
    opinion that does not go through pgbank."""
    import asyncpg
    conn = await asyncpg.connect(**asyncpg_params(await bank._connection_parameters()))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def atomic_withdrawal_echo(bank: pgbank.Bank, account: int, amount: int) -> List[str]:
    """What --echo shows of an atomic withdrawal: the guarded UPDATE with
    its parameters, or on a Citus coordinator the call of
    pgbank_atomic_one() that runs it on the account's worker
    (docs/SCALING.md)."""
    citus = await sql_scalar(bank, "SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
    if citus:
        return ["pgbank_atomic_one(", f"$2={account}, $3={amount}"]
    return ["UPDATE", f"$1={account}, $2={amount}"]


def asyncpg_params(p: dict) -> dict:
    """libpq's parameter names to asyncpg.connect()'s."""
    names = {"host": "host", "port": "port", "user": "user", "password": "password",
             "dbname": "database"}
    out = {names[k]: v for k, v in p.items() if k in names}
    if "port" in out:
        out["port"] = int(out["port"])
    return out


class Echo:
    """echo= callback that keeps every statement line."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


_not_run: List[str] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.skipped:
        _not_run.append(report.nodeid)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if _not_run and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _not_run:
        terminalreporter.write_line(
            f"FAILED: {len(_not_run)} test(s) skipped or xfailed - they must run and pass: "
            + ", ".join(_not_run), red=True)
