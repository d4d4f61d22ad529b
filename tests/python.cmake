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

# Under AddressSanitizer the library cannot be loaded into an interpreter
# that is not itself instrumented (the ASan runtime must come first in the
# process), so the sanitized build does not register these tests: the
# sanitized suite covers the C engine, which is all the package calls.
if(PGBANK_SANITIZE)
  return()
endif()

while(PGBANK_PYTHON_TESTS)
  list(POP_FRONT PGBANK_PYTHON_TESTS title file)
  pgbank_cli_test("${title}" ../python/tests/run.sh)
  set_property(TEST "${title}" APPEND PROPERTY ENVIRONMENT_MODIFICATION
    "PGBANK_PYTEST=set:${file}" "PGBANK_PYTHON=set:${PGBANK_PYTHON}")
  set_property(TEST "${title}" APPEND PROPERTY LABELS python)
endwhile()
