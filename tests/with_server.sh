#!/bin/sh
# with_server.sh - the one place that decides the environment of database
# tests.  Every test that needs the throwaway server runs through it, and so
# does the fixture that starts and stops that server.
#
#   with_server.sh STATE CMD [ARG...]   runs CMD against the throwaway server
#                                       whose data directory the fixture
#                                       wrote into STATE (PGBANK_DATA_DIR)
#   with_server.sh --fixture CMD [ARG...]
#                                       runs the fixture itself: the same
#                                       environment, no server yet
#
# Variables that would name another database are removed, so a test never
# reaches anything but its throwaway server.  (Another mode, say a database
# named from outside, belongs here too, and nowhere else.)
set -u

for v in DATABASE_URL PGHOST PGHOSTADDR PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD \
         PGBANK_DATA_DIR; do
    unset "$v"
done

if [ $# -lt 2 ]; then
    echo "usage: with_server.sh STATE|--fixture CMD [ARG...]" >&2
    exit 2
fi
state=$1
shift
if [ "$state" != --fixture ]; then
    dir=
    [ -r "$state" ] && read -r dir <"$state"
    case $dir in
    /*) ;;
    *)
        echo "with_server.sh: $state names no throwaway server (did the fixture" \
             "\"a throwaway PostgreSQL server starts\" fail?)" >&2
        exit 1
        ;;
    esac
    PGBANK_DATA_DIR=$dir
    export PGBANK_DATA_DIR
fi
exec "$@"
