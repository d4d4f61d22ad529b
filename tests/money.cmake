pgbank_db_test("deposits, transfers, retries and idempotency keys move money exactly once"
               test_money.c)
target_link_libraries(test_money PRIVATE PkgConfig::LIBPQ)
