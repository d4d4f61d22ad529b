"""The ctypes structures of the package mirror include/pgbank.h exactly.

A C program, generated from the ctypes declarations themselves (so no field
can be forgotten), is compiled against the header and prints sizeof and
every offsetof; each must equal what ctypes computed.  A field added,
removed, reordered or retyped in the header fails this test.  The layout
checked is the package's, against the header of the checkout the library was
built from.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from ctypes import Structure, sizeof
from pathlib import Path
from typing import Iterator, List, Tuple

from conftest import CHECKOUT

from pgbank import _capi as C

# (C type name, ctypes Structure)
STRUCTS = [
    ("pgbank_op", C.pgbank_op),
    ("pgbank_result", C.pgbank_result),
    ("pgbank_gate", C.pgbank_gate),
    ("pgbank_options", C.pgbank_options),
    ("pgbank_engine_stats", C.pgbank_engine_stats),
    ("pgbank_journal_entry", C.pgbank_journal_entry),
    ("pgbank_audit_report", C.pgbank_audit_report),
    ("pgbank_schema_options", C.pgbank_schema_options),
]


def members(st: type, prefix: str = "") -> Iterator[Tuple[str, int, int]]:
    """(C member designator, ctypes offset, ctypes size), nested structs
    walked too (priv.next, result.message, ...)."""
    for name, ftype, *_ in st._fields_:
        field = getattr(st, name)
        yield prefix + name, field.offset, field.size
        if isinstance(ftype, type) and issubclass(ftype, Structure):
            for sub, off, size in members(ftype, prefix + name + "."):
                yield sub, field.offset + off, size


def c_program() -> Tuple[str, List[str]]:
    lines = ["#include <pgbank.h>", "#include <stddef.h>", "#include <stdio.h>",
             "#define M(T, m) printf(#T \" \" #m \" %zu %zu\\n\", offsetof(T, m), "
             "sizeof(((T *)0)->m))", "int main(void) {"]
    expected = []
    for cname, st in STRUCTS:
        lines.append(f'    printf("{cname} sizeof %zu %zu\\n", sizeof({cname}), '
                     f'_Alignof({cname}));')
        expected.append(f"{cname} sizeof {sizeof(st)} {C.ctypes.alignment(st)}")
        for member, off, size in members(st):
            lines.append(f"    M({cname}, {member});")
            expected.append(f"{cname} {member} {off} {size}")
    lines += ["    return 0;", "}"]
    return "\n".join(lines) + "\n", expected


def test_every_structure_matches_the_header_in_size_alignment_and_offsets(tmp_path: Path) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to check the structures against pgbank.h"
    header_dir = Path(os.environ.get("PGBANK_INCLUDE_DIR") or CHECKOUT / "include")
    assert (header_dir / "pgbank.h").is_file(), header_dir
    src, expected = c_program()
    (tmp_path / "layout.c").write_text(src)
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-I", str(header_dir),
                    str(tmp_path / "layout.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = out.splitlines()
    assert len(got) == len(expected)
    mismatched = [f"C: {g!r} ctypes: {e!r}" for g, e in zip(got, expected) if g != e]
    assert not mismatched, "\n".join(mismatched)
    # The one-call readers and writers agree with the fields they pack.
    assert C.OP_IN_OFFSET == C.pgbank_op.kind.offset
    assert C.RESULT_OFFSET == C.pgbank_op.result.offset + C.pgbank_result.status.offset
    assert C.OP_IN.size == C.pgbank_op.key.offset + C.pgbank_op.key.size - C.OP_IN_OFFSET
    assert C.RESULT.size == (C.pgbank_result.retries.offset + C.pgbank_result.retries.size
                             - C.pgbank_result.status.offset)


def test_the_op_struct_round_trips_through_the_packed_writer_and_reader() -> None:
    op = C.pgbank_op()
    C.OP_IN.pack_into(op, C.OP_IN_OFFSET, C.OP_TRANSFER, C.BATCH, -5, 1 << 62, 12345,
                      0xdeadbeef, 0, 0)
    assert (op.kind, op.strategy, op.account, op.to_account, op.amount) == \
        (C.OP_TRANSFER, C.BATCH, -5, 1 << 62, 12345)
    assert op.done == 0xdeadbeef and op.key is None
    op.result.status, op.result.balance, op.result.to_balance = C.CONFLICT, -7, 8
    op.result.account, op.result.replayed, op.result.retries = 9, 1, 3
    assert C.RESULT.unpack_from(op, C.RESULT_OFFSET) == (C.CONFLICT, -7, 8, 9, 1, 3)


def test_the_constants_match_the_library() -> None:
    assert C.STRATEGY_NAMES == ("explicit", "begin", "for-update", "atomic", "serializable",
                                "batch")
    assert C.STATUS_NAMES[C.INSUFFICIENT_FUNDS] == "insufficient funds"
    assert C.STATUS_NAMES[C.SHUT_DOWN] == "shut down"
    assert C.STATUS_NAMES[C.INVALID_INPUT] == "invalid input"
    assert C.lib.pgbank_err_name(C.ENOTFOUND) == b"ENOTFOUND"
    assert C.lib.pgbank_err_name(C.ESHUTDOWN) == b"ESHUTDOWN"
