"""pgbank from asyncio, in ten lines.

    make                                                   # builds build/libpgbank.so.0
    PYTHONPATH=python /usr/bin/python3 python/examples/quickstart.py

With no DATABASE_URL (and no PGHOST/PGDATABASE/...), pgbank starts a private
PostgreSQL server of its own ($PGBANK_DATA_DIR, else ~/.local/state/pgbank).
"""
import asyncio

import pgbank


async def main() -> None:
    async with pgbank.Bank() as bank:      # url=, or DATABASE_URL / PG* / the private server
        a = await bank.open_account(balance=100)
        print(await bank.withdraw(a, 80))  # the new balance: 20; strategy="atomic" by default
        try:
            await bank.withdraw(a, 80, strategy="for-update")
        except pgbank.InsufficientFunds as e:  # also a ValueError, as in the seed
            print(f"refused: {e}")


asyncio.run(main())
