"""The Bank: pgbank's engine inside an asyncio event loop.

One Bank owns one engine (a pool of non-blocking libpq connections) and
belongs to the event loop it was opened in.  The engine is handed to that
loop with ``pgbank_engine_set_loop()``: its sockets are watched with
``loop.add_reader``/``add_writer``, its wake-up time with ``call_later``,
and every readiness goes back to ``pgbank_engine_socket_action()``, from
where the operations' completion callbacks run and resolve their Futures.

Operations live in C structures owned by the Bank (a pool of ``pgbank_op``
that grows as needed and is reused); each stays reserved from
``pgbank_submit()`` until its completion callback has run, whatever happens
to the task that awaits it.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _capi as C
from .errors import (Conflict, DatabaseError, Error, InsufficientFunds, InvalidInput,
                     NoSuchAccount, RetriesExhausted, ShutDown, UnknownOutcome)
from .results import AuditReport, Balance, JournalEntry, Outcome, Transfer

__all__ = ["Bank", "STRATEGIES", "SAFE_STRATEGIES"]

log = logging.getLogger("pgbank")
echo_log = logging.getLogger("pgbank.echo")

STRATEGIES: Tuple[str, ...] = C.STRATEGY_NAMES
"""Every strategy, by the names used everywhere (API, CLI, docs)."""
SAFE_STRATEGIES: Tuple[str, ...] = tuple(
    n for i, n in enumerate(C.STRATEGY_NAMES) if C.lib.pgbank_strategy_is_safe(i))
"""The strategies that never lose or create money under concurrency."""

_STRATEGY_CODE: Dict[str, int] = {n: i for i, n in enumerate(C.STRATEGY_NAMES)}
_OP_NAMES = ("withdraw", "deposit", "transfer", "balance", "open")
_I64_MAX = (1 << 63) - 1
_I64_MIN = -(1 << 63)
_KEY_MAX = 200
_POOL_GROWTH = 64


# --- input checks: all of them before anything is sent ---------------------------

def _bad_int(what: str, x: Any) -> InvalidInput:
    return InvalidInput(f"the {what} must be an int (got {type(x).__name__} {x!r})")


def _check_amount(x: Any, what: str = "amount", minimum: int = 1) -> int:
    """An amount of minor units: an int (not a bool, float, Decimal or str),
    minimum..2**63-1."""
    if type(x) is not int:
        if isinstance(x, bool) or not isinstance(x, int):
            raise _bad_int(f"{what} (minor units)", x)
        x = int(x)
    if x < minimum:
        raise InvalidInput(f"the {what} must be {'positive' if minimum else 'zero or more'} "
                           f"(got {x})", amount=x)
    if x > _I64_MAX:
        raise InvalidInput(f"the {what} does not fit in 64 bits (got {x})", amount=x)
    return x


def _check_account(x: Any, what: str = "account") -> int:
    if type(x) is not int:
        if isinstance(x, bool) or not isinstance(x, int):
            raise _bad_int(f"{what} id", x)
        x = int(x)
    if not _I64_MIN <= x <= _I64_MAX:
        raise InvalidInput(f"the {what} id does not fit in 64 bits (got {x})", account=x)
    return x


def _check_key(key: Any) -> Optional[Any]:
    """None, or a ctypes buffer holding the key (kept alive by the caller)."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise InvalidInput(f"an idempotency key must be a str (got {type(key).__name__})")
    try:
        raw = key.encode()
    except UnicodeEncodeError:
        raw = b""
    if not raw or len(raw) > _KEY_MAX or b"\0" in raw:
        raise InvalidInput(f"an idempotency key must be 1 to {_KEY_MAX} bytes of UTF-8 "
                           f"without NUL (got {len(raw)} bytes)", key=key)
    return ctypes.create_string_buffer(raw)


def _check_strategy(name: Any) -> int:
    code = _STRATEGY_CODE.get(name) if isinstance(name, str) else None
    if code is None:
        raise InvalidInput(f"unknown strategy {name!r}: one of {', '.join(STRATEGIES)}")
    return code


def _check_positive_int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 1 or x > 1 << 30:
        raise InvalidInput(f"{what} must be a positive int (got {x!r})")
    return int(x)


def _env_set(name: str) -> bool:
    return bool(os.environ.get(name))


class _Group:
    """Many withdrawals awaited together (withdraw_many): one Future for
    all, results in submission order."""

    __slots__ = ("fut", "requests", "strategy", "results", "left", "return_exceptions")

    def __init__(self, fut: asyncio.Future, requests: List[Tuple[int, int]], strategy: int,
                 return_exceptions: bool) -> None:
        self.fut = fut
        self.requests = requests
        self.strategy = strategy
        self.results: List[Any] = [None] * len(requests)
        self.left = len(requests)
        self.return_exceptions = return_exceptions


class Bank:
    """pgbank's engine in the running asyncio event loop.

    ::

        async with pgbank.Bank() as bank:
            a = await bank.open_account(balance=100)
            print(await bank.withdraw(a, 80))     # 20
            await bank.withdraw(a, 80)            # raises pgbank.InsufficientFunds

    Which database (the same resolution as the ``pgbank`` command):

    1. ``url``, else ``$DATABASE_URL``: a libpq ``key=value`` string, a
       ``postgresql://`` / ``postgres://`` URI, or the seed's
       ``postgresql+asyncpg://user:password@host/db`` (the ``+driver`` part
       is dropped);
    2. else, when any of ``PGHOST``, ``PGHOSTADDR``, ``PGDATABASE`` or
       ``PGSERVICE`` is set: libpq's own defaults (every ``PG*`` variable and
       service files);
    3. else the private server: a PostgreSQL of pgbank's own in
       ``data_dir``, ``$PGBANK_DATA_DIR``, ``$XDG_STATE_HOME/pgbank`` or
       ``~/.local/state/pgbank``, started (and given pgbank's schema) when
       the Bank opens.

    Arguments:
      strategy: the default strategy of money operations ("atomic"); every
        call may pass its own.  "explicit" and "begin" are UNSAFE FOR MONEY
        (they lose updates under concurrency, as the seed shows).
      echo: True logs every statement sent, with its parameters, to the
        "pgbank.echo" logger (stderr when nothing else handles it), like the
        seed's ``create_async_engine(..., echo=True)``; or a callable that
        receives each line.  Lines never contain a password.
      connections: connections in the pool (default 4).
      pipeline_depth: single-statement operations in flight at once on one
        connection (default 1).
      batch_max, batch_inflight: the batch strategy's limits (default: the
        library's, 4096 and 1).
      connect_timeout: seconds a connection attempt may take (default 10).
      unnamed_statements: never use named prepared statements (what
        PgBouncer's transaction pooling needs).
      data_dir: the private server's directory, when it is used.

    A Bank opens on ``async with``, on ``await bank.open()``, or on its first
    operation, in the running loop, and belongs to that loop from then on:
    use one Bank per event loop (per thread).  Close it with ``async with``
    or ``await bank.close()``: operations still pending then complete with
    ``ShutDown`` (or ``UnknownOutcome`` when their COMMIT was already sent).
    """

    def __init__(self, url: Optional[str] = None, *, strategy: str = "atomic",
                 echo: Union[bool, Callable[[str], Any]] = False, connections: int = 4,
                 pipeline_depth: int = 1, batch_max: Optional[int] = None,
                 batch_inflight: Optional[int] = None, connect_timeout: float = 10.0,
                 unnamed_statements: bool = False, data_dir: Optional[str] = None) -> None:
        self._eng: int = 0
        self._closed = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._open_lock: Optional[asyncio.Lock] = None
        self._strategy = _check_strategy(strategy)
        self._connections = _check_positive_int(connections, "connections")
        if self._connections > 1024:
            raise InvalidInput(f"connections must be at most 1024 (got {connections})")
        self._pipeline_depth = _check_positive_int(pipeline_depth, "pipeline_depth")
        self._batch_max = 0 if batch_max is None else _check_positive_int(batch_max, "batch_max")
        self._batch_inflight = (0 if batch_inflight is None
                                else _check_positive_int(batch_inflight, "batch_inflight"))
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) \
                or not 0 < connect_timeout <= 3600:
            raise InvalidInput(f"connect_timeout must be seconds, > 0 (got {connect_timeout!r})")
        self._connect_timeout_ms = max(1, int(connect_timeout * 1000))
        self._unnamed = bool(unnamed_statements)
        self._echo = echo
        self._data_dir = data_dir
        # The connection string is resolved now, except the private server's
        # (it needs the server started: on open).  Only the normalised copy
        # is kept; it is never shown without its password masked.
        self._conninfo: Optional[str] = None
        self._where = ""
        if url is None:
            url = os.environ.get("DATABASE_URL") or None
            source = "DATABASE_URL"
        else:
            source = "url"
        if url is not None:
            if not isinstance(url, str):
                raise InvalidInput(f"url must be a str (got {type(url).__name__})")
            try:
                self._conninfo = C.normalize(url)
            except ValueError as e:
                raise InvalidInput(f"invalid connection string in {source}: "
                                   f"{C.scrub(url, str(e))}") from None
            # Masked in the string, and PGPASSWORD's value wherever it appears.
            self._where = C.scrub(self._conninfo, C.redact(self._conninfo))
        elif any(_env_set(v) for v in ("PGHOST", "PGHOSTADDR", "PGDATABASE", "PGSERVICE")):
            self._conninfo = ""
            self._where = "the database named by libpq's PG* environment variables"
        # Outcomes of operations whose awaiting task was cancelled.
        self.cancelled_outcomes: List[Outcome] = []
        """Outcomes of operations that completed after the task awaiting them
        was cancelled, oldest first (each also logged as a warning on the
        "pgbank" logger).  The application may inspect and clear it."""
        # The operation pool (C structures) and what Python keeps per slot.
        self._ops: List[C.pgbank_op] = []
        self._addrs: List[int] = []
        self._slot_of: Dict[int, int] = {}
        self._ctx: List[Any] = []
        self._free: List[int] = []
        # The loop's side: watched sockets (fd -> PGBANK_POLL_* mask), timer.
        self._watch: Dict[int, int] = {}
        self._timer: Optional[asyncio.Handle] = None
        self._callback_errors = 0
        # Batch-strategy operations are held until the end of the loop's
        # iteration, then handed over together (see _flush).
        self._held: List[int] = []
        self._flush_handle: Optional[asyncio.Handle] = None
        # The callbacks C holds: referenced for as long as the engine lives.
        self._c_done = C.DONE_FN(self._on_done)
        self._c_done_addr = ctypes.cast(self._c_done, ctypes.c_void_p).value
        self._c_socket = C.SOCKET_FN(self._on_socket)
        self._c_timer = C.TIMER_FN(self._on_timer)
        self._c_echo = C.LOG_FN(self._on_echo) if echo else None
        # Hot-path bindings.
        self._c_submit = C.lib.pgbank_submit
        self._c_hold = C.lib.pgbank_engine_hold
        self._c_action = C.lib.pgbank_engine_socket_action

    # --- life cycle -------------------------------------------------------------

    async def __aenter__(self) -> "Bank":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def open(self) -> "Bank":
        """Opens the Bank in the running loop (starting the private server
        when it is the database); returns the Bank.  Connections open on the
        first operation.  Opening an open Bank does nothing."""
        loop = asyncio.get_running_loop()
        if self._loop is not None:
            self._check_loop(loop)
        if self._eng:
            return self
        if self._closed:
            raise ShutDown("the Bank is closed")
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._closed:
                raise ShutDown("the Bank is closed")
            if self._eng:  # opened meanwhile by another task
                self._check_loop(loop)
                return self
            if self._conninfo is None:
                self._conninfo = await loop.run_in_executor(None, self._start_private_server)
            self._create_engine(loop)
        return self

    async def connect(self, timeout: float = 10.0) -> "Bank":
        """Opens the Bank and every connection of its engine now, and waits
        until they are all ready (operations otherwise open them lazily, so
        the first ones start staggered).  Raises DatabaseError when they are
        not ready within ``timeout`` seconds.  Returns the Bank."""
        await self.open()
        loop = asyncio.get_running_loop()
        C.lib.pgbank_engine_connect(self._eng)
        st = C.pgbank_engine_stats()
        C.lib.pgbank_engine_get_stats(self._eng, ctypes.byref(st))
        total = self._connections + st.lanes
        deadline = loop.time() + timeout
        while C.lib.pgbank_engine_connected(self._eng) < total:
            if loop.time() > deadline:
                why = (C.lib.pgbank_engine_error(self._eng) or b"").decode(errors="replace")
                raise DatabaseError(f"{C.lib.pgbank_engine_connected(self._eng)} of {total} "
                                    f"connections ready after {timeout} s"
                                    f"{': ' + why if why else ''}")
            await asyncio.sleep(0.005)
        return self

    def _start_private_server(self) -> str:
        """Runs in an executor thread: it may run initdb and pg_ctl."""
        b = C.blocking
        err = ctypes.create_string_buffer(1024)
        if self._data_dir is not None:
            data_dir = self._data_dir
        else:
            buf = ctypes.create_string_buffer(4096)
            if b.pgbank_server_default_dir(buf, len(buf)) != 0:
                raise Error("the default data directory is too long; pass data_dir=")
            data_dir = os.fsdecode(buf.value)
        self._where = f"the private server in {data_dir}"
        if b.pgbank_server_start(C.fs(data_dir), err, len(err)) != 0:
            raise DatabaseError(f"could not start the private server in {data_dir}: "
                                f"{err.value.decode(errors='replace')}")
        ci = ctypes.create_string_buffer(4096)
        if b.pgbank_server_conninfo(C.fs(data_dir), ci, len(ci)) != 0:
            raise DatabaseError(f"no connection string for the private server in {data_dir}")
        conninfo = os.fsdecode(ci.value)
        # The user never has to run `pgbank init` on their private server.
        if b.pgbank_schema_init(C.fs(conninfo), err, len(err)) != 0:
            raise DatabaseError(f"could not create the schema in {self._where}: "
                                f"{C.scrub(conninfo, err.value.decode(errors='replace'))}")
        return conninfo

    def _create_engine(self, loop: asyncio.AbstractEventLoop) -> None:
        opt = C.pgbank_options()
        C.lib.pgbank_options_init(ctypes.byref(opt))
        conninfo = C.fs(self._conninfo)
        opt.conninfo = conninfo
        opt.connections = self._connections
        opt.pipeline_depth = self._pipeline_depth
        opt.unnamed_statements = int(self._unnamed)
        opt.connect_timeout_ms = self._connect_timeout_ms
        if self._batch_max:
            opt.batch_max = self._batch_max
        if self._batch_inflight:
            opt.batch_inflight = self._batch_inflight
        if self._c_echo is not None:
            opt.echo = self._c_echo
        eng = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        rc = C.lib.pgbank_engine_new(ctypes.byref(eng), ctypes.byref(opt), err, len(err))
        if rc != 0:
            msg = C.scrub(self._conninfo, err.value.decode(errors="replace")) or C.strerror(rc)
            if rc in (C.ECONNINFO, C.EINVAL):
                raise InvalidInput(f"could not create the engine: {msg}")
            raise Error(f"could not create the engine: {msg}")
        self._loop = loop
        self._eng = eng.value
        rc = C.lib.pgbank_engine_set_loop(self._eng, self._c_socket, self._c_timer, None)
        if rc != 0:  # cannot happen with both callbacks given; never leave it half-made
            C.lib.pgbank_engine_free(self._eng)
            self._eng = 0
            raise Error(f"could not attach the engine to the loop: {C.strerror(rc)}")

    async def close(self) -> None:
        """Closes the Bank: operations still pending complete now with
        ShutDown (UnknownOutcome when their COMMIT had been sent), the
        connections close, the loop stops watching them.  Closing a closed
        Bank does nothing."""
        if self._eng:
            self._check_loop(asyncio.get_running_loop())
        self._shutdown()

    def _shutdown(self) -> None:
        self._closed = True
        eng, self._eng = self._eng, 0
        if not eng:
            return
        if self._loop is not None and self._loop.is_closed():
            raise Error("the Bank's event loop is closed: close the Bank inside it")
        # pgbank_engine_free() completes every pending operation (their
        # callbacks resolve the Futures), removes every socket and the timer.
        C.lib.pgbank_engine_free(eng)
        # Batch operations still held never reached the engine: shut down.
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._submit_held()
        loop = self._loop
        for fd, what in list(self._watch.items()):  # nothing should be left
            if what & C.POLL_IN:
                loop.remove_reader(fd)
            if what & C.POLL_OUT:
                loop.remove_writer(fd)
        self._watch.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __del__(self) -> None:
        if self._eng:
            # The engine cannot be freed from here (wrong thread, or the loop
            # is gone): it leaks, as an unclosed asyncio transport would.
            import warnings
            warnings.warn(f"unclosed {self!r}: use 'async with' or 'await bank.close()'",
                          ResourceWarning, source=self)

    def __repr__(self) -> str:
        state = "open" if self._eng else ("closed" if self._closed else "not open")
        where = self._where or "the private server (not started)"
        return (f"<pgbank.Bank {where} strategy={STRATEGIES[self._strategy]!r} "
                f"connections={self._connections} {state}>")

    @property
    def strategy(self) -> str:
        """The default strategy of money operations."""
        return STRATEGIES[self._strategy]

    @property
    def where(self) -> str:
        """The database, for display: password masked."""
        return self._where

    @property
    def pending(self) -> int:
        """Operations handed to the engine whose outcome is not in yet."""
        if not self._eng:
            return 0
        return int(C.lib.pgbank_engine_pending(self._eng)) + len(self._held)

    def stats(self) -> Dict[str, int]:
        """The engine's counters: ``batches`` sent and ``batched_ops`` in them."""
        st = C.pgbank_engine_stats()
        if self._eng:
            C.lib.pgbank_engine_get_stats(self._eng, ctypes.byref(st))
        return {"batches": st.batches, "batched_ops": st.batched_ops}

    async def _connection_parameters(self) -> Dict[str, str]:
        """The database's connection parameters as libpq parses them,
        password included: for handing the same database to another driver
        (the benchmark's SQLAlchemy side, the tests).  Never print them."""
        await self._ready()
        return C.conninfo_params(self._conninfo or "")

    def _check_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The Bank is used from `loop`.  Fine when it is the Bank's loop;
        when the Bank's loop has closed (the seed's `asyncio.run(...)` per
        call, with the Bank at module level), `loop` adopts the Bank;
        otherwise the Bank belongs to a loop still alive elsewhere."""
        if loop is self._loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            raise Error("this Bank belongs to another event loop: make one Bank per event "
                        "loop (per thread)")
        # Whatever the closed loop watched died with it: tell the new loop
        # about every socket afresh.  Operations whose tasks the old loop
        # cancelled complete here and are reported (cancelled_outcomes).
        self._loop = loop
        self._open_lock = None
        self._watch.clear()
        self._timer = None
        self._flush_handle = None
        if self._eng:
            C.lib.pgbank_engine_set_loop(self._eng, self._c_socket, self._c_timer, None)
        if self._held:
            self._flush_handle = loop.call_soon(self._flush)

    async def _ready(self) -> None:
        await self.open()  # opens, or checks the loop

    # --- money ----------------------------------------------------------------------

    async def withdraw(self, account: int, amount: int, *, strategy: Optional[str] = None,
                       key: Optional[str] = None) -> Balance:
        """Takes `amount` (minor units, > 0) from `account`; returns the new
        balance.  Raises InsufficientFunds (nothing taken), NoSuchAccount,
        Conflict (key reused with other parameters), UnknownOutcome,
        DatabaseError, InvalidInput (before anything is sent).  With `key`, a
        repeated call returns the original outcome with ``replayed`` True."""
        req = self._request(C.OP_WITHDRAW, _check_account(account), 0, _check_amount(amount),
                            strategy, key)
        if not self._eng:
            await self.open()
        return await self._start(req)

    async def deposit(self, account: int, amount: int, *, strategy: Optional[str] = None,
                      key: Optional[str] = None) -> Balance:
        """Adds `amount` (minor units, > 0) to `account`; returns the new
        balance.  Exceptions as for withdraw()."""
        req = self._request(C.OP_DEPOSIT, _check_account(account), 0, _check_amount(amount),
                            strategy, key)
        if not self._eng:
            await self.open()
        return await self._start(req)

    async def transfer(self, from_account: int, to_account: int, amount: int, *,
                       strategy: Optional[str] = None, key: Optional[str] = None) -> Transfer:
        """Moves `amount` from `from_account` to `to_account` in one
        transaction; returns both new balances.  Exceptions as for
        withdraw(); a transfer to the same account is InvalidInput."""
        a = _check_account(from_account, "source account")
        b = _check_account(to_account, "destination account")
        amount = _check_amount(amount)
        if a == b:
            raise InvalidInput("cannot transfer from an account to itself", account=a,
                               amount=amount)
        req = self._request(C.OP_TRANSFER, a, b, amount, strategy, key)
        if not self._eng:
            await self.open()
        return await self._start(req)

    async def balance(self, account: int) -> Balance:
        """The balance of `account`.  Raises NoSuchAccount."""
        req = (C.OP_BALANCE, _check_account(account), 0, 0, C.ATOMIC, None, None)
        if not self._eng:
            await self.open()
        return await self._start(req)

    async def open_account(self, balance: int = 0) -> int:
        """Opens an account holding `balance` (minor units, >= 0); returns
        its id."""
        req = (C.OP_OPEN, 0, 0, _check_amount(balance, "opening balance", 0), C.ATOMIC, None,
               None)
        if not self._eng:
            await self.open()
        return await self._start(req)

    async def withdraw_many(self, requests: Sequence[Tuple[int, int]], *,
                            strategy: Optional[str] = None,
                            return_exceptions: bool = True) -> List[Any]:
        """Many withdrawals, (account, amount) each, all in flight at once;
        returns their outcomes in order: the new balance (Balance) or the
        exception of each (``return_exceptions=True``, the default; False
        raises the first one, once all have completed).  Cheaper per
        withdrawal than as many withdraw() calls; with the batch strategy
        they travel together.  Every request is checked before any is sent."""
        checked = [(_check_account(a), _check_amount(m)) for a, m in requests]
        st = self._strategy if strategy is None else _check_strategy(strategy)
        if not checked:
            return []
        if not self._eng:
            await self.open()
        if asyncio.get_running_loop() is not self._loop:
            self._check_loop(asyncio.get_running_loop())
        n = len(checked)
        group = _Group(self._loop.create_future(), checked, st, return_exceptions)
        start = self._start_one
        for i, (a, m) in enumerate(checked):
            try:
                start(C.OP_WITHDRAW, a, 0, m, st, None, None, group, i)
            except Error as e:  # the rest never went: they end with this error
                for j in range(i, n):
                    self._group_done(group, j, e, False)
                break
        return await group.fut

    # --- the engine's side -------------------------------------------------------

    def _grow(self) -> None:
        for _ in range(_POOL_GROWTH):
            op = C.pgbank_op()
            C.lib.pgbank_op_init(op, C.OP_WITHDRAW)
            addr = ctypes.addressof(op)
            self._slot_of[addr] = len(self._ops)
            self._free.append(len(self._ops))
            self._ops.append(op)
            self._addrs.append(addr)
            self._ctx.append(None)

    def _request(self, kind: int, account: int, to_account: int, amount: int,
                 strategy: Optional[str], key: Optional[str]) -> tuple:
        """A money operation with every argument checked: nothing is sent
        for a request that fails here."""
        st = self._strategy if strategy is None else _check_strategy(strategy)
        kbuf = None
        if key is not None:
            kbuf = _check_key(key)
        return (kind, account, to_account, amount, st, key, kbuf)

    def _start(self, req: tuple) -> asyncio.Future:
        """Submits a checked request; returns its Future."""
        loop = self._loop
        if asyncio.get_running_loop() is not loop:
            self._check_loop(asyncio.get_running_loop())
            loop = self._loop
        fut = loop.create_future()
        self._start_one(*req, fut, None)
        return fut

    def _start_one(self, kind: int, account: int, to_account: int, amount: int, st: int,
                   key: Optional[str], kbuf: Any, target: Any, index: Optional[int]) -> None:
        """Fills a pooled pgbank_op and submits it (batch: holds it for
        _flush).  Raises when the engine refuses it; then nothing was sent
        and `target` is left alone."""
        eng = self._eng
        if not eng:
            raise ShutDown("the Bank is closed", account=account or None, key=key)
        free = self._free
        if not free:
            self._grow()
        i = free.pop()
        C.OP_IN.pack_into(self._ops[i], C.OP_IN_OFFSET, kind, st, account, to_account, amount,
                          self._c_done_addr, 0,
                          ctypes.addressof(kbuf) if kbuf is not None else 0)
        # Everything the callback needs, and the key's buffer kept alive.
        self._ctx[i] = (target, index, kind, account, to_account, amount, st, key, kbuf)
        if st == C.BATCH:
            self._held.append(i)
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_soon(self._flush)
            return
        err = self._submit_slot(eng, i)
        if err is not None:
            raise err

    def _submit_slot(self, eng: int, i: int) -> Optional[Error]:
        """pgbank_submit() of slot i.  On a refusal the slot is released and
        the error returned (the callback will never run)."""
        rc = self._c_submit(eng, self._addrs[i]) if eng else C.ESHUTDOWN
        if rc == 0:
            return None
        _, _, kind, account, _, amount, _, key, _ = self._ctx[i]
        self._ctx[i] = None
        self._free.append(i)
        if rc == C.ESHUTDOWN:
            return ShutDown(f"{_OP_NAMES[kind]}: the Bank is closed", account=account or None,
                            key=key)
        return InvalidInput(f"{_OP_NAMES[kind]}: the engine refused the operation: "
                            f"{C.strerror(rc)}", account=account or None, amount=amount, key=key)

    def _flush(self) -> None:
        """Hands the held batch operations to the engine, together.

        pgbank_submit() sends at once when a batch slot is free: the
        operations of one loop iteration, submitted one after the other,
        would go as a batch of one followed by a batch of the rest.  Under
        pgbank_engine_hold() they wait in the engine and leave together on
        release."""
        self._flush_handle = None
        if not self._held:
            return
        eng = self._eng
        if eng:
            self._c_hold(eng, 1)
        try:
            self._submit_held()
        finally:
            if eng:
                self._c_hold(eng, 0)

    def _submit_held(self) -> None:
        held, self._held = self._held, []
        eng = self._eng
        for i in held:
            target, index = self._ctx[i][0], self._ctx[i][1]
            err = self._submit_slot(eng, i)
            if err is not None:
                self._deliver(target, index, None, err, False)

    def _on_done(self, addr: int) -> None:
        """pgbank_done_fn: runs from inside the engine, exactly once per
        operation.  Must not raise (it returns into C)."""
        ctx = None
        try:
            i = self._slot_of[addr]
            ctx = self._ctx[i]
            self._ctx[i] = None
            status, balance, to_balance, new_id, replayed, retries = \
                C.RESULT.unpack_from(self._ops[i], C.RESULT_OFFSET)
            kind = ctx[2]
            if status == C.OK and not replayed and not retries and kind < C.OP_TRANSFER:
                value: Any = Balance(balance)  # the common case: a new balance
                ok = True
            else:
                ok = status == C.OK
                if ok:
                    value = self._value(kind, balance, to_balance, new_id, replayed, retries)
                else:
                    value = self._exception(ctx, status, balance, replayed, self._ops[i])
            self._free.append(i)
            target = ctx[0]
            if ctx[1] is None and not target.cancelled():
                if ok:
                    target.set_result(value)
                else:
                    target.set_exception(value)
            else:
                self._deliver(target, ctx[1], ctx, value, ok)
        except BaseException as e:  # never into C
            self._callback_failed("completion", e)
            self._fail_awaiter(ctx, e)

    def _fail_awaiter(self, ctx: Optional[tuple], e: BaseException) -> None:
        """After a failure inside the completion callback: the awaiting task
        must not wait forever; it gets an Error saying what happened."""
        try:
            if ctx is None:
                return
            err = Error(f"pgbank: internal error reading the outcome: {e!r}")
            target, index = ctx[0], ctx[1]
            if index is not None:
                self._group_done(target, index, err, False)
            elif not target.done():
                target.set_exception(err)
        except BaseException:
            pass

    def _deliver(self, target: Any, index: Optional[int], ctx: Optional[tuple], value: Any,
                 ok: bool) -> None:
        """An outcome to its Future, its group, or - when the awaiting task
        was cancelled - to Bank.cancelled_outcomes and the log."""
        if index is not None:
            self._group_done(target, index, value, ok)
        elif target.cancelled():
            if ctx is not None:
                self._report_cancelled(ctx, value, ok)
        elif ok:
            target.set_result(value)
        else:
            target.set_exception(value)

    @staticmethod
    def _value(kind: int, balance: int, to_balance: int, new_id: int, replayed: int,
               retries: int) -> Any:
        if kind == C.OP_OPEN:
            return new_id
        if kind == C.OP_TRANSFER:
            return Transfer(balance, to_balance, bool(replayed), retries)
        b = Balance(balance)
        if replayed:
            b.replayed = True
        if retries:
            b.retries = retries
        return b

    def _exception(self, ctx: tuple, status: int, balance: int, replayed: int,
                   op: C.pgbank_op) -> Error:
        _, _, kind, account, to_account, amount, st, key, _ = ctx
        message = C.scrub(self._conninfo, op.result.message.decode(errors="replace"))
        sqlstate = op.result.sqlstate.decode(errors="replace")
        what = _OP_NAMES[kind]
        kw = dict(account=account if kind != C.OP_OPEN else None,
                  amount=amount if kind != C.OP_BALANCE else None,
                  key=key, replayed=bool(replayed), sqlstate=sqlstate)
        if status == C.INSUFFICIENT_FUNDS:
            return InsufficientFunds(
                f"insufficient funds: account {account} holds {balance}, the {what} needs "
                f"{amount}{' (replayed)' if replayed else ''}", balance=balance, **kw)
        detail = f"{what}: {C.STATUS_NAMES[status] if status < len(C.STATUS_NAMES) else status}"
        if message:
            detail += f": {message}"
        if status == C.NO_SUCH_ACCOUNT:
            return NoSuchAccount(detail, **kw)
        if status == C.CONFLICT:
            return Conflict(detail, **kw)
        if status == C.UNKNOWN_OUTCOME:
            return UnknownOutcome(detail, **kw)
        if status == C.RETRIES_EXHAUSTED:
            return RetriesExhausted(detail, **kw)
        if status == C.SHUT_DOWN:
            return ShutDown(detail, **kw)
        if status in (C.INVALID_AMOUNT, C.INVALID_INPUT):
            return InvalidInput(detail, **kw)
        if sqlstate:
            detail += f" (SQLSTATE {sqlstate})"
        return DatabaseError(detail, **kw)

    def _group_done(self, group: _Group, index: int, value: Any, ok: bool) -> None:
        group.results[index] = value
        group.left -= 1
        if group.left:
            return
        fut = group.fut
        if fut.cancelled():
            for (account, amount), r in zip(group.requests, group.results):
                ok = not isinstance(r, BaseException)
                self.cancelled_outcomes.append(Outcome(
                    "withdraw", account, amount, None, None, STRATEGIES[group.strategy],
                    "ok" if ok else r.status, r if ok else None, "" if ok else str(r)))
            log.warning("pgbank: %d withdrawals completed after their awaiting task was "
                        "cancelled (see Bank.cancelled_outcomes)", len(group.results))
            return
        if not group.return_exceptions:
            for r in group.results:
                if isinstance(r, BaseException):
                    fut.set_exception(r)
                    return
        fut.set_result(group.results)

    def _report_cancelled(self, ctx: tuple, value: Any, ok: bool) -> None:
        """An outcome nobody awaits any more: kept and logged, never dropped."""
        _, _, kind, account, to_account, amount, st, key, _ = ctx
        status = "ok" if ok else value.status
        out = Outcome(op=_OP_NAMES[kind], account=account if kind != C.OP_OPEN else None,
                      amount=amount if kind != C.OP_BALANCE else None,
                      to_account=to_account if kind == C.OP_TRANSFER else None, key=key,
                      strategy=STRATEGIES[st], status=status,
                      result=value if ok else None, message="" if ok else str(value))
        self.cancelled_outcomes.append(out)
        log.warning("pgbank: a %s whose awaiting task was cancelled completed: %s%s", out.op,
                    out.status, f" (result {out.result})" if ok else f" ({out.message})")

    def _callback_failed(self, where: str, e: BaseException) -> None:
        self._callback_errors += 1
        try:
            log.error("pgbank: error in the engine's %s callback", where, exc_info=e)
        except BaseException:
            pass

    # --- the event loop's side -----------------------------------------------------

    def _on_socket(self, arg: Any, fd: int, what: int) -> None:
        """pgbank_socket_fn: watch fd for what, or stop (PGBANK_POLL_REMOVE)."""
        try:
            loop = self._loop
            old = self._watch.get(fd, 0)
            new = 0 if what & C.POLL_REMOVE else what & (C.POLL_IN | C.POLL_OUT)
            if (old ^ new) & C.POLL_IN:
                if new & C.POLL_IN:
                    loop.add_reader(fd, self._readable, fd)
                else:
                    loop.remove_reader(fd)
            if (old ^ new) & C.POLL_OUT:
                if new & C.POLL_OUT:
                    loop.add_writer(fd, self._writable, fd)
                else:
                    loop.remove_writer(fd)
            if new:
                self._watch[fd] = new
            else:
                self._watch.pop(fd, None)
        except BaseException as e:
            self._callback_failed("socket", e)

    def _on_timer(self, arg: Any, timeout_ms: int) -> None:
        """pgbank_timer_fn: wake the engine after timeout_ms (-1: never)."""
        try:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if timeout_ms >= 0:
                loop = self._loop
                self._timer = (loop.call_later(timeout_ms / 1000.0, self._timer_fired)
                               if timeout_ms else loop.call_soon(self._timer_fired))
        except BaseException as e:
            self._callback_failed("timer", e)

    def _readable(self, fd: int) -> None:
        if self._eng:
            self._c_action(self._eng, fd, C.POLL_IN)

    def _writable(self, fd: int) -> None:
        if self._eng:
            self._c_action(self._eng, fd, C.POLL_OUT)

    def _timer_fired(self) -> None:
        self._timer = None
        if self._eng:
            self._c_action(self._eng, C.SOCKET_TIMEOUT, 0)

    def _on_echo(self, arg: Any, line: bytes) -> None:
        try:
            text = C.scrub(self._conninfo, line.decode(errors="replace"))
            if callable(self._echo):
                self._echo(text)
            else:
                _echo_to_log(text)
        except BaseException as e:
            self._callback_failed("echo", e)

    # --- blocking parts, in the loop's default executor ----------------------------------

    async def history(self, account: int, limit: int = 0) -> List[JournalEntry]:
        """The journal of `account`, newest first, at most `limit` entries
        (0: all).  Runs on a connection of its own in the loop's default
        executor.  Raises NoSuchAccount."""
        account = _check_account(account)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 1 << 30:
            raise InvalidInput(f"limit must be an int >= 0 (got {limit!r})")
        await self._ready()
        return await self._loop.run_in_executor(None, self._history, account, limit)

    def _history(self, account: int, limit: int) -> List[JournalEntry]:
        rows: List[JournalEntry] = []

        def row(arg: Any, e: Any) -> None:
            try:
                x = e.contents
                rows.append(JournalEntry(x.seq, x.account, (x.op or b"").decode(), x.amount,
                                         x.balance_after, (x.key or b"").decode(),
                                         (x.strategy or b"").decode(), (x.at or b"").decode(),
                                         (x.role or b"").decode(),
                                         (x.application or b"").decode()))
            except BaseException as exc:
                self._callback_failed("history", exc)

        cb = C.HISTORY_FN(row)
        err = ctypes.create_string_buffer(1024)
        rc = C.blocking.pgbank_history(C.fs(self._conninfo), account, limit, cb, None, err,
                                       len(err))
        if rc == C.ENOTFOUND:
            raise NoSuchAccount(f"account {account} does not exist", account=account)
        if rc != 0:
            raise DatabaseError(self._c_error("history", rc, err), account=account)
        return rows

    async def audit(self) -> AuditReport:
        """Checks that every balance equals its opening balance plus its
        journal, that none is negative, and that the money adds up.  Returns
        the report (``ok`` True only when everything holds).  Runs on a
        connection of its own in the loop's default executor."""
        await self._ready()
        return await self._loop.run_in_executor(None, self._audit)

    def _audit(self) -> AuditReport:
        problems: List[Tuple[int, int, int]] = []

        def problem(arg: Any, account: int, balance: int, expected: int) -> None:
            problems.append((account, balance, expected))

        cb = C.AUDIT_FN(problem)
        rep = C.pgbank_audit_report()
        err = ctypes.create_string_buffer(1024)
        rc = C.blocking.pgbank_audit(C.fs(self._conninfo), ctypes.byref(rep), cb, None, err,
                                     len(err))
        if rc < 0:
            raise DatabaseError(self._c_error("audit", rc, err))
        return AuditReport(rc == 1, rep.accounts, rep.mismatched, rep.negative,
                           rep.total_balance, rep.opening_total, rep.deposits, rep.withdrawals,
                           rep.money_lost, rep.money_created, problems, rep.external,
                           rep.external_net, rep.external_by.decode(errors="replace"))

    async def init_schema(self) -> None:
        """Creates pgbank's schema in the database, idempotently (what
        ``pgbank init`` does; the private server gets it by itself).  Call it
        before the first operation."""
        await self._ready()
        await self._loop.run_in_executor(None, self._init_schema)

    def _init_schema(self) -> None:
        err = ctypes.create_string_buffer(1024)
        rc = C.blocking.pgbank_schema_init(C.fs(self._conninfo), err, len(err))
        if rc != 0:
            raise DatabaseError(self._c_error("schema init", rc, err))

    def _c_error(self, what: str, rc: int, err: Any) -> str:
        msg = err.value.decode(errors="replace") or C.strerror(rc)
        return f"{what} failed in {self._where}: {C.scrub(self._conninfo, msg)}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (it may be
    replaced after the handler was made, as test runners do)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _echo_to_log(line: str) -> None:
    """echo=True: to the "pgbank.echo" logger.  Unless the application gave
    that logger handlers of its own, pgbank gives it one that writes to
    stderr (and keeps the lines from reaching the root logger twice)."""
    if not echo_log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        echo_log.addHandler(handler)
        echo_log.propagate = False
    if echo_log.level == logging.NOTSET:
        echo_log.setLevel(logging.INFO)
    echo_log.info("%s", line)
