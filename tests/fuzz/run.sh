#!/bin/sh
# tests/fuzz/run.sh [--ci] [TARGET...] - build and run the libFuzzer targets (tests/fuzz/README.md).
#
#   make fuzz (no --ci): each target, one after another, once per seed of FUZZ_SEEDS (default "1"),
#       until FUZZ_RUNS executions (default 1000000) or FUZZ_MAX_TIME seconds (default 3600),
#       whichever comes first; then (when every target ran) the counts, coverage, the command and
#       the commit go into tests/fuzz/RESULTS.md (between its results markers).
#   tests/run-fuzz.sh (--ci): each target for FUZZ_CI_TIME seconds (default 20) with the first seed
#       of FUZZ_SEEDS; one test per target; ends with "N passed, N failed[, N skipped]"; RESULTS.md
#       is not touched.
# Reproducible: libFuzzer gets -seed=S, and every run starts from a clean working corpus
# (build/fuzz-corpus/TARGET is emptied first; the seeds in tests/fuzz/corpus/TARGET are only read), so
# a run depends on the code, the seed corpus and S only (and, for the time-limited CI run, on how far
# it got). Per target it prints executions, coverage (libFuzzer's cov: edges and ft: features at the
# end) and corpus size. Crash inputs land in build/fuzz-artifacts/. Reproduce one with
#   build-fuzz/fuzz_TARGET build/fuzz-artifacts/TARGET-crash-...
# Needs clang-14 with libFuzzer (Debian: clang-14 libfuzzer-14-dev libomp-14-dev), installed
# with apt-get when missing and running as root; otherwise the part fails (tests/oracle.sh).
cd "$(dirname "$0")/../.." || exit 1
ci=0
if [ "$1" = --ci ]; then ci=1; shift; fi
FUZZ_CC=${FUZZ_CC:-clang-14}
runs=${FUZZ_RUNS:-1000000}
max_time=${FUZZ_MAX_TIME:-3600}
ci_time=${FUZZ_CI_TIME:-20}
seeds=${FUZZ_SEEDS:-1}
targets=$*
whole=0 # every target: only then is RESULTS.md rewritten (its table is one command's)
[ -n "$targets" ] || whole=1
[ -n "$targets" ] || targets=$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_||; s|\.c$||')
mkdir -p build

. tests/oracle.sh
skip_all() { missing_oracle run-fuzz "$1" "$(echo $targets | wc -w)"; }

# Can FUZZ_CC build a libFuzzer program? If not, try to install the toolchain.
have_fuzzer() {
    printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' \
        >build/fuzz-probe.c
    command -v "$FUZZ_CC" >/dev/null 2>&1 &&
        "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -fopenmp build/fuzz-probe.c -o build/fuzz-probe >/dev/null 2>&1
}
if ! have_fuzzer; then
    pkgs="clang-14 libfuzzer-14-dev libomp-14-dev"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run-fuzz: installing $pkgs" >&2
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >&2 || true
    fi
    if ! have_fuzzer; then
        msg="$FUZZ_CC cannot build libFuzzer targets (install: sudo apt-get install -y $pkgs)"
        [ $ci = 1 ] && skip_all "$msg"
        echo "fuzz: $msg" >&2
        exit 1
    fi
fi
rm -f build/fuzz-probe build/fuzz-probe.c

bins=""
for t in $targets; do bins="$bins build-fuzz/fuzz_$t"; done
if ! make -s -j2 FUZZ_CC="$FUZZ_CC" $bins >build/fuzz-build.txt 2>&1; then
    tail -n 30 build/fuzz-build.txt
    echo "run-fuzz: building the fuzz targets failed (build/fuzz-build.txt)"
    echo "0 passed, 1 failed"
    exit 1
fi

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p build/fuzz-artifacts build/fuzz-logs
pass=0 fail=0
results=build/fuzz-results.tsv
: >"$results"
[ $ci = 1 ] && seeds=${seeds%% *}
# Same seed, same run: libFuzzer's comparison tables hold pointer values, so address-space layout
# randomisation alone changed the mutations (seed 2 of fuzz_sentence: 1,137 vs 1,144 features after
# 20,000 runs); setarch -R turns it off for the fuzzer (249/1,198 three times out of three). Where
# setarch is missing or not allowed, runs go on without it (and may differ slightly).
# Without randomisation the stack's addresses depend on the environment's size (its strings sit at
# the top of the stack), so the fuzzer also gets a fixed environment: make's variables alone changed
# fuzz_safetensors' run (660/1126 under make, 654/1110 from a shell).
norand=""
if setarch "$(uname -m)" -R true 2>/dev/null; then norand="setarch $(uname -m) -R"; fi
fixed_env="env -i PATH=/usr/bin:/bin ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS OPENBLAS_NUM_THREADS=1
    OMP_NUM_THREADS=1${SALIGN_SHARED:+ SALIGN_SHARED=$SALIGN_SHARED}"
for t in $targets; do
  for seed in $seeds; do
    corpus=build/fuzz-corpus/$t
    rm -rf "$corpus"
    mkdir -p "$corpus"
    log=build/fuzz-logs/$t-$seed.log
    if [ $ci = 1 ]; then
        limits="-max_total_time=$ci_time -seed=$seed -reload=0"
    else
        limits="-runs=$runs -max_total_time=$max_time -seed=$seed -reload=0"
    fi
    start=$(date +%s)
    # -timeout: one input may take this long; -rss_limit_mb: the Gemma 3 vocabulary under ASan
    # needs ~800 MiB; -close_fd_mask=1: the targets print nothing worth keeping on stdout
    # shellcheck disable=SC2086
    $fixed_env $norand build-fuzz/fuzz_$t $limits -timeout=30 -rss_limit_mb=3072 -print_final_stats=1 -close_fd_mask=1 \
        -artifact_prefix=build/fuzz-artifacts/$t- "$corpus" tests/fuzz/corpus/$t >"$log" 2>&1
    st=$?
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    [ -n "$execs" ] || execs=0
    files=$(ls "$corpus" | wc -l)
    # coverage at the end: the last status line's "cov: N ft: M"
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 | awk '{print $2 "/" $4}')
    [ -n "$cov" ] || cov="?"
    if [ $st = 0 ]; then
        result=ok
        pass=$((pass + 1))
    else
        art=$(grep -oE 'build/fuzz-artifacts/[^ ]+' "$log" | tail -n 1)
        result="FAILED (status $st${art:+, input $art})"
        fail=$((fail + 1))
        grep -E 'ERROR|SUMMARY|property violated|^    #[0-9]' "$log" | head -n 25
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seed" "$execs" "$secs" "$cov" "$files" "$result" >>"$results"
    echo "fuzz_$t (seed $seed): $execs executions in $secs s, coverage $cov (edges/features), corpus $files files: $result"
  done
done

if [ $ci = 0 ] && [ $whole = 1 ]; then
    python3 - "$results" tests/fuzz/RESULTS.md "$FUZZ_CC" "$runs" "$max_time" "$seeds" "$(git rev-parse --short HEAD 2>/dev/null)" <<'EOF'
import datetime, os, platform, re, subprocess, sys
res, md, cc, runs, max_time, seeds, commit = sys.argv[1:]
BEGIN, END = "<!-- results:begin", "<!-- results:end -->"
try:
    ccv = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
except Exception:
    ccv = cc
try:
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
except Exception:
    cpu = platform.machine()
text = open(md).read() if os.path.exists(md) else "# Fuzzing results\n"
a, b = text.find(BEGIN), text.find(END)
if a < 0 or b < a:
    text = text.rstrip("\n") + "\n\n%s -->\n%s\n" % (BEGIN, END)
    a, b = text.find(BEGIN), text.find(END)
# this run's rows only: the header names the one command that made them
rows = {}
now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
for l in open(res):
    if not l.strip():
        continue
    t, seed, n, s, cov, f, r = l.rstrip("\n").split("\t")
    rate = int(n) // max(1, int(s))
    rows[(t, int(seed))] = "| fuzz_%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        t, seed, format(int(n), ","), s, rate, cov, f, r, commit or "?", now)
table = ["%s (written by tests/fuzz/run.sh; edit outside the markers) -->" % BEGIN,
         "Command: `make fuzz FUZZ_RUNS=%s FUZZ_MAX_TIME=%s FUZZ_SEEDS=\"%s\"` (each run from a clean corpus: the seed "
         "files of tests/fuzz/corpus only). Goal: %s executions per target and seed (at most %s s each); %s, %s, "
         "%d cores, one target at a time. Coverage: libFuzzer's edges / features at the end of the run."
         % (runs, max_time, seeds, format(int(runs), ","), max_time, ccv, cpu, os.cpu_count()), "",
         "| target | seed | executions | seconds | exec/s | coverage | corpus files | result | commit | run (UTC) |",
         "|---|---:|---:|---:|---:|---:|---:|---|---|---|"] + [rows[k] for k in sorted(rows)] + [END]
text = text[:a] + "\n".join(table) + text[b + len(END):]
open(md, "w").write(text)
print("fuzz: counts written to %s" % md)
EOF
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
