# shellcheck shell=bash disable=SC2317  # scenarios run indirectly, through `scenario`
# examples.sh - installs pgbank into a temporary prefix and builds the
# examples (examples/*.c) against the INSTALLED library, the way a user
# would: through pkg-config (shared and static) and through
# find_package(pgbank) in a CMake project; runs them against the tests'
# database and checks their outputs; checks the staged `make install` layout
# (DESTDIR), the pkg-config and CMake package files and the man pages.
#
# Usage: examples.sh PATH_TO_PGBANK (the build directory is its directory).
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$(dirname "$PGBANK")" && pwd)
PREFIX=$T/prefix
VERSION=$("$PGBANK" --version | sed 's/^pgbank //')

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }

# The compiler and sanitizers of the build under test: examples built
# against an ASan library must be built with ASan too.
CC=$(cache_value CMAKE_C_COMPILER)
CC=${CC:-cc}
SAN=
if [ "$(cache_value PGBANK_SANITIZE)" = ON ]; then
    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
CFLAGS="-std=c11 -Wall -Wextra -Werror $SAN"

URL=$(test_db_url) || { echo "no URL for the tests' database ('pgbank server url' failed)" >&2; exit 1; }

# The installed tree's directories, found rather than assumed (GNUInstallDirs
# may choose lib/<multiarch>).  Set by the first scenario.
PCDIR='' LIBDIR=''

pc() { PKG_CONFIG_PATH=$PCDIR pkg-config "$@"; }

# compile OUT SOURCE FLAGS...: the example built with -Werror, or a failure.
compile() {
    local out=$1 src=$2
    shift 2
    # shellcheck disable=SC2086
    run "$CC" $CFLAGS -o "$T/$out" "$SRC/examples/$src" "$@"
    [ "$RC" -eq 0 ] || fail "$src does not compile against the installed library"
    [ "$RC" -eq 0 ]
}

# Runs an example against the installed shared library.
run_example() { run env LD_LIBRARY_PATH="$LIBDIR" "$@"; }

# expect_line TEXT: some line of the last stdout is exactly TEXT.
expect_line() {
    printf '%s\n' "$OUT" | grep -qxF -- "$1" || fail "expected the line '$1'"
}

the_library_installs_into_a_prefix() {
    expect_exit 0 cmake --install "$BUILD" --prefix "$PREFIX"
    local pc
    pc=$(find "$PREFIX" -name pgbank.pc -path '*/pkgconfig/*' | head -n 1)
    [ -n "$pc" ] || { fail "no pgbank.pc installed"; return; }
    PCDIR=$(dirname "$pc")
    LIBDIR=$(dirname "$PCDIR")
    local f
    for f in bin/pgbank include/pgbank.h include/pgbank_libuv.h \
             share/man/man1/pgbank.1 share/man/man3/pgbank.3; do
        [ -e "$PREFIX/$f" ] || fail "$f is not installed"
    done
    for f in libpgbank.a libpgbank.so "libpgbank.so.$VERSION" \
             cmake/pgbank/pgbankConfig.cmake cmake/pgbank/pgbankConfigVersion.cmake \
             cmake/pgbank/pgbankTargets.cmake; do
        [ -e "$LIBDIR/$f" ] || fail "$f is not installed in $LIBDIR"
    done
    # The soname carries the major version; the link chain ends at the file.
    [ "$(readlink "$LIBDIR/libpgbank.so")" = libpgbank.so.0 ] ||
        fail "libpgbank.so does not point at libpgbank.so.0"
    if command -v objdump >/dev/null 2>&1; then
        objdump -p "$LIBDIR/libpgbank.so.$VERSION" | grep -q 'SONAME *libpgbank\.so\.0$' ||
            fail "the shared library's soname is not libpgbank.so.0"
    fi
    # pkg-config tells the installed prefix and version.
    run pc --modversion pgbank
    expect_out "$VERSION"
    run pc --variable=prefix pgbank
    expect_out "$PREFIX"
    run pc --cflags pgbank
    expect_out_has "-I$PREFIX/include"
    run pc --libs pgbank
    expect_out_has "-L$LIBDIR"
    expect_out_has "-lpgbank"
    run pc --static --libs pgbank
    expect_out_has "-lpq"
}

staged_install_honours_destdir_and_prefix() {
    local stage=$T/stage root
    expect_exit 0 env DESTDIR="$stage" cmake --install "$BUILD" --prefix /usr/local
    root=$stage/usr/local
    local f
    for f in bin/pgbank include/pgbank.h include/pgbank_libuv.h \
             share/man/man1/pgbank.1 share/man/man3/pgbank.3; do
        [ -e "$root/$f" ] || fail "$f is not staged under $root"
    done
    local pc
    pc=$(find "$root" -name pgbank.pc | head -n 1)
    [ -n "$pc" ] || { fail "no pgbank.pc staged"; return; }
    for f in libpgbank.a libpgbank.so.0 pkgconfig/pgbank.pc cmake/pgbank/pgbankConfig.cmake; do
        [ -e "$(dirname "$(dirname "$pc")")/$f" ] || fail "$f is not staged"
    done
    # The files name the final prefix, never the staging directory.
    grep -qx 'prefix=/usr/local' "$pc" || fail "pgbank.pc does not say prefix=/usr/local"
    if grep -rqF "$stage" "$root"; then
        fail "a staged file mentions the staging directory $stage"
    fi
}

withdraw_blocking_builds_with_pkg_config_and_refuses_an_overdraft() {
    # shellcheck disable=SC2046
    compile withdraw_blocking withdraw_blocking.c $(pc --cflags --libs pgbank) || return
    run env LD_LIBRARY_PATH="$LIBDIR" ldd "$T/withdraw_blocking"
    expect_out_has "$LIBDIR/libpgbank.so.0"
    local id
    run_example "$T/withdraw_blocking" "$URL" open:100 80
    [ "$RC" -eq 0 ] || fail "expected exit 0"
    id=$(printf '%s\n' "$OUT" | sed -n 's/^opened account \([0-9]*\) with 100$/\1/p')
    [ -n "$id" ] || { fail "no 'opened account N with 100' line"; return; }
    expect_line "withdrew 80 from account $id, new balance 20"
    expect_exit 1 env LD_LIBRARY_PATH="$LIBDIR" "$T/withdraw_blocking" "$URL" "$id" 80 for-update
    expect_out "refused: insufficient funds (balance 20, requested 80)"
    # The URL may also come from DATABASE_URL; the CLI sees the same account.
    expect_exit 0 env LD_LIBRARY_PATH="$LIBDIR" DATABASE_URL="$URL" \
        "$T/withdraw_blocking" "" "$id" 20
    expect_out "withdrew 20 from account $id, new balance 0"
    expect_balance "$id" 0
    expect_exit 1 env LD_LIBRARY_PATH="$LIBDIR" "$T/withdraw_blocking" "$URL" 987654321 5
    expect_out "refused: no such account 987654321"
    expect_exit 2 env LD_LIBRARY_PATH="$LIBDIR" "$T/withdraw_blocking" "$URL" "$id" 0
    expect_out_has "invalid amount"
    expect_exit 2 env LD_LIBRARY_PATH="$LIBDIR" "$T/withdraw_blocking" "$URL" "$id" 5 sideways
    expect_exit 3 env LD_LIBRARY_PATH="$LIBDIR" "$T/withdraw_blocking" \
        "host=$T/no-server-here connect_timeout=2" "$id" 5
}

withdraw_blocking_links_the_static_library() {
    # libpgbank.a with libpq shared: Debian's libpq.pc lists static
    # libraries (-lpgcommon, -lpgport) that libpq-dev does not ship, so
    # `pkg-config --static` is only usable where libpq's own list is.
    # shellcheck disable=SC2046
    compile withdraw_static withdraw_blocking.c $(pc --cflags pgbank) \
        "$LIBDIR/libpgbank.a" $(pkg-config --libs libpq) -lm || return
    run ldd "$T/withdraw_static"
    case "$OUT" in *libpgbank*) fail "the static build still needs libpgbank.so" ;; esac
    run "$T/withdraw_static" "$URL" open:10 3
    [ "$RC" -eq 0 ] || fail "expected exit 0"
    expect_out_has "new balance 7"
}

many_ops_completes_a_thousand_withdrawals_and_the_money_adds_up() {
    # shellcheck disable=SC2046
    compile many_ops many_ops.c $(pc --cflags --libs pgbank) || return
    run_example "$T/many_ops" "$URL"
    [ "$RC" -eq 0 ] || fail "expected exit 0"
    expect_line "opened 4 accounts holding 200 each"
    expect_line "800 withdrawn, 200 refused; the balances add up: 800 - 800 = 0"
    # Every account it names is really empty, as the CLI sees it.
    local ids id n=0
    ids=$(printf '%s\n' "$OUT" | sed -n 's/^account \([0-9]*\): 200 - 200 withdrawn = 0 (50 refused.*/\1/p')
    for id in $ids; do
        expect_balance "$id" 0
        n=$((n + 1))
    done
    [ "$n" -eq 4 ] || fail "expected 4 account lines of 200 - 200 = 0, got $n"
}

libuv_loop_runs_the_engine_in_an_application_loop() {
    if ! pkg-config --exists libuv; then
        echo "  (libuv is not installed: apt-get install libuv1-dev)" >&2
        fail "libuv missing"
        return
    fi
    # shellcheck disable=SC2046
    compile libuv_loop libuv_loop.c $(pc --cflags --libs pgbank libuv) || return
    run_example "$T/libuv_loop" "$URL" 300
    [ "$RC" -eq 0 ] || fail "expected exit 0"
    expect_line "305 withdrawals of 1 through libuv: 300 ok, 5 refused: insufficient funds, 0 failed"
    expect_line "final balance 0"
    # The adapter frees what it allocated and leaves no handle in the loop
    # (the example exits 3 when uv_loop_close() finds one).
    [ -z "$ERR" ] || fail "expected nothing on stderr"
}

find_package_builds_a_cmake_consumer() {
    local proj=$T/consumer
    mkdir -p "$proj"
    cat >"$proj/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(pgbank $VERSION REQUIRED)
add_executable(withdraw_shared "$SRC/examples/withdraw_blocking.c")
target_link_libraries(withdraw_shared PRIVATE pgbank::pgbank)
add_executable(withdraw_static "$SRC/examples/withdraw_blocking.c")
target_link_libraries(withdraw_static PRIVATE pgbank::pgbank_static)
EOF
    expect_exit 0 cmake -S "$proj" -B "$proj/build" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$SAN"
    expect_exit 0 cmake --build "$proj/build"
    [ -x "$proj/build/withdraw_shared" ] || { fail "no consumer program"; return; }
    run ldd "$proj/build/withdraw_shared"
    expect_out_has "libpgbank.so.0 => $LIBDIR/"
    expect_exit 0 "$proj/build/withdraw_shared" "$URL" open:50 20
    expect_out_has "new balance 30"
    expect_exit 0 "$proj/build/withdraw_static" "$URL" open:50 50
    expect_out_has "new balance 0"
    # A version the package does not offer is refused.
    sed -i "s/find_package(pgbank $VERSION REQUIRED)/find_package(pgbank 99.0 REQUIRED)/" \
        "$proj/CMakeLists.txt"
    expect_exit 1 cmake -S "$proj" -B "$proj/build2" -DCMAKE_PREFIX_PATH="$PREFIX"
    expect_err_has "pgbank"
}

man_pages_document_every_command() {
    local page=$PREFIX/share/man/man1/pgbank.1 cmds cmd
    [ -e "$page" ] || { fail "pgbank.1 is not installed"; return; }
    # Every command that `pgbank --help` lists has its own section.
    cmds=$("$PGBANK" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
    [ -n "$cmds" ] || fail "could not read the commands from pgbank --help"
    for cmd in $cmds; do
        grep -q "^\.SS \"\{0,1\}pgbank $cmd\b" "$page" ||
            fail "pgbank.1 has no section for the '$cmd' command"
    done
    for section in ENVIRONMENT "EXIT STATUS" FILES EXAMPLES "SEE ALSO"; do
        grep -q "^\.SH \"\{0,1\}$section" "$page" || fail "pgbank.1 has no $section section"
    done
    # Every public function of pgbank.h is in pgbank(3).
    local fn
    while read -r fn; do
        grep -q "$fn" "$PREFIX/share/man/man3/pgbank.3" || fail "pgbank.3 does not document $fn"
    done < <(sed -n 's/^[a-z].*[ *]\(pgbank_[a-z0-9_]*\)(.*/\1/p' "$SRC/include/pgbank.h" | sort -u)
    # Rendered without a warning, where groff is installed.
    if command -v groff >/dev/null 2>&1; then
        for p in "$page" "$PREFIX/share/man/man3/pgbank.3"; do
            run groff -man -Tutf8 -ww -z "$p"
            if [ "$RC" -ne 0 ] || [ -n "$ERR" ]; then
                fail "groff warns about $(basename "$p")"
            fi
        done
    fi
}

scenario the_library_installs_into_a_prefix
scenario staged_install_honours_destdir_and_prefix
scenario withdraw_blocking_builds_with_pkg_config_and_refuses_an_overdraft
scenario withdraw_blocking_links_the_static_library
scenario many_ops_completes_a_thousand_withdrawals_and_the_money_adds_up
scenario libuv_loop_runs_the_engine_in_an_application_loop
scenario find_package_builds_a_cmake_consumer
scenario man_pages_document_every_command
finish
