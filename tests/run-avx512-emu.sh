#!/bin/sh
# run-avx512-emu.sh - the matmul tests (tests/test_matmul.c: every weight type, packed and plain
# layouts, 1 and 2 threads, batch invariance, against a double reference) once more on the AVX-512
# kernel table emulated with SIMDe (SALIGN_ISA=avx512_emu: simd/avx512.c built with -DSALIGN_SIMDE,
# linked into bin/salign-tests only), so the AVX-512 code runs whole matmuls on CPUs without it.
# Without that table (no libsimde-dev, no AVX2, not x86-64) it says why and fails (tests/oracle.sh).
cd "$(dirname "$0")/.." || exit 1
. tests/oracle.sh
probe=$(SALIGN_REQUIRE_ORACLES= bin/salign-tests avx512_emu_available)
if ! echo "$probe" | grep -q '^ok'; then
    echo "$probe" | grep -v '^[0-9]* passed'
    missing_oracle run-avx512-emu "no emulated AVX-512 table in bin/salign-tests (make test installs libsimde-dev)"
fi
echo "kernel table: avx512_emu (SALIGN_ISA=avx512_emu)"
SALIGN_ISA=avx512_emu bin/salign-tests matmul
