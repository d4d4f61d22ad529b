pgbank_db_test("the engine runs the seed's four withdrawals and proves which ones race"
               test_engine.c)
target_link_libraries(test_engine PRIVATE PkgConfig::LIBPQ)
