"""The seed's four withdrawals, rewritten on pgbank, each beside the seed's code.

    PYTHONPATH=python /usr/bin/python3 python/examples/seed_side_by_side.py [--echo]

Every function below has the name of the seed's function it rewrites, and the
seed's code (SQLAlchemy's async ORM on asyncpg) in the comment above it.  The
transaction the seed writes out by hand - session, begin, SELECT, check,
UPDATE, COMMIT or ROLLBACK - runs inside pgbank's engine, in C; the strategy
names which of the seed's sections it follows, and --echo prints the
statements it sends, as the seed's echo=True does.

As in the seed, the Bank lives at module level and every call is its own
asyncio.run(...): the loop of each run adopts the Bank once the previous
loop has closed.
"""
import asyncio
import sys

import pgbank

# seed:
#   DATABASE_URL = "postgresql+asyncpg://user:password@localhost/db"
#   engine = create_async_engine(DATABASE_URL, echo=True)
#   AsyncSessionLocal = sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
bank = pgbank.Bank(echo="--echo" in sys.argv)  # url=DATABASE_URL works too, +asyncpg and all


# seed, section 2 - explicit commit() and rollback().  RACE NOT SOLVED.
#   async def withdraw_explicit_commit(account_id: int, amount: int):
#       async with AsyncSessionLocal() as session:
#           try:
#               acc = await session.get(Account, account_id)
#               if acc.balance < amount:
#                   raise ValueError("insufficient funds")
#               acc.balance -= amount
#               await session.commit()
#               print(f"Withdrawal of {amount} succeeded, new balance {acc.balance}")
#           except (ValueError, SQLAlchemyError) as e:
#               await session.rollback()
#               print(f"Operation rolled back: {e}")
async def withdraw_explicit_commit(account_id: int, amount: int) -> None:
    try:
        # BEGIN; SELECT balance; check; UPDATE SET balance = <computed>; COMMIT
        # (or ROLLBACK): the seed's steps, UNSAFE FOR MONEY exactly like them.
        balance = await bank.withdraw(account_id, amount, strategy="explicit")
        print(f"Withdrawal of {amount} succeeded, new balance {balance}")
    except (ValueError, pgbank.Error) as e:
        print(f"Operation rolled back: {e}")


# seed, section 3 - session.begin(): COMMIT on success, ROLLBACK on an
# exception.  RACE REMAINS.
#   async def withdraw(account_id: int, amount: int):
#       async with AsyncSessionLocal() as session:
#           async with session.begin():
#               acc = await session.get(Account, account_id)
#               if acc.balance < amount:
#                   raise ValueError("insufficient funds")
#               acc.balance -= amount
async def withdraw(account_id: int, amount: int) -> None:
    # The same read-modify-write, UNSAFE FOR MONEY; InsufficientFunds is a
    # ValueError, raised to the caller as the seed's is.
    await bank.withdraw(account_id, amount, strategy="begin")


# seed, section 4 - SELECT ... FOR UPDATE: the row is locked until COMMIT
# or ROLLBACK; the other transaction waits.  No race.
#   async def withdraw_locked(account_id: int, amount: int):
#       async with AsyncSessionLocal() as session:
#           async with session.begin():
#               result = await session.execute(
#                   select(Account).where(Account.id == account_id).with_for_update())
#               acc = result.scalar_one()
#               if acc.balance < amount:
#                   raise ValueError("insufficient funds")
#               acc.balance -= amount
async def withdraw_locked(account_id: int, amount: int) -> None:
    await bank.withdraw(account_id, amount, strategy="for-update")


# seed, section 5 - one atomic UPDATE ... WHERE balance >= X, no SELECT.
# No race, no lock held across round trips.
#   async def withdraw_atomic(account_id: int, amount: int):
#       async with AsyncSessionLocal() as session:
#           async with session.begin():
#               result = await session.execute(
#                   update(Account)
#                   .where(Account.id == account_id)
#                   .where(Account.balance >= amount)
#                   .values(balance=Account.balance - amount)
#                   .returning(Account.balance))
#               new_balance = result.scalar_one_or_none()
#               if new_balance is None:
#                   raise ValueError("insufficient funds")
async def withdraw_atomic(account_id: int, amount: int) -> None:
    await bank.withdraw(account_id, amount)  # "atomic" is the default strategy


def run_and_say(call, account_id: int, amount: int) -> None:
    """asyncio.run(call(account_id, amount)), printing how it ended."""
    try:
        asyncio.run(call(account_id, amount))
        if call is not withdraw_explicit_commit:  # which prints for itself
            balance = asyncio.run(bank.balance(account_id))
            print(f"{call.__name__}({account_id}, {amount}): done, balance {balance}")
    except ValueError as e:  # the seed's exception; pgbank's InsufficientFunds is one
        print(f"{call.__name__}({account_id}, {amount}): {type(e).__name__}: {e}")


if __name__ == "__main__":
    for fn in (withdraw_explicit_commit, withdraw, withdraw_locked, withdraw_atomic):
        account = asyncio.run(bank.open_account(balance=100))
        print(f"-- {fn.__name__}: account {account} opened with 100")
        run_and_say(fn, account, 80)  # seed: asyncio.run(withdraw...(1, 80))
        run_and_say(fn, account, 80)  # the second one is refused: 20 left
    asyncio.run(bank.close())
