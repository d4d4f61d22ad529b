pgbank_db_test("the batch strategy answers every operation as if they ran one by one"
               test_batch.c)
target_link_libraries(test_batch PRIVATE PkgConfig::LIBPQ)
