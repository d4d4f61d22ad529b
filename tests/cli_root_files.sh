# shellcheck shell=bash disable=SC2317  # scenarios run indirectly, through `scenario`
# cli_root_files.sh - the private server run as root is a security boundary
# (docs/SECURITY.md, "The private server, run as root").  Each scenario
# performs an attack that worked before: links planted by the server
# account in the data directory, directories prepared by another user, a
# data directory that is a link, a directory that is not pgbank's, search
# access above root's directories, TCP lines in pg_hba.conf.  Each asserts
# that the attack failed and that nothing changed: the targets' owner, mode
# and content, the directories' mode and owner, the ACLs.
#
# Runs as root (CI does): the server then runs as postgres (or
# $PGBANK_SERVER_USER).  Not as root, only the scenarios that need no other
# account run, and the test reports itself skipped (exit 77), never passed.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

ACCOUNT=${PGBANK_SERVER_USER:-postgres}
STARTED=() # data directories whose servers the exit trap stops
EXTRA=()   # directories outside $T the exit trap removes
cleanup() {
    local d
    for d in "${STARTED[@]}"; do
        "$PGBANK" server stop --data-dir "$d" >/dev/null 2>&1
    done
    rm -rf "$T" "${EXTRA[@]}"
}
trap cleanup EXIT

as_account() { setpriv --reuid="$ACCOUNT" --regid="$(id -g "$ACCOUNT")" --init-groups -- "$@"; }
as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"; }

start() { # start DIR [EXIT]: pgbank server start, expecting EXIT (default 0)
    STARTED+=("$1")
    expect_exit "${2:-0}" "$PGBANK" server start --data-dir "$1"
}

# A root-owned file with known content, mode 0600: what an attack aims at.
mkdir -m 700 "$T/victims"
victim() {
    printf 'secret %s\n' "$1" >"$T/victims/$1"
    chmod 600 "$T/victims/$1"
    echo "$T/victims/$1"
}
untouched() { # untouched NAME...: owner root, mode 0600, content intact
    local v
    for v in "$@"; do
        [ "$(stat -c '%u:%g %a' "$T/victims/$v")" = "0:0 600" ] ||
            fail "the victim $v changed: $(stat -c '%U:%G %a' "$T/victims/$v")"
        [ "$(cat "$T/victims/$v")" = "secret $v" ] || fail "the victim $v was written"
    done
}
mode_owner() { stat -c '%U %a' "$1"; }

# A server started once, then stopped: its directory belongs to ACCOUNT.
stopped_server() {
    start "$1"
    expect_exit 0 "$PGBANK" server stop --data-dir "$1"
}

# --- 1. links planted in the data directory by the server account --------

a_link_planted_as_server_log_leaves_its_target_untouched() {
    local d=$T/log
    stopped_server "$d"
    as_account ln -sf "$(victim log)" "$d/server.log"
    start "$d" 3
    expect_err_has "server.log"
    expect_err_has "symbolic link"
    untouched log
}

links_planted_as_the_files_pgbank_rewrites_are_replaced_not_followed() {
    local d=$T/conf f
    stopped_server "$d"
    as_account ln -sf "$(victim conf)" "$d/pgdata/pgbank.conf"
    as_account ln -sf "$(victim hba)" "$d/pgdata/pg_hba.conf"
    as_account ln -sf "$(victim id)" "$d/server.id"
    start "$d"
    untouched conf hba id
    for f in "$d/pgdata/pgbank.conf" "$d/pgdata/pg_hba.conf" "$d/server.id"; do
        [ -f "$f" ] && [ ! -L "$f" ] && [ "$(stat -c %U "$f")" = "$ACCOUNT" ] ||
            fail "$f is not a regular file of $ACCOUNT"
    done
}

a_link_planted_as_the_lock_file_is_refused_and_its_target_untouched() {
    local d=$T/lock
    stopped_server "$d"
    as_account rm "$d/pgbank.lock"
    as_account ln -s "$(victim lock)" "$d/pgbank.lock"
    start "$d" 3
    expect_err_has "pgbank.lock"
    expect_err_has "symbolic link"
    untouched lock
    as_account rm "$d/pgbank.lock" # what the message says to do
    start "$d"
}

a_link_planted_as_postgresql_conf_is_read_with_the_accounts_rights_only() {
    local d=$T/pgconf
    stopped_server "$d"
    as_account ln -sf "$(victim pgconf)" "$d/pgdata/postgresql.conf"
    start "$d" 3
    untouched pgconf
    case "$OUT$ERR" in *"secret pgconf"*) fail "the victim's content was shown" ;; esac
}

# --- 2. a data directory prepared beforehand -----------------------------

a_link_planted_as_initdb_log_before_the_first_start_leaves_its_target_untouched() {
    local p=$T/byaccount d
    mkdir -m 700 "$p" && chown "$ACCOUNT:" "$p"
    d=$p/d
    as_account mkdir -m 700 "$d"
    as_account touch "$d/pgbank.lock"
    as_account ln -s "$(victim initdb)" "$d/initdb.log"
    printf 'root\n' >"$d/rootfile" && chmod 600 "$d/rootfile"
    start "$d"
    untouched initdb
    [ "$(stat -c '%U %a' "$d/rootfile")" = "root 600" ] || fail "a root-owned file was given away"
    [ -f "$d/initdb.log" ] && [ ! -L "$d/initdb.log" ] || fail "initdb.log is still a link"
}

a_directory_made_by_another_user_is_refused_and_left_as_it_was() {
    local d=$T/foreign
    mkdir -m 755 "$d"
    ln -s "$(victim foreign)" "$d/initdb.log"
    printf 'root\n' >"$d/rootfile" && chmod 600 "$d/rootfile"
    chown -h nobody "$d" "$d/initdb.log"
    start "$d" 3
    expect_err_has "belongs to 'nobody'"
    [ "$(mode_owner "$d")" = "nobody 755" ] || fail "the directory changed: $(mode_owner "$d")"
    [ "$(stat -c '%U %a' "$d/rootfile")" = "root 600" ] || fail "a root-owned file was given away"
    [ "$(ls -A "$d" | tr '\n' ' ')" = "initdb.log rootfile " ] || fail "files were added"
    untouched foreign
}

# --- 3. a data directory that is a link, or not pgbank's ----------------

a_data_directory_that_is_a_link_is_refused_and_its_target_keeps_its_mode() {
    local real=$T/real
    mkdir -m 755 "$real"
    ln -s "$real" "$T/link"
    start "$T/link" 3
    expect_err_has "symbolic link"
    [ "$(stat -c %a "$real")" = 755 ] || fail "the link's target changed mode"
    [ -z "$(ls -A "$real")" ] || fail "files were made in the link's target"
}

a_shared_directory_like_tmp_is_refused_and_keeps_its_mode() {
    local d=$T/shared
    mkdir "$d" && chmod 1777 "$d" && touch "$d/someone-elses"
    start "$d" 3
    [ "$(stat -c %a "$d")" = 1777 ] || fail "its mode changed to $(stat -c %a "$d")"
    [ "$(ls -A "$d")" = someone-elses ] || fail "files were added"
}

a_non_empty_directory_that_is_not_pgbanks_is_refused() {
    local d=$T/notours
    mkdir -m 700 "$d" && touch "$d/data"
    [ "$(id -u)" -ne 0 ] || chown -R "$ACCOUNT:" "$d"
    start "$d" 3
    expect_err_has "not empty and not pgbank's"
    [ "$(ls -A "$d")" = data ] || fail "files were added"
}

a_directory_open_to_others_is_refused_not_chmodded() {
    local d=$T/open
    mkdir -m 750 "$d"
    [ "$(id -u)" -ne 0 ] || chown "$ACCOUNT:" "$d"
    start "$d" 3
    expect_err_has "mode 0750"
    [ "$(stat -c %a "$d")" = 750 ] || fail "its mode changed"
}

# --- 5. search access above the data directory ----------------------------

# acl_of DIR: its ACL as "tag:id:perm" words (python3 reads the xattr).
acl_of() {
    python3 - "$1" <<'EOF'
import os, struct, sys
try:
    b = os.getxattr(sys.argv[1], "system.posix_acl_access")
except OSError:
    sys.exit(0)
words = []
for i in range(4, len(b), 8):
    tag, perm, uid = struct.unpack("<HHI", b[i:i + 8])
    words.append("%d:%d:%d" % (tag, uid, perm))
print(" ".join(words))
EOF
}
# set_acl DIR "tag:id:perm"...: writes that ACL (ids -1 for unnamed tags).
set_acl() {
    python3 - "$@" <<'EOF'
import os, struct, sys
b = struct.pack("<I", 2)
for w in sys.argv[2:]:
    t, i, p = (int(x) for x in w.split(":"))
    b += struct.pack("<HHI", t, p, i & 0xFFFFFFFF)
os.setxattr(sys.argv[1], "system.posix_acl_access", b)
EOF
}

only_the_server_account_gains_search_access_above_the_data_directory() {
    local h d uid
    h=$(mktemp -d /tmp/pgbank-home.XXXXXX) # like /root: 0700, reachable up to it
    EXTRA+=("$h")
    mkdir -m 700 "$h/secret" && echo x >"$h/secret/file"
    d=$h/state/pgbank
    start "$d"
    expect_err_has "u:$ACCOUNT:--x"
    uid=$(id -u "$ACCOUNT")
    [ "$(acl_of "$h")" = "1:4294967295:7 2:$uid:1 4:4294967295:0 16:4294967295:1 32:4294967295:0" ] ||
        fail "the ACL of $h is '$(acl_of "$h")', not owner rwx, $ACCOUNT --x, nobody else"
    [ $(($(stat -c '%#a' "$h") & 7)) -eq 0 ] || fail "others gained access to $h"
    as_nobody ls "$h/secret" >/dev/null 2>&1 && fail "nobody can list a directory below $h"
    as_nobody stat "$h/state" >/dev/null 2>&1 && fail "nobody can reach $h/state"
    as_account ls "$d" >/dev/null || fail "$ACCOUNT cannot reach $d"
    start "$d" # reused: nothing granted twice
    case "$ERR" in *"--x"*) fail "access granted again" ;; esac
}

an_existing_acl_keeps_its_entries_and_its_mask_is_never_widened() {
    local h uid daemon
    uid=$(id -u "$ACCOUNT")
    daemon=$(id -u daemon)
    h=$(mktemp -d /tmp/pgbank-acl.XXXXXX)
    EXTRA+=("$h")
    set_acl "$h" 1:-1:7 2:"$daemon":5 4:-1:0 16:-1:5 32:-1:0
    start "$h/d"
    [ "$(acl_of "$h")" = "1:4294967295:7 2:$daemon:5 2:$uid:1 4:4294967295:0 16:4294967295:5 32:4294967295:0" ] ||
        fail "merged ACL of $h is '$(acl_of "$h")'"
    # daemon's x is masked out: raising the mask for ACCOUNT would hand it
    # to daemon as well, so pgbank refuses and changes nothing.
    h=$(mktemp -d /tmp/pgbank-acl.XXXXXX)
    EXTRA+=("$h")
    set_acl "$h" 1:-1:7 2:"$daemon":1 4:-1:0 16:-1:4 32:-1:0
    local before
    before=$(acl_of "$h")
    start "$h/d" 3
    expect_err_has "mask"
    [ "$(acl_of "$h")" = "$before" ] || fail "the ACL changed to '$(acl_of "$h")'"
}

# --- 6. pg_hba.conf: the socket only ----------------------------------

pg_hba_conf_admits_only_the_socket_even_with_listen_addresses_set() {
    local d=$T/hba url addr out
    start "$d"
    url=$("$PGBANK" server url --data-dir "$d")
    grep -q '^[[:space:]]*host' "$d/pgdata/pg_hba.conf" && fail "pg_hba.conf has a host line"
    # An older cluster's line, then TCP turned on: the start must fix both
    # pg_hba.conf (rewritten) and let nothing in over TCP.
    as_account sh -c "echo 'host all all 0.0.0.0/0 trust' >>'$d/pgdata/pg_hba.conf'"
    addr=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
    psql "$url" -XAtq -c "ALTER SYSTEM SET listen_addresses = '$addr'" || fail "ALTER SYSTEM failed"
    expect_exit 0 "$PGBANK" server stop --data-dir "$d"
    start "$d"
    grep -q '^[[:space:]]*host' "$d/pgdata/pg_hba.conf" && fail "the host line survived a start"
    [ "$(psql "$url" -XAtq -c 'SHOW listen_addresses')" = "$addr" ] || fail "not listening on $addr"
    out=$(psql "host=$addr port=5432 user=pgbank dbname=pgbank connect_timeout=5" -XAtq \
        -c 'SELECT 1' 2>&1) && fail "a TCP connection to $addr was accepted"
    case "$out" in *"no pg_hba.conf entry"*) ;; *) fail "TCP refused for another reason: $out" ;; esac
    # Other roles still come in over the socket.
    psql "$url" -XAtq -c "CREATE ROLE boundary_other LOGIN" || fail "CREATE ROLE failed"
    out=$(psql "host=$d port=5432 user=boundary_other dbname=pgbank" -XAtq -c 'SELECT current_user')
    [ "$out" = boundary_other ] || fail "another role cannot connect over the socket"
}

if [ "$(id -u)" -ne 0 ]; then
    scenario a_data_directory_that_is_a_link_is_refused_and_its_target_keeps_its_mode
    scenario a_shared_directory_like_tmp_is_refused_and_keeps_its_mode
    scenario a_non_empty_directory_that_is_not_pgbanks_is_refused
    scenario a_directory_open_to_others_is_refused_not_chmodded
    [ "$FAILED" -eq 0 ] || finish
    echo "not root: the attacks by and on other accounts were not run (skipped)"
    exit 77
fi
if ! id "$ACCOUNT" >/dev/null 2>&1 || ! command -v psql python3 >/dev/null; then
    echo "FAILED: needs the account $ACCOUNT, psql and python3" >&2
    exit 1
fi

scenario a_link_planted_as_server_log_leaves_its_target_untouched
scenario links_planted_as_the_files_pgbank_rewrites_are_replaced_not_followed
scenario a_link_planted_as_the_lock_file_is_refused_and_its_target_untouched
scenario a_link_planted_as_postgresql_conf_is_read_with_the_accounts_rights_only
scenario a_link_planted_as_initdb_log_before_the_first_start_leaves_its_target_untouched
scenario a_directory_made_by_another_user_is_refused_and_left_as_it_was
scenario a_data_directory_that_is_a_link_is_refused_and_its_target_keeps_its_mode
scenario a_shared_directory_like_tmp_is_refused_and_keeps_its_mode
scenario a_non_empty_directory_that_is_not_pgbanks_is_refused
scenario a_directory_open_to_others_is_refused_not_chmodded
scenario only_the_server_account_gains_search_access_above_the_data_directory
scenario an_existing_acl_keeps_its_entries_and_its_mask_is_never_widened
scenario pg_hba_conf_admits_only_the_socket_even_with_listen_addresses_set
finish
