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
if(LIBUV_FOUND)
  pgbank_db_test("the libuv adapter runs the engine and follows a dropped connection to its new socket"
                 test_libuv_adapter.c)
  target_link_libraries(test_libuv_adapter PRIVATE PkgConfig::LIBUV PkgConfig::LIBPQ)
else()
  message(STATUS "libuv not found (apt-get install libuv1-dev): the libuv adapter test is skipped")
endif()
