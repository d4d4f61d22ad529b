# The foundation's tests: strict parsing, connection strings, and the
# private server (which starts and removes its own throwaway server, so it
# needs no fixture).
pgbank_unit_test("numbers, strategy names and exit codes are parsed strictly" test_parse.c)
# The command line's exit codes (cli_exit_code) are checked here too.
target_sources(test_parse PRIVATE ${PROJECT_SOURCE_DIR}/cli/output.c)
target_include_directories(test_parse PRIVATE ${PROJECT_SOURCE_DIR}/cli)
pgbank_unit_test("connection strings are normalised and never leak a password" test_conninfo.c)
pgbank_unit_test("the private server initialises, starts, is reused and stops" test_server.c)
set_tests_properties("the private server initialises, starts, is reused and stops"
  PROPERTIES TIMEOUT 600)
pgbank_private_server_only("the private server initialises, starts, is reused and stops"
  "it manages private servers of its own")
