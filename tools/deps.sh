#!/bin/sh
# deps.sh build|test - make sure the Debian packages salign needs are installed.
# Installs them with apt-get when missing and running as root; otherwise prints the exact command and fails.
set -e
need=""
have_hdr() { # header, package
    echo "#include <$1>" | ${CC:-gcc} -E -x c - >/dev/null 2>&1 || need="$need $2"
}
case "$1" in
build)
    have_hdr zlib.h zlib1g-dev
    have_hdr cblas.h libopenblas-dev
    have_hdr omp.h libgomp1
    have_hdr cjson/cJSON.h libcjson-dev
    have_hdr utf8proc.h libutf8proc-dev
    ;;
test)
    command -v python3 >/dev/null 2>&1 || need="$need python3"
    # SIMDe: the AVX-512 kernels are also built against it and tested on CPUs without AVX-512
    have_hdr simde/x86/avx512.h libsimde-dev
    ;;
esac
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "salign: installing missing packages:$need" >&2
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >&2
else
    echo "salign: missing packages:$need; install them with: sudo apt-get install -y$need" >&2
    exit 1
fi
