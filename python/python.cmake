# python.cmake - the Python interpreter pgbank's Python package is tested
# with and installed for; included by tests/python.cmake and
# cmake/install.cmake.
#
# PGBANK_PYTHON: Debian's /usr/bin/python3 by default (python3-pytest,
# python3-sqlalchemy, python3-asyncpg come with `scripts/deps.sh test`); a
# python3 found first on PATH (pyenv, a virtualenv) may lack them.
# PGBANK_PYTHON_SITEDIR: where `make install` puts the package, relative to
# the install prefix (or absolute): lib/python3.X/dist-packages where the
# interpreter uses dist-packages (Debian: on its path for both /usr and
# /usr/local), else lib/python3.X/site-packages.
include_guard(GLOBAL)

if(EXISTS /usr/bin/python3)
  set(PGBANK_PYTHON_DEFAULT /usr/bin/python3)
else()
  find_program(PGBANK_PYTHON_DEFAULT NAMES python3)
endif()
set(PGBANK_PYTHON "${PGBANK_PYTHON_DEFAULT}" CACHE FILEPATH
    "Python interpreter of the Python package (tests need pytest, SQLAlchemy, asyncpg)")

set(PGBANK_PYTHON_SITEDIR_DEFAULT lib/python3/dist-packages)
if(PGBANK_PYTHON)
  execute_process(
    COMMAND ${PGBANK_PYTHON} -c [=[
import sys
kind = "dist-packages" if any(p.endswith("dist-packages") for p in sys.path) else "site-packages"
print("lib/python%d.%d/%s" % (sys.version_info[0], sys.version_info[1], kind), end="")
]=]
    OUTPUT_VARIABLE pgbank_sitedir RESULT_VARIABLE pgbank_rc ERROR_QUIET)
  if(pgbank_rc EQUAL 0 AND pgbank_sitedir)
    set(PGBANK_PYTHON_SITEDIR_DEFAULT ${pgbank_sitedir})
  endif()
endif()
set(PGBANK_PYTHON_SITEDIR "${PGBANK_PYTHON_SITEDIR_DEFAULT}" CACHE STRING
    "Where make install puts the Python package, relative to the prefix")
