"""Exceptions: one per way an operation can end other than ``ok``.

    Error
     +-- Refused             the bank's rules said no; nothing changed
     |    +-- InsufficientFunds   (also a ValueError, as in the seed)
     |    +-- NoSuchAccount
     |    +-- Conflict            an idempotency key reused with other parameters
     +-- UnknownOutcome      the connection died after COMMIT was sent
     +-- DatabaseError       the database failed (``.sqlstate``)
     |    +-- RetriesExhausted    serializable gave up within its budget
     +-- ShutDown            the Bank closed before the operation ran
     +-- InvalidInput        refused before anything was sent (also a ValueError)

Every exception of an operation carries what it was about (``account``,
``amount``, ``key``), the library's ``status`` name and ``message``, and
``replayed`` (True when a key replayed a refusal recorded earlier).  No
message ever contains a password.
"""
from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Anything pgbank reports as not done."""

    status: str = "error"

    def __init__(self, message: str, *, account: Optional[int] = None,
                 amount: Optional[int] = None, key: Optional[str] = None,
                 replayed: bool = False, sqlstate: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.account = account
        self.amount = amount
        self.key = key
        self.replayed = replayed
        self.sqlstate = sqlstate


class Refused(Error):
    """The bank's rules refused the operation; no money moved."""

    status = "refused"


class InsufficientFunds(Refused, ValueError):
    """The account holds less than the amount.  ``balance`` is what it held
    when the operation was refused.  A ValueError too, so the seed's
    ``except ValueError`` keeps working."""

    status = "insufficient funds"

    def __init__(self, message: str, *, balance: Optional[int] = None, **kw) -> None:
        super().__init__(message, **kw)
        self.balance = balance


class NoSuchAccount(Refused, LookupError):
    """The account (or a transfer's destination) does not exist."""

    status = "no such account"


class Conflict(Refused):
    """The idempotency key was used before with other parameters."""

    status = "conflict"


class UnknownOutcome(Error):
    """The connection was lost, or the Bank closed, after COMMIT was sent:
    the operation may or may not have been applied.  Operations without a
    key are never re-sent; with a key, ask again with the same key."""

    status = "unknown outcome"


class DatabaseError(Error):
    """The database reported an error, or could not be reached.
    ``sqlstate`` is PostgreSQL's code ("40001", "08006", ...) or ""."""

    status = "database error"


class RetriesExhausted(DatabaseError):
    """The serializable strategy retried within its budget and gave up."""

    status = "retries exhausted"


class ShutDown(Error):
    """The Bank was closed before the operation ran (or it is closed)."""

    status = "shut down"


class InvalidInput(Error, ValueError):
    """Bad input, refused before anything was sent to the database: an
    amount that is not a positive int of minor units within int64, an
    account id that is not an int, an unknown strategy, a bad key..."""

    status = "invalid input"
