#!/bin/sh
# run-sanitize.sh - the whole unit suite once more, built with AddressSanitizer and
# UndefinedBehaviorSanitizer (make SAN=1 -> build-san/, bin-san/), leak checks on. The tests run
# their commands through test_run(), which sends "bin/..." to $SALIGN_BIN_DIR, so every salign /
# salign-quantize the suite starts is the sanitizer build too. Any sanitizer report in the output
# (the test process's or a child's) is a failure even when the test that caused it passed.
# Then tests/run-serve.sh and tests/run-chat.sh against the sanitizer build.
# Ends with "N passed, N failed[, N skipped]".
cd "$(dirname "$0")/.." || exit 1
mkdir -p build
if ! make -s -j2 SAN=1 all >build/run-sanitize-build.txt 2>&1; then
    tail -n 30 build/run-sanitize-build.txt
    echo "run-sanitize: make SAN=1 failed (build/run-sanitize-build.txt)"
    echo "0 passed, 1 failed"
    exit 1
fi
# Sanitizer exits get their own codes so that they never look like an expected "exit 1".
export ASAN_OPTIONS=detect_leaks=1:exitcode=86:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export LSAN_OPTIONS=exitcode=88
export SALIGN_BIN_DIR=bin-san SALIGN_QUANTIZE=bin-san/salign-quantize SALIGN_SYNTH=bin-san/salign-synth
export OPENBLAS_NUM_THREADS=1
out=build/run-sanitize-output.txt
start=$(date +%s)
# archs_model_*: run by run-archs.sh with llama.cpp's oracles; e2e_address_space_limit_*: ulimit -v
# cannot hold ASan's shadow memory (the plain build runs it in the unit pass)
bin-san/salign-tests --exclude archs_model_,e2e_address_space_limit "$@" >"$out" 2>&1
st=$?
cat "$out"
echo "run-sanitize: $(($(date +%s) - start)) s"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
reports=$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' "$out")
if [ -z "$line" ]; then
    echo "run-sanitize: the suite stopped early (status $st): see $out"
    echo "0 passed, 1 failed"
    exit 1
fi
set -- $line
p=$1 f=$3 s=${5:-0}
if [ "$reports" != 0 ]; then
    echo "run-sanitize: $reports sanitizer report line(s) in the output:"
    grep -nE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: ' "$out" | head -n 20
    f=$((f + 1))
fi
# the server and the chat under the sanitizers: run-serve.sh's curl, openai-client, load and browser
# tests against bin-san/salign (a report in a server's log fails the test that stopped it), and the
# pseudo-terminal chat
for part in serve chat; do
    sh "tests/run-$part.sh" >"build/run-sanitize-$part.txt" 2>&1
    cat "build/run-sanitize-$part.txt"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "build/run-sanitize-$part.txt" | tail -n 1)
    if [ -z "$line" ]; then
        f=$((f + 1))
        continue
    fi
    set -- $line
    p=$((p + $1)) f=$((f + $3)) s=$((s + ${5:-0}))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" = 0 ]
