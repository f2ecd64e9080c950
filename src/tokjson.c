/* tokjson.c - Hugging Face tokenizer.json (+ tokenizer_config.json) -> SaTokSpec.
 *
 * Two families of HF "BPE" models are accepted, each mapped onto a tokenizer.c model whose
 * behaviour was checked against HF (tests/run-oracle-tokenizers.sh):
 *   - byte-level BPE (Llama 3, Qwen2/Qwen3): a Split pre-tokenizer with the Llama 3 or Qwen2 regex
 *     followed by ByteLevel(use_regex false). -> SA_TOK_BPE, pre "llama-bpe" / "qwen2". The regex
 *     is compared as a string: tokenizer.c implements those two patterns by hand, not a regex
 *     engine, so any other pattern is refused rather than approximated.
 *   - SentencePiece-style BPE (Llama 2 / Mistral, Gemma): byte_fallback, and either a
 *     Replace(" " -> "▁") normalizer, optionally with Prepend("▁"), or a Metaspace pre-tokenizer
 *     (split false). -> SA_TOK_SPM with the merges (tokenizer.c then merges by rank, as HF does,
 *     instead of by SentencePiece scores, which these files lack).
 * Everything the loader does not understand (another normalizer, Metaspace, a WordPiece or
 * Unigram model, lstrip/rstrip on ordinary added tokens, ...) is refused with the file and field
 * named, because silently ignoring it would give different ids from the model's own tokenizer.
 *
 * Added tokens: "special": true -> CONTROL (produced only from template text, parse_special),
 * "special": false -> USER_DEFINED, and spec.split_user_defined = 1 so tokenizer.c cuts those out
 * of all text as HF does (see tokenizer.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "tokenizer.h"

/* The two split patterns, exactly as the files spell them (JSON-decoded). */
static const char LLAMA3_RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define SPM_SPACE "\xe2\x96\x81" /* U+2581 */
#define MAX_TOKENS (1 << 24)

/* ---- paths and files ---- */

/* `path` may be the tokenizer.json or the folder holding it. */
static int resolve(const char *path, char **json, char **dir) {
    struct stat st;
    *json = *dir = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(path);
        *dir = sa_strdup(path);
        *json = sa_malloc(n + sizeof "/tokenizer.json");
        if (*json) {
            memcpy(*json, path, n);
            memcpy(*json + n, "/tokenizer.json", sizeof "/tokenizer.json");
        }
    } else {
        const char *slash = strrchr(path, '/');
        *json = sa_strdup(path);
        *dir = slash ? sa_strndup(path, (size_t)(slash - path) + (slash == path)) : sa_strdup(".");
    }
    if (!*json || !*dir) {
        free(*json);
        free(*dir);
        return -1;
    }
    return 0;
}

/* ---- typed field access; every failure names the file and the field ---- */

static const cJSON *get(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static int is_null(const cJSON *j) { return !j || cJSON_IsNull(j); }

/* Optional string field: absent/null -> *out NULL. */
static int opt_str(const char *file, const char *where, const cJSON *obj, const char *key, const char **out) {
    const cJSON *j = get(obj, key);
    *out = NULL;
    if (is_null(j)) return 0;
    if (!cJSON_IsString(j)) return sa_err("%s: %s%s: expected a string", file, where, key);
    *out = j->valuestring;
    return 0;
}

/* Optional boolean field: absent/null -> dflt. */
static int opt_bool(const char *file, const char *where, const cJSON *obj, const char *key, int dflt, int *out) {
    const cJSON *j = get(obj, key);
    *out = dflt;
    if (is_null(j)) return 0;
    if (!cJSON_IsBool(j)) return sa_err("%s: %s%s: expected true or false", file, where, key);
    *out = cJSON_IsTrue(j);
    return 0;
}

static const char *type_of(const cJSON *obj) {
    const cJSON *t = get(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* A normalizer / pre-tokenizer / decoder as a flat list: a "Sequence" unrolled (one level, which
 * is all HF writes), anything else as itself. `seq_key` names the Sequence's array. */
static int flatten(const char *file, const char *what, const cJSON *j, const char *seq_key, const cJSON ***items,
                   int *n) {
    *items = NULL;
    *n = 0;
    if (is_null(j)) return 0;
    if (!cJSON_IsObject(j) || !type_of(j)) return sa_err("%s: %s: expected an object with a \"type\"", file, what);
    if (strcmp(type_of(j), "Sequence") != 0) {
        if (!(*items = sa_malloc(sizeof **items))) return -1;
        (*items)[0] = j;
        *n = 1;
        return 0;
    }
    const cJSON *arr = get(j, seq_key);
    if (!cJSON_IsArray(arr)) return sa_err("%s: %s.%s: expected an array", file, what, seq_key);
    int m = cJSON_GetArraySize(arr);
    if (!(*items = sa_malloc((size_t)(m > 0 ? m : 1) * sizeof **items))) return -1;
    int k = 0;
    for (const cJSON *e = arr->child; e; e = e->next, k++) {
        if (!cJSON_IsObject(e) || !type_of(e)) {
            free(*items);
            *items = NULL;
            return sa_err("%s: %s.%s[%d]: expected an object with a \"type\"", file, what, seq_key, k);
        }
        (*items)[k] = e;
    }
    *n = k;
    return 0;
}

/* Token id from a JSON number: an integer in [0, MAX_TOKENS). The field is named as
 * "<what>[\"<key>\"]" or "<what>[<index>]<suffix>" (only formatted on failure). */
static int get_id(const char *file, const char *what, const char *key, int index, const char *suffix, const cJSON *j,
                  int *out) {
    double v = cJSON_IsNumber(j) ? j->valuedouble : -1;
    if (cJSON_IsNumber(j) && v >= 0 && v < MAX_TOKENS && v == (double)(int)v) {
        *out = (int)v;
        return 0;
    }
    char field[96];
    if (key) snprintf(field, sizeof field, "%s[\"%.40s\"]", what, key);
    else snprintf(field, sizeof field, "%s[%d]%s", what, index, suffix);
    if (!cJSON_IsNumber(j)) return sa_err("%s: %s: expected a token id (number)", file, field);
    return sa_err("%s: %s: %g is not a token id (0..%d)", file, field, v, MAX_TOKENS - 1);
}

static int find_token(const SaTokSpec *s, const char *str) {
    for (int i = 0; i < s->n_vocab; i++)
        if (s->tokens[i] && strcmp(s->tokens[i], str) == 0) return i;
    return -1;
}

/* tokenizer_config.json names tokens either as a string or as {"content": "...", ...}. */
static int config_token(const char *file, const cJSON *cfg, const char *key, const char **out) {
    const cJSON *j = get(cfg, key);
    *out = NULL;
    if (is_null(j)) return 0;
    if (cJSON_IsString(j)) {
        *out = j->valuestring;
        return 0;
    }
    const cJSON *c = get(j, "content");
    if (cJSON_IsObject(j) && cJSON_IsString(c)) {
        *out = c->valuestring;
        return 0;
    }
    return sa_err("%s: %s: expected a string or an object with \"content\"", file, key);
}

/* ---- the model ---- */

/* Vocabulary + added tokens -> tokens[] and types[]. */
static int load_vocab(const char *file, const cJSON *vocab, const cJSON *added, SaTokSpec *spec) {
    int n = 0, k = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, k++) {
        int id;
        if (!e->string) return sa_err("%s: model.vocab entry %d has no key", file, k);
        if (get_id(file, "model.vocab", e->string, 0, "", e, &id)) return -1;
        if (id + 1 > n) n = id + 1;
    }
    k = 0;
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next, k++) {
        int id;
        if (!cJSON_IsObject(e)) return sa_err("%s: added_tokens[%d]: expected an object", file, k);
        if (get_id(file, "added_tokens", NULL, k, ".id", get(e, "id"), &id)) return -1;
        if (id + 1 > n) n = id + 1;
    }
    if (n == 0) return sa_err("%s: model.vocab: empty vocabulary", file);
    if (!(spec->tokens = sa_calloc((size_t)n, sizeof(char *)))) return -1;
    spec->n_vocab = n;
    if (!(spec->types = sa_malloc((size_t)n * sizeof(int32_t)))) return -1;
    for (int i = 0; i < n; i++) spec->types[i] = SA_TT_NORMAL;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id = (int)e->valuedouble;
        if (spec->tokens[id])
            return sa_err("%s: model.vocab: id %d is given to both \"%.40s\" and \"%.40s\"", file, id, spec->tokens[id],
                          e->string);
        if (!(spec->tokens[id] = sa_strdup(e->string))) return -1;
    }
    k = 0;
    for (const cJSON *e = added ? added->child : NULL; e; e = e->next, k++) {
        int id = (int)get(e, "id")->valuedouble;
        const cJSON *content = get(e, "content");
        if (!cJSON_IsString(content)) return sa_err("%s: added_tokens[%d].content: expected a string", file, k);
        if (!content->valuestring[0]) return sa_err("%s: added_tokens[%d].content: empty", file, k);
        char where[48]; /* a few thousand at most (Gemma: 6415) */
        snprintf(where, sizeof where, "added_tokens[%d].", k);
        int special, lstrip, rstrip, single_word;
        if (opt_bool(file, where, e, "special", 0, &special) || opt_bool(file, where, e, "lstrip", 0, &lstrip) ||
            opt_bool(file, where, e, "rstrip", 0, &rstrip) || opt_bool(file, where, e, "single_word", 0, &single_word))
            return -1;
        /* These change how the token is matched in text. Special tokens are matched only in
         * template text, whose whitespace the template controls, so lstrip/rstrip are ignored
         * there; an ordinary added token is matched in user text too, where ignoring them would
         * give other ids than HF. */
        if (single_word || (!special && (lstrip || rstrip)))
            return sa_err("%s: added_tokens[%d] (\"%.40s\"): %s is not supported", file, k, content->valuestring,
                          single_word ? "single_word" : lstrip ? "lstrip" : "rstrip");
        if (spec->tokens[id] && strcmp(spec->tokens[id], content->valuestring) != 0)
            return sa_err("%s: added_tokens[%d]: id %d is \"%.40s\" here but \"%.40s\" in model.vocab", file, k, id,
                          content->valuestring, spec->tokens[id]);
        if (!spec->tokens[id] && !(spec->tokens[id] = sa_strdup(content->valuestring))) return -1;
        spec->types[id] = special ? SA_TT_CONTROL : SA_TT_USER_DEFINED;
    }
    for (int i = 0; i < n; i++)
        if (!spec->tokens[i]) return sa_err("%s: model.vocab: no token has id %d (ids must be 0..%d without gaps)", file, i, n - 1);
    return 0;
}

/* merges: ["a b", ...] (older files) or [["a", "b"], ...] -> "a b" strings. */
static int load_merges(const char *file, const cJSON *merges, SaTokSpec *spec) {
    int m = cJSON_GetArraySize(merges);
    if (m > MAX_TOKENS) return sa_err("%s: model.merges: %d merges (limit %d)", file, m, MAX_TOKENS);
    if (m == 0) return sa_err("%s: model.merges: empty", file);
    if (!(spec->merges = sa_calloc((size_t)m, sizeof(char *)))) return -1;
    spec->n_merges = m;
    int k = 0;
    for (const cJSON *e = merges->child; e; e = e->next, k++) {
        const char *a, *b;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || sp == e->valuestring || !sp[1] || strchr(sp + 1, ' '))
                return sa_err("%s: model.merges[%d] (\"%.40s\"): expected two pieces separated by one space", file, k,
                              e->valuestring);
            if (!(spec->merges[k] = sa_strdup(e->valuestring))) return -1;
            continue;
        }
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(e->child) ||
            !cJSON_IsString(e->child->next))
            return sa_err("%s: model.merges[%d]: expected \"a b\" or [\"a\", \"b\"]", file, k);
        a = e->child->valuestring;
        b = e->child->next->valuestring;
        /* SaTokSpec keeps merges as "a b"; a piece holding ' ' would make that ambiguous (neither
         * family has such tokens: spaces are spelled "Ġ" or "▁") */
        if (!a[0] || !b[0] || strchr(a, ' ') || strchr(b, ' '))
            return sa_err("%s: model.merges[%d]: a piece is empty or contains a space", file, k);
        size_t la = strlen(a), lb = strlen(b);
        char *s = sa_malloc(la + lb + 2);
        if (!s) return -1;
        memcpy(s, a, la);
        s[la] = ' ';
        memcpy(s + la + 1, b, lb + 1);
        spec->merges[k] = s;
    }
    return 0;
}

/* Byte-level BPE: Split(regex, Isolated) then ByteLevel(use_regex false, no prefix space). */
static int classify_byte_level(const char *file, const cJSON *root, const cJSON *model, const cJSON **pre, int npre,
                               SaTokSpec *spec) {
    int bl = -1;
    for (int i = 0; i < npre; i++)
        if (!strcmp(type_of(pre[i]), "ByteLevel")) bl = i;
    int use_regex, add_prefix;
    if (opt_bool(file, "pre_tokenizer ByteLevel.", pre[bl], "use_regex", 1, &use_regex) ||
        opt_bool(file, "pre_tokenizer ByteLevel.", pre[bl], "add_prefix_space", 0, &add_prefix))
        return -1;
    if (add_prefix) return sa_err("%s: pre_tokenizer ByteLevel.add_prefix_space: true is not supported", file);
    if (use_regex || bl != 1 || npre != 2 || strcmp(type_of(pre[0]), "Split") != 0)
        return sa_err("%s: pre_tokenizer: only Sequence[Split(regex), ByteLevel(use_regex: false)] is supported "
                      "(the Llama 3 and Qwen2 layout)", file);
    const cJSON *split = pre[0];
    const char *behavior, *regex;
    int invert;
    if (opt_str(file, "pre_tokenizer Split.", split, "behavior", &behavior) ||
        opt_bool(file, "pre_tokenizer Split.", split, "invert", 0, &invert) ||
        opt_str(file, "pre_tokenizer Split.pattern.", get(split, "pattern"), "Regex", &regex))
        return -1;
    if (!behavior || strcmp(behavior, "Isolated") != 0 || invert)
        return sa_err("%s: pre_tokenizer Split: only behavior \"Isolated\" without invert is supported", file);
    if (!regex) return sa_err("%s: pre_tokenizer Split.pattern.Regex: missing", file);
    int llama3 = !strcmp(regex, LLAMA3_RE), qwen2 = !strcmp(regex, QWEN2_RE);
    if (!llama3 && !qwen2)
        return sa_err("%s: pre_tokenizer Split.pattern.Regex: \"%.60s...\" is neither the Llama 3 nor the Qwen2 "
                      "pattern (the only ones implemented)", file, regex);
    /* The rest of the pipeline must be what tokenizer.c does for that pre-tokenizer name. */
    const cJSON *norm = get(root, "normalizer");
    const char *nt = is_null(norm) ? NULL : type_of(norm);
    int ignore_merges, byte_fallback;
    if (opt_bool(file, "model.", model, "ignore_merges", 0, &ignore_merges) ||
        opt_bool(file, "model.", model, "byte_fallback", 0, &byte_fallback))
        return -1;
    if (byte_fallback) return sa_err("%s: model.byte_fallback: true is not supported with ByteLevel", file);
    if (llama3 && (nt || !ignore_merges))
        return sa_err("%s: %s: the Llama 3 pattern is supported with no normalizer and ignore_merges true", file,
                      nt ? "normalizer" : "model.ignore_merges");
    if (qwen2 && (!nt || strcmp(nt, "NFC") != 0 || ignore_merges))
        return sa_err("%s: %s: the Qwen2 pattern is supported with the NFC normalizer and ignore_merges false", file,
                      !nt || strcmp(nt, "NFC") ? "normalizer" : "model.ignore_merges");
    const cJSON **dec;
    int ndec, has_bl = 0;
    if (flatten(file, "decoder", get(root, "decoder"), "decoders", &dec, &ndec)) return -1;
    for (int i = 0; i < ndec; i++) has_bl |= !strcmp(type_of(dec[i]), "ByteLevel");
    free(dec);
    if (!has_bl) return sa_err("%s: decoder: a ByteLevel decoder is required with the ByteLevel pre-tokenizer", file);
    spec->model = SA_TOK_BPE;
    return (spec->pre = sa_strdup(llama3 ? "llama-bpe" : "qwen2")) ? 0 : -1;
}

/* SentencePiece-style BPE: byte_fallback; normalizer Replace(" " -> "▁") [+ Prepend("▁")], or a
 * Metaspace pre-tokenizer. */
static int classify_spm(const char *file, const cJSON *root, const cJSON *model, const cJSON **pre, int npre,
                        SaTokSpec *spec) {
    const cJSON **norm;
    int nn, replace = 0, prepend = 0;
    if (flatten(file, "normalizer", get(root, "normalizer"), "normalizers", &norm, &nn)) return -1;
    for (int i = 0; i < nn; i++) {
        const char *t = type_of(norm[i]), *a = NULL, *b = NULL;
        if (!strcmp(t, "Replace")) {
            if (opt_str(file, "normalizer Replace.pattern.", get(norm[i], "pattern"), "String", &a) ||
                opt_str(file, "normalizer Replace.", norm[i], "content", &b))
                goto fail;
            if (!a || !b || strcmp(a, " ") != 0 || strcmp(b, SPM_SPACE) != 0) {
                sa_err("%s: normalizer Replace: only \" \" -> \"\u2581\" is supported", file);
                goto fail;
            }
            replace = 1;
        } else if (!strcmp(t, "Prepend")) {
            if (opt_str(file, "normalizer Prepend.", norm[i], "prepend", &a)) goto fail;
            if (!a || strcmp(a, SPM_SPACE) != 0) {
                sa_err("%s: normalizer Prepend: only \"\u2581\" is supported", file);
                goto fail;
            }
            prepend = 1;
        } else {
            sa_err("%s: normalizer \"%.40s\" is not supported with byte_fallback BPE (Replace and Prepend are)", file, t);
            goto fail;
        }
    }
    free(norm);
    norm = NULL;
    int prefix;
    if (npre == 1 && !strcmp(type_of(pre[0]), "Metaspace")) {
        /* Newer files (Mistral v0.3, Llama 2 with legacy=false): no normalizer; Metaspace replaces
         * spaces and adds the prefix, by prepend_scheme (older files: add_prefix_space). */
        const char *rep, *scheme;
        int split, add_prefix;
        if (replace || prepend)
            return sa_err("%s: normalizer: Replace/Prepend together with a Metaspace pre-tokenizer is not supported", file);
        if (opt_str(file, "pre_tokenizer Metaspace.", pre[0], "replacement", &rep) ||
            opt_str(file, "pre_tokenizer Metaspace.", pre[0], "prepend_scheme", &scheme) ||
            opt_bool(file, "pre_tokenizer Metaspace.", pre[0], "split", 1, &split) ||
            opt_bool(file, "pre_tokenizer Metaspace.", pre[0], "add_prefix_space", 1, &add_prefix))
            return -1;
        if (rep && strcmp(rep, SPM_SPACE) != 0)
            return sa_err("%s: pre_tokenizer Metaspace.replacement: only \"\u2581\" is supported", file);
        /* split: true cuts the text into words before BPE, which can change the ids of space runs */
        if (split) return sa_err("%s: pre_tokenizer Metaspace.split: true is not supported", file);
        if (!scheme) prefix = add_prefix ? SA_PREFIX_METASPACE_ALWAYS : SA_PREFIX_NONE;
        else if (!strcmp(scheme, "always")) prefix = SA_PREFIX_METASPACE_ALWAYS;
        else if (!strcmp(scheme, "first")) prefix = SA_PREFIX_METASPACE_FIRST;
        else if (!strcmp(scheme, "never")) prefix = SA_PREFIX_NONE;
        else return sa_err("%s: pre_tokenizer Metaspace.prepend_scheme: \"%.20s\" is unknown", file, scheme);
    } else {
        if (!replace)
            return sa_err("%s: normalizer: byte_fallback BPE needs Replace(\" \" -> \"\u2581\") or a Metaspace "
                          "pre-tokenizer", file);
        /* After the normalizer there is no ' ' left, so a Split on " " (Gemma) cuts nothing. */
        for (int i = 0; i < npre; i++) {
            const char *t = type_of(pre[i]), *str = NULL;
            if (!strcmp(t, "Split") &&
                !opt_str(file, "pre_tokenizer Split.pattern.", get(pre[i], "pattern"), "String", &str) && str &&
                !strcmp(str, " "))
                continue;
            return sa_err("%s: pre_tokenizer \"%.40s\" is not supported with byte_fallback BPE", file, t);
        }
        prefix = prepend ? SA_PREFIX_ALWAYS : SA_PREFIX_NONE;
    }
    int ignore_merges;
    if (opt_bool(file, "model.", model, "ignore_merges", 0, &ignore_merges)) return -1;
    if (ignore_merges) return sa_err("%s: model.ignore_merges: true is not supported with byte_fallback BPE", file);
    spec->model = SA_TOK_SPM;
    spec->add_space_prefix = prefix;
    /* byte-fallback pieces, spelled as SentencePiece does */
    for (int i = 0; i < spec->n_vocab; i++) {
        const char *s = spec->tokens[i];
        if (spec->types[i] == SA_TT_NORMAL && strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' &&
            strchr("0123456789ABCDEF", s[3]) && strchr("0123456789ABCDEF", s[4]))
            spec->types[i] = SA_TT_BYTE;
    }
    return 0;
fail:
    free(norm);
    return -1;
}

/* add_bos / add_eos from a TemplateProcessing post-processor when the config does not say. */
static void template_specials(const cJSON *root, const char **first, const char **last) {
    *first = *last = NULL;
    const cJSON *pp = get(root, "post_processor");
    const cJSON *list[16];
    int n = 0;
    if (type_of(pp) && !strcmp(type_of(pp), "Sequence")) {
        for (const cJSON *e = get(pp, "processors") ? get(pp, "processors")->child : NULL; e && n < 16; e = e->next)
            list[n++] = e;
    } else if (pp) {
        list[n++] = pp;
    }
    for (int i = 0; i < n; i++) {
        if (!type_of(list[i]) || strcmp(type_of(list[i]), "TemplateProcessing") != 0) continue;
        const cJSON *single = get(list[i], "single");
        if (!cJSON_IsArray(single) || !single->child) continue;
        const cJSON *a = get(get(single->child, "SpecialToken"), "id");
        const cJSON *z = single->child;
        while (z->next) z = z->next;
        const cJSON *b = get(get(z, "SpecialToken"), "id");
        if (cJSON_IsString(a)) *first = a->valuestring;
        if (cJSON_IsString(b)) *last = b->valuestring;
    }
}

static int load(const char *file, const char *cfg_file, SaTokSpec *spec) {
    cJSON *root = sa_json_read_object(file), *cfg = NULL;
    const cJSON **pre = NULL;
    int npre = 0;
    if (!root) return -1;
    if (!cJSON_IsObject(root)) {
        sa_err("%s: expected a JSON object", file);
        goto fail;
    }
    const cJSON *model = get(root, "model");
    if (!cJSON_IsObject(model)) {
        sa_err("%s: model: %s", file, model ? "expected an object" : "missing");
        goto fail;
    }
    const char *mt = type_of(model);
    if (mt && strcmp(mt, "BPE") != 0) {
        sa_err("%s: model.type: \"%.40s\" is not supported (only BPE is)", file, mt);
        goto fail;
    }
    const cJSON *vocab = get(model, "vocab"), *merges = get(model, "merges"), *added = get(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) {
        sa_err("%s: model.vocab: %s", file, vocab ? "expected an object {token: id}" : "missing");
        goto fail;
    }
    if (!cJSON_IsArray(merges)) {
        sa_err("%s: model.merges: %s", file, merges ? "expected an array" : "missing");
        goto fail;
    }
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added)) {
        sa_err("%s: added_tokens: expected an array", file);
        goto fail;
    }
    if (!cJSON_IsArray(added)) added = NULL;
    const char *s;
    if (opt_str(file, "model.", model, "continuing_subword_prefix", &s)) goto fail;
    if (s && s[0]) {
        sa_err("%s: model.continuing_subword_prefix: not supported", file);
        goto fail;
    }
    if (opt_str(file, "model.", model, "end_of_word_suffix", &s)) goto fail;
    if (s && s[0]) {
        sa_err("%s: model.end_of_word_suffix: not supported", file);
        goto fail;
    }
    if (load_vocab(file, vocab, added, spec) || load_merges(file, merges, spec)) goto fail;

    if (flatten(file, "pre_tokenizer", get(root, "pre_tokenizer"), "pretokenizers", &pre, &npre)) goto fail;
    int byte_level = 0, byte_fallback;
    for (int i = 0; i < npre; i++) byte_level |= !strcmp(type_of(pre[i]), "ByteLevel");
    if (opt_bool(file, "model.", model, "byte_fallback", 0, &byte_fallback)) goto fail;
    if (byte_level) {
        if (classify_byte_level(file, root, model, pre, npre, spec)) goto fail;
    } else if (byte_fallback) {
        if (classify_spm(file, root, model, pre, npre, spec)) goto fail;
    } else {
        sa_err("%s: pre_tokenizer / model.byte_fallback: neither a ByteLevel pre-tokenizer nor byte_fallback; only "
               "byte-level BPE and SentencePiece-style BPE are supported", file);
        goto fail;
    }

    /* special token ids: tokenizer_config.json, else the model and the post-processor */
    const char *bos = NULL, *eos = NULL, *pad = NULL, *unk = NULL, *first, *last;
    int add_bos = -1, add_eos = -1;
    if (cfg_file) {
        if (!(cfg = sa_json_read_object(cfg_file))) goto fail;
        if (!cJSON_IsObject(cfg)) {
            sa_err("%s: expected a JSON object", cfg_file);
            goto fail;
        }
        if (config_token(cfg_file, cfg, "bos_token", &bos) || config_token(cfg_file, cfg, "eos_token", &eos) ||
            config_token(cfg_file, cfg, "pad_token", &pad) || config_token(cfg_file, cfg, "unk_token", &unk) ||
            opt_bool(cfg_file, "", cfg, "add_bos_token", -1, &add_bos) ||
            opt_bool(cfg_file, "", cfg, "add_eos_token", -1, &add_eos))
            goto fail;
    }
    if (!unk && opt_str(file, "model.", model, "unk_token", &unk)) goto fail;
    template_specials(root, &first, &last);
    if (!bos && first) bos = first;
    struct {
        const char *name, *str, *from;
        int *id;
    } named[] = {
        {"bos_token", bos, cfg_file, &spec->bos_id},
        {"eos_token", eos, cfg_file, &spec->eos_id},
        {"pad_token", pad, cfg_file, &spec->pad_id},
        {"unk_token", unk, cfg_file, &spec->unk_id},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(named); i++) {
        if (!named[i].str) continue;
        *named[i].id = find_token(spec, named[i].str);
        if (*named[i].id < 0) {
            sa_err("%s: %s \"%.40s\" is not a token of %s", named[i].from ? named[i].from : file, named[i].name,
                   named[i].str, file);
            goto fail;
        }
    }
    if (spec->unk_id >= 0) spec->types[spec->unk_id] = SA_TT_UNKNOWN; /* shown only on request, like <unk> */
    /* HF adds BOS/EOS through the post-processor; tokenizer_config's add_bos_token overrides. */
    spec->add_bos = add_bos >= 0 ? add_bos : (first && bos && !strcmp(first, bos));
    spec->add_eos = add_eos >= 0 ? add_eos : (last && eos && !strcmp(last, eos) && !(first == last && spec->add_bos));
    if (spec->add_bos && spec->bos_id < 0) {
        sa_err("%s: add_bos_token is true but there is no bos_token", cfg_file ? cfg_file : file);
        goto fail;
    }
    /* end of turn, by name (as gguf.c does for GGUFs without eot_token_id) */
    static const char *eot_names[] = {"<end_of_turn>", "<|eot_id|>", "<|im_end|>"};
    for (size_t k = 0; k < SA_ARRAY_LEN(eot_names) && spec->eot_id < 0; k++) spec->eot_id = find_token(spec, eot_names[k]);
    /* Instruct checkpoints often name the end-of-turn marker as eos_token (Gemma 3: <end_of_turn>,
     * Llama 3: <|eot_id|>, Qwen: <|im_end|>); then the document end (<eos>, <|end_of_text|>, ...)
     * must still stop generation, so it becomes EOS and the marker stays EOT. */
    if (spec->eos_id >= 0 && spec->eos_id == spec->eot_id) {
        static const char *eos_names[] = {"<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>"};
        for (size_t k = 0; k < SA_ARRAY_LEN(eos_names); k++) {
            const int id = find_token(spec, eos_names[k]);
            if (id >= 0) {
                spec->eos_id = id;
                break;
            }
        }
    }
    spec->split_user_defined = 1;
    free(pre);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return 0;
fail:
    free(pre);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return -1;
}

int sa_tok_spec_from_hf(const char *path, SaTokSpec *spec) {
    if (!spec) return sa_err("tokenizer.json: bad arguments");
    memset(spec, 0, sizeof *spec);
    spec->bos_id = spec->eos_id = spec->unk_id = spec->pad_id = spec->eot_id = -1;
    if (!path) return sa_err("tokenizer.json: bad arguments");
    char *json, *dir;
    if (resolve(path, &json, &dir)) return -1;
    char *cfg = sa_path_join(dir, "tokenizer_config.json");
    int rc = cfg ? load(json, sa_is_file(cfg) ? cfg : NULL, spec) : -1;
    if (rc) {
        sa_tok_spec_free(spec);
        spec->bos_id = spec->eos_id = spec->unk_id = spec->pad_id = spec->eot_id = -1;
    }
    free(cfg);
    free(json);
    free(dir);
    return rc;
}

char *sa_hf_chat_template(const char *path) {
    if (!path) {
        sa_err("chat template: bad arguments");
        return NULL;
    }
    char *json, *dir, *out = NULL;
    if (resolve(path, &json, &dir)) return NULL;
    char *cfg_file = sa_path_join(dir, "tokenizer_config.json"), *jinja = sa_path_join(dir, "chat_template.jinja");
    if (!cfg_file || !jinja) goto done;
    if (sa_is_file(cfg_file)) {
        cJSON *cfg = sa_json_read_object(cfg_file);
        if (!cfg) goto done;
        const cJSON *ct = get(cfg, "chat_template");
        if (cJSON_IsString(ct)) {
            out = sa_strdup(ct->valuestring);
        } else if (cJSON_IsArray(ct)) {
            /* [{"name": "default", "template": "..."}, {"name": "tool_use", ...}] */
            const cJSON *pick = NULL;
            for (const cJSON *e = ct->child; e; e = e->next) {
                const cJSON *nm = get(e, "name");
                if (!pick || (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default"))) pick = e;
            }
            const cJSON *tp = get(pick, "template");
            if (cJSON_IsString(tp)) out = sa_strdup(tp->valuestring);
            else sa_err("%s: chat_template: expected a string or a list of {name, template}", cfg_file);
            cJSON_Delete(cfg);
            goto done;
        } else if (ct && !cJSON_IsNull(ct)) {
            sa_err("%s: chat_template: expected a string or a list of {name, template}", cfg_file);
            cJSON_Delete(cfg);
            goto done;
        }
        cJSON_Delete(cfg);
        if (out) goto done;
    }
    if (sa_is_file(jinja)) out = sa_read_file(jinja, NULL);
    else sa_err("%s: no chat_template (nor %s)", cfg_file, jinja);
done:
    free(cfg_file);
    free(jinja);
    free(json);
    free(dir);
    return out;
}
