# install.cmake - what `make install` adds to the targets, header and CLI
# that the top CMakeLists.txt installs: the libuv adapter header, the
# pkg-config file, the CMake package (find_package(pgbank)), the man pages,
# the examples and the Python package.  Included at the end of the top
# CMakeLists.txt.
#
# Every path is relative to the prefix chosen at install time
# (`cmake --install build --prefix P`, `make install PREFIX=P`), and DESTDIR
# is honoured, so a staged or relocated install is as correct as a plain one.

include(CMakePackageConfigHelpers)

set(PGBANK_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/pgbank)

# --- Headers --------------------------------------------------------------
install(FILES ${PROJECT_SOURCE_DIR}/include/pgbank_libuv.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# --- pkg-config -----------------------------------------------------------
# The prefix is only known for sure at install time (--prefix overrides the
# configured one), so the file is configured twice: now for everything but
# the prefix, then by an install-time step for the prefix itself.
set(PGBANK_PC_PREFIX "@PGBANK_PC_PREFIX@")
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(PGBANK_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(PGBANK_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/pgbank.pc.in
               ${PROJECT_BINARY_DIR}/pgbank.pc.stage @ONLY)
install(CODE "
  set(PGBANK_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/pgbank.pc.stage\"
                 \"${PROJECT_BINARY_DIR}/pgbank.pc\" @ONLY)
")
install(FILES ${PROJECT_BINARY_DIR}/pgbank.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- CMake package: find_package(pgbank) ----------------------------------
install(EXPORT pgbankTargets
        NAMESPACE pgbank::
        FILE pgbankTargets.cmake
        DESTINATION ${PGBANK_CMAKEDIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/pgbankConfig.cmake.in
  ${PROJECT_BINARY_DIR}/pgbankConfig.cmake
  INSTALL_DESTINATION ${PGBANK_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
# 0.x: only the same minor version is compatible (the API may still change
# between minors); SameMajorVersion once 1.0 is out.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/pgbankConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/pgbankConfig.cmake
              ${PROJECT_BINARY_DIR}/pgbankConfigVersion.cmake
        DESTINATION ${PGBANK_CMAKEDIR})

# --- Man pages --------------------------------------------------------------
install(FILES ${PROJECT_SOURCE_DIR}/man/pgbank.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/man/pgbank.3
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)

# --- Examples (documentation: they build against the installed library) ---
file(GLOB PGBANK_EXAMPLES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/examples/*.c)
install(FILES ${PGBANK_EXAMPLES}
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# --- The Python package (python/pgbank) --------------------------------------
# Into PGBANK_PYTHON_SITEDIR under the prefix (python/python.cmake), with
# _install.py telling the package where this install put libpgbank.so.0.
# Like pgbank.pc, that file is written at install time, when the prefix is
# known; it names the final prefix, never DESTDIR.
include(${PROJECT_SOURCE_DIR}/python/python.cmake)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/pgbank
        DESTINATION ${PGBANK_PYTHON_SITEDIR}
        FILES_MATCHING PATTERN "*.py" PATTERN "py.typed"
        PATTERN "__pycache__" EXCLUDE PATTERN "_install.py" EXCLUDE)
install(CODE "
  set(libdir \"${CMAKE_INSTALL_LIBDIR}\")
  if(NOT IS_ABSOLUTE \"\${libdir}\")
    set(libdir \"\${CMAKE_INSTALL_PREFIX}/\${libdir}\")
  endif()
  string(REPLACE \"\\\\\" \"\\\\\\\\\" libdir \"\${libdir}\")
  string(REPLACE \"\\\"\" \"\\\\\\\"\" libdir \"\${libdir}\")
  file(WRITE \"${PROJECT_BINARY_DIR}/pgbank_install.py\"
       \"# Written by make install: where that install put libpgbank.so.0.\\nLIBDIR = \\\"\${libdir}\\\"\\n\")
")
install(FILES ${PROJECT_BINARY_DIR}/pgbank_install.py
        DESTINATION ${PGBANK_PYTHON_SITEDIR}/pgbank RENAME _install.py)
file(GLOB PGBANK_PY_EXAMPLES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/python/examples/*.py)
install(FILES ${PGBANK_PY_EXAMPLES}
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/python)
