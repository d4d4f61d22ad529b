"""A database password never appears in a repr, a str, an exception, a
traceback, an echo line or a log record."""
from __future__ import annotations

import logging
import os
import traceback

import pytest
from conftest import Echo, run

import pgbank

SECRET = "S3cret-Pa55word"
URLS = [
    f"postgresql+asyncpg://alice:{SECRET}@127.0.0.1:1/bank",  # the seed's form; port 1: refused
    f"postgresql://alice:{SECRET}@127.0.0.1:1/bank?connect_timeout=2",
    f"host=127.0.0.1 port=1 user=alice password={SECRET} dbname=bank",
]


def everything_shown(e: BaseException) -> str:
    return "\n".join([str(e), repr(e), repr(e.args), getattr(e, "message", ""),
                      "".join(traceback.format_exception(e))])


@pytest.mark.parametrize("url", URLS)
def test_an_unreachable_database_with_a_password_never_shows_it(url: str, caplog) -> None:
    echo = Echo()

    async def main() -> None:
        bank = pgbank.Bank(url, echo=echo, connect_timeout=5, connections=2)
        for shown in (repr(bank), str(bank), bank.where):
            assert SECRET not in shown and "alice" in shown, shown
        async with bank:
            assert SECRET not in repr(bank) and "****" in repr(bank)
            with pytest.raises(pgbank.DatabaseError) as e:
                await bank.withdraw(1, 80)
            assert e.value.sqlstate.startswith("08")
            assert "127.0.0.1" in str(e.value)  # the reason is there, only the password is not
            assert SECRET not in everything_shown(e.value)
            with pytest.raises(pgbank.DatabaseError) as h:
                await bank.history(1)
            assert SECRET not in everything_shown(h.value)
            with pytest.raises(pgbank.DatabaseError) as au:
                await bank.audit()
            assert SECRET not in everything_shown(au.value)
    with caplog.at_level(logging.DEBUG):
        run(main())
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert all(SECRET not in line for line in echo.lines)


def test_a_malformed_url_with_a_password_never_shows_it() -> None:
    with pytest.raises(pgbank.InvalidInput) as e:
        pgbank.Bank(f"postgresql://alice:{SECRET}@127.0.0.1:notaport/bank")
    assert SECRET not in everything_shown(e.value)
    assert "invalid" in str(e.value)


def test_the_password_from_pgpassword_never_shows_either(monkeypatch) -> None:
    monkeypatch.setenv("PGPASSWORD", SECRET)

    async def main() -> None:
        async with pgbank.Bank(f"postgresql://alice@127.0.0.1:1/{SECRET}x",
                               connect_timeout=5) as bank:
            with pytest.raises(pgbank.DatabaseError) as e:
                await bank.withdraw(1, 1)
            assert SECRET not in everything_shown(e.value)
        assert SECRET not in repr(bank)
    run(main())


def test_database_url_is_used_and_masked_like_url(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", URLS[0])
    bank = pgbank.Bank()
    assert SECRET not in repr(bank) and "127.0.0.1" in bank.where
    assert os.environ["DATABASE_URL"] == URLS[0]  # untouched
