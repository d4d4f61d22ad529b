"""The C API of libpgbank through ctypes: the library, its structures, its functions.

Everything here mirrors ``include/pgbank.h`` exactly; the test suite compiles a
small C program against the header and compares every size and offset with
the structures below (tests/test_layout.py).  Nothing else in the package
touches ctypes declarations.

Two handles on the same library:
  - ``lib`` (``ctypes.PyDLL``): the engine's non-blocking calls, made from the
    event loop's thread.  They keep the GIL: they are short, and the engine's
    callbacks into Python run from inside them, on the same thread.
  - ``blocking`` (``ctypes.CDLL``): calls that wait on the network or on
    another process (the private server, the schema, history, audit).  They
    release the GIL and run in an executor thread.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from ctypes import (CFUNCTYPE, POINTER, Structure, Union, c_char, c_char_p, c_int, c_int64,
                    c_long, c_size_t, c_ubyte, c_uint64, c_void_p)
from pathlib import Path
from typing import List, Optional

# --- finding the library ------------------------------------------------------

SONAME = "libpgbank.so.0"

try:  # written by `make install`: the library directory of that install
    from ._install import LIBDIR as _INSTALLED_LIBDIR  # type: ignore[import]
except ImportError:  # a checkout, or `pip install ./python`
    _INSTALLED_LIBDIR = None


def library_candidates() -> List[str]:
    """Where the library is looked for, in order.

    1. ``$PGBANK_LIBRARY`` (a path to ``libpgbank.so*``);
    2. the build tree of the checkout this package sits in (``build/`` next
       to ``python/``), when the package is run from the checkout;
    3. the library directory of the ``make install`` that installed the
       package;
    4. the dynamic linker's search path (``libpgbank.so.0``, then whatever
       ``ctypes.util.find_library("pgbank")`` finds).
    """
    found: List[str] = []
    env = os.environ.get("PGBANK_LIBRARY")
    if env:
        return [env]  # named explicitly: nothing else may stand in for it
    checkout = Path(__file__).resolve().parent.parent.parent
    if (checkout / "include" / "pgbank.h").is_file():
        found.append(str(checkout / "build" / SONAME))
    if _INSTALLED_LIBDIR:
        found.append(os.path.join(_INSTALLED_LIBDIR, SONAME))
    found.append(SONAME)
    other = ctypes.util.find_library("pgbank")
    if other and other != SONAME:
        found.append(other)
    return found


def _load() -> tuple:
    tried = []
    for cand in library_candidates():
        if os.sep in cand and not os.path.exists(cand):
            tried.append(f"{cand} (no such file)")
            continue
        try:
            return ctypes.PyDLL(cand), ctypes.CDLL(cand), cand
        except OSError as e:
            tried.append(f"{cand} ({e})")
    raise ImportError("pgbank: libpgbank could not be loaded; build it with `make` in the "
                      "checkout, install it (`make install`), or set PGBANK_LIBRARY to its "
                      "path.  Tried: " + "; ".join(tried))


lib, blocking, LIBRARY_PATH = _load()

# --- constants (pgbank.h) --------------------------------------------------------

# Operation kinds (pgbank_op_kind).
OP_WITHDRAW, OP_DEPOSIT, OP_TRANSFER, OP_BALANCE, OP_OPEN = range(5)

# Results (PGBANK_STATUS_MAP, in order).
(OK, INSUFFICIENT_FUNDS, NO_SUCH_ACCOUNT, INVALID_AMOUNT, CONFLICT, RETRIES_EXHAUSTED,
 UNKNOWN_OUTCOME, DB_ERROR, SHUT_DOWN, INVALID_INPUT) = range(10)

# Strategies (pgbank_strategy) and their names, from the library itself.
STRATEGY_COUNT = 6
EXPLICIT, BEGIN, FOR_UPDATE, ATOMIC, SERIALIZABLE, BATCH = range(STRATEGY_COUNT)

# Errors (PGBANK_ERRNO_MAP).
EINVAL, ENOMEM, ECONNINFO, ECONNECT, ESHUTDOWN, ESERVER, ESCHEMA, EDB, ETIMEDOUT, ESYS, \
    ENOTFOUND = range(-1, -12, -1)

POLL_IN, POLL_OUT, POLL_REMOVE = 1, 2, 4
SOCKET_TIMEOUT = -1

# --- structures ---------------------------------------------------------------------

DONE_FN = CFUNCTYPE(None, c_void_p)                # pgbank_done_fn (the op's address)
LOG_FN = CFUNCTYPE(None, c_void_p, c_char_p)       # pgbank_log_fn
SOCKET_FN = CFUNCTYPE(None, c_void_p, c_int, c_int)  # pgbank_socket_fn
TIMER_FN = CFUNCTYPE(None, c_void_p, c_long)       # pgbank_timer_fn


class pgbank_result(Structure):
    _fields_ = [
        ("status", c_int),
        ("balance", c_int64),
        ("to_balance", c_int64),
        ("account", c_int64),
        ("replayed", c_int),
        ("retries", c_int),
        ("sqlstate", c_char * 6),
        ("message", c_char * 256),
    ]


class pgbank_gate(Structure):
    _fields_ = [("expected", c_int), ("arrived", c_int)]


# The structures mirror the header of the library this package ships with;
# tests/test_layout.py checks them against it, and the library's
# pgbank_op_size() is checked when it loads (a mismatch would let the engine
# write past the end of a pgbank_op that Python allocated).
OP_PRIVATE_SIZE = 160  # PGBANK_OP_PRIVATE_SIZE


class _pgbank_op_priv(Union):
    """The engine's private part of pgbank_op: only its layout matters here."""
    _fields_ = [("align_", c_int64), ("ptr_", c_void_p), ("bytes", c_ubyte * OP_PRIVATE_SIZE)]


class pgbank_op(Structure):
    _fields_ = [
        ("kind", c_int),
        ("strategy", c_int),
        ("account", c_int64),
        ("to_account", c_int64),
        ("amount", c_int64),
        ("done", c_void_p),       # a DONE_FN, stored as its address
        ("user_data", c_void_p),
        ("key", c_char_p),
        ("result", pgbank_result),
        ("priv", _pgbank_op_priv),
    ]


class pgbank_options(Structure):
    _fields_ = [
        ("conninfo", c_char_p),
        ("connections", c_int),
        ("unnamed_statements", c_int),
        ("echo", LOG_FN),
        ("echo_arg", c_void_p),
        ("connect_timeout_ms", c_int),
        ("pipeline_depth", c_int),
        ("retry_max", c_int),
        ("retry_budget_ms", c_int),
        ("batch_max", c_int),
        ("batch_inflight", c_int),
        ("lanes", c_int),
    ]


class pgbank_engine_stats(Structure):
    _fields_ = [("batches", c_uint64), ("batched_ops", c_uint64), ("crossings", c_uint64),
                ("lanes", c_int)]


class pgbank_journal_entry(Structure):
    _fields_ = [
        ("seq", c_int64),
        ("account", c_int64),
        ("op", c_char_p),
        ("amount", c_int64),
        ("balance_after", c_int64),
        ("key", c_char_p),
        ("strategy", c_char_p),
        ("at", c_char_p),
        ("role", c_char_p),
        ("application", c_char_p),
    ]


class pgbank_audit_report(Structure):
    _fields_ = [(n, c_int64) for n in (
        "accounts", "mismatched", "negative", "total_balance", "opening_total", "deposits",
        "withdrawals", "money_lost", "money_created")] + [
        ("external", c_int64), ("external_net", c_int64), ("external_by", c_char * 256),
        ("clamped", c_int)]


class pgbank_schema_options(Structure):
    """pgbank_schema_create()'s options."""
    _fields_ = [
        ("app_role", c_char_p),
        ("journal", c_int),
        ("warn", CFUNCTYPE(None, c_void_p, c_char_p)),
        ("warn_arg", c_void_p),
        ("distributed", c_int),
    ]


HISTORY_FN = CFUNCTYPE(None, c_void_p, POINTER(pgbank_journal_entry))
AUDIT_FN = CFUNCTYPE(None, c_void_p, c_int64, c_int64, c_int64)

# The every-operation fields, read and written with one struct call each
# instead of one ctypes attribute access per field.  Offsets come from the
# Structure above (never written twice by hand).


_PTR = "Q" if ctypes.sizeof(c_void_p) == 8 else "I"  # "P" exists only in native mode


def _packer(struct_type, fields):
    """A struct.Struct reading `fields` (name, code) of struct_type at their
    ctypes offsets, padding the gaps; and the offset it starts at."""
    start = getattr(struct_type, fields[0][0]).offset
    fmt, pos = "=", start
    for name, code in fields:
        off = getattr(struct_type, name).offset
        if off < pos:
            raise ImportError(f"pgbank: field {name} out of order")
        code = _PTR if code == "P" else code
        fmt += "x" * (off - pos) + code
        pos = off + struct.calcsize("=" + code)
    return struct.Struct(fmt), start


OP_IN, OP_IN_OFFSET = _packer(pgbank_op, [("kind", "i"), ("strategy", "i"), ("account", "q"),
                                          ("to_account", "q"), ("amount", "q"), ("done", "P"),
                                          ("user_data", "P"), ("key", "P")])
_RESULT_BASE = pgbank_op.result.offset
RESULT, _r = _packer(pgbank_result, [("status", "i"), ("balance", "q"), ("to_balance", "q"),
                                     ("account", "q"), ("replayed", "i"), ("retries", "i")])
RESULT_OFFSET = _RESULT_BASE + _r
SQLSTATE_OFFSET = _RESULT_BASE + pgbank_result.sqlstate.offset
MESSAGE_OFFSET = _RESULT_BASE + pgbank_result.message.offset
del _r

# --- functions ----------------------------------------------------------------------


def _proto(handle, name, restype, *argtypes):
    f = getattr(handle, name)
    f.restype = restype
    f.argtypes = argtypes
    return f


for _h in (lib, blocking):
    _proto(_h, "pgbank_version", c_char_p)
    _proto(_h, "pgbank_strerror", c_char_p, c_int)
    _proto(_h, "pgbank_err_name", c_char_p, c_int)
    _proto(_h, "pgbank_strategy_name", c_char_p, c_int)
    _proto(_h, "pgbank_strategy_is_safe", c_int, c_int)
    _proto(_h, "pgbank_status_name", c_char_p, c_int)
    _proto(_h, "pgbank_op_init", None, POINTER(pgbank_op), c_int)
    _proto(_h, "pgbank_options_init", None, POINTER(pgbank_options))
    _proto(_h, "pgbank_engine_new", c_int, POINTER(c_void_p), POINTER(pgbank_options),
           c_char_p, c_size_t)
    _proto(_h, "pgbank_engine_free", None, c_void_p)
    _proto(_h, "pgbank_engine_connect", c_int, c_void_p)
    _proto(_h, "pgbank_engine_error", c_char_p, c_void_p)
    _proto(_h, "pgbank_submit", c_int, c_void_p, c_void_p)
    _proto(_h, "pgbank_engine_pending", c_size_t, c_void_p)
    _proto(_h, "pgbank_engine_hold", c_int, c_void_p, c_int)
    _proto(_h, "pgbank_engine_connected", c_int, c_void_p)
    _proto(_h, "pgbank_op_size", c_size_t)
    _proto(_h, "pgbank_free", None, c_void_p)
    _proto(_h, "pgbank_engine_get_stats", None, c_void_p, POINTER(pgbank_engine_stats))
    _proto(_h, "pgbank_engine_set_loop", c_int, c_void_p, SOCKET_FN, TIMER_FN, c_void_p)
    _proto(_h, "pgbank_engine_socket_action", c_int, c_void_p, c_int, c_int)
    _proto(_h, "pgbank_schema_init", c_int, c_char_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_history", c_int, c_char_p, c_int64, c_int, HISTORY_FN, c_void_p,
           c_char_p, c_size_t)
    _proto(_h, "pgbank_audit", c_int, c_char_p, POINTER(pgbank_audit_report), AUDIT_FN,
           c_void_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_conninfo_normalize", c_void_p, c_char_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_conninfo_redact", None, c_char_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_conninfo_scrub", None, c_char_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_server_default_dir", c_int, c_char_p, c_size_t)
    _proto(_h, "pgbank_server_start", c_int, c_char_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_server_conninfo", c_int, c_char_p, c_char_p, c_size_t)
    _proto(_h, "pgbank_schema_options_init", None, POINTER(pgbank_schema_options))
    _proto(_h, "pgbank_schema_create", c_int, c_char_p, POINTER(pgbank_schema_options),
           c_char_p, c_size_t)
    _proto(_h, "pgbank_accounts_load", c_int, c_char_p, c_int64, c_int64, c_char_p, c_size_t)

VERSION: str = lib.pgbank_version().decode()
STRATEGY_NAMES = tuple(lib.pgbank_strategy_name(i).decode() for i in range(STRATEGY_COUNT))
STATUS_NAMES = tuple(lib.pgbank_status_name(i).decode() for i in range(INVALID_INPUT + 1))


def strerror(code: int) -> str:
    return lib.pgbank_strerror(code).decode()


def fs(s: Optional[str]) -> Optional[bytes]:
    """A str for C: the file system encoding (what libpq and paths expect)."""
    return None if s is None else os.fsencode(s)


def normalize(conninfo: str) -> str:
    """pgbank_conninfo_normalize(); ValueError with a password-free reason."""
    err = ctypes.create_string_buffer(512)
    p = lib.pgbank_conninfo_normalize(fs(conninfo), err, len(err))
    if not p:
        raise ValueError(err.value.decode(errors="replace"))
    try:
        return os.fsdecode(ctypes.string_at(p))
    finally:
        lib.pgbank_free(p)


def redact(conninfo: str) -> str:
    out = ctypes.create_string_buffer(1024)
    lib.pgbank_conninfo_redact(fs(conninfo), out, len(out))
    return os.fsdecode(out.value)


class _PQconninfoOption(Structure):
    _fields_ = [("keyword", c_char_p), ("envvar", c_char_p), ("compiled", c_char_p),
                ("val", c_char_p), ("label", c_char_p), ("dispchar", c_char_p),
                ("dispsize", c_int)]


def conninfo_params(conninfo: str) -> dict:
    """The parameters a connection string sets (libpq's PQconninfoParse,
    never a parser of our own): {"host": ..., "port": ..., "password": ...}.
    Only for handing the same database to another driver; never print it."""
    pq = ctypes.CDLL("libpq.so.5")  # already loaded: libpgbank links it
    pq.PQconninfoParse.restype = POINTER(_PQconninfoOption)
    pq.PQconninfoParse.argtypes = (c_char_p, POINTER(c_void_p))
    pq.PQconninfoFree.argtypes = (POINTER(_PQconninfoOption),)
    pq.PQfreemem.argtypes = (c_void_p,)
    errmsg = c_void_p()
    opts = pq.PQconninfoParse(fs(normalize(conninfo)), ctypes.byref(errmsg))
    if not opts:
        if errmsg.value:
            pq.PQfreemem(errmsg)
        raise ValueError("invalid connection string")
    try:
        out = {}
        i = 0
        while opts[i].keyword:
            if opts[i].val is not None:
                out[opts[i].keyword.decode()] = os.fsdecode(opts[i].val)
            i += 1
        return out
    finally:
        pq.PQconninfoFree(opts)


def scrub(conninfo: Optional[str], msg: str) -> str:
    """Every occurrence of the password `conninfo` carries (or PGPASSWORD)
    replaced by ****, as the library does for its own messages."""
    raw = msg.encode(errors="replace")
    buf = ctypes.create_string_buffer(raw, len(raw) * 4 + 64)
    lib.pgbank_conninfo_scrub(fs(conninfo or ""), buf, len(buf))
    return buf.value.decode(errors="replace")


if lib.pgbank_op_size() != ctypes.sizeof(pgbank_op):
    raise ImportError(f"pgbank: the library's pgbank_op is {lib.pgbank_op_size()} bytes, "
                      f"this package's {ctypes.sizeof(pgbank_op)}: the library and the "
                      f"package are not from the same version of pgbank")
