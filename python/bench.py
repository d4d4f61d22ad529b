#!/usr/bin/env python3
"""bench.py - the seed's Python code next to pgbank from Python: same server, same run.

    make
    /usr/bin/python3 python/bench.py [--duration 5] [--tasks 16] [--accounts 10000]
                                     [--depth 64] [--runs 1] [--journal] [--json]
                                     [--db URL | --data-dir DIR]

Contestants, each run by 16 asyncio tasks (--tasks) in one process, on the
same accounts table, one after the other, for the same time:

  seed    the seed's withdraw_atomic() exactly as the seed writes it:
          SQLAlchemy's async ORM on asyncpg (create_async_engine, AsyncSession
          from a sessionmaker, `async with session.begin()`,
          update(Account).where(...).where(Account.balance >= amount)
          .values(balance=Account.balance - amount).returning(...)); each
          task awaits one withdrawal after the other;
  atomic  pgbank, `await bank.withdraw(account, 1)` (strategy "atomic"), the
          same shape: one withdrawal awaited at a time per task;
  batch   the same with strategy "batch";
  batch×D pgbank batch, each task awaiting bank.withdraw_many() of D
          withdrawals (--depth, default 64): D in flight per task.

Two workloads: --accounts accounts (default 10,000) drawn uniformly, and one
hot account (every withdrawal on account 1).  Figures per contestant:
withdrawals/s (ok ÷ wall time), p50/p99 latency (call to result), and the
Python process's CPU per withdrawal (time.process_time(): the interpreter,
the driver and - for pgbank - the C engine and libpq, all in this process).
Ratios are to the seed's figures of the same workload and run.  --runs N
repeats everything and prints medians (of the figures, and of each run's
ratios).

The database is found as pgbank.Bank() finds it (--db, DATABASE_URL, PG*,
else the private server).  Everything happens in the schema pgbank_pybench,
created afresh and dropped at the end: the user's tables are never touched.
pgbank's schema is made there without its journal unless --journal (the
seed's code writes none; both sides run the same UPDATE).  Before each phase: VACUUM and
CHECKPOINT, so no phase pays for another's dead rows or full-page writes.
After each phase the money check: the balances fell by exactly the
withdrawals reported ok, else the exit status is 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pgbank  # noqa: E402
from pgbank import _capi  # noqa: E402

SCHEMA = "pgbank_pybench"
LOCK_KEY = 7405164  # pg_advisory_lock: one bench.py at a time per database
OPENING = 10**11    # every account's balance: no withdrawal of 1 is ever refused


# --- the seed's code, as the seed writes it (only Integer -> BigInteger) -----------

def seed_code(url: Any, tasks: int) -> tuple:
    from sqlalchemy import BigInteger, Column, update
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
    from sqlalchemy.orm import declarative_base, sessionmaker

    Base = declarative_base()

    class Account(Base):
        __tablename__ = "accounts"
        id = Column(BigInteger, primary_key=True)
        balance = Column(BigInteger, nullable=False)

    # The bench's schema first on the search path: the model stays the seed's.
    engine = create_async_engine(url, pool_size=tasks, max_overflow=0,
                                 connect_args={"server_settings": {"search_path": SCHEMA}})
    AsyncSessionLocal = sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)

    async def withdraw_atomic(account_id: int, amount: int) -> int:
        async with AsyncSessionLocal() as session:
            async with session.begin():
                result = await session.execute(
                    update(Account)
                    .where(Account.id == account_id)
                    .where(Account.balance >= amount)
                    .values(balance=Account.balance - amount)
                    .returning(Account.balance)
                )
                new_balance = result.scalar_one_or_none()
                if new_balance is None:
                    raise ValueError("insufficient funds")
                return new_balance

    return engine, withdraw_atomic


# --- connection strings -----------------------------------------------------------------

def kv_conninfo(params: Dict[str, str]) -> str:
    """libpq key=value, every value quoted the libpq way."""
    def q(v: str) -> str:
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join(f"{k}={q(v)}" for k, v in params.items())


def bench_conninfo(params: Dict[str, str]) -> str:
    """The user's database, with the bench schema first on the search path
    (added to the string's options, or to $PGOPTIONS)."""
    p = dict(params)
    opts = p.pop("options", None) or os.environ.get("PGOPTIONS", "")
    p["options"] = (opts + " " if opts else "") + f"-csearch_path={SCHEMA}"
    return kv_conninfo(p)


def sqlalchemy_url(params: Dict[str, str]) -> Any:
    """The same database for SQLAlchemy + asyncpg."""
    from sqlalchemy.engine import URL
    host = params.get("host") or params.get("hostaddr")
    query = {}
    if host and host.startswith("/"):
        query["host"] = host  # a unix socket directory: asyncpg takes it as host=
        host = None
    if params.get("sslmode"):
        query["ssl"] = params["sslmode"]
    return URL.create("postgresql+asyncpg", username=params.get("user"),
                      password=params.get("password"), host=host,
                      port=int(params["port"]) if params.get("port") else None,
                      database=params.get("dbname"), query=query)


def asyncpg_kwargs(params: Dict[str, str]) -> Dict[str, Any]:
    names = {"host": "host", "hostaddr": "host", "port": "port", "user": "user",
             "password": "password", "dbname": "database", "sslmode": "ssl"}
    out: Dict[str, Any] = {names[k]: v for k, v in params.items() if k in names}
    if "port" in out:
        out["port"] = int(out["port"])
    out["server_settings"] = {"search_path": SCHEMA, "client_min_messages": "warning"}
    return out


# --- setup, settle, check ----------------------------------------------------------------

async def setup(conn: Any, conninfo: str, accounts: int, journal: bool) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    # The library makes pgbank's schema and fills the accounts.
    await asyncio.get_running_loop().run_in_executor(None, setup_by_library, conninfo, accounts,
                                                     journal)


async def call_library(fn: Any, conninfo: str, what: str, *args: Any) -> None:
    await asyncio.get_running_loop().run_in_executor(None, check_library, fn, conninfo, what,
                                                     *args)


def check_library(fn: Any, conninfo: str, what: str, *args: Any) -> None:
    """fn(conninfo, *args, err, errlen) == 0, else DatabaseError (scrubbed)."""
    err = _capi.ctypes.create_string_buffer(1024)
    if fn(_capi.fs(conninfo), *args, err, len(err)) != 0:
        raise pgbank.DatabaseError(f"could not {what} in {SCHEMA}: "
                                   f"{_capi.scrub(conninfo, err.value.decode())}")


def setup_by_library(conninfo: str, accounts: int, journal: bool) -> None:
    """pgbank_schema_create (the journal only with --journal) and
    pgbank_accounts_load: what `pgbank bench` uses."""
    b = _capi.blocking
    opts = _capi.pgbank_schema_options()
    b.pgbank_schema_options_init(_capi.ctypes.byref(opts))
    opts.journal = int(journal)
    check_library(b.pgbank_schema_create, conninfo, "create pgbank's schema",
                  _capi.ctypes.byref(opts))
    check_library(b.pgbank_accounts_load, conninfo, "create the accounts", accounts, OPENING)


async def settle(conn: Any) -> None:
    await conn.execute("VACUUM accounts")
    try:
        await conn.execute("CHECKPOINT")  # superuser or pg_checkpoint only
    except Exception:
        pass


async def total(conn: Any) -> int:
    return int(await conn.fetchval("SELECT sum(balance) FROM accounts"))


# --- one phase: N tasks, a closed loop each ------------------------------------------------

Withdraw = Callable[[int, int], Awaitable[Any]]


async def phase(tasks: int, duration: float, pick: Callable[[random.Random], int],
                one: Optional[Withdraw] = None,
                many: Optional[Callable[[List[tuple]], Awaitable[List[Any]]]] = None,
                depth: int = 1) -> Dict[str, Any]:
    """Runs the tasks for `duration` seconds (then lets the ones in flight
    finish); returns ok, failures, wall time, CPU time, latencies (s)."""
    latencies: List[float] = []
    failures: List[BaseException] = []
    ok = 0
    stop = False
    clock = time.perf_counter

    async def task(seed: int) -> None:
        nonlocal ok
        rnd = random.Random(seed)
        ids = [pick(rnd) for _ in range(4096)]
        i = 0
        lat = latencies.append
        while not stop:
            t = clock()
            if many is None:
                try:
                    await one(ids[i & 4095], 1)
                    ok += 1
                except Exception as e:
                    failures.append(e)
                i += 1
                lat(clock() - t)
            else:
                batch = [(ids[(i + k) & 4095], 1) for k in range(depth)]
                i += depth
                results = await many(batch)
                dt = clock() - t
                for r in results:
                    if isinstance(r, BaseException):
                        failures.append(r)
                    else:
                        ok += 1
                    lat(dt)

    async def stopper() -> None:
        nonlocal stop
        await asyncio.sleep(duration)
        stop = True

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(stopper(), *(task(i) for i in range(tasks)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"ok": ok, "failures": failures, "wall": wall, "cpu": cpu, "latencies": latencies}


def figures(r: Dict[str, Any]) -> Dict[str, Any]:
    lat = sorted(r["latencies"])
    n = len(lat)

    def pct(p: float) -> float:
        return lat[min(n - 1, int(p * n))] * 1000 if n else 0.0
    done = r["ok"] + len(r["failures"])
    return {"ops": r["ok"], "failures": len(r["failures"]),
            "ops_per_sec": r["ok"] / r["wall"] if r["wall"] else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "cpu_us_per_op": r["cpu"] / done * 1e6 if done else 0.0}


# --- the run ----------------------------------------------------------------------------------

CONTESTANTS = ["seed", "atomic", "batch", "batch-many"]


def label(c: str, depth: int) -> str:
    return {"seed": "seed: SQLAlchemy ORM withdraw_atomic", "atomic": "pgbank atomic",
            "batch": "pgbank batch",
            "batch-many": f"pgbank batch, withdraw_many({depth})"}[c]


async def run_once(args: argparse.Namespace, params: Dict[str, str], where: str,
                   say: Callable[[str], None], rotate: int = 0) -> List[Dict[str, Any]]:
    """One run: every contestant on every workload, in the order
    CONTESTANTS rotated by `rotate` (so that over several runs no contestant
    always goes first, or last, while the machine's load drifts); rows come
    back in CONTESTANTS order."""
    import asyncpg
    conninfo = bench_conninfo(params)
    conn = await asyncpg.connect(**asyncpg_kwargs(params))
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        await conn.close()  # and the other run's schema left alone
        raise SystemExit(f"bench.py: another bench.py is running on {where}")
    rows: List[Dict[str, Any]] = []
    n = args.accounts
    workloads = [(f"uniform {n:,}", lambda r: r.randint(1, n)), ("hot account", lambda r: 1)]
    try:
        say(f"setting up {args.accounts} accounts in schema {SCHEMA}...")
        await setup(conn, conninfo, args.accounts, args.journal)
        engine, withdraw_atomic = seed_code(sqlalchemy_url(params), args.tasks)
        try:
            for wname, pick in workloads:
                order = CONTESTANTS[rotate % 4:] + CONTESTANTS[:rotate % 4]
                for c in order:
                    bank = None
                    if c == "seed":
                        one, many, depth = withdraw_atomic, None, 1
                    else:
                        strategy = "atomic" if c == "atomic" else "batch"
                        bank = await pgbank.Bank(conninfo, strategy=strategy,
                                                 connections=args.tasks if c == "atomic" else 4
                                                 ).open()
                        one, many = bank.withdraw, None
                        depth = 1
                        if c == "batch-many":
                            many, depth = bank.withdraw_many, args.depth
                    try:
                        # Connections open and warm before the clock starts.
                        await asyncio.gather(*(one(pick(random.Random(i)), 1)
                                               for i in range(args.tasks)))
                        await settle(conn)
                        before = await total(conn)
                        r = await phase(args.tasks, args.duration, pick, one, many, depth)
                        fell = before - await total(conn)
                    finally:
                        if bank is not None:
                            await bank.close()
                    f = figures(r)
                    f.update(workload=wname, contestant=c, label=label(c, args.depth),
                             in_flight=args.tasks * depth, money_check="ok" if fell == f["ops"]
                             else f"the balances fell by {fell}, {f['ops']} reported ok")
                    if r["failures"]:
                        say(f"{f['label']}: {len(r['failures'])} failed, e.g. "
                            f"{r['failures'][0]!r}")
                    say(f"{wname:<15} {f['label']:<40} {f['ops_per_sec']:>10,.0f}/s "
                        f"p50 {f['p50_ms']:.2f} ms  p99 {f['p99_ms']:.2f} ms  "
                        f"CPU {f['cpu_us_per_op']:.1f} us  money check: {f['money_check']}")
                    rows.append(f)
        finally:
            await engine.dispose()
    finally:
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        finally:
            await conn.close()
    names = [w for w, _ in workloads]
    rows.sort(key=lambda r: (names.index(r["workload"]), CONTESTANTS.index(r["contestant"])))
    return rows


def medians(runs: List[List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    out = []
    for i, first in enumerate(runs[0]):
        row = dict(first)
        for k in ("ops_per_sec", "p50_ms", "p99_ms", "cpu_us_per_op", "x_seed_ops",
                  "seed_cpu_ratio"):
            vals = [run[i][k] for run in runs]
            row[k] = statistics.median(vals)
            row[k + "_all"] = vals
        row["ops"] = sum(run[i]["ops"] for run in runs)
        row["failures"] = sum(run[i]["failures"] for run in runs)
        row["money_check"] = ("ok" if all(run[i]["money_check"] == "ok" for run in runs)
                              else "FAILED")
        out.append(row)
    return out


def add_ratios(rows: List[Dict[str, Any]]) -> None:
    seed = {r["workload"]: r for r in rows if r["contestant"] == "seed"}
    for r in rows:
        s = seed[r["workload"]]
        r["x_seed_ops"] = r["ops_per_sec"] / s["ops_per_sec"] if s["ops_per_sec"] else 0.0
        r["seed_cpu_ratio"] = (s["cpu_us_per_op"] / r["cpu_us_per_op"]
                               if r["cpu_us_per_op"] else 0.0)


def targets(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The issue's targets, per workload: batch >= 50x the seed's ops/s,
    atomic >= 5x, atomic's Python CPU per withdrawal <= 1/20 of the seed's."""
    out = []
    for w in dict.fromkeys(r["workload"] for r in rows):
        by = {r["contestant"]: r for r in rows if r["workload"] == w}
        best_batch = max((by[c] for c in ("batch", "batch-many") if c in by),
                         key=lambda r: r["x_seed_ops"])
        out += [
            {"workload": w, "target": "batch >= 50x the seed's withdrawals/s",
             "measured": f"{best_batch['x_seed_ops']:.1f}x ({best_batch['label']}); "
                         f"{by['batch']['x_seed_ops']:.1f}x one at a time per task",
             "met": best_batch["x_seed_ops"] >= 50},
            {"workload": w, "target": "atomic >= 5x the seed's withdrawals/s",
             "measured": f"{by['atomic']['x_seed_ops']:.1f}x",
             "met": by["atomic"]["x_seed_ops"] >= 5},
            {"workload": w, "target": "atomic: Python CPU per withdrawal <= 1/20 of the seed's",
             "measured": f"1/{by['atomic']['seed_cpu_ratio']:.1f} "
                         f"({by['atomic']['cpu_us_per_op']:.1f} vs "
                         f"{by['seed']['cpu_us_per_op']:.1f} us)",
             "met": by["atomic"]["seed_cpu_ratio"] >= 20},
        ]
    return out


def table(rows: List[Dict[str, Any]]) -> str:
    head = ["workload", "code", "in flight", "withdrawals/s", "p50 ms", "p99 ms",
            "CPU us/withdrawal", "x seed ops/s", "seed CPU / this"]
    body = [[r["workload"], r["label"], str(r["in_flight"]), f"{r['ops_per_sec']:,.0f}",
             f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['cpu_us_per_op']:.1f}",
             f"{r['x_seed_ops']:.1f}x", f"{r['seed_cpu_ratio']:.1f}x"] for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    right = {2, 3, 4, 5, 6, 7, 8}

    def line(cells: List[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench.py", description="The seed's SQLAlchemy withdraw_atomic next to pgbank "
        "from Python, same server, same run.")
    p.add_argument("--db", help="database URL (default: DATABASE_URL, PG*, the private server)")
    p.add_argument("--data-dir", help="the private server's directory")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per phase (default 5)")
    p.add_argument("--tasks", type=int, default=16, help="asyncio tasks (default 16)")
    p.add_argument("--accounts", type=int, default=10_000, help="accounts (default 10000)")
    p.add_argument("--depth", type=int, default=64,
                   help="withdrawals per withdraw_many() call (default 64)")
    p.add_argument("--runs", type=int, default=1, help="repeat, print medians (default 1)")
    p.add_argument("--journal", action="store_true", help="keep pgbank's journal")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = p.parse_args(argv)
    for name, lo, hi in (("duration", 0.1, 3600), ("tasks", 1, 1024),
                         ("accounts", 1, 10_000_000), ("depth", 1, 4096), ("runs", 1, 100)):
        v = getattr(a, name)
        if not lo <= v <= hi:
            p.error(f"--{name} must be from {lo} to {hi}")
    return a


async def main_async(args: argparse.Namespace) -> int:
    def say(msg: str) -> None:
        print(f"bench.py: {msg}", file=sys.stderr, flush=True)

    base = pgbank.Bank(args.db, data_dir=args.data_dir)
    async with base:
        params = await base._connection_parameters()
        where = base.where
    runs = []
    for i in range(args.runs):
        if args.runs > 1:
            say(f"run {i + 1} of {args.runs}")
        rows = await run_once(args, params, where, say, rotate=i)
        add_ratios(rows)  # within the run: both sides measured under the same conditions
        runs.append(rows)
    rows = medians(runs)
    goals = targets(rows)
    ok = all(r["money_check"] == "ok" for r in rows)
    if args.json:
        print(json.dumps({"tasks": args.tasks, "accounts": args.accounts, "depth": args.depth,
                          "duration_s": args.duration, "runs": args.runs,
                          "journal": args.journal, "where": where, "rows": rows,
                          "targets": goals, "money_check": "ok" if ok else "FAILED"}, indent=1))
    else:
        print(f"{args.tasks} asyncio tasks, {args.duration:g} s per phase, "
              f"{args.accounts:,} accounts, {where}"
              + (f"; medians of {args.runs} runs" if args.runs > 1 else ""))
        print(table(rows))
        for g in goals:
            print(f"{'met    ' if g['met'] else 'NOT met'}  {g['workload']}: {g['target']}: "
                  f"{g['measured']}")
        print("money check: " + ("ok (every phase: the balances fell by exactly the "
                                 "withdrawals reported ok)" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: Optional[List[str]] = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
