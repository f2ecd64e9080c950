/* open_gguf.h - the converter's one entry point for the runtime: a GGUF opened as a .salm.
 *
 * The runtime reads only .salm images; a GGUF given to any model-taking command is converted in
 * memory exactly as `salign-quantize --type keep` would write it (src/model.c calls this when the
 * file starts with "GGUF"). It sits below the model loader: it needs the GGUF reader, the .salm
 * writer and the importer, and nothing of the model, matmul or context code. */
#ifndef SALIGN_OPEN_GGUF_H
#define SALIGN_OPEN_GGUF_H

#include "salm.h"

/* Import PATH, convert it with --type keep into memory and open the image (mode: SA_LOAD_MMAP
 * is read as SA_LOAD_READ, since a conversion cannot be mapped). Writes one line to stderr saying
 * so and how long it took. 0, or -1 + sa_err("PATH: problem") with OUT closed. */
int sa_open_gguf_as_salm(const char *path, SaLoadMode mode, Salm *out);

#endif
