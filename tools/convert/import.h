/* import.h - the importers only salign-quantize needs: llama2.c checkpoints and Hugging Face
 * directories (the GGUF importer is in the runtime, src/convert.h, because -m model.gguf uses it).
 * On error: -1 + sa_err("PATH: problem"), and the source is left empty. */
#ifndef SALIGN_IMPORT_H
#define SALIGN_IMPORT_H

#include "../../src/convert.h"

/* A .salm (re-quantization): every tensor crc-checked first. */
int sa_import_salm(const char *path, SaConvSource *src);
int sa_import_llama2c(const char *path, const char *tokenizer_path, SaConvSource *src);
/* A Hugging Face model directory: config.json, model.safetensors (or shards with
 * model.safetensors.index.json), tokenizer.json + tokenizer_config.json (tools/convert/import_hf.c). */
int sa_import_hf(const char *dir, SaConvSource *src);
/* Grow a vocabulary to n tokens with placeholders "[PAD<id>]" of type unused, as llama.cpp's
 * converter does when config.json's vocab_size exceeds the tokenizer (Qwen2). */
int sa_tok_spec_pad(SaTokSpec *spec, int n);

#endif
