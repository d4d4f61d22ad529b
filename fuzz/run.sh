#!/usr/bin/env bash
# fuzz/run.sh - builds the fuzz targets with clang (libFuzzer, ASan, UBSan)
# and runs each for a bounded time, starting from its seed corpus
# (fuzz/corpus/<target>) and first replaying its crash regressions
# (fuzz/regressions/<target>).
#
#   fuzz/run.sh [-t SECONDS] [-s SEED] [TARGET...]
#                                 (default: 20 s, a random seed, every target)
#
# -s fixes libFuzzer's random seed: the same build then tries the same inputs
# in the same order, so a run that passed once passes again on a machine at
# least as slow (CI uses it; explore with the default random seed).
#
# Targets: conninfo (normalize/redact/scrub; the password never survives),
# amount (pgbank_parse_int64 against strtoll), args (the CLI's cli_parse,
# number and strategy parsers).  Build and work files go to $FUZZ_BUILD
# (default build-fuzz/); inputs that grew the coverage stay in
# $FUZZ_BUILD/corpus/<target> between runs.  A crash leaves its input in
# $FUZZ_BUILD/artifacts/ and makes the script exit 1: reproduce it with
# `$FUZZ_BUILD/fuzz_<target> <file>`, fix it, and keep the file in
# fuzz/regressions/<target>/ so every build replays it (tests/fuzz.cmake).
# Exit 0: no crash; 1: a crash or a regression failed; 2: cannot build.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=20
SEED=0
while getopts "t:s:h" opt; do
    case $opt in
    t) SECONDS_EACH=$OPTARG ;;
    s) SEED=$OPTARG ;;
    h) sed -n '2,22p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $SECONDS_EACH in '' | *[!0-9]*) echo "fuzz/run.sh: -t takes whole seconds" >&2; exit 2 ;; esac
case $SEED in '' | *[!0-9]*) echo "fuzz/run.sh: -s takes a whole number (0: random)" >&2; exit 2 ;; esac
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(conninfo amount args)
for t in "${TARGETS[@]}"; do
    [ -f "$ROOT/fuzz/fuzz_$t.c" ] || { echo "fuzz/run.sh: no target '$t'" >&2; exit 2; }
done

CC=${FUZZ_CC:-clang}
B=${FUZZ_BUILD:-$ROOT/build-fuzz}
mkdir -p "$B/obj" "$B/artifacts"

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz/run.sh: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$B/probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$B/probe.c" -o "$B/probe" 2>"$B/probe.log"; then
    echo "fuzz/run.sh: $CC cannot build libFuzzer targets (apt-get install libclang-rt-14-dev):" >&2
    cat "$B/probe.log" >&2
    exit 2
fi

CFLAGS=(-std=c11 -g -O1 -D_XOPEN_SOURCE=700 -D_DEFAULT_SOURCE -Wall -Wextra
        -fno-omit-frame-pointer -fno-sanitize-recover=undefined
        -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/cli")
read -r -a PQ_CFLAGS <<<"$(pkg-config --cflags libpq)"
read -r -a PQ_LIBS <<<"$(pkg-config --libs libpq)"

# The library once, instrumented for coverage and the sanitizers.
objs=()
for src in "$ROOT"/src/*.c; do
    o="$B/obj/$(basename "${src%.c}").o"
    if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ "$ROOT/include/pgbank.h" -nt "$o" ]; then
        "$CC" "${CFLAGS[@]}" "${PQ_CFLAGS[@]}" -fsanitize=fuzzer-no-link,address,undefined \
            -c "$src" -o "$o" || exit 2
    fi
    objs+=("$o")
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${TARGETS[@]}"; do
    extra=()
    [ "$t" = args ] && extra=("$ROOT/cli/args.c" "$ROOT/cli/output.c")
    echo "== fuzz_$t: building"
    "$CC" "${CFLAGS[@]}" "${PQ_CFLAGS[@]}" -fsanitize=fuzzer,address,undefined \
        "$ROOT/fuzz/fuzz_$t.c" "${extra[@]}" "${objs[@]}" "${PQ_LIBS[@]}" -lm \
        -o "$B/fuzz_$t" || exit 2
    mkdir -p "$B/corpus/$t" "$ROOT/fuzz/regressions/$t"
    echo "== fuzz_$t: replaying fuzz/regressions/$t"
    if ! "$B/fuzz_$t" -runs=0 "$ROOT/fuzz/regressions/$t" >"$B/$t.replay.log" 2>&1; then
        echo "fuzz_$t: a regression input fails again:" >&2
        tail -30 "$B/$t.replay.log" >&2
        status=1
        continue
    fi
    dict=()
    [ -f "$ROOT/fuzz/$t.dict" ] && dict=(-dict="$ROOT/fuzz/$t.dict")
    seed_says=$SEED
    [ "$SEED" -ne 0 ] || seed_says=random
    echo "== fuzz_$t: fuzzing for ${SECONDS_EACH}s (seed $seed_says)"
    if "$B/fuzz_$t" -max_total_time="$SECONDS_EACH" -seed="$SEED" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$t-" "${dict[@]}" \
        "$B/corpus/$t" "$ROOT/fuzz/corpus/$t" >"$B/$t.log" 2>&1; then
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" "$B/$t.log" |
            sed "s/^/   /"
        echo "   fuzz_$t: no crash"
    else
        echo "fuzz_$t: CRASH (log: $B/$t.log)" >&2
        grep -a -E "ERROR|check failed|SUMMARY|Test unit written" "$B/$t.log" | head -20 >&2
        status=1
    fi
done
exit $status
