pgbank_db_test("an application role can move money only through pgbank's functions"
               test_security.c)
target_link_libraries(test_security PRIVATE PkgConfig::LIBPQ)
