#!/bin/sh
# run-perplexity.sh - `salign perplexity` (src/perplexity.c) against llama.cpp, and its KL-divergence
# mode against itself, on stories260K F32, Q8_0 and Q4_0 (real weights) and
# tests/data/perplexity-stories.txt (about 19,500 tokens: 38 windows of 512), and on a synthetic
# Llama-shaped model that llama.cpp's own quantizer made Q4_K_M (4 windows).
#
# The reference is llama.cpp through node-llama-cpp 3.21.1 (its prebuilt CPU binaries, nothing is
# compiled): tests/oracles/llamacpp-perplexity.mjs lets llama.cpp tokenize the text and compute the
# next-token probabilities of every window and counts them as llama-perplexity's default mode does.
# llama-perplexity itself is not built here: compiling llama.cpp takes far longer than the whole
# suite on a 2-core machine (README "salign perplexity" gives the numbers of both against salign).
# Checked: the token ids are llama.cpp's, the final PPL agrees within 0.1% relative and its
# uncertainty within 1%, the number of chunks is the same.
# Then, without llama.cpp: a .salm gives the GGUF's numbers, -b and --chunks, the reference file
# (size, KLD of a model against itself = 0 with the same top token everywhere, Q4_0 against F32),
# and one-line errors for every user mistake.
#
# node-llama-cpp is installed once, outside the repository, as tests/run-archs.sh installs it
# ($SALIGN_ORACLE_DIR, default ~/.cache/salign-oracles, /node-llama-cpp). Not being able to
# install it is a failure, not a skip. Ends with one line "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
VERSION=3.21.1
CACHE=${SALIGN_ORACLE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salign-oracles}
NLC=$CACHE/node-llama-cpp
SHARED=${SALIGN_SHARED:-../shared}
MODELS=$SHARED/models
TEXT=tests/data/perplexity-stories.txt
W=build/test-perplexity
pass=0
fail=0
ok() { echo "PASS perplexity: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL perplexity: $*"; fail=$((fail + 1)); }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit
}

[ -x bin/salign ] && [ -x bin/salign-quantize ] || { bad "build first (make)"; finish; }
[ -f "$MODELS/stories260K.gguf" ] || { bad "no $MODELS/stories260K.gguf (set SALIGN_SHARED)"; finish; }
rm -rf "$W" && mkdir -p "$W"

# ---- the oracle ----------------------------------------------------------------------------
have_node=1
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing nodejs npm" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2 ||
            { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2; } ||
            have_node=0
    else
        have_node=0
    fi
fi
oracle=0
if [ $have_node = 1 ]; then
    installed=$(node -p "require('$NLC/node_modules/node-llama-cpp/package.json').version" 2>/dev/null)
    if [ "$installed" != "$VERSION" ]; then
        echo "npm: installing node-llama-cpp@$VERSION into $NLC" >&2
        mkdir -p "$NLC" && { [ -f "$NLC/package.json" ] || echo '{"name": "salign-oracle-llamacpp", "private": true}' > "$NLC/package.json"; } &&
            (cd "$NLC" && npm install --save-exact --no-audit --no-fund --loglevel=error "node-llama-cpp@$VERSION" >&2)
    fi
    [ "$(node -p "require('$NLC/node_modules/node-llama-cpp/package.json').version" 2>/dev/null)" = "$VERSION" ] && oracle=1
fi
[ $oracle = 1 ] || bad "llama.cpp oracle: cannot install node-llama-cpp@$VERSION (needs node, npm and the npm registry; as root it installs them)"

# value after "Final estimate: PPL = " (field 1: PPL, 2: its uncertainty)
final() { sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\)$/\1 \2/p' "$1"; }
chunks() { head -n 1 "$1" | tr ',' '\n' | grep -c '^\['; }
within() { awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b != 0 && d / b < tol) }'; }

# the text as llama-perplexity reads it: one trailing newline dropped
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.stdout.buffer.write(d[:-1] if d.endswith(b"\n") else d)' "$TEXT" > "$W/text-stripped.txt"

for name in stories260K stories260K-q8_0 stories260K-q4_0; do
    model=$MODELS/$name.gguf
    if ! bin/salign perplexity -m "$model" -f "$TEXT" > "$W/$name.salign" 2> "$W/$name.salign.err"; then
        bad "$name: salign perplexity failed: $(tail -n 1 "$W/$name.salign.err")"
        continue
    fi
    s=$(final "$W/$name.salign")
    [ -n "$s" ] || { bad "$name: no 'Final estimate' line from salign"; continue; }
    if grep -q "$(printf '\r')" "$W/$name.salign.err"; then bad "$name: a progress line on a non-terminal stderr"; else ok "$name: no progress line when stderr is not a terminal"; fi
    [ $oracle = 1 ] || continue
    if ! NODE_PATH="$NLC/node_modules" node tests/oracles/llamacpp-perplexity.mjs "$model" "$TEXT" 512 "$W/$name.ids" \
        > "$W/$name.llamacpp" 2> "$W/$name.llamacpp.err"; then
        bad "$name: the llama.cpp oracle failed: $(tail -n 1 "$W/$name.llamacpp.err")"
        continue
    fi
    l=$(final "$W/$name.llamacpp")
    # tokens: salign's tokenizer on the same text, BOS first, as llama.cpp gave them
    bin/salign tokenize -m "$model" < "$W/text-stripped.txt" 2>/dev/null | tr ' ' ',' | tr -d '\n' > "$W/$name.salign.ids"
    if cmp -s "$W/$name.ids" "$W/$name.salign.ids"; then
        ok "$name: $(tr ',' '\n' < "$W/$name.ids" | wc -l) tokens, identical to llama.cpp's"
    else
        bad "$name: salign's tokens of $TEXT differ from llama.cpp's ($W/$name.ids vs $W/$name.salign.ids)"
    fi
    cs=$(chunks "$W/$name.salign") cl=$(chunks "$W/$name.llamacpp")
    if [ "$cs" = "$cl" ] && [ "$cs" -ge 30 ]; then ok "$name: $cs chunks, as llama.cpp"; else bad "$name: $cs chunks, llama.cpp $cl"; fi
    set -- $s $l
    if within "$1" "$3" 0.001; then ok "$name: PPL $1, llama.cpp $3 (within 0.1%)"; else bad "$name: PPL $1, llama.cpp $3 (more than 0.1% apart)"; fi
    if within "$2" "$4" 0.01; then ok "$name: uncertainty $2, llama.cpp $4 (within 1%)"; else bad "$name: uncertainty $2, llama.cpp $4 (more than 1% apart)"; fi
done

# ---- a synthetic model in llama.cpp's Q4_K_M (Q4_K + Q6_K), made by llama.cpp's own quantizer ----
# Random weights (bin/salign-synth, Llama shape, hidden 256, Mistral's tokenizer): the model knows
# nothing, what is compared is the two programs' log-probabilities over 4 windows of 512 (llama.cpp
# evaluates each window as one batch). Logits of std 1 (--logit-std 1, PPL ~5.7e4: about a uniform
# guess over the 32,000 tokens): the two programs' last-bit differences move each logit by a share
# of its spread, and at the default std 4 (PPL ~9e7, nll ~18 nats per token) that alone put 4
# windows 0.12% apart (0.04% at std 1; real weights: stories260K above).
TOKS=$MODELS/tokenizers/mistral
if [ $oracle = 1 ] && [ -f "$TOKS/tokenizer.json" ]; then
    if LQBIN=$(sh tests/oracles/llamacpp-quantize.sh "$NLC") &&
        bin/salign-synth --arch llama --hidden 256 --layers 2 --heads 4 --kv-heads 2 --ff 512 --seed 7 --logit-std 1 --vocab-from "$TOKS" \
            --gguf "$W/synth-f16.gguf" --gguf-type f16 > /dev/null 2>&1 &&
        "$LQBIN" "$W/synth-f16.gguf" "$W/synth-q4_k_m.gguf" Q4_K_M > /dev/null 2>&1; then
        head -c 8200 "$TEXT" > "$W/synth-text.txt"
        name=synth-q4_k_m
        if bin/salign perplexity -m "$W/$name.gguf" -f "$W/synth-text.txt" > "$W/$name.salign" 2> "$W/$name.salign.err" &&
            NODE_PATH="$NLC/node_modules" node tests/oracles/llamacpp-perplexity.mjs "$W/$name.gguf" "$W/synth-text.txt" 512 \
                "$W/$name.ids" > "$W/$name.llamacpp" 2> "$W/$name.llamacpp.err"; then
            set -- $(final "$W/$name.salign") $(final "$W/$name.llamacpp")
            cs=$(chunks "$W/$name.salign") cl=$(chunks "$W/$name.llamacpp")
            if [ $# = 4 ] && [ "$cs" = "$cl" ] && [ "$cs" -ge 4 ] && within "$1" "$3" 0.001; then
                ok "synthetic Q4_K_M: PPL $1, llama.cpp $3 (within 0.1%), $cs chunks"
            else
                bad "synthetic Q4_K_M: PPL '$1' ($cs chunks), llama.cpp '$3' ($cl chunks): more than 0.1% apart"
            fi
        else
            bad "synthetic Q4_K_M: a run failed: $(tail -n 1 "$W/$name.salign.err") $(tail -n 1 "$W/$name.llamacpp.err" 2>/dev/null)"
        fi
    else
        bad "synthetic Q4_K_M: could not make the model (bin/salign-synth, llama.cpp's quantizer)"
    fi
elif [ $oracle = 1 ]; then
    bad "synthetic Q4_K_M: no $TOKS/tokenizer.json"
fi

# ---- without llama.cpp -----------------------------------------------------------------------
F32=$MODELS/stories260K.gguf
Q4=$MODELS/stories260K-q4_0.gguf
ppl_of() { final "$1" | cut -d' ' -f1; }

# a .salm of the same weights gives the same output, byte for byte
if bin/salign-quantize "$F32" "$W/f32.salm" --type keep > /dev/null 2>&1 &&
    bin/salign perplexity -m "$W/f32.salm" -f "$TEXT" > "$W/salm.out" 2> /dev/null &&
    cmp -s "$W/salm.out" "$W/stories260K.salign"; then
    ok ".salm: the same output as the GGUF"
else
    bad ".salm: output differs from the GGUF's ($W/salm.out)"
fi

# -b splits the windows into smaller passes: the same numbers up to float rounding
bin/salign perplexity -m "$F32" -f "$TEXT" -b 48 > "$W/b48.out" 2> "$W/b48.err"
a=$(ppl_of "$W/b48.out") b=$(ppl_of "$W/stories260K.salign")
if grep -q "48 tokens per pass" "$W/b48.err" && [ -n "$a" ] && within "$a" "$b" 0.0001; then ok "-b 48: PPL $a (-b 2048: $b)"; else bad "-b 48: PPL '$a', -b 2048: $b"; fi

# --chunks N: the first N running values of the full run
bin/salign perplexity -m "$F32" -f "$TEXT" --chunks 3 > "$W/c3.out" 2> /dev/null
want=$(head -n 1 "$W/stories260K.salign" | cut -d, -f1-3)
got=$(head -n 1 "$W/c3.out")
if [ "$got" = "$want," ]; then ok "--chunks 3: $got"; else bad "--chunks 3: '$got', expected '$want,'"; fi

# on a terminal (script(1) gives it one): a progress line on stderr, the values at the end
script -qc "bin/salign perplexity -m $F32 -f $TEXT --chunks 4" /dev/null > "$W/tty.out" 2>&1
if grep -q "chunk 4/4, .* per chunk, ETA" "$W/tty.out" && grep -q "\[1\][0-9.]*,\[2\].*\[4\][0-9.]*," "$W/tty.out" &&
    grep -q "Final estimate: PPL = " "$W/tty.out"; then
    ok "on a terminal: a progress line, then the values"
else
    bad "on a terminal: no progress line or no values ($W/tty.out)"
fi

# -c 128: more, shorter windows
bin/salign perplexity -m "$F32" -f "$TEXT" -c 128 > "$W/c128.out" 2> /dev/null
n=$(chunks "$W/c128.out")
n512=$(chunks "$W/stories260K.salign")
if [ "$n" -ge $((4 * n512)) ] && [ -n "$(ppl_of "$W/c128.out")" ]; then ok "-c 128: $n chunks, PPL $(ppl_of "$W/c128.out")"; else bad "-c 128: $n chunks"; fi

# the reference file: llama.cpp's layout, 20 + 4*n_ctx*n_chunk + n_chunk*(n_ctx-1-n_ctx/2)*(512+4)*2 bytes
if bin/salign perplexity -m "$F32" -f "$TEXT" --chunks 8 --kl-divergence-base "$W/f32.kld" > "$W/base.out" 2> /dev/null; then
    size=$(wc -c < "$W/f32.kld")
    want=$((20 + 4 * 512 * 8 + 8 * 255 * 516 * 2))
    if [ "$size" = "$want" ] && [ "$(head -c 8 "$W/f32.kld")" = "_logits_" ]; then ok "--kl-divergence-base: $size bytes, header _logits_"; else bad "--kl-divergence-base: $size bytes, expected $want"; fi
else
    bad "--kl-divergence-base: the run failed"
fi
field() { sed -n "s/^$2 *: *\([-0-9.]*\).*/\1/p" "$1" | head -n 1; }
# a model against itself: KLD 0, the same top token everywhere, PPL(Q) = PPL(base)
if bin/salign perplexity -m "$F32" --kl-divergence-base "$W/f32.kld" --kl-divergence > "$W/self.out" 2> "$W/self.err"; then
    k=$(field "$W/self.out" "Mean    KLD") top=$(field "$W/self.out" "Same top p")
    if awk -v k="$k" 'BEGIN { exit !(k != "" && k < 1e-5 && k > -1e-5) }' && [ "$top" = "100.000" ]; then
        ok "KLD of F32 against itself: $k, same top $top%"
    else
        bad "KLD of F32 against itself: '$k', same top '$top'%"
    fi
else
    bad "--kl-divergence (self): $(tail -n 1 "$W/self.err")"
fi
# Q4_0 against F32: a positive KLD, the top token not always the same, PPL(Q) = Q4_0's own PPL
bin/salign perplexity -m "$Q4" -f "$TEXT" --chunks 8 > "$W/q4c8.out" 2> /dev/null
if bin/salign perplexity -m "$Q4" -f "$TEXT" --kl-divergence-base "$W/f32.kld" --kl-divergence > "$W/q4.out" 2> "$W/q4.err"; then
    k=$(field "$W/q4.out" "Mean    KLD") top=$(field "$W/q4.out" "Same top p") pq=$(field "$W/q4.out" "Mean PPL(Q)")
    if awk -v k="$k" -v t="$top" 'BEGIN { exit !(k > 1e-4 && t < 100 && t > 50) }' && within "$pq" "$(ppl_of "$W/q4c8.out")" 0.0001 &&
        grep -q '^99.0%   Δp:' "$W/q4.out" && grep -q '^Median  KLD:' "$W/q4.out"; then
        ok "KLD of Q4_0 against F32: $k, same top $top%, PPL(Q) $pq"
    else
        bad "KLD of Q4_0 against F32: '$k', same top '$top'%, PPL(Q) '$pq' (Q4_0 alone: $(ppl_of "$W/q4c8.out"))"
    fi
else
    bad "--kl-divergence (Q4_0): $(tail -n 1 "$W/q4.err")"
fi

# ---- user errors: one line "salign: <flag or file>: ...", exit status 1 --------------------
printf 'Once upon a time.\n' > "$W/short.txt"
head -c 1500 "$TEXT" > "$W/medium.txt" # about 700 tokens: 2 windows of 256, not of 512
if bin/salign perplexity -m "$F32" -f "$W/medium.txt" -c 256 > "$W/medium.out" 2> /dev/null && [ "$(chunks "$W/medium.out")" = 2 ]; then
    ok "-c 256 on a 700-token text: 2 chunks"
else
    bad "-c 256 on a 700-token text: $(head -n 1 "$W/medium.out")"
fi
head -c 3000 "$W/f32.kld" > "$W/truncated.kld"
printf 'A different text entirely, about a cat.\n' > "$W/other.txt"
err_case() { # expected-start-of-message, args...
    want=$1
    shift
    bin/salign perplexity "$@" > "$W/err.out" 2> "$W/err.txt"
    st=$?
    lines=$(grep -vc '^salign: .*\(loaded\|converted in memory\)' "$W/err.txt")
    msg=$(grep -v '^salign: .*\(loaded\|converted in memory\)' "$W/err.txt")
    case "$msg" in
    "salign: $want"*) [ $st = 1 ] && [ "$lines" = 1 ] && { ok "error: $msg"; return; } ;;
    esac
    bad "error for '$*': exit $st, '$msg' (wanted one line 'salign: $want...', exit 1)"
}
err_case "-f: $W/missing.txt: cannot open" -m "$F32" -f "$W/missing.txt"
err_case "-m: a model file is required" -f "$TEXT"
err_case "$W/missing.gguf" -m "$W/missing.gguf" -f "$TEXT"
err_case "-f: a text file is required" -m "$F32"
err_case "-c: 4096 is larger than the model's training context (2048)" -m "$F32" -f "$TEXT" -c 4096
err_case "-c: $W/short.txt gives" -m "$F32" -f "$W/short.txt"
err_case "-c: $W/medium.txt gives" -m "$F32" -f "$W/medium.txt"
err_case "-c: 2 is too small" -m "$F32" -f "$TEXT" -c 2
err_case "-c: expected" -m "$F32" -f "$TEXT" -c x
err_case "-b: expected" -m "$F32" -f "$TEXT" -b 0
err_case "--chunks: expected" -m "$F32" -f "$TEXT" --chunks -1
err_case "--chunks: missing value" -m "$F32" -f "$TEXT" --chunks
err_case "--bogus: unknown flag" -m "$F32" -f "$TEXT" --bogus
err_case "--kl-divergence: needs --kl-divergence-base" -m "$F32" --kl-divergence
err_case "--kl-divergence-base: $W/missing.kld: cannot open" -m "$F32" --kl-divergence-base "$W/missing.kld" --kl-divergence
err_case "--kl-divergence-base: $TEXT: not a reference" -m "$F32" --kl-divergence-base "$TEXT" --kl-divergence
err_case "--kl-divergence-base: $W/truncated.kld: 3000 bytes" -m "$F32" --kl-divergence-base "$W/truncated.kld" --kl-divergence
err_case "--kl-divergence-base: $W/no-such-dir/x.kld: cannot create" -m "$F32" -f "$TEXT" --kl-divergence-base "$W/no-such-dir/x.kld"
cp "$TEXT" "$W/copy.txt"
err_case "--kl-divergence-base: $W/copy.txt: is also an input" -m "$F32" -f "$W/copy.txt" --kl-divergence-base "$W/copy.txt"
if cmp -s "$TEXT" "$W/copy.txt"; then ok "the text named as --kl-divergence-base is left as it was"; else bad "--kl-divergence-base overwrote its own input"; fi
err_case "-c: $W/f32.kld was made with -c 512" -m "$F32" --kl-divergence-base "$W/f32.kld" --kl-divergence -c 256
err_case "-f: $W/other.txt does not give the tokens saved in $W/f32.kld" -m "$F32" -f "$W/other.txt" --kl-divergence-base "$W/f32.kld" --kl-divergence
finish
