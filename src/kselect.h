/* kselect.h - which table's implementation serves each kernel op (simd/kernels.h: per-operation
 * selection), chosen for the shapes of the model that runs.
 *
 * Only ops whose implementations are bit-identical in every table (the integer GEMMs, the
 * activation conversions) are chosen among tables: choosing never changes an output. Every other
 * op (float dots, attention, exp, silu) stays the best table's by cpuid. Among the exact ones,
 * each op the model uses is timed on the model's own matrices the first time a model of that
 * shape runs on a CPU (calibration, tens of milliseconds), separately for decode (T = 1; used up
 * to SA_PF_MAX_T tokens) and prefill, and the choice is cached per CPU model, salign binary and
 * model shape in $XDG_CACHE_HOME/salign/kernels (default ~/.cache/salign/kernels). The decode
 * prefetch distance (simd/kernels.h: sa_pf_ahead) is chosen the same way, once the kernels are:
 * none or 4 to 64 KiB, timed on the model's decode matrices.
 *
 * Overrides: SALIGN_ISA=TABLE (every op from that table, as before this existed) and --kernels
 * SPEC, which wins over SALIGN_ISA:
 *   auto          the default above
 *   calibrate     time again now, whatever the cache says (the new choice replaces the cached one)
 *   TABLE         every op from one table (scalar, avx2, avx512, neon, neon_dotprod)
 *   [decode:|prefill:]OP=TABLE[,...]   over auto: these ops from these tables (names as
 *                 `salign info` and `salign bench` print them; no class prefix: both)
 *   prefetch=BYTES (also in such a list) the decode prefetch distance, 0 for none; the
 *                 environment's SALIGN_PF_AHEAD=BYTES does the same under the flag */
#ifndef SALIGN_KSELECT_H
#define SALIGN_KSELECT_H

#include <stdio.h>

#include "../simd/kernels.h"
#include "model.h"

/* --kernels SPEC: checked now (0, or -1 + sa_err naming the flag), applied at the next model load. */
int sa_kselect_flag(const char *spec);
/* Choose the kernels for a loaded model (cache, calibration, overrides) and make sa_k serve
 * them. Never fails: without a cache folder it calibrates every time. When two models run in
 * one process, an op both use follows the first one loaded (the upstream: the larger one). */
void sa_kselect_model(const SaModel *m);
/* One line per op the model runs with: which table serves it for decode and prefill, and why
 * (calibrated, cached, forced, only one candidate, or not bit-identical). For a model not yet
 * given to sa_kselect_model (salign info): what a run of it would use, from the cache. */
void sa_kselect_print(FILE *f, const SaModel *m);

/* ---- for the tests ---- */
/* The calibration's clock (ms; NULL: the real one) and candidate tables (tables[0] is the
 * reference, never a candidate when others exist; n = 0: the CPU's own tables). */
void sa_kselect_testing(const SaKernels *const *tables, int n, double (*clock_ms)(void));
/* The choice for a list of matrices (what sa_kselect_model does with a model's): key names the
 * model shape in the cache. */
void sa_kselect_mats(const SaMat *const *mats, int n, const char *key);

#endif
