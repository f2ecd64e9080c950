#!/bin/sh
# deps.sh [--check] build|test - make sure the Debian packages salign needs are installed.
#
# Each dependency is checked the way the build uses it: a one-line program that calls the library
# is compiled AND linked with the exact flags the Makefile uses. A header alone proves nothing: on a
# fresh Debian machine `#include <cblas.h>` compiles against reference BLAS (libblas-dev), and the
# link with -lopenblas then fails.
#
# Missing packages are installed with apt-get when running as root; otherwise the exact apt-get line
# is printed and the script fails. --check only reports (exit 1 when anything is missing).
#
# `build` also writes the compile flags it found to stdout as make assignments (the Makefile includes
# them from build/deps.mk): OpenBLAS's own cblas.h directory, so the build never compiles against
# whichever cblas.h comes first on the include path.
#
# Test hooks (tests/run-deps.sh): SALIGN_DEPS_LIB_<NAME> replaces a library's link flags, e.g.
# SALIGN_DEPS_LIB_OPENBLAS=-lno_such_library, to prove that a missing library is noticed.
set -e
check_only=0
if [ "$1" = --check ]; then check_only=1; shift; fi
what=$1
CC=${CC:-gcc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/salign-deps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
need=""
missing_why=""

# OpenBLAS's cblas.h lives in a folder of its own per threading variant (Debian: openblas-pthread,
# openblas-openmp, openblas-serial under the multiarch include folder); /usr/include/openblas elsewhere.
openblas_inc() {
    ma=$($CC -print-multiarch 2>/dev/null || true)
    for d in ${ma:+/usr/include/$ma/openblas-pthread /usr/include/$ma/openblas-openmp /usr/include/$ma/openblas-serial} \
             /usr/include/openblas; do
        if [ -f "$d/cblas.h" ] && grep -q openblas_set_num_threads "$d/cblas.h" 2>/dev/null; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# probe NAME PACKAGE CFLAGS LIBS PROGRAM: compile and link PROGRAM; on failure PACKAGE is needed.
probe() {
    name=$1 pkg=$2 cflags=$3 libs=$4 prog=$5
    eval "override=\${SALIGN_DEPS_LIB_$name-}"
    [ -n "$override" ] && libs=$override
    printf '%s\n' "$prog" > "$tmp/$name.c"
    # shellcheck disable=SC2086
    if ! $CC $cflags -Werror=implicit-function-declaration "$tmp/$name.c" -o "$tmp/$name" $libs \
            >"$tmp/$name.log" 2>&1; then
        need="$need $pkg"
        missing_why="$missing_why
  $pkg: $(grep -m1 -E 'error|cannot find|undefined' "$tmp/$name.log" || head -n1 "$tmp/$name.log")"
    fi
}

check_build() {
    inc=$(openblas_inc || true)
    probe ZLIB zlib1g-dev "" "-lz" '#include <zlib.h>
int main(void) { return zlibVersion()[0] == 0; }'
    probe OPENMP libgomp1 "-fopenmp" "-fopenmp" '#include <omp.h>
int main(void) { return omp_get_max_threads() < 1; }'
    probe CJSON libcjson-dev "" "-lcjson" '#include <cjson/cJSON.h>
int main(void) { return cJSON_Version()[0] == 0; }'
    probe UTF8PROC libutf8proc-dev "" "-lutf8proc" '#include <utf8proc.h>
int main(void) { return utf8proc_version()[0] == 0; }'
    probe MICROHTTPD libmicrohttpd-dev "" "-lmicrohttpd" '#include <microhttpd.h>
int main(void) { return MHD_get_version()[0] == 0; }'
    probe EDIT libedit-dev "" "-ledit" '#include <stdio.h>
#include <editline/readline.h>
int main(void) { using_history(); return 0; }'
    if [ -z "$inc" ]; then
        need="$need libopenblas-dev"
        missing_why="$missing_why
  libopenblas-dev: no OpenBLAS cblas.h (one that declares openblas_set_num_threads)"
    else
        probe OPENBLAS libopenblas-dev "-I$inc" "-lopenblas" '#include <cblas.h>
int main(void) { float a = 1, b = 1, c = 0; openblas_set_num_threads(1);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1); return c != 1.0f; }'
    fi
}

check_test() {
    command -v python3 >/dev/null 2>&1 || { need="$need python3"; missing_why="$missing_why
  python3: not on PATH"; }
    # PyTorch: the HF-semantics reference forward of tests/test_hf_torch.c (Debian's; only
    # /usr/bin/python3 sees it)
    /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1 || { need="$need python3-torch"; missing_why="$missing_why
  python3-torch: /usr/bin/python3 cannot import torch"; }
    # SIMDe: the AVX-512 kernels are also built against it and tested on CPUs without AVX-512; built
    # with the flags of the Makefile's avx512_emu object
    case "$($CC -dumpmachine)" in
    x86_64*) probe SIMDE libsimde-dev "-mavx2 -mfma -mf16c -Wno-psabi" "" '#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>
int main(void) { __m512i z = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), _mm512_set1_epi8(1));
  return _mm512_cmpeq_epi32_mask(z, _mm512_set1_epi32(4)) != 0xffff; }' ;;
    esac
}

case "$what" in
build) check_build ;;
test) check_test ;;
*) echo "usage: sh tools/deps.sh [--check] build|test" >&2; exit 2 ;;
esac

if [ -n "$need" ]; then
    if [ $check_only = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "salign: installing missing packages:$need" >&2
        apt-get update -qq >&2 || true
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >&2
        # installed: check again, with the same programs, so a package that does not provide what the
        # link needs is an error here and not a confusing one later
        need="" missing_why=""
        case "$what" in build) check_build ;; test) check_test ;; esac
        if [ -n "$need" ]; then
            echo "salign: still missing after apt-get install:$need$missing_why" >&2
            exit 1
        fi
    else
        echo "salign: missing packages:$need; install them with: sudo apt-get install -y$need$missing_why" >&2
        exit 1
    fi
fi
if [ "$what" = build ]; then
    echo "# written by tools/deps.sh build: OpenBLAS's own header folder"
    echo "BLAS_CFLAGS := -I$(openblas_inc)"
fi
exit 0
