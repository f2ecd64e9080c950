#!/bin/sh
# run-fuzz.sh - CI part: every libFuzzer target of tests/fuzz/ runs for FUZZ_CI_TIME seconds
# (default 20: 8 targets stay under 4 minutes with the build), one test per target; fails (a skip
# line says why) when clang-14/libFuzzer cannot be built or installed. `make fuzz` is the long run
# (>= 1,000,000 executions per target, tests/fuzz/RESULTS.md). Ends with "N passed, N failed".
exec sh "$(dirname "$0")/fuzz/run.sh" --ci "$@"
