# The lab's own parts that need no database: the chaos model's bookkeeping,
# built from the command line's source (the end-to-end runs are the cli_*
# tests in race.cmake, bench.cmake and chaos.cmake).
add_executable(test_chaos_model test_chaos_model.c ${PROJECT_SOURCE_DIR}/cli/chaos_model.c)
target_include_directories(test_chaos_model PRIVATE ${PROJECT_SOURCE_DIR}/cli
  ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_chaos_model PRIVATE pgbank_static)
add_test(NAME "pgbank chaos counts every answer once and judges the journal and balances right"
         COMMAND test_chaos_model)
