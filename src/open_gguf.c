/* open_gguf.c - a GGUF converted in memory for the runtime (open_gguf.h). */
#include "open_gguf.h"

#include <stdio.h>
#include <string.h>

#include "common.h"
#include "convert.h"

int sa_open_gguf_as_salm(const char *path, SaLoadMode mode, Salm *out) {
    memset(out, 0, sizeof *out);
    const double t0 = sa_time_ms();
    SaConvSource src;
    if (sa_import_gguf(path, &src)) return -1;
    /* quiet: no per-tensor lines (a copy per tensor under keep); the one line below says it all */
    const SaConvOptions opt = {.type = SA_CONV_KEEP, .quiet = 1};
    const int rc = sa_conv_to_memory(&src, &opt, mode == SA_LOAD_MMAP ? SA_LOAD_READ : mode, out);
    sa_conv_free(&src);
    if (rc) return -1;
    fprintf(stderr,
            "salign: %s: GGUF converted in memory as `salign-quantize --type keep` would, in %.0f ms "
            "(a .salm written once by salign-quantize loads without this step)\n",
            path, sa_time_ms() - t0);
    return 0;
}
