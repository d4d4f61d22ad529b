pgbank_db_test("an application role can move money only through pgbank's functions"
               test_security.c)
target_link_libraries(test_security PRIVATE PkgConfig::LIBPQ)
pgbank_db_test("pgbank's server functions refuse hostile callers and journal every change made outside pgbank"
               test_boundary.c)
target_link_libraries(test_boundary PRIVATE PkgConfig::LIBPQ)
pgbank_cli_test("an application role made by pgbank init cannot cheat, and psql's changes are journaled as external"
  cli_hostile_caller.sh)
set_tests_properties("an application role made by pgbank init cannot cheat, and psql's changes are journaled as external"
  PROPERTIES LABELS cli)
