#!/bin/sh
# bench.sh - what `make bench` runs: salign against llama.cpp on the same machine, same GGUF,
# same invocation, plus the machine's read bandwidth (the decode roofline).
#
#   1. a synthetic Llama-3.2-1B-shaped GGUF (random F16 weights, tools/bench/synth_gguf.c),
#      quantized by llama.cpp's llama-quantize: q4_0 and q8_0 with --pure (every matrix in the one
#      type, token embedding included), and the file types users download as llama-quantize makes
#      them (no --pure): q4_k_m (Q4_K + Q6_K), q6_k, q4_0-mix (Q4_0 + a Q6_K embedding/output) and,
#      when asked for in MODELS, q5_k_m (Q5_K + Q6_K: Q5_K has only the scalar kernels so far, slow);
#      each converted to .salm with salign-quantize --type keep;
#   2. membw: read bandwidth with 1 and 2 threads; `salign bench --int8-peak`: the int8 multiply-add
#      peak of the kernel table in use (simd/peak.c), the prefill roof;
#   3. per model, ROUNDS times in turn: `salign bench`, membw (this round's read roof), `llama-bench
#      -mmp 0` (-p 512 -n 128 -t 1,2), then salign's decode with --no-hugepages. The machine's speed
#      drifts by 10-20% over minutes, as much as the margins we measure, so each round pairs the two
#      programs a minute apart and the ratio is taken per round: the table gives its median and range
#      over the rounds;
#   4. a table: ours, llama.cpp (medians over the rounds), the ratio, decode as % of the
#      bandwidth roofline (t/s x bytes of weights read per token / the round's bandwidth), prefill
#      as % of the int8 peak (t/s x the blocks' weight multiply-adds per token / measured peak),
#      and for decode the ceiling: the ratio that reading at the round's roof would give;
#   5. load time from a warm page cache and peak RSS, per model and load mode.
# Files are cached in build/bench/ (about 4.5 GB; delete it to regenerate).
# Environment: ROUNDS (default 3), REPS per round (default 1), THREADS (default 1,2), PP (512), TG (128),
# MODELS ("q4_0 q8_0 q4_k_m q6_k q4_0-mix"; also q5_k_m),
# LLAMA_BIN (folder with llama-bench/llama-quantize; default: ../shared/peer/llamacpp-tools.sh).
# These machines are noisy: compare the ratios of the same run, and run it more than once.
set -e
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-1}
THREADS=${THREADS:-1,2}
PP=${PP:-512}
TG=${TG:-128}
MODELS=${MODELS:-"q4_0 q8_0 q4_k_m q6_k q4_0-mix"}
out=build/bench
mkdir -p "$out"

if [ -z "$LLAMA_BIN" ]; then
    tools=../shared/peer/llamacpp-tools.sh
    [ -f "$tools" ] || { echo "bench: $tools not found (set LLAMA_BIN)" >&2; exit 1; }
    LLAMA_BIN=$(bash "$tools")
fi
for b in llama-bench llama-quantize; do
    [ -x "$LLAMA_BIN/$b" ] || { echo "bench: $LLAMA_BIN/$b missing" >&2; exit 1; }
done

cc=${CC:-gcc}
$cc -O2 -march=native -fopenmp -Wall -Wextra -o "$out/membw" tools/bench/membw.c
$cc -O2 -Wall -Wextra -o "$out/synth_gguf" tools/bench/synth_gguf.c -lm

f16="$out/llama1b-f16.gguf"
if [ ! -f "$f16" ]; then
    echo "== generating $f16 (Llama-3.2-1B shape, random weights)" >&2
    "$out/synth_gguf" "$f16.tmp" && mv "$f16.tmp" "$f16"
fi
for q in $MODELS; do
    g="$out/llama1b-$q.gguf"
    s="$out/llama1b-$q.salm"
    if [ ! -f "$g" ]; then
        # q4_0 / q8_0: one type everywhere (--pure); the others: llama-quantize's own mix of its
        # file type ("-mix": the plain file type's name without the suffix)
        pure=""; case "$q" in q4_0|q8_0) pure=--pure ;; esac
        ftype=$(echo "${q%-mix}" | tr a-z A-Z)
        echo "== llama-quantize $pure $ftype -> $g" >&2
        "$LLAMA_BIN/llama-quantize" $pure "$f16" "$g.tmp" "$ftype" >"$out/quantize-$q.log" 2>&1 ||
            { tail -5 "$out/quantize-$q.log" >&2; exit 1; }
        mv "$g.tmp" "$g"
    fi
    if [ ! -f "$s" ] || [ "$g" -nt "$s" ]; then
        echo "== salign-quantize --type keep -> $s" >&2
        bin/salign-quantize "$g" "$s" --type keep -q
    fi
done

echo "== machine" >&2
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=""
for f in avx2 fma f16c avx512f avx512_vnni avx512_bf16; do
    case " $flags " in *" $f "*) isa="$isa $f" ;; esac
done
echo "cpu: $cpu, $(nproc) vCPU,$isa; $(free -g | awk '/Mem:/ {print $2}') GiB RAM" | tee "$out/machine.txt"
echo "== memory bandwidth" >&2
"$out/membw" 1024 1 2 | tee "$out/membw.txt"
echo "== int8 multiply-add peak" >&2
bin/salign bench --int8-peak -t 1,2 | tee "$out/i8peak.txt"

for q in $MODELS; do
    g="$out/llama1b-$q.gguf"
    s="$out/llama1b-$q.salm"
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        echo "== $q round $r/$ROUNDS: salign bench -m $s -p $PP -n $TG -t $THREADS -r $REPS --json" >&2
        bin/salign bench -m "$s" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json >"$out/ours-$q-$r.json"
        # this round's read roof, between the two programs: the host's bandwidth drifts by tens of
        # percent between minutes, so decode is set against the roof of its own minute
        "$out/membw" 1024 $(echo "$THREADS" | tr ',' ' ') >"$out/membw-$q-$r.txt"
        echo "== $q round $r/$ROUNDS: llama-bench -m $g -p $PP -n $TG -t $THREADS -r $REPS -mmp 0 -o json" >&2
        "$LLAMA_BIN/llama-bench" -m "$g" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" -mmp 0 -o json \
            >"$out/llama-$q-$r.json" 2>"$out/llama-$q.log" || { tail -5 "$out/llama-$q.log" >&2; exit 1; }
        # decode again with the weights on ordinary 4 KiB pages (--no-hugepages), as llama.cpp's -mmp 0
        # buffer is where THP is in "madvise" mode: how much of the decode ratio the huge pages make
        echo "== $q round $r/$ROUNDS: salign bench -m $s -p 0 -n $TG -t $THREADS -r $REPS --no-hugepages --json" >&2
        bin/salign bench -m "$s" -p 0 -n "$TG" -t "$THREADS" -r "$REPS" --no-hugepages --json >"$out/ours-hp-$q-$r.json"
        r=$((r + 1))
    done
done
echo "== memory bandwidth and int8 peak, again (the roofs use the best of both passes)" >&2
"$out/membw" 1024 1 2 | tee -a "$out/membw.txt"
bin/salign bench --int8-peak -t 1,2 | tee -a "$out/i8peak.txt"

python3 - "$out" "$ROUNDS" $MODELS <<'EOF'
import json, os, re, statistics, sys
out, rounds, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def read_bw(f):  # threads -> GB/s from membw's output in f: the best page size (and pass)
    rb = {}
    for line in open(f) if os.path.exists(f) else ():
        m = re.match(r"threads (\d+): ([\d.]+) GB/s", line)
        if m: rb[int(m.group(1))] = max(rb.get(int(m.group(1)), 0.0), float(m.group(2)))
    return rb
bw = read_bw(os.path.join(out, "membw.txt"))  # both passes: the roof where a round has none of its own
peak = {}  # threads -> GMAC/s (by CPU time: see src/bench.c)
for line in open(os.path.join(out, "i8peak.txt")):
    m = re.search(r": (\d+) threads? ([\d.]+) GMAC/s", line)
    if m: peak[int(m.group(1))] = max(peak.get(int(m.group(1)), 0.0), float(m.group(2)))
print(f"t/s: medians over {rounds} rounds; ratio: taken per round (the two programs about a minute apart), median [min-max]")
print()
print("roof: decode (tg) rows, % of the read bandwidth measured in the same round (membw, best page size),")
print("median over the rounds; prefill (pp) rows, % of the int8 multiply-add peak (best of the two passes).")
print("ceiling: decode rows, the ratio a program reading every weight byte at that round's read bandwidth")
print("(membw's faster loop) would get against llama.cpp's round (median): what the round's memory allowed")
print()
print("| model | threads | test | salign t/s | llama.cpp t/s | salign / llama.cpp | salign % of roof | llama.cpp % of roof | ceiling |")
print("|---|---|---|---|---|---|---|---|---|")
for q in models:
    size = os.path.getsize(os.path.join(out, f"llama1b-{q}.gguf"))
    rows = {}  # (no-hugepages, threads, n_prompt, n_gen) -> [(ours, llama.cpp, round roof by threads) per round]
    macs = 0   # weight multiply-adds per token (salign bench --json)
    for r in range(1, rounds + 1):
        theirs = {(x["n_threads"], x["n_prompt"], x["n_gen"]): x["avg_ts"]
                  for x in json.load(open(os.path.join(out, f"llama-{q}-{r}.json")))}
        rb = read_bw(os.path.join(out, f"membw-{q}-{r}.txt")) or bw  # the round's roof (membw between the programs)
        for hp, f in ((0, f"ours-{q}-{r}.json"), (1, f"ours-hp-{q}-{r}.json")):
            for o in json.load(open(os.path.join(out, f))):
                k = (o["threads"], o["n_prompt"], o["n_gen"])
                macs = o.get("macs_per_token", macs)
                rows.setdefault((hp,) + k, []).append((o["avg_ts"], theirs.get(k, float("nan")), rb))
    # prompt tests first, then decode, then decode on 4 KiB pages; threads ascending within each
    for (hp, threads, n_prompt, n_gen), pairs in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][3] > 0, kv[0][1])):
        test = (f"pp{n_prompt}" if n_prompt else f"tg{n_gen}") + (" (salign --no-hugepages)" if hp else "")
        ot = statistics.median(p[0] for p in pairs)
        lt = statistics.median(p[1] for p in pairs)
        ratios = [p[0] / p[1] for p in pairs]
        rng = f" [{min(ratios):.2f}-{max(ratios):.2f}]" if len(ratios) > 1 else ""
        ceil = "-"
        if n_gen and all(p[2].get(threads) for p in pairs):
            # decode reads every weight byte once per token (the KV cache of <= 128 positions is small)
            ro = f"{statistics.median(100 * p[0] * size / (p[2][threads] * 1e9) for p in pairs):.0f}%"
            rl = f"{statistics.median(100 * p[1] * size / (p[2][threads] * 1e9) for p in pairs):.0f}%"
            ceil = f"{statistics.median(p[2][threads] * 1e9 / (p[1] * size) for p in pairs):.2f}x"
        elif n_prompt and peak.get(threads) and macs:
            ro = f"{100 * ot * macs / (peak[threads] * 1e9):.0f}%"
            rl = f"{100 * lt * macs / (peak[threads] * 1e9):.0f}%"
        else:
            ro = rl = "-"
        print(f"| {q.upper()} | {threads} | {test} | {ot:.2f} | {lt:.2f} | {statistics.median(ratios):.2f}x{rng} | {ro} | {rl} | {ceil} |")
EOF

# Load time (warm page cache: the file was just read) and peak RSS: `generate -n 1`, best of 3.
# The target is <= 1 s for the 1B model, and RSS <= weights + KV cache + 10%.
echo
echo "## load time (warm page cache, best of 3) and peak RSS (generate -n 1 -c 256; read = the default, huge pages advised)"
echo
echo "| model | file MiB | load mode | load ms | peak RSS MiB |"
echo "|---|---|---|---|---|"
for q in $MODELS; do
    s="$out/llama1b-$q.salm"
    cat "$s" >/dev/null
    for mode in read --no-hugepages --mmap; do
        flag=$mode; [ "$mode" = read ] && flag=""
        best=""; rss=""
        for r in 1 2 3; do
            /usr/bin/time -f "RSS %M" bin/salign generate -m "$s" -p x -n 1 -c 256 -t 1 $flag \
                >/dev/null 2>"$out/load.log" || { echo "load failed: $s $flag" >&2; cat "$out/load.log" >&2; break; }
            ms=$(sed -n 's/.* in \([0-9]*\) ms,.*/\1/p' "$out/load.log" | head -n 1)
            kb=$(sed -n 's/^RSS \([0-9]*\)$/\1/p' "$out/load.log")
            if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
            rss=$kb
        done
        echo "| ${q} | $(( $(stat -c %s "$s") / 1048576 )) | $mode | $best | $(( ${rss:-0} / 1024 )) |"
    done
done

# Copy-speculative aligner decoding (Speculative issue): the 1B model as the aligner, its own greedy
# output as the draft (copy case) and that output with every fifth token replaced (edit case).
echo
echo "## copy-speculative aligner decoding (bin/salign bench-spec, 1 thread)"
for q in $MODELS; do
    bin/salign bench-spec -m "$out/llama1b-$q.salm" -n 48 -r 3 -t 1 2>/dev/null || echo "bench-spec failed for $q"
done

# The aligned answer's cost (issue #23 item 6): `salign bench-align` with an upstream and an aligner of
# real shapes, random weights written by salign-synth straight as Q4_0 (Llama 3's tokenizer): the
# upstream Llama-3-8B-shaped (hidden 4096, 32 layers, 32 heads / 8 KV heads, FFN 14336, vocab 128256,
# 4.2 GiB), the aligner Llama-3.2-1B-shaped (663 MiB). Both models' tokens are forced (src/bench_align.c):
# ALIGN_SENTENCES sentences of ~25 tokens; the aligner copies them, or edits every fifth token.
# The goal it measures: aligned <= 1.25x unaligned when the aligner copies. ALIGN=0 skips it (the
# models take ~20 min to write on a busy 2-vCPU machine; each round of three answers a few minutes).
if [ "${ALIGN:-1}" != 0 ]; then
    toks=../shared/models/tokenizers/llama3
    mk() { # name, salign-synth shape flags...
        n=$1; shift
        [ -f "$out/$n.salm" ] && return 0
        echo "== salign-synth $* -> $out/$n.salm" >&2
        bin/salign-synth "$@" --vocab-from "$toks" --gguf "$out/$n.gguf" --gguf-type q4_0 --seed 3 &&
            bin/salign-quantize "$out/$n.gguf" "$out/$n.salm" --type keep -q && rm -f "$out/$n.gguf"
    }
    mk up8b-q4_0 --arch llama --hidden 4096 --layers 32 --heads 32 --kv-heads 8 --ff 14336 --untied --rope-theta 500000
    mk al1b-q4_0 --preset llama-3.2-1b
    echo
    echo "## the aligned answer's cost (bin/salign bench-align, 8B-shaped Q4_0 upstream, 1B-shaped Q4_0 aligner)"
    echo
    for t in $(echo "$THREADS" | tr , ' '); do
        echo "$t thread(s):"
        echo
        bin/salign bench-align --upstream "$out/up8b-q4_0.salm" --aligner "$out/al1b-q4_0.salm" -n "${ALIGN_SENTENCES:-4}" \
            -r "${ALIGN_REPS:-2}" -t "$t" 2>/dev/null || echo "bench-align failed"
        echo
    done
fi

# Tokenizer speed (the unit tests check only that long inputs round-trip; timing lives here): 1 MiB
# of story text and one run of 200,000 spaces, the worst case for a quadratic merge loop, with
# Llama 2's 32,000-token vocabulary (llama2.c tokenizer.bin), best of 3.
echo
echo "## tokenizer (bin/salign tokenize, Llama 2 vocabulary, best of 3)"
echo
echo "| input | bytes | ms |"
echo "|---|---|---|"
python3 -c 'import sys; w = b"Once upon a time, there was a little girl named Lily. She liked to play outside. "
sys.stdout.buffer.write((w * (1048576 // len(w) + 1))[:1048576])' > "$out/tok-text.txt"
python3 -c 'import sys; sys.stdout.buffer.write(b" " * 200000)' > "$out/tok-spaces.txt"
for f in text spaces; do
    best=""
    for r in 1 2 3; do
        t0=$(date +%s%N)
        bin/salign tokenize --tokenizer tests/data/llama2-tokenizer.bin < "$out/tok-$f.txt" >/dev/null || { echo "tokenize failed" >&2; break; }
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
    done
    echo "| $f | $(stat -c %s "$out/tok-$f.txt") | $best |"
done
