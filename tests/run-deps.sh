#!/bin/sh
# run-deps.sh - the dependency check checks what the build links, not what a header says.
# - tools/deps.sh --check build|test passes here (make has installed what it needs);
# - each library's check fails, naming its package and the apt-get line, when its link flags point at
#   a library that does not exist (SALIGN_DEPS_LIB_<NAME>), as on a machine without the package;
# - the flags it hands the Makefile name OpenBLAS's own cblas.h, and bin/salign really links OpenBLAS
#   (not reference BLAS, whose cblas.h and libblas look alike);
# - the build turns an implicit function declaration into an error.
# Ends with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-deps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for what in build test; do
    if sh tools/deps.sh --check $what >"$tmp/out" 2>&1; then ok "deps.sh --check $what passes"
    else bad "deps.sh --check $what: $(cat "$tmp/out")"; fi
done

# name:package:phase - every library the build or the tests link or compile against
for spec in OPENBLAS:libopenblas-dev:build CJSON:libcjson-dev:build UTF8PROC:libutf8proc-dev:build \
            ZLIB:zlib1g-dev:build OPENMP:libgomp1:build MICROHTTPD:libmicrohttpd-dev:build EDIT:libedit-dev:build \
            SIMDE:libsimde-dev:test; do
    name=${spec%%:*} rest=${spec#*:} pkg=${rest%%:*} phase=${rest#*:}
    [ $name = SIMDE ] && [ "$(uname -m)" != x86_64 ] && continue
    env "SALIGN_DEPS_LIB_$name=-lsalign_no_such_library" sh tools/deps.sh --check $phase >"$tmp/out" 2>&1
    st=$?
    if [ $st = 1 ] && grep -q "missing packages: $pkg;" "$tmp/out" && grep -q "sudo apt-get install -y $pkg" "$tmp/out"; then
        ok "a missing $name library is noticed ($pkg)"
    else
        bad "missing $name library: status $st: $(cat "$tmp/out")"
    fi
done

# the include folder handed to the Makefile holds OpenBLAS's header, and the binary links libopenblas
inc=$(sh tools/deps.sh build 2>/dev/null | sed -n 's/^BLAS_CFLAGS := -I//p')
if [ -n "$inc" ] && grep -q openblas_set_num_threads "$inc/cblas.h" 2>/dev/null; then ok "BLAS_CFLAGS names OpenBLAS's cblas.h ($inc)"
else bad "BLAS_CFLAGS does not name OpenBLAS's cblas.h: '$inc'"; fi
if make -s -n -B build/src/matmul.o 2>/dev/null | grep -q -- "-I$inc"; then ok "matmul.c is compiled against $inc"
else bad "matmul.c is not compiled with -I$inc: $(make -s -n -B build/src/matmul.o 2>&1 | head -3)"; fi
if ldd bin/salign 2>/dev/null | grep -q 'libopenblas'; then ok "bin/salign links libopenblas"
else bad "bin/salign does not link libopenblas: $(ldd bin/salign 2>&1 | grep -i blas)"; fi

# an undeclared function is an error with the build's warning flags
printf 'int main(void) { return salign_undeclared_function(); }\n' > "$tmp/impl.c"
flags=$(make -s -n -B build/src/common.o 2>/dev/null | grep -e " -c src/common.c" | head -n 1 | sed 's/ -c .*//; s/^[^ ]* //')
# shellcheck disable=SC2086
if ! ${CC:-gcc} $flags -c "$tmp/impl.c" -o "$tmp/impl.o" >"$tmp/out" 2>&1 && grep -q 'implicit declaration' "$tmp/out"; then
    ok "an implicit function declaration fails the build"
else
    bad "an implicit function declaration compiles with the build's flags ($flags)"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
