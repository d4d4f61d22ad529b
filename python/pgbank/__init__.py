"""pgbank for asyncio: move money in PostgreSQL without races.

The seed's idioms, on pgbank's C engine (libpgbank, through ctypes)::

    import asyncio, pgbank

    async def main():
        async with pgbank.Bank() as bank:        # url=, DATABASE_URL, PG*, or the private server
            a = await bank.open_account(balance=100)
            print(await bank.withdraw(a, 80))    # 20: the new balance (strategy "atomic")
            await bank.withdraw(a, 80, strategy="for-update")  # raises pgbank.InsufficientFunds

    asyncio.run(main())

Money is an int of minor units.  Strategies: "explicit" and "begin" (UNSAFE
FOR MONEY: the seed's sections 2 and 3, kept to show the race),
"for-update", "atomic" (the default), "serializable", "batch".
See docs/PYTHON.md.
"""
from ._capi import LIBRARY_PATH, VERSION as LIBRARY_VERSION
from .bank import SAFE_STRATEGIES, STRATEGIES, Bank
from .errors import (Conflict, DatabaseError, Error, InsufficientFunds, InvalidInput,
                     NoSuchAccount, Refused, RetriesExhausted, ShutDown, UnknownOutcome)
from .results import AuditReport, Balance, JournalEntry, Outcome, Transfer

__version__ = "0.1.0"

__all__ = [
    "Bank", "STRATEGIES", "SAFE_STRATEGIES",
    "Balance", "Transfer", "JournalEntry", "AuditReport", "Outcome",
    "Error", "Refused", "InsufficientFunds", "NoSuchAccount", "Conflict", "UnknownOutcome",
    "DatabaseError", "RetriesExhausted", "ShutDown", "InvalidInput",
    "LIBRARY_PATH", "LIBRARY_VERSION",
]
