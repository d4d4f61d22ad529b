# The Python package (python/pgbank) and its pytest suite, one CTest entry
# per file, against the throwaway server.  Each runs python/tests/run.sh
# through pgbank_cli_test, so it gets exactly the environment of the other
# database tests; run.sh loads this build's libpgbank.so.0 (next to the
# pgbank binary).  Run them alone with `ctest -L python`.
# The interpreter is PGBANK_PYTHON (python/python.cmake): Debian's
# /usr/bin/python3 unless told otherwise.
include(${PROJECT_SOURCE_DIR}/python/python.cmake)

set(PGBANK_PYTHON_TESTS
  "the Python package's ctypes structures match pgbank.h field by field"
    test_layout.py
  "Python: the seed's withdrawal works with every strategy, and the API answers as documented"
    test_seed.py
  "Python: ten concurrent withdrawals of 80 from 100 succeed once with every safe strategy, and 16 tasks x 1000 withdrawals add up"
    test_concurrency.py
  "Python: a cancelled task or a closed Bank never loses an operation's outcome"
    test_cancel_close.py
  "Python: an idempotency key replays the original result from a new Bank"
    test_keys.py
  "Python: bad input raises InvalidInput before anything is sent"
    test_input.py
  "Python: a database password never appears in a repr, an exception or a log"
    test_password.py
  "the Python examples run against the private server and print the seed's outcomes"
    test_examples.py
  "make install puts the Python package where Python finds it, with the library it loads"
    test_install.py
  "python/bench.py runs the seed's SQLAlchemy code and pgbank side by side and checks the money"
    test_bench.py)

# Under AddressSanitizer the interpreter is not instrumented, so the ASan
# runtime must be loaded first (LD_PRELOAD) for the sanitized library to
# load at all.  Leak detection is off for these tests: CPython leaves
# memory to the operating system at exit by design, which LeakSanitizer
# would report; the C tests keep it on for the engine itself.  Without the
# runtime the tests are registered anyway and fail, saying why.
set(PGBANK_PYTHON_ENV "")
if(PGBANK_SANITIZE)
  if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    set(pgbank_asan_name libclang_rt.asan-${CMAKE_SYSTEM_PROCESSOR}.so)
  else()
    set(pgbank_asan_name libasan.so)
  endif()
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=${pgbank_asan_name}
                  OUTPUT_VARIABLE pgbank_asan OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${pgbank_asan}" OR NOT EXISTS "${pgbank_asan}")
    set(pgbank_asan "no-asan-runtime-found-for-${CMAKE_C_COMPILER_ID}")
  endif()
  list(APPEND PGBANK_PYTHON_ENV "LD_PRELOAD=set:${pgbank_asan}"
       "ASAN_OPTIONS=set:detect_leaks=0:abort_on_error=1")
endif()

while(PGBANK_PYTHON_TESTS)
  list(POP_FRONT PGBANK_PYTHON_TESTS title file)
  pgbank_cli_test("${title}" ../python/tests/run.sh)
  set_property(TEST "${title}" APPEND PROPERTY ENVIRONMENT_MODIFICATION
    "PGBANK_PYTEST=set:${file}" "PGBANK_PYTHON=set:${PGBANK_PYTHON}" ${PGBANK_PYTHON_ENV})
  set_property(TEST "${title}" APPEND PROPERTY LABELS python)
endwhile()
