"""What operations return: plain ints that also say how they were obtained,
and small records for transfers, the journal, the audit and the outcomes of
operations whose awaiting task was cancelled."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union


class Balance(int):
    """A balance in minor units: an int (``print`` shows the number).

    ``replayed`` is True when an idempotency key returned the outcome it
    recorded earlier (nothing changed this time); ``retries`` counts the
    serializable strategy's retries.  Both are class-level defaults, set on
    an instance only when they differ (an ok result costs one int)."""

    replayed: bool = False
    retries: int = 0

    __str__ = int.__repr__  # print() shows the number

    def __repr__(self) -> str:
        extra = ", replayed=True" if self.replayed else ""
        if self.retries:
            extra += f", retries={self.retries}"
        return f"Balance({int(self)}{extra})"


@dataclass(frozen=True)
class Transfer:
    """A transfer that happened: the new balances of both accounts."""

    balance: int
    """The source account's new balance."""
    to_balance: int
    """The destination account's new balance."""
    replayed: bool = False
    retries: int = 0


@dataclass(frozen=True)
class JournalEntry:
    """One row of the journal: every balance change writes one, in its own
    transaction."""

    seq: int
    account: int
    op: str
    """"open", "withdraw", "deposit", "transfer out" or "transfer in"."""
    amount: int
    """The signed change the operation meant to make."""
    balance_after: int
    key: str
    strategy: str
    at: str
    """When, ISO 8601."""
    role: str = ""
    """op "external" (a change made outside pgbank, journaled by the
    database; libraries that journal them): the session's login role."""
    application: str = ""
    """op "external": the session's application_name."""


@dataclass(frozen=True)
class AuditReport:
    """What ``Bank.audit()`` found.  ``ok`` when every balance equals its
    opening balance plus its journal, none is negative, and total money
    equals opening money plus money in minus money out."""

    ok: bool
    accounts: int
    mismatched: int
    negative: int
    total_balance: int
    opening_total: int
    deposits: int
    withdrawals: int
    money_lost: int
    """Over mismatched accounts: balance above what the journal says (paid
    out but never debited: what the unsafe strategies lose)."""
    money_created: int
    problems: List[Tuple[int, int, int]] = field(default_factory=list)
    """(account, balance, expected) for each account that fails a check."""
    external: int = 0
    """Changes made outside pgbank (libraries that journal them): how many,"""
    external_net: int = 0
    """their net amount,"""
    external_by: str = ""
    """and who made them ("role (application) x N, ...")."""


@dataclass(frozen=True)
class Outcome:
    """The outcome of an operation whose awaiting task was cancelled: the
    operation had already been handed to the engine, ran to its end, and
    this is how it ended (see ``Bank.cancelled_outcomes``)."""

    op: str
    """"withdraw", "deposit", "transfer", "balance" or "open"."""
    account: Optional[int]
    amount: Optional[int]
    to_account: Optional[int]
    key: Optional[str]
    strategy: str
    status: str
    """The library's result: "ok", "insufficient funds", "unknown outcome"..."""
    result: Union[int, Transfer, None]
    """The value the awaiting task would have received (ok only)."""
    message: str = ""
