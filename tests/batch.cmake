pgbank_db_test("the batch strategy answers every operation as if they ran one by one"
               test_batch.c)
target_link_libraries(test_batch PRIVATE PkgConfig::LIBPQ)
pgbank_db_test("the batch strategy's lanes keep every account's arrival order, as a one-by-one replay shows"
               test_lanes.c)
target_link_libraries(test_lanes PRIVATE PkgConfig::LIBPQ)
