/* test_e2e.c - the Foundation's end-to-end contract, through the real binaries:
 * convert stories260K (GGUF F32 / llama2.c .bin / GGUF Q8_0, Q4_0), generate greedily, and
 * compare with llama2.c's text and llama.cpp's ids. */
#include <stdlib.h>
#include <string.h>

#include "../src/common.h"
#include "../src/context.h"
#include "test.h"

/* Convert src to a .salm in the scratch folder (once per name). Returns its path or NULL. */
static const char *convert(const char *src, const char *type, const char *extra, const char *name) {
    const char *out = test_tmp(name);
    static char paths[16][512];
    static int n;
    for (int i = 0; i < n; i++)
        if (!strcmp(paths[i], out)) return paths[i];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bin/salign-quantize %s %s --type %s %s -q 2>&1", src, out, type, extra ? extra : "");
    int st;
    char *log = test_run(cmd, &st);
    if (st != 0) {
        test_fail(__FILE__, __LINE__, "conversion failed: %s", log);
        free(log);
        return NULL;
    }
    free(log);
    if (n < 16) {
        snprintf(paths[n], sizeof paths[n], "%s", out);
        return paths[n++];
    }
    return out;
}

static char *models_file(const char *name) {
    const char *dir = test_models_dir();
    if (!dir) return NULL;
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

/* Parse "1,2,3" or "1 2 3" into ids; returns count. */
static int parse_ids(const char *s, int *ids, int max) {
    int n = 0;
    while (*s && n < max) {
        while (*s && (*s == ',' || *s == ' ' || *s == '\n')) s++;
        if (!*s) break;
        ids[n++] = (int)strtol(s, (char **)&s, 10);
    }
    return n;
}

static void check_greedy_text(const char *model, const char *threads) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/salign generate -m %s -n 200 --temp 0 -t %s 2>/dev/null", model, threads);
    int st;
    char *out = test_run(cmd, &st);
    size_t elen;
    char *expect = sa_read_file(models_file("stories260K.expected_greedy_200.txt"), &elen);
    CHECK_EQ_INT(st, 0);
    CHECK(expect != NULL);
    if (expect) CHECKF(strlen(out) == elen && memcmp(out, expect, elen) == 0, "output differs from llama2.c's (t=%s):\n%s", threads, out);
    free(out);
    free(expect);
}

TEST(e2e_gguf_f32_greedy_matches_llama2c) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    const char *m = convert(models_file("stories260K.gguf"), "f32", NULL, "s260k-f32.salm");
    if (!m) return;
    check_greedy_text(m, "1");
    check_greedy_text(m, "2");
}

TEST(e2e_llama2c_bin_greedy_matches_llama2c) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    char extra[600];
    snprintf(extra, sizeof extra, "--tokenizer %s", models_file("tok512.bin"));
    const char *m = convert(models_file("stories260K.bin"), "f32", extra, "s260k-bin.salm");
    if (!m) return;
    check_greedy_text(m, "1");
}

static void check_ids(const char *gguf, const char *ids_file, const char *name) {
    const char *m = convert(models_file(gguf), "keep", NULL, name);
    if (!m) return;
    int expect[256], got[256];
    char *e = sa_read_file(models_file(ids_file), NULL);
    int ne = e ? parse_ids(e, expect, 256) : 0;
    free(e);
    CHECK_EQ_INT(ne, 200);
    const char *threads[] = {"1", "2"};
    for (int ti = 0; ti < 2; ti++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bin/salign generate -m %s -n 200 --temp 0 --ids -t %s 2>/dev/null", m, threads[ti]);
        int st;
        char *out = test_run(cmd, &st);
        int ng = parse_ids(out, got, 256);
        CHECK_EQ_INT(st, 0);
        CHECK_EQ_INT(ng, 200);
        int first_diff = -1;
        for (int i = 0; i < SA_MIN(ng, ne); i++)
            if (got[i] != expect[i]) { first_diff = i; break; }
        CHECKF(first_diff < 0, "%s: first difference with llama.cpp's ids at step %d (ours %d, llama.cpp %d), -t %s", gguf,
               first_diff, first_diff >= 0 ? got[first_diff] : 0, first_diff >= 0 ? expect[first_diff] : 0, threads[ti]);
        free(out);
    }
}

TEST(e2e_q8_0_keep_matches_llamacpp_ids) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    check_ids("stories260K-q8_0.gguf", "stories260K-q8_0.expected_greedy_200.ids.txt", "s260k-q8.salm");
}

/* Q4_0, default arithmetic: our greedy ids equal llama.cpp's for the first 78 steps; at step 78
 * the two best logits are 0.08 apart and llama.cpp picks the other one. The ids were made with
 * llama.cpp's default flash attention (V accumulated in f16); llama.cpp with flash attention off
 * takes our token at step 78 too (and gives our ids up to step 153): float noise at near-ties,
 * amplified by the Q8_0 rounding of activations. The exact 200 ids are checked below with
 * --llamacpp-compat, which redoes llama.cpp's arithmetic bit for bit. Here we keep the more
 * accurate arithmetic and check the contract that survives it: fed llama.cpp's own
 * tokens (teacher forcing), our argmax agrees at every step where our top-2 margin is clear,
 * llama.cpp's choice is always within 0.15 of our best logit, and the free-running ids agree
 * up to the first such near-tie. */
TEST(e2e_q4_0_keep_matches_llamacpp_ids) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    const char *path = convert(models_file("stories260K-q4_0.gguf"), "keep", NULL, "s260k-q4.salm");
    if (!path) return;
    int expect[256];
    char *e = sa_read_file(models_file("stories260K-q4_0.expected_greedy_200.ids.txt"), NULL);
    int ne = e ? parse_ids(e, expect, 256) : 0;
    free(e);
    CHECK_EQ_INT(ne, 200);
    SaModel m;
    if (sa_model_load(&m, path, NULL)) { CHECK(0); return; }
    SaCtx *c = sa_ctx_new(&m, NULL);
    int tok = 1, agree = 0, first_near_tie = -1, free_run_ok = 1;
    for (int i = 0; i < ne; i++) {
        CHECK(sa_ctx_eval(c, &tok, 1, 0) == 0);
        const float *l = sa_ctx_logits(c, -1);
        int best = 0;
        for (int j = 1; j < m.hp.n_vocab; j++) if (l[j] > l[best]) best = j;
        float second = -INFINITY;
        for (int j = 0; j < m.hp.n_vocab; j++) if (j != best && l[j] > second) second = l[j];
        const int near_tie = l[best] - second < 0.15f;
        if (near_tie && first_near_tie < 0) first_near_tie = i;
        if (best == expect[i]) agree++;
        else {
            CHECKF(near_tie, "step %d: llama.cpp chose %d (%.4f), our clear best is %d (%.4f)", i, expect[i], l[expect[i]], best, l[best]);
            CHECKF(l[best] - l[expect[i]] < 0.15f, "step %d: llama.cpp's token is %.4f below our best", i, l[best] - l[expect[i]]);
        }
        if (first_near_tie < 0 && best != expect[i]) free_run_ok = 0;
        tok = expect[i];
    }
    CHECK(free_run_ok);
    CHECKF(agree >= 195, "argmax agrees with llama.cpp on %d/200 teacher-forced steps", agree);
    printf("    q4_0: teacher-forced argmax agreement %d/200, first near-tie at step %d\n", agree, first_near_tie);
    sa_ctx_free(c);
    sa_model_free(&m);
}

/* The exact contract, in the verification mode that redoes llama.cpp's x86 CPU arithmetic bit for
 * bit (--llamacpp-compat, src/llamacpp_compat.h): all 200 of llama.cpp's Q4_0 ids. They were made
 * with llama.cpp's default flash attention (f16 V accumulator, online softmax); with flash
 * attention off, llama.cpp itself leaves these ids at step 78, like our default mode above. The
 * Q8_0 ids hold in this mode too. */
TEST(e2e_q4_0_llamacpp_compat_exact_ids) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    const char *files[][3] = {{"stories260K-q4_0.gguf", "stories260K-q4_0.expected_greedy_200.ids.txt", "s260k-q4.salm"},
                              {"stories260K-q8_0.gguf", "stories260K-q8_0.expected_greedy_200.ids.txt", "s260k-q8.salm"}};
    for (int f = 0; f < 2; f++) {
        const char *m = convert(models_file(files[f][0]), "keep", NULL, files[f][2]);
        if (!m) return;
        int expect[256], got[256];
        char *e = sa_read_file(models_file(files[f][1]), NULL);
        int ne = e ? parse_ids(e, expect, 256) : 0;
        free(e);
        CHECK_EQ_INT(ne, 200);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bin/salign generate -m %s -n 200 --temp 0 --ids -t 2 --llamacpp-compat 2>/dev/null", m);
        int st;
        char *out = test_run(cmd, &st);
        CHECK_EQ_INT(st, 0);
        int ng = parse_ids(out, got, 256);
        CHECK_EQ_INT(ng, 200);
        int first_diff = -1;
        for (int i = 0; i < SA_MIN(ng, ne); i++)
            if (got[i] != expect[i]) { first_diff = i; break; }
        CHECKF(first_diff < 0, "%s --llamacpp-compat: first difference with llama.cpp's ids at step %d", files[f][0], first_diff);
        free(out);
    }
    /* only llama.cpp's default f16 cache is reproduced */
    int st;
    char *out = test_run("bin/salign generate -m weights/stories260K.salm -n 4 --llamacpp-compat --kv-type f32 2>&1 >/dev/null", &st);
    CHECKF(st == 1 && strstr(out, "--llamacpp-compat: needs the f16 KV cache"), "exit %d: %s", st, out);
    free(out);
}

TEST(e2e_info_and_verify) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    const char *m = convert(models_file("stories260K.gguf"), "f32", NULL, "s260k-f32.salm");
    if (!m) return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/salign info %s --verify 2>&1", m);
    int st;
    char *out = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "n_layer 5") && strstr(out, "n_head_kv 4") && strstr(out, "blk.4.ffn_down.weight") &&
          strstr(out, "checksums match"));
    free(out);
    /* flip one byte of tensor data: --verify must catch it, exit 1, one line */
    size_t len;
    char *bytes = sa_read_file(m, &len);
    bytes[len - 100] ^= 1;
    const char *bad = test_tmp("flipped.salm");
    FILE *f = fopen(bad, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    free(bytes);
    snprintf(cmd, sizeof cmd, "bin/salign info %s --verify 2>&1 >/dev/null", bad);
    out = test_run(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECKF(strstr(out, "crc32 mismatch") && strchr(out, '\n') == out + strlen(out) - 1, "got: %s", out);
    free(out);
}

/* Every user error: exit status 1 and one line on stderr naming the problem (after the model's
 * "loaded" log line when the error comes later). */
static void check_user_error(const char *args, const char *must_contain) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/salign %s 2>&1 >/dev/null </dev/null", args);
    int st;
    char *out = test_run(cmd, &st);
    char *msg = out;
    if (!strncmp(msg, "salign: loaded ", 15) && strchr(msg, '\n')) msg = strchr(msg, '\n') + 1;
    size_t n = strlen(msg);
    CHECKF(st == 1, "'%s': exit %d", args, st);
    CHECKF(n > 0 && msg[n - 1] == '\n' && memchr(msg, '\n', n - 1) == NULL, "'%s': not one line: %s", args, out);
    CHECKF(strncmp(msg, "salign: ", 8) == 0 && strstr(msg, must_contain), "'%s': got %s", args, out);
    free(out);
}

TEST(e2e_user_errors_are_one_line) {
    check_user_error("frobnicate", "unknown command");
    check_user_error("generate", "-m");
    check_user_error("generate -m /nonexistent.salm", "/nonexistent.salm");
    check_user_error("generate -m x -n abc", "-n");
    check_user_error("generate -m x --temp -1", "--temp");
    check_user_error("generate -m x --top-p 2", "--top-p");
    check_user_error("generate -m x --bogus", "--bogus");
    check_user_error("generate -m x -t", "-t: missing value");
    check_user_error("info", "model file");
    check_user_error("info tests/test.h", "tests/test.h");
    check_user_error("tokenize", "exactly one");
    check_user_error("tokenize --tokenizer /nonexistent", "/nonexistent");
    check_user_error("generate -m weights/stories260K.salm --kv-type q4_0", "--kv-type: expected f16, f32 or q8_0");
    check_user_error("bench -m /nonexistent.salm -p 8 -n 8", "/nonexistent.salm");
    { /* and no table header on stdout before that error */
        int st;
        char *out = test_run("bin/salign bench -m /nonexistent.salm -p 8 -n 8 2>/dev/null", &st);
        CHECKF(st == 1 && out[0] == 0, "bench with a missing model: exit %d, stdout: %s", st, out);
        free(out);
    }
    if (test_models_dir()) {
        const char *m = convert(models_file("stories260K.gguf"), "f32", NULL, "s260k-f32.salm");
        if (m) {
            char args[700];
            snprintf(args, sizeof args, "generate -m %s -c 8 -p 'Once upon a time there was a very long prompt'", m);
            check_user_error(args, "context");
        }
    }
}

TEST(e2e_truncated_salm_is_refused) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    const char *m = convert(models_file("stories260K-q4_0.gguf"), "keep", NULL, "s260k-q4.salm");
    if (!m) return;
    size_t len;
    char *bytes = sa_read_file(m, &len);
    const char *bad = test_tmp("trunc.salm");
    size_t cuts[] = {0, 3, 4, 20, 39, 40, 41, 100, 1000, 5000, len / 2, len - 1};
    for (size_t i = 0; i < SA_ARRAY_LEN(cuts); i++) {
        FILE *f = fopen(bad, "wb");
        fwrite(bytes, 1, cuts[i], f);
        fclose(f);
        char args[700];
        snprintf(args, sizeof args, "info %s", bad);
        check_user_error(args, bad);
        snprintf(args, sizeof args, "generate -m %s -n 4", bad);
        check_user_error(args, bad);
    }
    free(bytes);
}

TEST(e2e_tokenize_cli) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time' | bin/salign tokenize --tokenizer %s", models_file("tok512.bin"));
    char *a = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    const char *m = convert(models_file("stories260K.gguf"), "f32", NULL, "s260k-f32.salm");
    if (m) {
        snprintf(cmd, sizeof cmd, "printf 'Once upon a time' | bin/salign tokenize -m %s", m);
        char *b = test_run(cmd, &st);
        CHECK_EQ_STR(a, b);
        free(b);
        snprintf(cmd, sizeof cmd, "printf '\"Once upon a time\"\\n\"<s>\"\\n' | bin/salign tokenize -m %s --jsonl --no-bos", m);
        b = test_run(cmd, &st);
        CHECK_EQ_INT(st, 0);
        CHECK(b[0] == '[' && strchr(b, '\n') && strchr(strchr(b, '\n') + 1, '\n'));
        CHECKF(strstr(b, "[1]") == NULL, "<s> in user text became BOS: %s", b);
        free(b);
    }
    CHECK(a[0] == '1' && a[1] == ' '); /* BOS first */
    free(a);
}

/* --kv-type q8_0 through the binaries on the bundled stories260K: greedy generation runs and
 * starts like the f16 cache's (measured: the first 113 of 200 ids agree, on scalar and AVX2;
 * 8-bit keys and values move the logits of this 260K-parameter model by ~4e-4 NMSE on average,
 * see ctx_kv_q8_0_close_to_f16), and bench and bench-spec take the flag. */
TEST(e2e_kv_q8_0_generate) {
    int ids[2][256], n[2], st;
    for (int k = 0; k < 2; k++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "bin/salign generate -m weights/stories260K.salm -n 200 --temp 0 -t 1 --ids --kv-type %s 2>&1 >%s",
                 k ? "q8_0" : "f16", test_tmp("kvq8.ids"));
        char *err = test_run(cmd, &st);
        CHECKF(st == 0, "%s: exit %d: %s", cmd, st, err);
        free(err);
        char *out = sa_read_file(test_tmp("kvq8.ids"), NULL);
        n[k] = out ? parse_ids(out, ids[k], 256) : 0;
        free(out);
    }
    CHECK_EQ_INT(n[0], 200);
    CHECK_EQ_INT(n[1], 200);
    int same = 0;
    while (same < n[0] && same < n[1] && ids[0][same] == ids[1][same]) same++;
    CHECKF(same >= 64, "q8_0 and f16 caches agree on only the first %d greedy ids", same);
    char *out = test_run("bin/salign bench -m weights/stories260K.salm -p 16 -n 16 -t 1 -r 1 --kv-type q8_0 --json 2>/dev/null", &st);
    CHECKF(st == 0 && strstr(out, "\"type_kv\": \"q8_0\"") && strstr(out, "\"n_gen\": 16"), "bench: exit %d: %s", st, out);
    free(out);
    out = test_run("bin/salign bench-spec -m weights/stories260K.salm -n 16 -r 1 -t 1 --kv-type q8_0 --json 2>&1", &st);
    CHECKF(st == 0 && strstr(out, "\"copy_speedup\""), "bench-spec: exit %d: %s", st, out);
    free(out);
}

/* Remove every `"..._ms":NUMBER` field (timings) from JSON text, in place. */
static void strip_ms_fields(char *s) {
    char *w = s;
    for (char *r = s; *r;) {
        char *m = strncmp(r, "_ms\":", 5) == 0 ? r : NULL;
        if (m) {
            /* back up over the key to its opening quote */
            char *q = w;
            while (q > s && q[-1] != '"') q--;
            if (q > s) q--;
            w = q;
            r += 5;
            while (*r && *r != ',' && *r != '}') r++;
            if (*r == ',') r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
}

/* Drop eval's "settings" objects: they name the model files, which differ between the two runs. */
static void strip_settings(char *s) {
    for (char *p = strstr(s, ",\"settings\":{"); p; p = strstr(p, ",\"settings\":{")) {
        char *e = strchr(p, '{');
        int depth = 0;
        do depth += *e == '{' ? 1 : *e == '}' ? -1 : 0;
        while (depth > 0 && *++e);
        if (!*e) return;
        memmove(p, e + 1, strlen(e + 1) + 1);
    }
}

/* stdout of a command (stderr to FILE when not NULL); CHECKs exit 0. */
static char *run_ok(const char *cmd, const char *err_file) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>%s", cmd, err_file ? err_file : "/dev/null");
    int st;
    char *out = test_run(full, &st);
    CHECKF(st == 0, "'%s': exit %d", cmd, st);
    return out;
}

/* How often `salign: F: GGUF converted in memory` appears in the file at path. */
static int converted_lines(const char *path) {
    char *e = sa_read_file(path, NULL);
    int n = 0;
    for (const char *p = e; p && (p = strstr(p, "GGUF converted in memory")); p++) n++;
    free(e);
    return n;
}

/* `-m model.gguf` everywhere a model is taken: every command gives the same output from the
 * GGUF as from the .salm that `salign-quantize --type keep` makes of it, with one stderr line
 * per GGUF saying it was converted (and none for a .salm). */
TEST(e2e_gguf_direct_equals_converted_salm) {
    if (!test_models_dir()) { test_skip("../shared/models not present"); return; }
    const char *ggufs[] = {"stories260K.gguf", "stories260K-q8_0.gguf", "stories260K-q4_0.gguf"};
    const char *salms[] = {"s260k-keep-f32.salm", "s260k-q8.salm", "s260k-q4.salm"};
    char data[512]; /* test_tmp's buffers rotate */
    snprintf(data, sizeof data, "%s", test_tmp("gguf-direct.jsonl"));
    FILE *f = fopen(data, "w");
    fputs("{\"question\": \"Once upon a time\"}\n{\"question\": \"Lily saw a big dog\"}\n", f);
    fclose(f);
    char errf[512];
    snprintf(errf, sizeof errf, "%s", test_tmp("gguf-direct.err"));
    for (int i = 0; i < 3; i++) {
        char *gguf = models_file(ggufs[i]);
        const char *salm = convert(gguf, "keep", NULL, salms[i]);
        if (!salm) return;
        const char *model[2] = {salm, gguf};
        char *out[2][7] = {{0}};
        for (int k = 0; k < 2; k++) {
            const char *m = model[k];
            const int want = k; /* converted lines per model load */
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "bin/salign generate -m %s -n 200 --temp 0 --ids -t 2", m);
            out[k][0] = run_ok(cmd, errf);
            CHECKF(converted_lines(errf) == want, "generate -m %s: %d conversion lines", m, converted_lines(errf));
            snprintf(cmd, sizeof cmd, "bin/salign generate -m %s -p 'Once upon a time' -n 60 --temp 0 -t 1", m);
            out[k][1] = run_ok(cmd, NULL);
            snprintf(cmd, sizeof cmd,
                     "bin/salign align --upstream %s --aligner %s -p 'Once upon a time' --max-sentences 4 --temp 0 -t 1", m,
                     m);
            out[k][2] = run_ok(cmd, errf);
            /* the same file in both roles is loaded once */
            CHECKF(converted_lines(errf) == want, "align with %s: %d conversion lines", m, converted_lines(errf));
            snprintf(cmd, sizeof cmd,
                     "bin/salign align --upstream %s --aligner weights/demo-aligner.salm -p 'Lily saw a big dog' "
                     "--max-sentences 3 --temp 0 --seed 1 -t 1 --json", m);
            out[k][3] = run_ok(cmd, NULL);
            strip_ms_fields(out[k][3]);
            snprintf(cmd, sizeof cmd,
                     "bin/salign align --upstream weights/stories260K.salm --aligner %s -p 'Lily saw a big dog' "
                     "--max-sentences 3 --temp 0 -t 1", m);
            out[k][4] = run_ok(cmd, NULL);
            char res[512];
            snprintf(res, sizeof res, "%s", test_tmp(k ? "gguf-direct-b.jsonl" : "gguf-direct-a.jsonl"));
            snprintf(cmd, sizeof cmd,
                     "rm -f %s && bin/salign eval --upstream %s --aligner %s --in %s --out %s --modes none,stream "
                     "--max-sentences 2 --max-tokens 64 --temp 0 --seed 5 -t 1 -c 512",
                     res, m, m, data, res);
            free(run_ok(cmd, NULL));
            out[k][5] = sa_read_file(res, NULL);
            if (out[k][5]) {
                strip_ms_fields(out[k][5]);
                strip_settings(out[k][5]);
            }
            snprintf(cmd, sizeof cmd, "printf 'Once upon a time, Lily' | bin/salign tokenize -m %s", m);
            out[k][6] = run_ok(cmd, NULL);
            /* speed runs: only that they run on it and report the model */
            snprintf(cmd, sizeof cmd, "bin/salign bench -m %s -p 16 -n 8 -t 1 -r 1 --json", m);
            char *b = run_ok(cmd, NULL);
            CHECKF(strstr(b, "\"n_gen\": 8") != NULL, "bench -m %s: %s", m, b);
            free(b);
            snprintf(cmd, sizeof cmd, "bin/salign bench-spec -m %s -n 16 -r 1 -t 1 --json", m);
            b = run_ok(cmd, NULL);
            CHECKF(strstr(b, "\"copy_speedup\"") != NULL, "bench-spec -m %s: %s", m, b);
            free(b);
        }
        const char *what[] = {"generate --ids", "generate text", "align (same model twice)", "align --upstream",
                              "align --aligner", "eval", "tokenize"};
        for (int j = 0; j < 7; j++) {
            CHECKF(out[0][j] && out[1][j] && out[0][j][0] && !strcmp(out[0][j], out[1][j]),
                   "%s: %s differs between the .salm and the GGUF:\n%s\n---\n%s", ggufs[i], what[j],
                   out[0][j] ? out[0][j] : "(none)", out[1][j] ? out[1][j] : "(none)");
            free(out[0][j]);
            free(out[1][j]);
        }
        /* info: the same model and tensor table (crcs included), only the file line differs */
        char cmd[1024];
        char *inf[2];
        for (int k = 0; k < 2; k++) {
            snprintf(cmd, sizeof cmd, "bin/salign info %s --verify", model[k]);
            inf[k] = run_ok(cmd, NULL);
        }
        const char *a = strchr(inf[0], '\n'), *b = strchr(inf[1], '\n');
        CHECKF(a && b && !strcmp(a, b) && strstr(inf[1], "GGUF, converted in memory") && strstr(b, "checksums match"),
               "%s: info differs:\n%s\n---\n%s", ggufs[i], inf[0], inf[1]);
        free(inf[0]);
        free(inf[1]);
    }
    /* a GGUF the runtime cannot take: one line naming the file, exit 1 */
    size_t len = 0;
    char *bytes = sa_read_file(models_file("stories260K-q8_0.gguf"), &len);
    const char *bad = test_tmp("cut.gguf");
    FILE *g = fopen(bad, "wb");
    fwrite(bytes, 1, len / 2, g);
    fclose(g);
    free(bytes);
    char args[700];
    snprintf(args, sizeof args, "generate -m %s -n 4", bad);
    check_user_error(args, bad);
    snprintf(args, sizeof args, "align --upstream weights/stories260K.salm --aligner %s -p hi", bad);
    check_user_error(args, bad);
    snprintf(args, sizeof args, "info %s", bad);
    check_user_error(args, bad);
}

/* Every "salign:" line of a combined stdout+stderr log starts a line of its own. */
static int stderr_lines_own_lines(const char *log) {
    for (const char *p = strstr(log, "salign:"); p; p = strstr(p + 1, "salign:"))
        if (p != log && p[-1] != '\n') return 0;
    return 1;
}

/* The streamed answer and stderr's lines: ended with a newline when both go to one place (2>&1),
 * left byte-exact when stdout is its own file; a cap that cuts a sentence is said on stderr. */
TEST(e2e_stream_output_lines_and_cut_sentence) {
    const char *R = "weights/stories260K.salm", *A = "weights/demo-aligner.salm";
    const char *both = test_tmp("both.txt"), *out = test_tmp("out.txt"), *err = test_tmp("err.txt");
    char cmd[2048];
    int st;
    for (int gen = 0; gen < 2; gen++) {
        char run[512];
        if (gen) snprintf(run, sizeof run, "bin/salign generate -m %s -p 'Once upon a time' -n 20 --temp 0", R);
        else snprintf(run, sizeof run, "bin/salign align --upstream %s --aligner %s -p 'Jill loved to draw pictures.' "
                                       "--max-tokens 30 --upstream-temp 0", R, A);
        const char *cut = gen ? "salign: stopped at -n 20 in the middle of a sentence\n"
                              : "salign: stopped at --max-tokens 30 in the middle of a sentence\n";
        snprintf(cmd, sizeof cmd, "%s > %s 2>&1", run, both);
        free(test_run(cmd, &st));
        CHECK_EQ_INT(st, 0);
        size_t n;
        char *log = sa_read_file(both, &n);
        CHECK(log != NULL);
        if (!log) return;
        CHECKF(stderr_lines_own_lines(log), "a stderr line is glued to the answer:\n%s", log);
        CHECKF(strstr(log, cut) != NULL, "no cut-sentence message in:\n%s", log);
        free(log);
        snprintf(cmd, sizeof cmd, "%s > %s 2> %s", run, out, err);
        free(test_run(cmd, &st));
        CHECK_EQ_INT(st, 0);
        char *o = sa_read_file(out, &n), *e = sa_read_file(err, NULL);
        CHECK(o && e);
        if (o && e) {
            CHECKF(n > 0 && o[n - 1] != '\n', "stdout of its own got a newline added: \"%s\"", o);
            CHECKF(strstr(e, cut) != NULL, "no cut-sentence message in:\n%s", e);
        }
        free(o);
        free(e);
    }
    /* an answer that ends by itself says nothing of the kind */
    snprintf(cmd, sizeof cmd, "bin/salign align --upstream %s --aligner %s -p 'Jill loved to draw pictures.' "
                              "--upstream-temp 0 --max-tokens 400 --max-sentences 3 2>&1", R, A);
    char *log = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECKF(!strstr(log, "middle of a sentence"), "a complete answer was reported cut:\n%s", log);
    CHECKF(!strstr(log, "stop: max tokens"), "the run was meant to end before the cap:\n%s", log);
    free(log);
}

/* A sampled run without --seed says its seed, and that seed repeats it (#20 item 9). */
TEST(e2e_drawn_seed_is_printed_and_repeats_the_run) {
    const char *err = test_tmp("seed-err.txt");
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "bin/salign generate -m weights/stories260K.salm -p 'Once upon a time' -n 40 --temp 1 2>%s", err);
    char *a = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    char *e = sa_read_file(err, NULL);
    unsigned long long seed = 0;
    const char *p = e ? strstr(e, "salign: seed ") : NULL;
    CHECKF(p && sscanf(p, "salign: seed %llu", &seed) == 1, "no seed line in: %s", e ? e : "");
    snprintf(cmd, sizeof cmd, "bin/salign generate -m weights/stories260K.salm -p 'Once upon a time' -n 40 --temp 1 --seed %llu 2>/dev/null", seed);
    char *b = test_run(cmd, &st);
    CHECKF(!strcmp(a, b), "the printed seed %llu did not repeat the run:\n%s\n%s", seed, a, b);
    free(a);
    free(b);
    free(e);
    /* align: both seeds in --json */
    const char *al = "bin/salign align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm "
                     "-p 'Jill loved to draw pictures.' --max-tokens 60 --temp 1 --json";
    snprintf(cmd, sizeof cmd, "%s 2>/dev/null", al);
    char *j = test_run(cmd, &st);
    CHECK_EQ_INT(st, 0);
    unsigned long long us = 0, as = 0;
    const char *u = strstr(j, "\"upstream_seed\":\""), *w = strstr(j, "\"aligner_seed\":\"");
    CHECKF(u && w && sscanf(u, "\"upstream_seed\":\"%llu", &us) == 1 && sscanf(w, "\"aligner_seed\":\"%llu", &as) == 1,
           "no seeds in the trace: %s", j);
    snprintf(cmd, sizeof cmd, "%s --upstream-seed %llu --aligner-seed %llu 2>/dev/null", al, us, as);
    char *k = test_run(cmd, &st);
    const char *aa = strstr(j, "\"answer\":"), *ab = strstr(k, "\"answer\":");
    const char *ea = aa ? strstr(aa, "\",\"") : NULL, *eb = ab ? strstr(ab, "\",\"") : NULL;
    CHECKF(aa && ab && ea && eb && ea - aa == eb - ab && !memcmp(aa, ab, (size_t)(ea - aa)),
           "the printed seeds did not repeat the aligned answer:\n%s\n%s", j, k);
    free(j);
    free(k);
}

/* A flipped bit in a used weight is caught on load (once per file identity, remembered in the
 * cache folder), --no-verify skips the check (#20 item 7). */
TEST(e2e_corrupt_weights_refused_on_load) {
    const char *m = test_tmp("flip.salm"), *cache = test_tmp("xdg-cache");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp weights/stories260K.salm %s", cache, m);
    free(test_run(cmd, &st));
    const char *gen = "XDG_CACHE_HOME=%s bin/salign generate -m %s -n 8 --temp 0 %s 2>&1";
    snprintf(cmd, sizeof cmd, gen, cache, m, "");
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "intact copy: %s", log);
    free(log);
    char list[1024];
    snprintf(list, sizeof list, "%s/salign/verified", cache);
    char *l = sa_read_file(list, NULL);
    CHECKF(l && strchr(l, '\n') && !strchr(l, '\n')[1], "one remembered identity expected: %s", l ? l : "(no list)");
    free(l);
    /* flip one bit 5000 bytes before the end (inside the last layer's weights): a new identity */
    FILE *f = fopen(m, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, -5000, SEEK_END);
    int c = fgetc(f);
    fseek(f, -5000, SEEK_END);
    fputc(c ^ 0x10, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, gen, cache, m, "");
    log = test_run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "crc32 mismatch") && strstr(log, "tensor '") && strchr(log, '\n') == log + strlen(log) - 1,
           "flipped bit: (%d) %s", st, log);
    free(log);
    snprintf(cmd, sizeof cmd, gen, cache, m, "--no-verify");
    log = test_run(cmd, &st);
    CHECKF(st == 0, "--no-verify: %s", log);
    free(log);
}

/* Under an address-space limit (ulimit -v) OpenBLAS's threads used to retry their buffer forever:
 * align and generate must finish, with the same output as without the limit (#20 item 2). The
 * 37-token prompt takes the sgemm path of the F32 model. */
TEST(e2e_address_space_limit_neither_hangs_nor_changes_output) {
    const char *runs[] = {
        "bin/salign align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm --temp 0 --max-tokens 80 "
        "-p 'Jill loved to draw pictures. She drew a cat and a dog and a house.'",
        "bin/salign generate -m weights/stories260K.salm -n 40 --temp 0 "
        "-p 'Jill loved to draw pictures. She drew a cat and a dog and a house.'",
    };
    for (int i = 0; i < 2; i++)
        for (int kb = 100000; kb <= 300000; kb += 200000) {
            char cmd[1024];
            int st, st0;
            snprintf(cmd, sizeof cmd, "%s 2>/dev/null", runs[i]);
            char *free_run = test_run(cmd, &st0);
            snprintf(cmd, sizeof cmd, "ulimit -v %d; timeout 60 %s 2>/dev/null", kb, runs[i]);
            char *limited = test_run(cmd, &st);
            CHECKF(st0 == 0 && st == 0, "ulimit -v %d: exit %d (124: it hung)", kb, st);
            CHECKF(!strcmp(free_run, limited), "ulimit -v %d changed the output:\n%s\n---\n%s", kb, free_run, limited);
            free(free_run);
            free(limited);
        }
}

/* Prompts from a file or standard input (no 128 KiB argument limit), -s, -n -1, and the errors a
 * careless user meets: a directory, a NUL byte, an empty align question (#20 CLI). */
TEST(e2e_prompt_sources_and_short_flags) {
    const char *pf = test_tmp("prompt.txt"), *big = test_tmp("big-prompt.txt"), *nul = test_tmp("nul.txt");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time' > %s && head -c 200000 /dev/zero | tr '\\0' 'a' > %s && printf 'a\\000b' > %s",
             pf, big, nul);
    free(test_run(cmd, &st));
    const char *g = "bin/salign generate -m weights/stories260K.salm -n 30 --temp 0";
    snprintf(cmd, sizeof cmd, "%s -p 'Once upon a time' 2>/dev/null", g);
    char *want = test_run(cmd, &st);
    const char *forms[] = {"%s -f %s 2>/dev/null", "%s -p - < %s 2>/dev/null", "%s --file %s -s 7 2>/dev/null"};
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd, forms[k], g, pf);
        char *got = test_run(cmd, &st);
        CHECKF(st == 0 && !strcmp(got, want), "%s: \"%s\" vs \"%s\"", forms[k], got, want);
        free(got);
    }
    free(want);
    /* a prompt longer than any argument may be: read, tokenized, refused only for the context */
    snprintf(cmd, sizeof cmd, "%s -f %s -c 256 2>&1", g, big);
    char *log = test_run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "200001 tokens, the context only 256"), "(%d) %s", st, log);
    free(log);
    /* -n -1: until end of text or the context */
    snprintf(cmd, sizeof cmd, "bin/salign generate -m weights/stories260K.salm -p 'Once' -n -1 --temp 0 -c 64 2>&1");
    log = test_run(cmd, &st);
    CHECKF(st == 0 && (strstr(log, "context full") || strstr(log, "generated")), "-n -1: (%d) %s", st, log);
    free(log);
    struct {
        const char *args, *want;
    } bad[] = {
        {"generate -m weights/stories260K.salm -f /tmp", "-f: /tmp: is a directory"},
        {"generate -m weights/stories260K.salm -f NUL", "holds a NUL byte"},
        {"align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm -p ' \t'", "-p: the question is empty"},
        {"align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm -f /nonexistent/q", "-f: /nonexistent/q: cannot open"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char args[512];
        snprintf(args, sizeof args, "%s", bad[k].args);
        char *p = strstr(args, "NUL");
        if (p) snprintf(p, sizeof args - (size_t)(p - args), "%s", nul);
        snprintf(cmd, sizeof cmd, "bin/salign %s 2>&1", args);
        log = test_run(cmd, &st);
        CHECKF(st == 1 && strstr(log, bad[k].want) && strchr(log, '\n') == log + strlen(log) - 1, "%s: (%d) %s", args, st, log);
        free(log);
    }
}

/* -t above the cores and -c above the training context are said once on stderr (#20 CLI). */
TEST(e2e_threads_and_context_warnings) {
    int st;
    char *log = test_run("bin/salign generate -m weights/stories260K.salm -n 3 --temp 0 -t 1024 -c 4096 2>&1 >/dev/null", &st);
    CHECKF(st == 0 && strstr(log, "-t 1024: this process may use ") && strstr(log, "was trained on 2048 positions"), "(%d) %s", st, log);
    free(log);
    log = test_run("bin/salign generate -m weights/stories260K.salm -n 3 --temp 0 -t 1 -c 256 2>&1 >/dev/null", &st);
    CHECKF(st == 0 && !strstr(log, "may use") && !strstr(log, "trained on"), "(%d) %s", st, log);
    free(log);
}

/* Files that are not models say what they probably are; an empty template names the flag (#20 CLI). */
TEST(e2e_wrong_file_messages) {
    char cmd[1024];
    int st;
    struct {
        const char *args, *want;
    } c[] = {
        {"generate -m %s/stories260K.bin -p hi", "a llama2.c checkpoint? convert it first: salign-quantize"},
        {"generate -m tests/data -p hi", "tests/data: is a directory (a Hugging Face model? convert it first"},
        {"tokenize -m %s/stories260K.bin", "a llama2.c model checkpoint, not a tokenizer: give its tokenizer.bin"},
        {"generate -m tests/data/corpus.json -p hi", "tests/data/corpus.json: not a .salm or GGUF model file"},
        {"align --upstream weights/stories260K.salm --aligner weights/demo-aligner.salm -p hi --aligner-template /dev/null",
         "--aligner-template: /dev/null: the template is empty"},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        char args[512];
        snprintf(args, sizeof args, c[k].args, test_models_dir());
        snprintf(cmd, sizeof cmd, "bin/salign %s 2>&1 </dev/null | grep -v '^salign: loaded'", args);
        char *log = test_run(cmd, &st);
        CHECKF(strstr(log, c[k].want) && strchr(log, '\n') == log + strlen(log) - 1, "%s: %s", args, log);
        free(log);
        snprintf(cmd, sizeof cmd, "bin/salign %s >/dev/null 2>&1 </dev/null", args);
        free(test_run(cmd, &st));
        CHECKF(st == 1, "%s: exit %d", args, st);
    }
}

/* Every subcommand answers --help and -h on stdout with exit 0; `salign help CMD` is the same;
 * --version names the tables this CPU runs (#20 CLI). */
TEST(e2e_help_everywhere_and_version) {
    const char *cmds[] = {"generate", "tokenize", "info", "align", "bench", "bench-spec", "eval", "eval-merge", "report", "judge",
                          "perplexity"};
    char cmd[256];
    int st;
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        snprintf(cmd, sizeof cmd, "bin/salign %s --help 2>/dev/null", cmds[k]);
        char *a = test_run(cmd, &st);
        CHECKF(st == 0 && strstr(a, "usage: salign ") && strstr(a, cmds[k]), "%s --help: (%d) %s", cmds[k], st, a);
        snprintf(cmd, sizeof cmd, "bin/salign help %s 2>/dev/null", cmds[k]);
        char *b = test_run(cmd, &st);
        CHECKF(st == 0 && !strcmp(a, b), "help %s differs from %s --help", cmds[k], cmds[k]);
        free(a);
        free(b);
    }
    char *v = test_run("bin/salign --version", &st);
    CHECKF(st == 0 && strstr(v, "salign " SALIGN_VERSION) && strstr(v, "scalar") && strstr(v, "in use: "), "%s", v);
    free(v);
}

/* A model that produces NaN logits (weights overwritten with NaN; --no-verify lets it load) stops the
 * run with exit 1 and a message naming which model it was (#20 CLI). */
TEST(e2e_nan_logits_name_the_model) {
    const char *m = test_tmp("nan.salm");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "bin/salign-quantize %s/stories260K.gguf %s --type f32 -q && python3 -c \"\n"
                              "import struct\nb = bytearray(open('%s', 'rb').read())\n"
                              "for o in range(len(b) - 20000, len(b) - 4000, 4): b[o:o + 4] = struct.pack('<I', 0x7fc00000)\n"
                              "open('%s', 'wb').write(b)\"", test_models_dir(), m, m, m);
    char *log = test_run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    for (int al = 0; al < 2; al++) {
        snprintf(cmd, sizeof cmd, "bin/salign align --upstream %s --aligner %s -p 'Jill.' --no-verify --max-tokens 20 2>&1 >/dev/null",
                 al ? "weights/stories260K.salm" : m, al ? m : "weights/demo-aligner.salm");
        log = test_run(cmd, &st);
        CHECKF(st == 1 && strstr(log, al ? "salign: aligner: the model produced" : "salign: upstream: the model produced"),
               "(%d) %s", st, log);
        free(log);
    }
}
