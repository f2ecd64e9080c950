#!/bin/sh
# run-hostile.sh - hostile inputs (tests/hostile/README.md): every file of the generated corpus
# must make salign / salign-quantize exit 1 with a one-line message naming the problem - no
# signal, no sanitizer report, no output file left behind - with both the normal binaries (bin/)
# and the ASan+UBSan ones (bin-san/, built here with `make SAN=1` when missing or stale). Each
# corpus file is one test, passing only if both builds pass. Then the runtime-input checks:
# prompts longer than the context, invalid UTF-8 prompts, out of memory on load.
# Ends with "N passed, N failed".
#   HOSTILE_SAN=0   skip the sanitizer binaries (faster local runs)
#   HOSTILE_FILTER  only cases whose name contains this string
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
# Per run, so that two `make test` in one checkout do not pull the corpus from under each other;
# HOSTILE_KEEP=1 keeps it for a look (or: python3 tests/hostile/gen.py build/hostile).
tmp=$root/build/hostile-tmp.$$
corpus=$tmp/corpus
mkdir -p "$tmp"
if [ "${HOSTILE_KEEP:-0}" = 1 ]; then echo "run-hostile: corpus kept in $corpus"
else trap 'rm -rf "$tmp"' EXIT INT TERM; fi

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

if ! command -v python3 >/dev/null 2>&1; then
    echo "run-hostile: python3 is needed to generate the corpus (apt-get install python3)"
    echo "0 passed, 1 failed"
    exit 1
fi
python3 tests/hostile/gen.py "$corpus" || { echo "run-hostile: corpus generation failed"; echo "0 passed, 1 failed"; exit 1; }

# Sanitizer errors get their own exit codes so that they cannot pass for our "exit 1"; the
# grep below catches them anyway. Leak checks are on.
export ASAN_OPTIONS=detect_leaks=1:exitcode=86:abort_on_error=0:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
export LSAN_OPTIONS=exitcode=88
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2

builds="bin"
if [ "${HOSTILE_SAN:-1}" != 0 ]; then
    if make -s -j2 SAN=1 all >build/run-hostile-san-build.txt 2>&1; then
        builds="bin bin-san"
    else
        tail -n 20 build/run-hostile-san-build.txt
        echo "run-hostile: the sanitizer build failed (make SAN=1): see build/run-hostile-san-build.txt"
        bad "sanitizer build"
    fi
fi

# run_case BIN NAME KIND PATH EXTRA: runs one command, leaves its status in $rc, stderr in $tmp/err
run_case() {
    # (its own variable names: sh has no locals, and the caller loops over kind/path/extra)
    r_b=$root/$1 r_kind=$3 r_path=$4 r_extra=$5
    [ "$r_extra" = "-" ] && r_extra=""
    rm -f "$tmp"/out.salm* "$tmp"/out.jsonl* "$tmp/err" "$tmp/out"
    # stdin: /dev/null (tok: its text), never the manifest the caller is reading
    case $r_kind in
    q | hf) (cd "$corpus" && timeout 120 "$r_b/salign-quantize" "$r_path" "$tmp/out.salm" --type f32 -q $r_extra) \
        </dev/null >"$tmp/out" 2>"$tmp/err" ;;
    info) (cd "$corpus" && timeout 120 "$r_b/salign" info "$r_path" $r_extra) </dev/null >"$tmp/out" 2>"$tmp/err" ;;
    gen) (cd "$corpus" && timeout 120 "$r_b/salign" generate -m "$r_path" -p "the cat" -n 8 --temp 0 -t 2 $r_extra) \
        </dev/null >"$tmp/out" 2>"$tmp/err" ;;
    eval) (cd "$corpus" && timeout 120 "$r_b/salign" eval --upstream "$root/weights/stories260K.salm" --in "$r_path" \
        --out "$tmp/out.jsonl" --max-tokens 4 --temp 0 -t 2 $r_extra) </dev/null >"$tmp/out" 2>"$tmp/err" ;;
    tok) (cd "$corpus" && printf 'the cat sat on the mat' | timeout 120 "$r_b/salign" tokenize --tokenizer "$r_path" $r_extra) \
        >"$tmp/out" 2>"$tmp/err" ;;
    esac
    rc=$?
}

# check_case BIN NAME KIND EXPECT: 0 if the last run behaved, else prints why and returns 1
check_case() {
    why=""
    if grep -qE 'Sanitizer|runtime error:|SUMMARY: ' "$tmp/err"; then
        why="sanitizer report"
    elif [ $rc -ge 124 ]; then
        why="killed or timed out (status $rc)"
    elif [ "${2#*-ok-}" != "$2" ]; then # a valid baseline: must succeed
        [ $rc = 0 ] || why="valid file refused (status $rc)"
    else
        # generate and eval log progress before they can fail, and eval reports each bad line it
        # skips: there the error is the last line, and every line must be salign's
        if [ "$3" = gen ] || [ "$3" = eval ]; then
            grep -v '^salign: ' "$tmp/err" >"$tmp/foreign"
            [ -s "$tmp/foreign" ] && why="stray output on stderr: $(head -c 200 "$tmp/foreign")"
            tail -n 1 "$tmp/err" >"$tmp/last" && mv "$tmp/last" "$tmp/err"
        fi
        lines=$(wc -l <"$tmp/err")
        if [ -n "$why" ]; then
            :
        elif [ $rc != 1 ]; then
            why="exit status $rc, expected 1"
        elif [ "$lines" != 1 ]; then
            why="$lines lines on stderr, expected one"
        else
            found=""
            old_ifs=$IFS
            IFS='|'
            for alt in $4; do
                grep -qiF -- "$alt" "$tmp/err" && found=1
            done
            IFS=$old_ifs
            [ -n "$found" ] || why="message does not name the problem ($4)"
        fi
        if [ -z "$why" ] && { [ -e "$tmp/out.salm" ] || ls "$tmp"/out.salm.tmp.* >/dev/null 2>&1 || [ -s "$tmp/out.jsonl" ]; }; then
            why="an output file was left behind"
        fi
    fi
    if [ -n "$why" ]; then
        echo "FAIL $2 [$1]: $why"
        sed -n '1,25p' "$tmp/err" | sed 's/^/    /'
        return 1
    fi
    return 0
}

n=0
while IFS='	' read -r name kind path extra expect; do
    [ -n "${HOSTILE_FILTER:-}" ] && [ "${name#*"$HOSTILE_FILTER"}" = "$name" ] && continue
    n=$((n + 1))
    good=1
    for b in $builds; do
        run_case "$b" "$name" "$kind" "$path" "$extra"
        check_case "$b" "$name" "$kind" "$expect" || { good=0; break; }
    done
    if [ $good = 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done <"$corpus/manifest.tsv"
echo "run-hostile: $n corpus cases with: $builds"

# ---- runtime inputs ---------------------------------------------------------------------------
model=weights/stories260K.salm
long=$(python3 -c 'print("Once upon a time " * 200)')
for b in $builds; do
    # a prompt longer than the context: a clear error, not a crash or a silent truncation
    out=$("$b/salign" generate -m $model -p "$long" -n 4 -c 64 --temp 0 2>&1 >/dev/null)
    st=$?
    if [ $st = 1 ] && echo "$out" | grep -q "context" && ! echo "$out" | grep -qE 'Sanitizer|runtime error'; then ok
    else bad "[$b] generate with a prompt longer than the context: status $st: $out"; fi
    out=$("$b/salign" align --upstream $model -p "$long" --mode none --max-tokens 4 -c 64 --temp 0 2>&1 >/dev/null)
    st=$?
    if [ $st = 1 ] && echo "$out" | grep -q "context" && ! echo "$out" | grep -qE 'Sanitizer|runtime error'; then ok
    else bad "[$b] align with a prompt longer than the context: status $st: $out"; fi
    out=$("$b/salign" generate -m $model -p "$long" -n 4 -c 64 --chat --temp 0 2>&1 >/dev/null)
    st=$?
    if [ $st = 1 ] && echo "$out" | grep -q "context" && ! echo "$out" | grep -qE 'Sanitizer|runtime error'; then ok
    else bad "[$b] generate --chat with a prompt longer than the context: status $st: $out"; fi
    # eval: a record whose prompt does not fit is recorded as an error; the other records still run
    python3 -c "import json,sys; open(sys.argv[1], 'w').write(json.dumps({'id': 1, 'prompt': sys.argv[2]}) + '\n' + json.dumps({'id': 2, 'prompt': 'The cat'}) + '\n')" \
        "$tmp/long.jsonl" "$long"
    rm -f "$tmp/long-out.jsonl"
    out=$("$b/salign" eval --upstream $model --in "$tmp/long.jsonl" --out "$tmp/long-out.jsonl" --max-tokens 4 -c 64 --temp 0 2>&1 >/dev/null)
    st=$?
    if [ $st = 0 ] && grep -q '"id":1,.*"error":"[^"]*context' "$tmp/long-out.jsonl" && grep -q '"id":2,.*"answer"' "$tmp/long-out.jsonl" &&
        ! echo "$out" | grep -qE 'Sanitizer|runtime error'; then ok
    else bad "[$b] eval with a prompt longer than the context: status $st: $out"; fi
    # invalid UTF-8 in a prompt: encoded byte by byte (README, Robustness), generation runs
    bad_utf8=$(printf 'Once \377\376 upon \300\257 a \355\240\200 time \342\202')
    out=$("$b/salign" generate -m $model -p "$bad_utf8" -n 8 --temp 0 2>&1 >/dev/null)
    st=$?
    if [ $st = 0 ] && ! echo "$out" | grep -qE 'Sanitizer|runtime error'; then ok
    else bad "[$b] generate with invalid UTF-8 in the prompt: status $st: $out"; fi
    # ... and the byte tokens decode back to exactly the input bytes: the ids are decoded here with
    # the vocabulary read from llama2.c's tokenizer.bin of the same model (tok512.bin: a piece is
    # its bytes, "<0xXX>" one byte; the SentencePiece prefix space is the first piece's)
    ids=$(printf '%s' "$bad_utf8" | "$b/salign" tokenize -m $model --no-bos 2>&1)
    if why=$(printf '%s' "$bad_utf8" | python3 -c '
import re, struct, sys
vocab = []
with open(sys.argv[1], "rb") as f:
    f.read(4)
    while True:
        h = f.read(8)
        if len(h) < 8:
            break
        vocab.append(f.read(struct.unpack("<fi", h)[1]))
ids = [int(x) for x in sys.argv[2].split()]
out = b"".join(bytes([int(v[3:5], 16)]) if re.fullmatch(rb"<0x[0-9A-F]{2}>", v) else v for v in (vocab[i] for i in ids))
want = sys.stdin.buffer.read()
if len(vocab) != 512 or not ids or out != b" " + want:
    sys.exit("%d pieces, ids %s decode to %r, not %r" % (len(vocab), sys.argv[2], out, b" " + want))
' tests/data/tok512.bin "$ids" 2>&1); then ok
    else bad "[$b] tokenize invalid UTF-8 does not give the bytes back: $why"; fi
done

# Out of memory on load: a (sparse) 3 GiB .salm under a 1.5 GiB address-space limit must fail
# with a message naming the size it needed. Not under ASan, which reserves terabytes of address
# space for its shadow memory and cannot run under ulimit -v at all.
big=$tmp/big.salm
python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    f.write(b'SALM'); f.truncate(3 << 30)" "$big"
out=$( (ulimit -v 1500000 && bin/salign generate -m "$big" -p hi -n 1 -t 1 2>&1 >/dev/null) )
st=$?
if [ $st = 1 ] && echo "$out" | grep -qE '[0-9.]+ (MiB|GiB)'; then ok
else bad "out of memory on load: status $st: $out"; fi
out=$( (ulimit -v 1500000 && bin/salign info "$big" 2>&1 >/dev/null) )
st=$?
if [ $st = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ]; then ok
else bad "out of address space on mmap: status $st: $out"; fi

# ... and so must a KV cache too large for the limit (the whole cache's size named)
out=$( (ulimit -v 1500000 && bin/salign generate -m $model -p hi -n 1 -t 1 -c 4194304 2>&1 >/dev/null) )
st=$?
if [ $st = 1 ] && echo "$out" | tail -n 1 | grep -qE 'KV cache .*needs [0-9.]+ MiB'; then ok
else bad "KV cache out of memory: status $st: $out"; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
