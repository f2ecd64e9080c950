/* test_tokjson.c - the HF tokenizer.json loader (src/tokjson.c) on small hand-written files:
 * what each supported layout becomes (model, pre-tokenizer name, token types, BOS/EOS from
 * tokenizer_config.json or the post-processor, merges in both spellings), the chat template
 * lookup, `salign tokenize --tokenizer tokenizer.json`, and one refusal per malformed or
 * unsupported field, each naming the file and the field. Real files are tested in
 * test_tokenizer_bpe.c and tests/run-oracle-tokenizers.sh. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/common.h"
#include "../src/tokenizer.h"
#include "test.h"

static const char LLAMA3_RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_RE[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
#define U2581 "\xe2\x96\x81"

/* ---- building files ---- */

static cJSON *obj_type(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static void add_added(cJSON *arr, int id, const char *content, int special) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", special);
    cJSON_AddItemToArray(arr, a);
}

/* A byte-level tokenizer.json (Qwen2 layout unless llama3): vocab = "a" "b" "ab" "Ġ" + two added
 * tokens; merges in the array spelling (or the string spelling with string_merges). */
static cJSON *byte_level_json(int llama3, int string_merges) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    add_added(added, 4, "<|im_end|>", 1);
    add_added(added, 5, "<think>", 0);
    if (llama3) cJSON_AddNullToObject(root, "normalizer");
    else cJSON_AddItemToObject(root, "normalizer", obj_type("NFC"));
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *pl = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = obj_type("Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", llama3 ? LLAMA3_RE : QWEN2_RE);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(pl, split);
    cJSON *bl = obj_type("ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "trim_offsets", 0);
    cJSON_AddBoolToObject(bl, "use_regex", 0);
    cJSON_AddItemToArray(pl, bl);
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", obj_type("ByteLevel"));
    cJSON *model = obj_type("BPE");
    cJSON_AddItemToObject(root, "model", model);
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", llama3);
    cJSON *v = cJSON_AddObjectToObject(model, "vocab");
    cJSON_AddNumberToObject(v, "a", 0);
    cJSON_AddNumberToObject(v, "b", 1);
    cJSON_AddNumberToObject(v, "ab", 2);
    cJSON_AddNumberToObject(v, "\xc4\xa0", 3);
    cJSON *m = cJSON_AddArrayToObject(model, "merges");
    if (string_merges) {
        cJSON_AddItemToArray(m, cJSON_CreateString("a b"));
    } else {
        const char *pair[2] = {"a", "b"};
        cJSON_AddItemToArray(m, cJSON_CreateStringArray(pair, 2));
    }
    return root;
}

/* A SentencePiece-style tokenizer.json: byte_fallback, Replace(" " -> "▁") [+ Prepend]. */
static cJSON *spm_json(int prepend) {
    cJSON *root = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    add_added(added, 0, "<unk>", 1);
    add_added(added, 1, "<s>", 1);
    add_added(added, 2, "</s>", 1);
    cJSON *norm = obj_type("Sequence");
    cJSON *nl = cJSON_AddArrayToObject(norm, "normalizers");
    if (prepend) {
        cJSON *p = obj_type("Prepend");
        cJSON_AddStringToObject(p, "prepend", U2581);
        cJSON_AddItemToArray(nl, p);
    }
    cJSON *r = obj_type("Replace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "pattern"), "String", " ");
    cJSON_AddStringToObject(r, "content", U2581);
    cJSON_AddItemToArray(nl, r);
    cJSON_AddItemToObject(root, "normalizer", norm);
    if (prepend) {
        cJSON_AddNullToObject(root, "pre_tokenizer");
    } else { /* Gemma: Split on " ", a no-op after the normalizer */
        cJSON *sp = obj_type("Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(sp, "pattern"), "String", " ");
        cJSON_AddStringToObject(sp, "behavior", "MergedWithPrevious");
        cJSON_AddItemToObject(root, "pre_tokenizer", sp);
    }
    /* post-processor: BOS first, as Mistral's TemplateProcessing */
    cJSON *pp = obj_type("TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(pp, "single");
    cJSON *st = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(st, "SpecialToken"), "id", "<s>");
    cJSON_AddItemToArray(single, st);
    cJSON *sq = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(sq, "Sequence"), "id", "A");
    cJSON_AddItemToArray(single, sq);
    cJSON_AddItemToObject(root, "post_processor", pp);
    cJSON *model = obj_type("BPE");
    cJSON_AddItemToObject(root, "model", model);
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON *v = cJSON_AddObjectToObject(model, "vocab");
    cJSON_AddNumberToObject(v, "<unk>", 0);
    cJSON_AddNumberToObject(v, "<s>", 1);
    cJSON_AddNumberToObject(v, "</s>", 2);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        cJSON_AddNumberToObject(v, name, 3 + b);
    }
    cJSON_AddNumberToObject(v, U2581, 259);
    cJSON_AddNumberToObject(v, "h", 260);
    cJSON_AddNumberToObject(v, "i", 261);
    cJSON_AddNumberToObject(v, "hi", 262);
    cJSON_AddNumberToObject(v, U2581 "hi", 263);
    cJSON *m = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(m, cJSON_CreateString("h i"));
    cJSON_AddItemToArray(m, cJSON_CreateString(U2581 " hi"));
    return root;
}

static cJSON *metaspace(const char *scheme) {
    cJSON *m = obj_type("Metaspace");
    cJSON_AddStringToObject(m, "replacement", U2581);
    cJSON_AddStringToObject(m, "prepend_scheme", scheme);
    cJSON_AddBoolToObject(m, "split", 0);
    return m;
}

/* Write root (and cfg, if any) as <tmp>/<name>/tokenizer.json (+ tokenizer_config.json); frees
 * both. Returns the tokenizer.json path (static buffer). */
static const char *write_case(const char *name, cJSON *root, cJSON *cfg) {
    static char path[1024];
    char dir[900], cfgp[1100];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(cfgp, sizeof cfgp, "%s/tokenizer_config.json", dir);
    remove(cfgp);
    char *s = cJSON_PrintUnformatted(root);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
    free(s);
    if (cfg) {
        s = cJSON_PrintUnformatted(cfg);
        f = fopen(cfgp, "w");
        if (f) {
            fputs(s, f);
            fclose(f);
        }
        free(s);
    }
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return path;
}

static void write_raw(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Loading must fail with a message naming the file and containing `what`; the spec is left empty. */
static void expect_reject(const char *label, cJSON *root, cJSON *cfg, const char *what) {
    const char *p = write_case(label, root, cfg);
    SaTokSpec spec;
    memset(&spec, 0x5A, sizeof spec);
    sa_err_clear();
    if (sa_tok_spec_from_hf(p, &spec) == 0) {
        test_fail(__FILE__, __LINE__, "%s: accepted", label);
        sa_tok_spec_free(&spec);
        return;
    }
    CHECKF(strstr(sa_errmsg(), label) != NULL, "%s: message does not name the file: %s", label, sa_errmsg());
    CHECKF(strstr(sa_errmsg(), what) != NULL, "%s: message \"%s\" lacks \"%s\"", label, sa_errmsg(), what);
    CHECKF(spec.tokens == NULL && spec.n_vocab == 0 && spec.merges == NULL, "%s: spec not cleared", label);
}

static cJSON *cfg_obj(const char *bos, const char *eos, int add_bos) {
    cJSON *c = cJSON_CreateObject();
    if (bos) cJSON_AddStringToObject(c, "bos_token", bos);
    else cJSON_AddNullToObject(c, "bos_token");
    if (eos) { /* the object spelling, as older configs write it */
        cJSON *e = cJSON_AddObjectToObject(c, "eos_token");
        cJSON_AddStringToObject(e, "__type", "AddedToken");
        cJSON_AddStringToObject(e, "content", eos);
    }
    if (add_bos >= 0) cJSON_AddBoolToObject(c, "add_bos_token", add_bos);
    cJSON_AddStringToObject(c, "chat_template", "{{ messages }}");
    return c;
}

/* ---- what each layout becomes ---- */

TEST(tokjson_byte_level_qwen2) {
    const char *p = write_case("tj_qwen", byte_level_json(0, 0), cfg_obj(NULL, "<|im_end|>", 0));
    SaTokSpec s;
    if (sa_tok_spec_from_hf(p, &s) != 0) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    CHECK_EQ_INT(s.model, SA_TOK_BPE);
    CHECK_EQ_STR(s.pre, "qwen2");
    CHECK_EQ_INT(s.n_vocab, 6);
    CHECK_EQ_INT(s.n_merges, 1);
    CHECK_EQ_STR(s.merges[0], "a b");
    CHECK_EQ_INT(s.types[4], SA_TT_CONTROL);
    CHECK_EQ_INT(s.types[5], SA_TT_USER_DEFINED);
    CHECK_EQ_INT(s.types[0], SA_TT_NORMAL);
    CHECK_EQ_INT(s.bos_id, -1);
    CHECK_EQ_INT(s.eos_id, 4);
    CHECK_EQ_INT(s.eot_id, 4);
    CHECK_EQ_INT(s.add_bos, 0);
    CHECK_EQ_INT(s.split_user_defined, 1);
    SaTokenizer *t = sa_tok_new(&s);
    CHECKF(t != NULL, "%s", sa_errmsg());
    if (t) {
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        CHECK(sa_tok_encode(t, "ab <think>", 10, 0, 0, &ids, &n, &cap) == 3);
        CHECK(n == 3 && ids[0] == 2 && ids[1] == 3 && ids[2] == 5);
        free(ids);
        sa_tok_free(t);
    }
    sa_tok_spec_free(&s);
    /* the folder works as well as the file */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tj_qwen", test_tmpdir());
    CHECK(sa_tok_spec_from_hf(dir, &s) == 0 && s.n_vocab == 6);
    sa_tok_spec_free(&s);
}

TEST(tokjson_byte_level_llama3) {
    /* no tokenizer_config.json: no BOS, nothing added */
    const char *p = write_case("tj_llama3", byte_level_json(1, 1), NULL);
    SaTokSpec s;
    if (sa_tok_spec_from_hf(p, &s) != 0) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    CHECK_EQ_INT(s.model, SA_TOK_BPE);
    CHECK_EQ_STR(s.pre, "llama-bpe");
    CHECK_EQ_STR(s.merges[0], "a b");
    CHECK_EQ_INT(s.bos_id, -1);
    CHECK_EQ_INT(s.add_bos, 0);
    sa_tok_spec_free(&s);
}

TEST(tokjson_spm_layouts) {
    /* Mistral: Prepend + Replace, BOS from the post-processor (no config) */
    const char *p = write_case("tj_mistral", spm_json(1), NULL);
    SaTokSpec s;
    if (sa_tok_spec_from_hf(p, &s) != 0) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    CHECK_EQ_INT(s.model, SA_TOK_SPM);
    CHECK_EQ_INT(s.add_space_prefix, 1);
    CHECK_EQ_INT(s.bos_id, 1);
    CHECK_EQ_INT(s.unk_id, 0);
    CHECK_EQ_INT(s.add_bos, 1);
    CHECK_EQ_INT(s.types[0], SA_TT_UNKNOWN);
    CHECK_EQ_INT(s.types[1], SA_TT_CONTROL);
    CHECK_EQ_INT(s.types[3], SA_TT_BYTE);
    CHECK_EQ_INT(s.types[258], SA_TT_BYTE);
    CHECK_EQ_INT(s.types[260], SA_TT_NORMAL);
    CHECK_EQ_INT(s.n_merges, 2);
    SaTokenizer *t = sa_tok_new(&s);
    CHECKF(t != NULL, "%s", sa_errmsg());
    if (t) {
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        /* "hi" -> "▁hi" by the merges; "x" is no token: byte fallback <0x78> */
        CHECK(sa_tok_encode(t, "hix", 3, 1, 0, &ids, &n, &cap) == 3);
        CHECK(n == 3 && ids[0] == 1 && ids[1] == 263 && ids[2] == 3 + 'x');
        free(ids);
        sa_tok_free(t);
    }
    sa_tok_spec_free(&s);
    /* Gemma: Replace only, no prefix; config turns BOS off */
    p = write_case("tj_gemma", spm_json(0), cfg_obj("<s>", "</s>", 0));
    if (sa_tok_spec_from_hf(p, &s) != 0) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    CHECK_EQ_INT(s.model, SA_TOK_SPM);
    CHECK_EQ_INT(s.add_space_prefix, 0);
    CHECK_EQ_INT(s.add_bos, 0);
    CHECK_EQ_INT(s.eos_id, 2);
    sa_tok_spec_free(&s);
}

TEST(tokjson_metaspace) {
    /* Mistral v0.3 layout: no normalizer, Metaspace(prepend_scheme "first", split false) */
    static const char *schemes[] = {"first", "always", "never"};
    static const int modes[] = {SA_PREFIX_METASPACE_FIRST, SA_PREFIX_METASPACE_ALWAYS, SA_PREFIX_NONE};
    for (int k = 0; k < 3; k++) {
        cJSON *j = spm_json(1);
        cJSON_ReplaceItemInObject(j, "pre_tokenizer", metaspace(schemes[k]));
        cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
        const char *p = write_case("tj_meta_ok", j, NULL);
        SaTokSpec s;
        if (sa_tok_spec_from_hf(p, &s) != 0) {
            test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
            return;
        }
        CHECK_EQ_INT(s.add_space_prefix, modes[k]);
        SaTokenizer *t = sa_tok_new(&s);
        sa_tok_spec_free(&s);
        if (!t) continue;
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        /* "hi" at the start: "▁hi" unless "never" */
        CHECK(sa_tok_encode(t, "hi", 2, 0, 0, &ids, &n, &cap) >= 1);
        CHECKF((n == 1 && ids[0] == 263) == (k < 2), "%s: \"hi\"", schemes[k]);
        /* " hi" already starts with a space: no second one */
        n = 0;
        CHECK(sa_tok_encode(t, " hi", 3, 0, 0, &ids, &n, &cap) >= 1);
        CHECKF(n == 1 && ids[0] == 263, "%s: \" hi\"", schemes[k]);
        /* after a special token: only "always" adds it */
        n = 0;
        CHECK(sa_tok_encode(t, "<s>hi", 5, 0, 1, &ids, &n, &cap) >= 2);
        CHECKF(n == 2 && ids[0] == 1 && ids[1] == (k == 1 ? 263 : 262), "%s: \"<s>hi\"", schemes[k]);
        free(ids);
        sa_tok_free(t);
    }
}

/* ---- refusals ---- */

TEST(tokjson_rejects) {
    char path[1024];
    /* not JSON at all */
    snprintf(path, sizeof path, "%s/tj_garbage", test_tmpdir());
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/tj_garbage/tokenizer.json", test_tmpdir());
    write_raw(path, "{\"model\": [1, 2,");
    SaTokSpec s;
    CHECK(sa_tok_spec_from_hf(path, &s) != 0 && strstr(sa_errmsg(), "tj_garbage") && strstr(sa_errmsg(), "JSON"));
    CHECK(sa_tok_spec_from_hf("/nonexistent/tokenizer.json", &s) != 0 && strstr(sa_errmsg(), "/nonexistent"));

    cJSON *j = byte_level_json(0, 0);
    cJSON_DeleteItemFromObject(j, "model");
    expect_reject("tj_no_model", j, NULL, "model: missing");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "model"), "type", cJSON_CreateString("Unigram"));
    expect_reject("tj_unigram", j, NULL, "model.type");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "model"), "vocab", cJSON_CreateArray());
    expect_reject("tj_vocab_type", j, NULL, "model.vocab");

    j = byte_level_json(0, 0);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab"), "c", 2.5);
    expect_reject("tj_vocab_id", j, NULL, "model.vocab");

    j = byte_level_json(0, 0);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab"), "c", 9);
    expect_reject("tj_vocab_gap", j, NULL, "no token has id 6");

    j = byte_level_json(0, 0);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab"), "c", 1);
    expect_reject("tj_vocab_dup", j, NULL, "id 1");

    j = byte_level_json(0, 0);
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges"), cJSON_CreateString("ab"));
    expect_reject("tj_merge_str", j, NULL, "model.merges[1]");

    j = byte_level_json(0, 0);
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges"), cJSON_CreateNumber(3));
    expect_reject("tj_merge_type", j, NULL, "model.merges[1]");

    j = byte_level_json(0, 0);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "model"), "merges");
    expect_reject("tj_no_merges", j, NULL, "model.merges");

    j = byte_level_json(0, 0);
    cJSON_DeleteItemFromObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "added_tokens"), 1), "content");
    expect_reject("tj_added_content", j, NULL, "added_tokens[1].content");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "added_tokens"), 1), "lstrip", cJSON_CreateTrue());
    expect_reject("tj_added_lstrip", j, NULL, "lstrip");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "added_tokens"), 0), "special",
                              cJSON_CreateString("yes"));
    expect_reject("tj_added_special", j, NULL, "added_tokens[0].special");

    j = byte_level_json(0, 0);
    cJSON_AddItemToArray(cJSON_GetObjectItem(j, "added_tokens"), cJSON_CreateString("<x>"));
    expect_reject("tj_added_type", j, NULL, "added_tokens[2]");

    j = byte_level_json(0, 0);
    cJSON *split = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pre_tokenizer"), "pretokenizers"), 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(split, "pattern"), "Regex", cJSON_CreateString("\\w+|\\s+"));
    expect_reject("tj_regex", j, NULL, "Split.pattern.Regex");

    j = byte_level_json(1, 0);
    cJSON_ReplaceItemInObject(j, "normalizer", obj_type("NFC"));
    expect_reject("tj_llama3_nfc", j, NULL, "normalizer");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "model"), "ignore_merges", cJSON_CreateTrue());
    expect_reject("tj_qwen_ignore", j, NULL, "model.ignore_merges");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(j, "decoder", obj_type("Fuse"));
    expect_reject("tj_decoder", j, NULL, "decoder");

    j = byte_level_json(0, 0);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", obj_type("Whitespace"));
    expect_reject("tj_pre_ws", j, NULL, "pre_tokenizer");

    j = spm_json(1);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", obj_type("Metaspace")); /* split defaults to true */
    cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
    expect_reject("tj_metaspace", j, NULL, "Metaspace.split");

    j = spm_json(1);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", metaspace("first"));
    expect_reject("tj_metaspace_norm", j, NULL, "Metaspace");

    j = spm_json(1);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", metaspace("sometimes"));
    cJSON_ReplaceItemInObject(j, "normalizer", cJSON_CreateNull());
    expect_reject("tj_metaspace_scheme", j, NULL, "prepend_scheme");

    j = spm_json(1);
    cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "normalizer"), "normalizers"), obj_type("NFKC"));
    expect_reject("tj_spm_nfkc", j, NULL, "NFKC");

    j = spm_json(1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "model"), "byte_fallback", cJSON_CreateFalse());
    expect_reject("tj_no_fallback", j, NULL, "byte_fallback");

    /* tokenizer_config.json problems name that file */
    expect_reject("tj_cfg_bos", byte_level_json(0, 0), cfg_obj("<nope>", NULL, 1), "tokenizer_config.json: bos_token");
    cJSON *c = cfg_obj(NULL, NULL, -1);
    cJSON_AddStringToObject(c, "add_bos_token", "true");
    expect_reject("tj_cfg_addbos", byte_level_json(0, 0), c, "tokenizer_config.json: add_bos_token");
    c = cfg_obj(NULL, NULL, 1);
    expect_reject("tj_cfg_nobos", byte_level_json(0, 0), c, "add_bos_token");
    c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "eos_token", 3);
    expect_reject("tj_cfg_eos", byte_level_json(0, 0), c, "eos_token");

    CHECK(sa_tok_spec_from_hf(NULL, &s) != 0);
}

/* ---- chat template ---- */

TEST(tokjson_chat_template) {
    write_case("tj_ct1", byte_level_json(0, 0), cfg_obj(NULL, NULL, 0));
    char dir[1024], p[1100];
    snprintf(dir, sizeof dir, "%s/tj_ct1", test_tmpdir());
    char *ct = sa_hf_chat_template(dir);
    CHECK(ct && strcmp(ct, "{{ messages }}") == 0);
    free(ct);
    /* the list form: the "default" entry */
    cJSON *c = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(c, "chat_template");
    const char *names[] = {"tool_use", "default"}, *bodies[] = {"T", "D"};
    for (int i = 0; i < 2; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", names[i]);
        cJSON_AddStringToObject(e, "template", bodies[i]);
        cJSON_AddItemToArray(list, e);
    }
    const char *tj = write_case("tj_ct2", byte_level_json(0, 0), c);
    ct = sa_hf_chat_template(tj);
    CHECK(ct && strcmp(ct, "D") == 0);
    free(ct);
    /* no chat_template in the config: chat_template.jinja beside it */
    write_case("tj_ct3", byte_level_json(0, 0), cfg_obj(NULL, NULL, 0));
    snprintf(dir, sizeof dir, "%s/tj_ct3", test_tmpdir());
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    write_raw(p, "{\"eos_token\": null}");
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    write_raw(p, "J{{ x }}");
    ct = sa_hf_chat_template(dir);
    CHECK(ct && strcmp(ct, "J{{ x }}") == 0);
    free(ct);
    remove(p);
    ct = sa_hf_chat_template(dir);
    CHECK(ct == NULL && strstr(sa_errmsg(), "chat_template"));
    CHECK(sa_hf_chat_template(NULL) == NULL);
}

/* ---- the CLI ---- */

TEST(tokjson_cli_tokenize) {
    const char *p = write_case("tj_cli", byte_level_json(0, 0), cfg_obj(NULL, "<|im_end|>", 0));
    char cmd[2048];
    int st;
    /* user text: "<|im_end|>" is text, and this tiny vocabulary has no token for '<' */
    snprintf(cmd, sizeof cmd, "printf 'ab<|im_end|>' | bin/salign tokenize --tokenizer %s 2>&1", p);
    char *out = test_run(cmd, &st);
    CHECKF(st != 0 && out && strstr(out, "0x3C"), "plain: \"%s\"", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "printf 'ab<|im_end|>' | bin/salign tokenize --special --tokenizer %s", p);
    out = test_run(cmd, &st);
    CHECKF(st == 0 && out && strcmp(out, "2 4\n") == 0, "--special: \"%s\"", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "printf '\"ab\"\\n' | bin/salign tokenize --jsonl --no-bos --tokenizer %s", p);
    out = test_run(cmd, &st);
    CHECKF(st == 0 && out && strcmp(out, "[2]\n") == 0, "--jsonl: \"%s\"", out ? out : "");
    free(out);
    /* a broken file: exit 1 with the file named */
    snprintf(cmd, sizeof cmd, "printf '{}' > %s/tj_cli/bad.json && echo x | bin/salign tokenize --tokenizer %s/tj_cli/bad.json 2>&1",
             test_tmpdir(), test_tmpdir());
    out = test_run(cmd, &st);
    CHECKF(st != 0 && out && strstr(out, "bad.json") && strstr(out, "model"), "bad file: \"%s\"", out ? out : "");
    free(out);
}
