# The fuzz targets (fuzz/fuzz_*.c) replay their seed corpus and their crash
# regressions in every build, so an input that once crashed stays fixed.
# With clang and libFuzzer the targets are real libFuzzer binaries (run with
# -runs=0: each input once); otherwise (gcc) fuzz/replay.c supplies main().
# Either way the sanitizers of the build apply (PGBANK_SANITIZE).  Fuzzing
# itself, for a bounded time, is fuzz/run.sh.
include(CheckCSourceCompiles)
set(PGBANK_FUZZ_DIR ${PROJECT_SOURCE_DIR}/fuzz)
set(PGBANK_HAVE_LIBFUZZER OFF)
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  check_c_source_compiles("
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
    PGBANK_LIBFUZZER_WORKS)
  unset(CMAKE_REQUIRED_FLAGS)
  set(PGBANK_HAVE_LIBFUZZER ${PGBANK_LIBFUZZER_WORKS})
endif()

# pgbank_fuzz_target(<name> <sentence> [extra sources...])
function(pgbank_fuzz_target name title)
  set(exe fuzz_${name})
  if(PGBANK_HAVE_LIBFUZZER)
    add_executable(${exe} ${PGBANK_FUZZ_DIR}/fuzz_${name}.c ${ARGN})
    target_compile_options(${exe} PRIVATE -fsanitize=fuzzer)
    target_link_options(${exe} PRIVATE -fsanitize=fuzzer)
    set(args -runs=0)
  else()
    add_executable(${exe} ${PGBANK_FUZZ_DIR}/fuzz_${name}.c ${PGBANK_FUZZ_DIR}/replay.c ${ARGN})
    set(args)
  endif()
  target_include_directories(${exe} PRIVATE ${PGBANK_FUZZ_DIR} ${PROJECT_SOURCE_DIR}/src
                                            ${PROJECT_SOURCE_DIR}/cli)
  target_link_libraries(${exe} PRIVATE pgbank_static)
  add_test(NAME "${title}"
           COMMAND ${exe} ${args} ${PGBANK_FUZZ_DIR}/corpus/${name}
                   ${PGBANK_FUZZ_DIR}/regressions/${name})
  set_tests_properties("${title}" PROPERTIES LABELS fuzz TIMEOUT 300
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()

pgbank_fuzz_target(conninfo
  "the connection-string fuzz corpus and regressions replay without a crash or a password leak")
pgbank_fuzz_target(amount
  "the amount-parser fuzz corpus and regressions replay and agree with strtoll")
pgbank_fuzz_target(args
  "the command-line fuzz corpus and regressions replay through cli_parse without a crash"
  ${PROJECT_SOURCE_DIR}/cli/args.c ${PROJECT_SOURCE_DIR}/cli/output.c)
