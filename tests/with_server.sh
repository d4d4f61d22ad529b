#!/bin/sh
# with_server.sh - the one place that decides the environment of database
# tests.  Every test that needs the tests' database runs through it, and so
# does the fixture that sets that database up and cleans it up.
#
#   with_server.sh STATE CMD [ARG...]   runs CMD against the tests' database
#   with_server.sh --fixture CMD [ARG...]
#                                       runs the fixture itself (or a test
#                                       that starts servers of its own): the
#                                       same environment, no database yet
#
# Two modes:
#
#   the throwaway server (the default): a private server the fixture
#     started; its data directory, which the fixture wrote into STATE,
#     becomes PGBANK_DATA_DIR.
#   a database named from outside: PGBANK_TEST_DATABASE_URL set (a
#     postgresql:// URL without a query string, naming a superuser, e.g. a
#     Citus coordinator's; `make test-citus` sets it).  Tests get it as DATABASE_URL (the pgbank
#     command, Python) and as PGBANK_TEST_DATABASE_URL (test_conninfo() in
#     testlib.h, cli_lib.sh's test_db_url); the fixture runs `pgbank init`
#     there and, after the tests, drops what they created.  There is no
#     private server then: PGBANK_DATA_DIR names a path that cannot exist,
#     so whatever reaches for one fails and says where.  A test that only
#     makes sense on the private server (CTest label private-server, which
#     sets PGBANK_TEST_PRIVATE_SERVER_ONLY to the reason) is refused here
#     with that reason: run `ctest -LE private-server` in this mode.
#
# Variables that would name another database are removed, so a test never
# reaches anything but the tests' database.
set -u

external=${PGBANK_TEST_DATABASE_URL:-}
private_only=${PGBANK_TEST_PRIVATE_SERVER_ONLY:-}
for v in DATABASE_URL PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD \
         PGBANK_DATA_DIR PGBANK_TEST_DATABASE_URL PGBANK_TEST_PRIVATE_SERVER_ONLY; do
    unset "$v"
done

if [ $# -lt 2 ]; then
    echo "usage: with_server.sh STATE|--fixture CMD [ARG...]" >&2
    exit 2
fi
state=$1
shift

if [ -n "$external" ]; then
    # Tests add parameters of their own to the URL ("$URL?options=...").
    case $external in
    postgresql://*\?* | postgres://*\?*)
        echo "with_server.sh: PGBANK_TEST_DATABASE_URL may not carry a query string" \
             "(?...): the tests add theirs" >&2
        exit 2
        ;;
    postgresql://* | postgres://*) ;;
    *)
        echo "with_server.sh: PGBANK_TEST_DATABASE_URL must be a postgresql:// URL" \
             "(postgresql://USER@HOST:PORT/DATABASE)" >&2
        exit 2
        ;;
    esac
    if [ -n "$private_only" ]; then
        echo "not applicable against the database named by PGBANK_TEST_DATABASE_URL:" \
             "$private_only (run ctest -LE private-server in this mode)" >&2
        exit 1
    fi
    PGBANK_TEST_DATABASE_URL=$external
    DATABASE_URL=$external
    PGBANK_DATA_DIR=/dev/null/no-private-server-when-PGBANK_TEST_DATABASE_URL-is-set
    export PGBANK_TEST_DATABASE_URL DATABASE_URL PGBANK_DATA_DIR
    exec "$@"
fi

if [ "$state" != --fixture ]; then
    dir=
    [ -r "$state" ] && read -r dir <"$state"
    case $dir in
    /*) ;;
    *)
        echo "with_server.sh: $state names no throwaway server (did the fixture" \
             "\"the tests' database is set up\" fail?)" >&2
        exit 1
        ;;
    esac
    PGBANK_DATA_DIR=$dir
    export PGBANK_DATA_DIR
fi
exec "$@"
