#!/bin/sh
# run.sh - the whole test suite (make test). Ends with one line "N passed, N failed, N skipped".
# Each part prints its own "N passed, N failed[, N skipped]" line; this sums them. make test installs
# every dependency first, so a skipped test means a check did not happen: it fails the suite. With
# SALIGN_REQUIRE_ORACLES=1 (.ci/run) every part counts such a check as failed instead (tests/oracle.sh,
# tests/test_main.c), so a clean CI run ends "N passed, 0 failed, 0 skipped".
cd "$(dirname "$0")/.." || exit 1
export OPENBLAS_NUM_THREADS=1
log=build/test-output.txt
mkdir -p build
: > "$log"
status=0
# sum_part NAME FILE: append FILE (a part's output) to the log and its result line to the sums
sum_part() {
    name=$1 part=$2
    cat "$part" >> "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$part" | tail -n 1)
    rm -f "$part"
    if [ -z "$line" ]; then
        echo "$name: produced no result line" | tee -a "$log"
        echo "0 passed, 1 failed" >> "$log.sums"
        status=1
    else
        echo "$line" >> "$log.sums"
    fi
}
run_part() { # name, command...
    name=$1; shift
    echo "== $name" | tee -a "$log"
    t0=$(date +%s)
    "$@" 2>&1 | tee -a "$log.part"
    # each part's wall time, so the suite's 30-minute budget can be kept part by part
    echo "== $name took $(( $(date +%s) - t0 )) s" | tee -a "$log.part"
    sum_part "$name" "$log.part"
}
rm -f "$log.sums"
# the tests that read ../shared/models (tokenizers, GGUFs, HF checkpoints) cannot run without it
shared=${SALIGN_SHARED:-../shared}
if [ ! -d "$shared/models" ]; then
    echo "== shared-models" | tee -a "$log"
    echo "$shared/models is missing (set SALIGN_SHARED to the folder that holds models/): a failure" | tee -a "$log"
    echo "0 passed, 1 failed" >> "$log.sums"
fi
# archs_model_*: run by tests/run-archs.sh, which provides llama.cpp's oracles (they skip without them)
# Two lanes: the machine CI runs on has two cores and nearly every part is one process on one core, so
# three long self-contained parts (llama.cpp's architecture/quantizer oracles, the aarch64 kernels under
# qemu, the libFuzzer targets) run beside the rest. They share nothing with the other parts: each test
# process works in build/test-tmp/PID, run-arm builds into build-arm/ and bin-arm/, run-fuzz into
# build-fuzz/ (run-hostile and run-sanitize share build-san/, so they stay in one lane, in order).
# Their output is shown when they end. Measured on the idle 2-vCPU Zen 5 (clean clone, 1177 tests):
# run-archs 345 s, run-arm 62 s, run-fuzz 260 s in lane 2; the rest 735 s (run-hostile 403, run-sanitize
# 149, unit 56, perplexity 60); 29 min in one lane before (CI, 1732 s).
lane2="run-archs run-arm run-fuzz"
(
    for name in $lane2; do
        t0=$(date +%s)
        sh "tests/$name.sh" > "$log.$name" 2>&1
        echo "== $name took $(( $(date +%s) - t0 )) s" >> "$log.$name"
    done
) &
lane2_pid=$!
run_part unit bin/salign-tests --exclude archs_model_
for extra in tests/run-*.sh; do
    name=$(basename "$extra" .sh)
    case " $lane2 " in *" $name "*) continue ;; esac
    [ -f "$extra" ] && run_part "$name" sh "$extra"
done
wait $lane2_pid
for name in $lane2; do
    echo "== $name (second lane)" | tee -a "$log"
    cat "$log.$name"
    sum_part "$name" "$log.$name"
done
p=$(awk '{p+=$1} END {print p+0}' "$log.sums")
f=$(awk '{f+=$3} END {print f+0}' "$log.sums")
s=$(awk '{s+=$5} END {print s+0}' "$log.sums")
rm -f "$log.sums"
[ "$s" = 0 ] || grep -E '^skip ' "$log" | sed 's/^/skipped (counts as a failure): /'
grep -E '^== .* took [0-9]+ s$' "$log" | sort -k4 -n -r | head -n 5 | sed 's/^== /slowest: /'
echo "$p passed, $f failed, $s skipped"
[ "$f" = 0 ] && [ "$s" = 0 ] && [ $status = 0 ]
