"""The double spend: ten concurrent withdrawals of 80 from an account holding 100.

    PYTHONPATH=python /usr/bin/python3 python/examples/double_spend.py [STRATEGY|all]

STRATEGY is one of explicit, begin, for-update (the default), atomic,
serializable, batch.  A safe strategy lets exactly one withdrawal through
and refuses nine with InsufficientFunds (each also a ValueError): 20 is
left.  explicit and begin, the seed's sections 2 and 3, are UNSAFE FOR
MONEY: when several read 100 before any writes, several "succeed", each
writes 20, and the money check shows what the bank lost.
"""
import asyncio
import sys
from typing import Any, List, Tuple

import pgbank


async def ten_withdrawals(bank: pgbank.Bank) -> Tuple[int, List[Any], int]:
    """Opens an account holding 100 and lets ten tasks withdraw 80 from it
    at once; returns (account, the ten outcomes, the final balance)."""
    a = await bank.open_account(balance=100)
    # Every connection ready first, so that the ten withdrawals start
    # together, as ten users' requests arriving at once would.
    await bank.connect()
    results = await asyncio.gather(*(bank.withdraw(a, 80) for _ in range(10)),
                                   return_exceptions=True)
    return a, results, await bank.balance(a)


async def double_spend(strategy: str) -> bool:
    """Prints what happened; True when the money adds up."""
    async with pgbank.Bank(strategy=strategy, connections=10) as bank:
        a, results, final = await ten_withdrawals(bank)
        ok = refused = 0
        for i, r in enumerate(results, 1):
            if isinstance(r, pgbank.InsufficientFunds):
                refused += 1
                print(f"  withdrawal {i:2}: refused, InsufficientFunds "
                      f"(a ValueError: {isinstance(r, ValueError)}): {r}")
            elif isinstance(r, BaseException):
                print(f"  withdrawal {i:2}: {type(r).__name__}: {r}")
            else:
                ok += 1
                print(f"  withdrawal {i:2}: ok, new balance {r}")
        paid = 80 * ok
        adds_up = final == 100 - paid
        print(f"{strategy}: {ok} succeeded, {refused} refused; balance {final}; "
              f"paid out {paid} from 100: "
              + ("money check ok" if adds_up else f"the bank lost {final - (100 - paid)}"))
        return adds_up


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else "for-update"
    strategies = pgbank.STRATEGIES if which == "all" else (which,)
    if which != "all" and which not in pgbank.STRATEGIES:
        print(f"double_spend: unknown strategy {which!r}: "
              f"{', '.join(pgbank.STRATEGIES)} or all", file=sys.stderr)
        return 2
    safe_ok = True
    for s in strategies:
        adds_up = asyncio.run(double_spend(s))
        if s in pgbank.SAFE_STRATEGIES and not adds_up:
            safe_ok = False
    return 0 if safe_ok else 1


if __name__ == "__main__":
    sys.exit(main())
