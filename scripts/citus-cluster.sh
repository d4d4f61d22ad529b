#!/usr/bin/env bash
# citus-cluster.sh - a Citus cluster on this machine, for pgbank's tests and
# for trying pgbank on Citus: a coordinator and two workers listening on
# 127.0.0.1, all three in one directory.
#
# Usage: scripts/citus-cluster.sh start [--port BASE] DIR
#        scripts/citus-cluster.sh stop|status|url DIR
#        scripts/citus-cluster.sh restart-worker DIR N
#
#   start   creates the cluster in DIR when DIR is missing, starts what is
#           not running (a running cluster is reused), and makes sure every
#           node has the database pgbank with the citus extension, the
#           coordinator is registered and both workers are added
#   stop    stops all three nodes (fast shutdown); fine when none runs
#   status  one line per node; exit 0 when all three run, 3 otherwise
#   url     prints the coordinator's URL, postgresql://postgres@127.0.0.1:PORT/pgbank
#   restart-worker
#           stops worker N (1 or 2: fast shutdown, which ends its sessions
#           and keeps its prepared transactions) and starts it again; says
#           how long it was down (for fault tests)
#
#   --port BASE   for a new cluster: the coordinator listens on BASE and the
#                 workers on BASE+1 and BASE+2 (default: three free ports
#                 found at start).  The ports are recorded in DIR.
#
# DIR is created (mode 0700, refused when it appeared meanwhile) when it is
# missing; its parent must exist.  An existing DIR must be a cluster made by
# this script, not a symbolic link, owned by the account that runs the
# servers and closed to everyone else: anything else is refused, unchanged.
# As root the servers run as the account postgres (or $PGBANK_SERVER_USER),
# which makes DIR and writes every file in it; nothing is chowned.
#
# Every node trusts every connection from 127.0.0.1 and its unix socket (in
# DIR): any local user may connect as the superuser postgres.  A cluster for
# tests and trials on your own machine, not for money.  Settings: see
# docs/SCALING.md, "Running a cluster for tests".  PostgreSQL 15's programs
# come from $PGBANK_PG_BINDIR, else /usr/lib/postgresql/15/bin; Citus must be
# installed for it (`make citus` builds ../shared/vendor's Citus 13.2.2).
#
# Exit codes: 0 done; 1 failure (said on stderr); 2 bad usage; 3 (status)
# not running.
set -euo pipefail
umask 077 # every file of the cluster is its account's alone

NODES=(coordinator worker1 worker2)
PORT_coordinator='' PORT_worker1='' PORT_worker2='' # read_record sets them
MARKER='pgbank citus cluster 1'
CONF=citus-cluster.conf

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "citus-cluster.sh: $*" >&2; exit 1; }
bad_usage() {
    echo "citus-cluster.sh: $*" >&2
    echo "Try 'scripts/citus-cluster.sh --help'." >&2
    exit 2
}

action='' dir='' base='' worker=''
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --port) [ $# -ge 2 ] || bad_usage "--port needs a value"; base=$2; shift 2 ;;
    --port=*) base=${1#--port=}; shift ;;
    -*) bad_usage "unknown option '$1'" ;;
    *)
        if [ -z "$action" ]; then action=$1
        elif [ -z "$dir" ]; then dir=$1
        elif [ "$action" = restart-worker ] && [ -z "$worker" ]; then worker=$1
        else bad_usage "unexpected argument '$1'"; fi
        shift
        ;;
    esac
done
case $action in
start | stop | status | url | restart-worker) ;;
'') bad_usage "missing action (start, stop, status, url, restart-worker)" ;;
*) bad_usage "unknown action '$action' (start, stop, status, url, restart-worker)" ;;
esac
[ -n "$dir" ] || bad_usage "missing DIR"
if [ "$action" = restart-worker ]; then
    case $worker in
    1 | 2) ;;
    '') bad_usage "restart-worker needs the worker's number (1 or 2)" ;;
    *) bad_usage "invalid worker '$worker': 1 or 2" ;;
    esac
fi
if [ -n "$base" ]; then
    [ "$action" = start ] || bad_usage "--port goes with start only"
    case $base in '' | *[!0-9]* | 0*) bad_usage "invalid --port '$base': a port number" ;; esac
    if [ "$base" -lt 1024 ] || [ "$base" -gt 65533 ]; then
        bad_usage "invalid --port '$base': between 1024 and 65533 (three ports from BASE)"
    fi
fi
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}
[ -n "$dir" ] || bad_usage "DIR may not be /"
case $dir in *[[:cntrl:]\'\"\\]*) bad_usage "DIR may not hold quotes, backslashes or control characters" ;; esac
# Each node's unix socket, DIR/.s.PGSQL.PORT, must fit in 107 bytes.
[ "${#dir}" -le 90 ] || bad_usage "DIR is ${#dir} characters long; at most 90 (a unix socket lives there)"

# PostgreSQL's programs, talked to without anything of the caller's
# environment choosing another server.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS PGSSLMODE DATABASE_URL
export PGCONNECT_TIMEOUT=10
BINDIR=${PGBANK_PG_BINDIR:-/usr/lib/postgresql/15/bin}
for p in initdb pg_ctl postgres psql; do
    [ -x "$BINDIR/$p" ] || die "$BINDIR/$p not found: install PostgreSQL 15 (scripts/deps.sh citus)" \
                               "or set PGBANK_PG_BINDIR to the directory of its programs"
done

# The account the servers run as, and the file work done as it.
if [ "$(id -u)" -eq 0 ]; then
    acct=${PGBANK_SERVER_USER:-postgres}
    acct_uid=$(id -u "$acct" 2>/dev/null) ||
        die "running as root: no account '$acct' to run PostgreSQL as; create it" \
            "(useradd -r postgres) or set PGBANK_SERVER_USER"
    [ "$acct_uid" -ne 0 ] || die "PGBANK_SERVER_USER names '$acct', a root account; PostgreSQL refuses to run as root"
    as_acct() { (cd / && runuser -u "$acct" -- "$@"); }
else
    acct=$(id -un)
    acct_uid=$(id -u)
    as_acct() { "$@"; }
fi

# --- the directory ---------------------------------------------------------

# Reads DIR's record (as the account), setting PORT_coordinator etc.
# Returns 1 when DIR holds no record of this script.
read_record() {
    local text key value n
    as_acct test -f "$dir/$CONF" -a ! -L "$dir/$CONF" || return 1
    text=$(as_acct cat "$dir/$CONF") || return 1
    [ "$(head -n 1 <<<"$text")" = "$MARKER" ] || return 1
    n=0
    while IFS='=' read -r key value; do
        case $key in
        port_coordinator | port_worker1 | port_worker2)
            case $value in '' | *[!0-9]*) return 1 ;; esac
            printf -v "PORT_${key#port_}" '%s' "$value"
            n=$((n + 1))
            ;;
        esac
    done < <(tail -n +2 <<<"$text")
    [ "$n" -eq 3 ]
}

# An existing DIR must be this script's cluster, as this script left it.
check_dir() {
    [ ! -L "$dir" ] || die "$dir is a symbolic link; refused (give the directory itself)"
    [ -d "$dir" ] || die "$dir exists and is not a directory; refused"
    local owner mode
    owner=$(stat -c %u -- "$dir")
    mode=$(stat -c %a -- "$dir")
    [ "$owner" = "$acct_uid" ] ||
        die "$dir belongs to $(stat -c %U -- "$dir"), not to $acct who runs the servers; refused, left as it is"
    [ $((8#$mode & 8#077)) -eq 0 ] ||
        die "$dir has mode $mode, not private to $acct (this script makes it 0700); refused, left as it is"
    read_record ||
        die "$dir is not a cluster made by citus-cluster.sh (no $CONF in it); refused, left as it is." \
            "Give a missing directory and the script creates it."
}

# A port nobody listens on (127.0.0.1).
port_free() {
    ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

pick_ports() {
    local b i
    if [ -n "$base" ]; then
        for i in 0 1 2; do
            port_free $((base + i)) || die "port $((base + i)) on 127.0.0.1 is in use; choose another --port"
        done
        return
    fi
    for _ in $(seq 50); do
        b=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if port_free "$b" && port_free $((b + 1)) && port_free $((b + 2)); then
            base=$b
            return
        fi
    done
    die "found no three free consecutive ports on 127.0.0.1; pass --port BASE"
}

create_dir() {
    local parent=${dir%/*}
    [ -n "$parent" ] || parent=/
    [ -d "$parent" ] || die "$parent does not exist: create it first (DIR's parent is never created)"
    pick_ports
    # mkdir fails when DIR appeared meanwhile: nothing of anyone else is used.
    as_acct mkdir -m 700 -- "$dir" 2>/dev/null ||
        die "could not create $dir as $acct (does it exist now, or can $acct not write to $parent?)"
    printf '%s\nport_coordinator=%s\nport_worker1=%s\nport_worker2=%s\n' \
        "$MARKER" "$base" $((base + 1)) $((base + 2)) | as_acct tee "$dir/$CONF" >/dev/null
    read_record || die "could not record the ports in $dir/$CONF"
    echo "created $dir for a Citus cluster (ports $base-$((base + 2)) on 127.0.0.1)"
}

# --- the nodes -------------------------------------------------------------

port_of() { local v="PORT_$1"; echo "${!v}"; }

running() { as_acct "$BINDIR/pg_ctl" -D "$dir/$1" status >/dev/null 2>&1; }

citus_installed() {
    local libdir
    libdir=$("$BINDIR/pg_config" --pkglibdir 2>/dev/null) || libdir=${BINDIR%/bin}/lib
    [ -f "$libdir/citus.so" ] ||
        die "Citus is not installed for the PostgreSQL in $BINDIR ($libdir/citus.so is missing):" \
            "run 'make citus' (it builds Citus 13.2.2 from ../shared/vendor; see ../shared/vendor/README.md)"
}

# The settings of a node, rewritten at every start (docs/SCALING.md).
settings() {
    cat <<EOF
# Written by scripts/citus-cluster.sh at every start: edits here are lost.
listen_addresses = '127.0.0.1'
port = $(port_of "$1")
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
shared_preload_libraries = 'citus'
# pgbank's pools, the race lab and Citus's own connections between nodes.
max_connections = 300
# Distributed transactions commit with two-phase commit; a prepared
# transaction left in doubt (its session killed between PREPARE and COMMIT)
# holds its row locks until the coordinator's recovery resolves it.  Citus
# recovers every minute by default: here every second.
citus.recover_2pc_interval = '1s'
# Citus connects to this node by this name (default 'localhost', which may
# resolve to ::1, where nothing listens).
citus.local_hostname = '127.0.0.1'
EOF
}

hba() {
    cat <<'EOF'
# Written by scripts/citus-cluster.sh at every start: the local socket and
# 127.0.0.1 only, trusted.  Anyone on this machine may connect.
local all all trust
host  all all 127.0.0.1/32 trust
EOF
}

start_node() {
    local node=$1 d=$dir/$1
    if ! as_acct test -f "$d/PG_VERSION"; then
        as_acct "$BINDIR/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --locale=C \
            >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die "initdb failed for the $node in $d"; }
        echo "include 'citus-cluster.conf'" | as_acct tee -a "$d/postgresql.conf" >/dev/null
    fi
    settings "$node" | as_acct tee "$d/citus-cluster.conf" >/dev/null
    hba | as_acct tee "$d/pg_hba.conf" >/dev/null
    if running "$node"; then
        return 0
    fi
    # 9<&-: the server must not inherit (and keep) the lock on DIR.
    if ! as_acct "$BINDIR/pg_ctl" -D "$d" -l "$dir/$node.log" -w -t 60 start >/dev/null 2>&1 9<&-; then
        echo "citus-cluster.sh: the $node (port $(port_of "$node")) did not start; the end of $dir/$node.log:" >&2
        as_acct tail -n 20 "$dir/$node.log" >&2 || true
        exit 1
    fi
    STARTED+=("$node")
}

# psql NODE DB SQL: one statement on a node, stopping at the first error.
sql() {
    "$BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(port_of "$1")" -U postgres \
        -d "$2" -c "$3"
}

# Every node: the database pgbank with the citus extension.  The
# coordinator: registered, with both workers.  Each step is idempotent.
set_up() {
    local node
    for node in "${NODES[@]}"; do
        if [ "$(sql "$node" postgres "SELECT count(*) FROM pg_database WHERE datname = 'pgbank'")" = 0 ]; then
            sql "$node" postgres "CREATE DATABASE pgbank" >/dev/null
        fi
        sql "$node" pgbank "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS citus" >/dev/null
    done
    sql coordinator pgbank "SELECT citus_set_coordinator_host('127.0.0.1', $PORT_coordinator)" >/dev/null
    sql coordinator pgbank "SELECT citus_add_node('127.0.0.1', $PORT_worker1)" >/dev/null
    sql coordinator pgbank "SELECT citus_add_node('127.0.0.1', $PORT_worker2)" >/dev/null
    local n
    n=$(sql coordinator pgbank "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary'
        AND isactive AND nodeport IN ($PORT_worker1, $PORT_worker2)")
    [ "$n" = 2 ] || die "the coordinator does not list both workers as active (pg_dist_node)"
}

url() { echo "postgresql://postgres@127.0.0.1:$PORT_coordinator/pgbank"; }

lock() {
    exec 9<"$dir"
    flock -w 120 9 || die "another citus-cluster.sh holds $dir for over 2 minutes"
}

# --- the actions -----------------------------------------------------------

do_start() {
    citus_installed
    if [ -e "$dir" ] || [ -L "$dir" ]; then
        check_dir
        if [ -n "$base" ] && [ "$base" != "$PORT_coordinator" ]; then
            die "$dir holds a cluster on ports $PORT_coordinator-$PORT_worker2; --port does not move it"
        fi
    else
        create_dir
    fi
    lock
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/citus-cluster.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    STARTED=()
    local node
    for node in "${NODES[@]}"; do
        start_node "$node"
    done
    set_up
    if [ ${#STARTED[@]} -eq 0 ]; then
        echo "reusing the Citus cluster in $dir: $(url)"
    else
        echo "started the Citus cluster in $dir (${STARTED[*]}): $(url)"
    fi
}

do_stop() {
    if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
        echo "no Citus cluster in $dir: nothing to stop"
        return 0
    fi
    check_dir
    lock
    local node stopped=()
    for node in "${NODES[@]}"; do
        if running "$node"; then
            as_acct "$BINDIR/pg_ctl" -D "$dir/$node" -m fast -w -t 60 stop >/dev/null ||
                die "could not stop the $node in $dir/$node"
            stopped+=("$node")
        fi
    done
    if [ ${#stopped[@]} -eq 0 ]; then
        echo "the Citus cluster in $dir was not running"
    else
        echo "stopped the Citus cluster in $dir (${stopped[*]})"
    fi
}

do_restart_worker() {
    [ -e "$dir" ] || [ -L "$dir" ] || die "no Citus cluster in $dir (start one: scripts/citus-cluster.sh start $dir)"
    check_dir
    lock
    local node=worker$worker t0 t1
    running "$node" || die "the $node in $dir is not running (start the cluster first)"
    t0=$(date +%s%N)
    as_acct "$BINDIR/pg_ctl" -D "$dir/$node" -m fast -w -t 60 stop >/dev/null ||
        die "could not stop the $node in $dir/$node"
    if ! as_acct "$BINDIR/pg_ctl" -D "$dir/$node" -l "$dir/$node.log" -w -t 60 start >/dev/null 2>&1 9<&-; then
        echo "citus-cluster.sh: the $node (port $(port_of "$node")) did not start again; the end of $dir/$node.log:" >&2
        as_acct tail -n 20 "$dir/$node.log" >&2 || true
        exit 1
    fi
    t1=$(date +%s%N)
    echo "restarted the $node in $dir (port $(port_of "$node")): down for $(((t1 - t0) / 1000000)) ms"
}

do_status() {
    if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
        echo "no Citus cluster in $dir"
        return 3
    fi
    check_dir
    local node up=0
    for node in "${NODES[@]}"; do
        if running "$node"; then
            printf '%-12s 127.0.0.1:%s  running\n' "$node" "$(port_of "$node")"
            up=$((up + 1))
        else
            printf '%-12s 127.0.0.1:%s  stopped\n' "$node" "$(port_of "$node")"
        fi
    done
    [ "$up" -eq 3 ] || return 3
}

do_url() {
    [ -e "$dir" ] || [ -L "$dir" ] || die "no Citus cluster in $dir (start one: scripts/citus-cluster.sh start $dir)"
    check_dir
    url
}

# Not in a condition: `set -e` must hold inside the action too.  status
# returns 3 when a node is not running, which becomes the exit code.
"do_${action//-/_}"
