/* tokenizer.h - text <-> token ids.
 *
 * One interface over SentencePiece-style BPE (Llama 2, Mistral, Gemma, llama2.c) and byte-level
 * BPE (Llama 3, Qwen2/Qwen3). A tokenizer is built from an SaTokSpec, which every source
 * fills in (a .salm file, a GGUF vocab, a llama2.c tokenizer.bin, an HF tokenizer.json).
 *
 * Safety rule: control/special tokens are produced from text only when the caller passes
 * parse_special (template text). User content is always encoded as ordinary text. */
#ifndef SALIGN_TOKENIZER_H
#define SALIGN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum { SA_TOK_SPM = 0, SA_TOK_BPE = 1 } SaTokModel;

/* SaTokSpec.add_space_prefix: when an SPM text run gets a leading "▁". */
enum {
    SA_PREFIX_NONE = 0,
    SA_PREFIX_ALWAYS = 1, /* every run that starts the text or follows a cut-out token (SentencePiece's
                           * add_dummy_prefix as llama.cpp applies it; HF's Prepend normalizer) */
    SA_PREFIX_METASPACE_ALWAYS = 2, /* HF Metaspace prepend_scheme "always": the same runs, unless the
                                     * run already starts with ' ' (or a literal U+2581) */
    SA_PREFIX_METASPACE_FIRST = 3,  /* HF Metaspace prepend_scheme "first": only the run at the very
                                     * start of the text, unless it starts with ' ' */
};

/* Token types: the numbering of GGUF's tokenizer.ggml.token_type (also used in .salm). */
enum {
    SA_TT_NORMAL = 1,
    SA_TT_UNKNOWN = 2,
    SA_TT_CONTROL = 3,
    SA_TT_USER_DEFINED = 4,
    SA_TT_UNUSED = 5,
    SA_TT_BYTE = 6,
};

/* Everything needed to build a tokenizer. Strings are the vocabulary's own bytes
 * (SPM vocabularies keep U+2581 "▁" for spaces; byte tokens are "<0xXX>"). */
typedef struct {
    int model;         /* SaTokModel */
    int n_vocab;
    char **tokens;     /* n_vocab NUL-terminated strings (a token never contains NUL) */
    float *scores;     /* n_vocab, or NULL */
    int32_t *types;    /* n_vocab, or NULL (all normal) */
    char **merges;     /* BPE merges "left right", rank = index. SPM: NULL (merge by scores) or,
                        * from an HF tokenizer.json, its merges (merge by rank, as HF does) */
    int n_merges;
    int bos_id, eos_id, unk_id, pad_id; /* -1 when absent */
    int eot_id;        /* end-of-turn token (e.g. <end_of_turn>, <|eot_id|>), -1 when absent */
    int add_bos, add_eos;
    int add_space_prefix; /* SPM: prepend "▁" to the text (Llama 2: yes, Gemma: no); SA_PREFIX_* */
    char *pre;         /* BPE pre-tokenizer name ("llama-bpe", "qwen2", ...), or NULL */
    /* 1 = HF tokenizer.json rules for added tokens: USER_DEFINED tokens (HF added tokens with
     * "special": false, e.g. Gemma's "<b>" or "\n\n", Qwen's "<think>") are cut out of ALL text,
     * leftmost-longest, before the model runs, as HF does; CONTROL ones (special: true) still only
     * with parse_special. 0 = GGUF/.salm rules: USER_DEFINED only with parse_special, because
     * GGUF vocabularies type some turn markers (Gemma's <start_of_turn>) USER_DEFINED. */
    int split_user_defined;
} SaTokSpec;

/* Frees every tokens[i] and merges[i] (each its own malloc'd string), the arrays and pre;
 * zeroes the spec. Safe on a zeroed spec. */
void sa_tok_spec_free(SaTokSpec *spec);

typedef struct SaTokenizer SaTokenizer;

/* Build (copies everything it needs from spec). NULL + sa_err on invalid input. */
SaTokenizer *sa_tok_new(const SaTokSpec *spec);
void sa_tok_free(SaTokenizer *t);
const SaTokSpec *sa_tok_spec(const SaTokenizer *t);

/* Encode len bytes of text. Appends ids to *ids (growing it with realloc; *cap tracks capacity).
 * add_bos: prepend BOS. parse_special: text like "<end_of_turn>" matching a control or
 * user-defined token becomes that token (only for template text; but see split_user_defined).
 * Invalid UTF-8 bytes are encoded as byte tokens: SPM with byte fallback gives <0xXX>; byte-level
 * BPE treats each invalid byte as one character of its own that is neither letter, number nor
 * space (so the pre-tokenizer groups it like punctuation) and encodes it through its byte-level
 * token. Either way decoding gives the exact bytes back (see utf8_char_len() in tokenizer.c).
 * Returns the number of ids appended, or -1 + sa_err. */
int sa_tok_encode(const SaTokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                  int32_t **ids, int *n, int *cap);

/* Encode a rendered prompt in which only some bytes are template text: special tokens are
 * recognised only where special_ok[i] != 0 for every byte of the match. Text runs between special
 * tokens are encoded as a whole, across template/user boundaries, exactly as if the prompt had
 * been encoded with parse_special but with user text unable to form control tokens. */
int sa_tok_encode_masked(const SaTokenizer *t, const char *text, size_t len, int add_bos, const uint8_t *special_ok,
                         int32_t **ids, int *n, int *cap);

/* Append the bytes that token `id` stands for to out. `prev` is the previous token id (-1 at the
 * start): SPM tokenizers with add_space_prefix drop the leading space of the first piece after
 * BOS, as llama2.c and llama.cpp do. Control tokens append their text only when `special`.
 * Byte tokens append the raw byte (so a multi-byte character may arrive in several calls). */
int sa_tok_decode(const SaTokenizer *t, int prev, int id, int special, SaBuf *out);

/* Raw vocabulary string of a token (NULL if out of range). */
const char *sa_tok_token(const SaTokenizer *t, int id);
int sa_tok_n_vocab(const SaTokenizer *t);
/* Look up a token by its exact vocabulary string; -1 if absent. */
int sa_tok_find(const SaTokenizer *t, const char *piece);
int sa_tok_is_eog(const SaTokenizer *t, int id); /* EOS or EOT */

/* Loaders of other sources into a spec (allocating; free with sa_tok_spec_free). */
/* HF tokenizer.json (src/tokjson.c); `path` is the file or the folder holding it. Reads
 * tokenizer_config.json beside it when present (bos/eos/pad/unk tokens, add_bos_token,
 * add_eos_token). Byte-level BPE with the Llama 3 or Qwen2 split regex becomes SA_TOK_BPE (pre
 * "llama-bpe" / "qwen2"); BPE with byte_fallback and a Replace(" " -> U+2581) normalizer (Mistral,
 * Llama 2, Gemma) or a Metaspace pre-tokenizer becomes SA_TOK_SPM with the merges (merge by rank)
 * and add_space_prefix per the Prepend normalizer / Metaspace prepend_scheme. Anything else is
 * refused, naming the file and field. */
int sa_tok_spec_from_hf(const char *path, SaTokSpec *spec);
/* The chat template beside a tokenizer.json (`path`: the tokenizer.json or its folder): the
 * "chat_template" of tokenizer_config.json (a string, or the entry named "default" / the first of a
 * list of {name, template}), else the file chat_template.jinja. malloc'd; NULL + sa_err if none. */
char *sa_hf_chat_template(const char *path);
/* llama2.c tokenizer.bin: BOS 1, EOS 2, UNK 0, add_space_prefix, pieces use ' ' for "▁"
 * (converted to "▁" here so the vocabulary looks like a SentencePiece one). */
int sa_tok_spec_from_llama2c(const char *path, SaTokSpec *spec);
/* The same, but the file must hold exactly n_vocab tokens (the model's vocab_size): the format has
 * no count, so this is what catches a file cut off at a token boundary. */
int sa_tok_spec_from_llama2c_n(const char *path, int n_vocab, SaTokSpec *spec);

#endif
