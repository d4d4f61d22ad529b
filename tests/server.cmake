# The private server beyond test_server.c: it restarts itself once when the
# installed PostgreSQL changed under it (its own servers, no fixture); and
# the tests' own throwaway server cannot be raced (runs the fixture program
# with state files of its own, and checks the suite's).
add_test(NAME "the private server restarts itself once when PostgreSQL is updated under it"
         COMMAND ${PGBANK_WITH_SERVER} --fixture bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_upgrade.sh
                 $<TARGET_FILE:pgbank>)
set_tests_properties("the private server restarts itself once when PostgreSQL is updated under it"
  PROPERTIES LABELS cli TIMEOUT 600)
pgbank_private_server_only("the private server restarts itself once when PostgreSQL is updated under it"
  "it manages private servers of its own")
pgbank_cli_test("the throwaway server's directory cannot be guessed and its removal touches nothing else"
                cli_fixture.sh)
set_tests_properties("the throwaway server's directory cannot be guessed and its removal touches nothing else"
  PROPERTIES LABELS cli)
pgbank_private_server_only("the throwaway server's directory cannot be guessed and its removal touches nothing else"
  "it tests the fixture's throwaway server")
