#!/usr/bin/env bash
# run.sh - runs files of the Python package's pytest suite against the build
# tree: the library next to the given pgbank binary, the package in python/.
# CTest runs it through pgbank_cli_test (tests/python.cmake), so it gets the
# throwaway server's environment like every other database test.
#
# Usage: run.sh PGBANK_BINARY [TEST_FILE...]
#   TEST_FILE defaults to $PGBANK_PYTEST (set per test by tests/python.cmake).
#   $PGBANK_PYTHON: the interpreter (default /usr/bin/python3: Debian's, with
#   python3-pytest, python3-sqlalchemy and python3-asyncpg; a python3 earlier
#   on PATH, e.g. pyenv's, may lack them).
set -euo pipefail

bin=${1:?usage: run.sh PGBANK_BINARY [TEST_FILE...]}
shift
build=$(cd "$(dirname "$bin")" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
py=${PGBANK_PYTHON:-/usr/bin/python3}
files=("$@")
[ ${#files[@]} -gt 0 ] || read -r -a files <<<"${PGBANK_PYTEST:?no test file given}"

if ! "$py" -c 'import pytest, sqlalchemy, asyncpg' 2>/dev/null; then
    echo "run.sh: $py lacks pytest, SQLAlchemy or asyncpg: install python3-pytest" \
         "python3-sqlalchemy python3-asyncpg (scripts/deps.sh test), or set PGBANK_PYTHON" >&2
    exit 1
fi

# This build's library, whatever else the environment names.
export PGBANK_LIBRARY=$build/libpgbank.so.0
export PGBANK_BUILD_DIR=$build
export PYTHONPATH=$here/..${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
cd "$here"
exec "$py" -m pytest -v -p no:cacheprovider "${files[@]}"
