# The private server run as root as a security boundary (docs/SECURITY.md):
# every attack of the review performed and shown to fail with nothing
# changed.  Each test starts servers of its own in mkdtemp directories (no
# fixture), through with_server.sh like every database test.  Not as root
# the boundary test runs what it can and reports itself skipped (77).
set(PGBANK_BOUNDARY_TEST
  "the private server run as root follows no planted link and takes over no directory")
add_test(NAME "${PGBANK_BOUNDARY_TEST}"
         COMMAND ${PGBANK_WITH_SERVER} --fixture bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_root_files.sh
                 $<TARGET_FILE:pgbank>)
set_tests_properties("${PGBANK_BOUNDARY_TEST}" PROPERTIES LABELS "cli;boundary" TIMEOUT 600
  SKIP_RETURN_CODE 77)
pgbank_private_server_only("${PGBANK_BOUNDARY_TEST}"
  "it attacks the private server's directory as root")
