# Tests that need a Citus cluster (label "citus").  They read the
# coordinator's URL from PGBANK_TEST_DATABASE_URL, which make test-citus
# sets; `make test` leaves them out (ctest -LE citus), so the private-mode
# suite neither depends on a cluster nor counts them.  Run by hand without
# a cluster they exit 77, which CTest reports as skipped, never as passed.
# They work in schemas of their own and drop them at the end.
add_executable(test_citus test_citus.c)
target_include_directories(test_citus PRIVATE ${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_citus PRIVATE pgbank_static PkgConfig::LIBPQ)
add_test(NAME "on Citus, the client places accounts as the cluster does and batches run on their shards' workers"
         COMMAND test_citus)
add_test(NAME "on Citus, every pgbank command works and the race lab's verdicts are those of one server"
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_citus.sh $<TARGET_FILE:pgbank>)
set_tests_properties(
  "on Citus, the client places accounts as the cluster does and batches run on their shards' workers"
  "on Citus, every pgbank command works and the race lab's verdicts are those of one server"
  PROPERTIES LABELS citus SKIP_RETURN_CODE 77 TIMEOUT 1200)
