# Shell tests of the pgbank command (tests/cli_*.sh), each against the
# throwaway server through PGBANK_DATA_DIR; cli_lib.sh is their harness.
# Run them alone with `ctest -L cli`.
set(PGBANK_CLI_TESTS
  "the pgbank command explains itself and refuses bad usage" cli_usage.sh
  "pgbank withdraws with every strategy and refuses overdrafts" cli_withdraw.sh
  "ten concurrent pgbank withdrawals take the money exactly once" cli_concurrency.sh
  "pgbank never prints a database password" cli_password.sh
  "pgbank works on the seed's own accounts table without init" cli_seed_table.sh
  "pgbank deposits, transfers, replays keys, shows history and audits the journal" cli_money.sh)
while(PGBANK_CLI_TESTS)
  list(POP_FRONT PGBANK_CLI_TESTS title script)
  pgbank_cli_test("${title}" ${script})
  set_tests_properties("${title}" PROPERTIES LABELS cli)
endwhile()

# Needs no database: every pgbank command line README.md, docs/*.md, the man
# page and the --help texts show, run under PGBANK_PARSE_ONLY=1.
set(title "every pgbank command line the docs, the man page and --help show is accepted")
add_test(NAME "${title}" COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_doc_commands.sh
                                 $<TARGET_FILE:pgbank>)
set_tests_properties("${title}" PROPERTIES LABELS cli TIMEOUT 300)
