#!/bin/sh
# run-arm.sh - the aarch64 kernels (simd/neon.c) on an x86-64 host: cross-compile the kernel
# tests (make arm-kernel-tests) and run them under qemu-user, once as a CPU with dotprod
# (neon and neon_dotprod tables) and once as a Cortex-A72 (ARMv8.0: only the baseline table may
# be chosen, and it must not contain a newer instruction). Ends with "N passed, N failed, N skipped";
# a missing tool fails the part (tests/oracle.sh).
# Installs gcc-aarch64-linux-gnu and qemu-user with apt-get when missing and running as root.
cd "$(dirname "$0")/.." || exit 1
. tests/oracle.sh
case "$(uname -m)" in
x86_64) ;;
*) # on an aarch64 host the unit part runs these kernels natively; this part has nothing to add
    missing_oracle run-arm "host is $(uname -m), not x86-64 (the native unit tests run the NEON kernels)" ;;
esac
need=""
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need="$need gcc-aarch64-linux-gnu"
command -v qemu-aarch64 >/dev/null 2>&1 || need="$need qemu-user"
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run-arm: installing missing packages:$need" >&2
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >&2
    fi
    for t in aarch64-linux-gnu-gcc qemu-aarch64; do
        if ! command -v $t >/dev/null 2>&1; then
            missing_oracle run-arm "missing packages:$need; install them with: sudo apt-get install -y$need"
        fi
    done
fi
mkdir -p build
if ! make -s arm-kernel-tests >build/run-arm-build.txt 2>&1; then
    cat build/run-arm-build.txt
    echo "run-arm: cross build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
p=0 f=0 s=0 status=0
for cpu in max cortex-a72; do
    echo "-- qemu-aarch64 -cpu $cpu"
    out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu $cpu bin-arm/salign-kernel-tests kernels 2>&1) || status=1
    echo "$out"
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        echo "run-arm: -cpu $cpu produced no result line"
        f=$((f + 1)) status=1
        continue
    fi
    set -- $line
    p=$((p + $1)) f=$((f + $3))
    [ -n "$5" ] && s=$((s + $5))
done
oracle_result $p $f $s && [ $status = 0 ]
