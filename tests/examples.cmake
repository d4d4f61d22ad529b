# The examples (examples/*.c) built against the INSTALLED library: the
# test installs into a temporary prefix (and a DESTDIR stage), builds each
# example through pkg-config and through find_package(pgbank), and runs
# them against the throwaway server.  Needs the pgbank binary (for the
# build directory and the server's URL) and the shared library built.
pgbank_cli_test("the examples build against the installed library and move money correctly"
                examples.sh)

# The libuv adapter (include/pgbank_libuv.h) in depth: a dropped connection
# followed to its new socket, detaching with operations pending.  Built with
# the project's warnings, which the header must pass too.
pkg_check_modules(LIBUV QUIET IMPORTED_TARGET libuv)
set(PGBANK_LIBUV_TEST
  "the libuv adapter runs the engine and follows a dropped connection to its new socket")
if(LIBUV_FOUND)
  pgbank_db_test("${PGBANK_LIBUV_TEST}" test_libuv_adapter.c)
  target_link_libraries(test_libuv_adapter PRIVATE PkgConfig::LIBUV PkgConfig::LIBPQ)
else()
  # Never skipped: without libuv the test is there, and fails saying why.
  # `make test` installs libuv1-dev first (scripts/deps.sh) and reconfigures.
  add_test(NAME "${PGBANK_LIBUV_TEST}"
           COMMAND sh -c "echo 'libuv1-dev is not installed: run scripts/deps.sh test (or apt-get install libuv1-dev), then make test' >&2; exit 1")
endif()
