#!/bin/sh
# llamacpp-quantize.sh NLC - build (once) tests/oracles/llamacpp-quantize.c, llama.cpp's own
# quantizer, linked with node-llama-cpp's prebuilt libllama (NLC: the folder holding
# node_modules/node-llama-cpp) and compiled with llama.h and the ggml headers of the llama.cpp
# source bundle the same package ships (git show of the headers only: nothing of llama.cpp is
# built). Prints the binary's path; on failure one line on stderr and exit 1.
# Used by tests/run-archs.sh and tests/run-perplexity.sh, from the repository root.
NLC=$1
case "$(uname -m)" in x86_64) plat=linux-x64 ;; aarch64) plat=linux-arm64 ;; *) plat= ;; esac
LIBDIR=$NLC/node_modules/@node-llama-cpp/$plat/bins/$plat
LIBLLAMA=$(ls "$LIBDIR"/libllama.v*.so 2>/dev/null | head -n 1)
[ -n "$plat" ] && [ -n "$LIBLLAMA" ] || { echo "no prebuilt libllama in $LIBDIR" >&2; exit 1; }
LQ=build/llamacpp-q
if [ ! -x $LQ/llamacpp-quantize ] || [ tests/oracles/llamacpp-quantize.c -nt $LQ/llamacpp-quantize ]; then
    mkdir -p $LQ/inc || { echo "cannot create $LQ" >&2; exit 1; }
    if [ ! -d $LQ/src ]; then
        git clone -q --no-checkout "$NLC/node_modules/node-llama-cpp/llama/gitRelease.bundle" $LQ/src >&2 ||
            { echo "cannot read the llama.cpp source bundle of node-llama-cpp" >&2; exit 1; }
    fi
    for h in include/llama.h ggml/include/ggml.h ggml/include/ggml-cpu.h ggml/include/ggml-backend.h \
        ggml/include/ggml-opt.h ggml/include/ggml-alloc.h ggml/include/gguf.h; do
        git -C $LQ/src show "HEAD:$h" > "$LQ/inc/$(basename $h)" || { echo "no $h in the llama.cpp source bundle" >&2; exit 1; }
    done
    ${CC:-cc} -std=c11 -O2 -Wall -Wextra -I$LQ/inc -o $LQ/llamacpp-quantize tests/oracles/llamacpp-quantize.c \
        "$LIBLLAMA" "$LIBDIR/libggml-base.so" -Wl,-rpath,"$LIBDIR" -lm >&2 || { echo "cannot build tests/oracles/llamacpp-quantize.c" >&2; exit 1; }
fi
echo "$PWD/$LQ/llamacpp-quantize"
