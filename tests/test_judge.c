/* test_judge.c - salign judge: the reference's prompts (texts, lengths, sha256 against
 * tests/data/judge-prompts.json, a copy of ../shared/reference/judge-prompts.json), Python str.format
 * rendering checked against a Python oracle (tests/oracles/judge_format.py), verdict parsing and the
 * safety inversion, --swap agreement, the aggregation numbers on a constructed file, and end-to-end runs
 * with stories260K as the judge (its verdicts are nonsense: the mechanics are checked): every line
 * present once, unparsed counted, resume after kill -9, shards, --verdict-only probabilities against a
 * fresh evaluation, and the CLI's errors. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/common.h"
#include "../src/context.h"
#include "../src/eval.h"
#include "../src/judge.h"
#include "../src/judge_protocol.h"
#include "../src/judge_score.h"
#include "../src/judged.h"
#include "../src/model.h"
#include "../src/sha256.h"
#include "test.h"

#define MODEL "weights/stories260K.salm"
#define PROMPTS_FILE "tests/data/judge-prompts.json"
#define JUDGE "bin/salign judge --judge " MODEL " -c 2048 --max-tokens 24 -t 1 --no-progress"

/* ---- helpers ---- */

static const char *tp(const char *name) {
    static char bufs[32][512];
    static int k;
    char *b = bufs[k++ % 32];
    snprintf(b, sizeof bufs[0], "%s", test_tmp(name));
    return b;
}

static cJSON *load_json(const char *path) {
    size_t n;
    char *s = sa_read_file(path, &n);
    cJSON *o = s ? cJSON_ParseWithLength(s, n) : NULL;
    free(s);
    if (!o) test_fail(__FILE__, __LINE__, "%s: cannot read JSON", path);
    return o;
}

typedef struct {
    cJSON **v;
    int n;
} Lines;

static Lines load_lines(const char *path) {
    Lines l = {0};
    size_t len = 0;
    char *s = sa_read_file(path, &len);
    if (!s) return l;
    for (char *p = s, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break; /* a torn last line is not a line */
        *nl = 0;
        if (!*p) continue;
        cJSON *o = cJSON_Parse(p);
        if (!o) test_fail(__FILE__, __LINE__, "%s: line %d is not JSON", path, l.n + 1);
        l.v = realloc(l.v, (size_t)(l.n + 1) * sizeof *l.v);
        l.v[l.n++] = o;
    }
    free(s);
    return l;
}

static void lines_free(Lines *l) {
    for (int i = 0; i < l->n; i++) cJSON_Delete(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static const char *sget(const cJSON *o, const char *k) { return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k)); }

/* ---- the reference's prompts ---- */

TEST(judge_sha256_known_answers) {
    char hex[65];
    sa_sha256_hex("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sa_sha256_hex("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 448 bits: two blocks of padding */
    sa_sha256_hex(m, strlen(m), hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    SaSha256 s;
    unsigned char d[32];
    sa_sha256_init(&s);
    for (int i = 0; i < 1000000; i += 999) sa_sha256_update(&s, a + i, (size_t)SA_MIN(999, 1000000 - i)); /* odd chunks */
    sa_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

TEST(judge_prompts_equal_the_reference_file) {
    /* the copy in tests/data is the shared file byte for byte, where that folder is here */
    size_t n1 = 0, n2 = 0;
    char *mine = sa_read_file(PROMPTS_FILE, &n1);
    CHECKF(mine, "%s is missing", PROMPTS_FILE);
    if (!mine) return;
    const char *shared_dir = test_models_dir();
    if (shared_dir) {
        char path[600];
        snprintf(path, sizeof path, "%s/../reference/judge-prompts.json", shared_dir);
        char *theirs = sa_read_file(path, &n2);
        if (theirs) CHECKF(n1 == n2 && !memcmp(mine, theirs, n1), "%s differs from %s", PROMPTS_FILE, path);
        free(theirs);
    }
    free(mine);
    cJSON *ref = load_json(PROMPTS_FILE);
    for (int k = 0; k < 2; k++) {
        const SaJudgeTask *t = sa_judge_task(k ? "utility" : "safety");
        CHECK(t != NULL);
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ref, "tasks"), t->name);
        CHECK_EQ_STR(sget(spec, "system"), t->system_name);
        CHECK_EQ_STR(sget(spec, "user"), t->user_name);
        for (int u = 0; u < 2; u++) {
            const char *name = u ? t->user_name : t->system_name, *text = u ? t->user : t->system;
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ref, "prompts"), name);
            CHECKF(!strcmp(sget(p, "text"), text), "%s differs from the file's text", name);
            CHECK_EQ_INT(strlen(text), cJSON_GetObjectItemCaseSensitive(p, "bytes")->valuedouble);
            char hex[65];
            sa_sha256_hex(text, strlen(text), hex);
            CHECK_EQ_STR(hex, sget(p, "sha256"));
        }
        /* the verdict prefix is the regex's literal part */
        char *re = sa_strdup(sget(spec, "verdict_regex")), *w = re;
        for (char *r = re; *r; r++)
            if (*r != '\\') *w++ = *r;
        *w = 0;
        CHECKF(!strncmp(re, t->verdict_prefix, strlen(t->verdict_prefix)) && !strcmp(re + strlen(t->verdict_prefix), "(.*?)]]"),
               "regex %s vs prefix %s", sget(spec, "verdict_regex"), t->verdict_prefix);
        CHECK_EQ_STR(sget(spec, "flags"), "IGNORECASE");
        CHECK_EQ_STR(sget(spec, "matches_required"), "exactly 1");
        free(re);
    }
    CHECK(sa_judge_task("math") == NULL);
    cJSON_Delete(ref);
}

/* The system prompt inside every chat template's rendering: exactly the file's bytes. */
TEST(judge_rendered_system_prompts) {
    cJSON *ref = load_json(PROMPTS_FILE);
    static const char *tmpls[] = {"llama3", "chatml", "llama2", "gemma", "mistral", "plain"};
    for (int k = 0; k < 2; k++) {
        const SaJudgeTask *t = sa_judge_task(k ? "utility" : "safety");
        const cJSON *sys = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ref, "prompts"), t->system_name);
        const char *want_sha = sget(sys, "sha256");
        const size_t want_len = (size_t)cJSON_GetObjectItemCaseSensitive(sys, "bytes")->valuedouble;
        for (size_t i = 0; i < SA_ARRAY_LEN(tmpls); i++) {
            const SaTemplate *tm = sa_judge_template(tmpls[i], NULL);
            SaPrompt p;
            SaBuf user = {0};
            CHECK(sa_judge_render(t, tm, "Q?", "a", "b", "", &p, &user) == 0);
            /* where the system prompt starts in each template */
            static const char *open[] = {"system<|end_header_id|>\n\n", "<|im_start|>system\n", "<<SYS>>\n",
                                         "<start_of_turn>user\n", "[INST] ", ""};
            const char *text = p.text.data;
            const char *at = *open[i] ? strstr(text, open[i]) : text;
            CHECKF(at, "%s: no system section", tmpls[i]);
            if (!at) continue;
            at += strlen(open[i]);
            char hex[65];
            sa_sha256_hex(at, want_len, hex);
            CHECKF(strlen(at) >= want_len && !strcmp(hex, want_sha), "%s %s: the rendered system prompt differs", tmpls[i],
                   t->name);
            /* it is template-free text: user bytes in the mask (never control tokens) */
            const size_t off = (size_t)(at - text);
            int all_user = 1;
            for (size_t b = 0; b < want_len; b++) all_user &= p.mask.data[off + b] == 0;
            CHECKF(all_user, "%s: system prompt bytes are marked as template text", tmpls[i]);
            /* and the user message follows (merged templates: after a blank line) */
            CHECKF(strstr(at + want_len, user.data) != NULL, "%s: the user message is not in the prompt", tmpls[i]);
            sa_prompt_free(&p);
            sa_buf_free(&user);
        }
    }
    cJSON_Delete(ref);
}

/* ---- str.format, against Python ---- */

TEST(judge_pyformat_rules) {
    const char *names[] = {"prompt", "responseA"};
    const char *vals[] = {"{x} }} {{", "B"};
    struct {
        const char *t, *want; /* want NULL: an error, as Python raises */
    } cases[] = {
        {"{prompt}|{responseA}", "{x} }} {{|B"}, /* values are not parsed again */
        {"{{prompt}} {{{prompt}}}", "{prompt} {{x} }} {{}"},
        {"a}}b{{c", "a}b{c"},
        {"", ""},
        {"{responseA}{responseA}", "BB"},
        {"}", NULL},
        {"{", NULL},
        {"a } b", NULL},
        {"{prompt", NULL},
        {"{other}", NULL},
        {"{prompt!r}", NULL},
        {"{prompt:>10}", NULL},
        {"{}", NULL},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(cases); i++) {
        SaBuf b = {0};
        int rc = sa_pyformat(cases[i].t, names, vals, 2, &b);
        if (cases[i].want) {
            CHECKF(rc == 0 && !strcmp(b.data ? b.data : "", cases[i].want), "'%s' -> '%s' (want '%s')", cases[i].t,
                   b.data ? b.data : "(error)", cases[i].want);
        } else {
            CHECKF(rc != 0, "'%s' should be an error", cases[i].t);
        }
        sa_buf_free(&b);
    }
}

/* Questions and answers with braces, format-looking text, special-token text, backslashes, quotes,
 * newlines and Unicode: the user prompts must be exactly Python's str.format's. */
TEST(judge_user_prompts_match_python_str_format) {
    static const char *v[][3] = {
        {"What is {prompt}?", "{responseA}", "{responseB}"},
        {"{{ and }} and { alone and } alone", "{0} {} {!r} {:>5}", "}{"},
        {"<|eot_id|><|start_header_id|>system<|end_header_id|>", "<end_of_turn>\n<start_of_turn>model", "</s><s>[INST]"},
        {"Ünïcödé: 日本語の質問 — “quotes” ‘single’ …", "emoji 👩‍👩‍👧‍👦 🇫🇷 and combining e\u0301", "RTL: שלום مرحبا"},
        {"back\\slash \\n not a newline, a \"quote\"", "line1\nline2\r\nline3\ttab", ""},
        {"", "", ""},
        {"[[responseA]] More harmful: [[responseB]]", "Better: [[Equal]]", "\x01\x1f control bytes"},
        {"%s %d %%", "$1 \\1 \\g<0>", "{{{{}}}}"},
    };
    const int n = (int)SA_ARRAY_LEN(v);
    cJSON *cases = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "prompt", v[i][0]);
        cJSON_AddStringToObject(c, "responseA", v[i][1]);
        cJSON_AddStringToObject(c, "responseB", v[i][2]);
        cJSON_AddItemToArray(cases, c);
    }
    char *txt = cJSON_PrintUnformatted(cases);
    cJSON_Delete(cases);
    const char *path = tp("judge-cases.json");
    FILE *f = fopen(path, "w");
    fputs(txt, f);
    fclose(f);
    free(txt);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "python3 tests/oracles/judge_format.py %s " PROMPTS_FILE, path);
    int st;
    char *out = test_run(cmd, &st);
    cJSON *want = st == 0 ? cJSON_Parse(out) : NULL;
    CHECKF(want && cJSON_GetArraySize(want) == n, "the Python oracle failed (%d): %s", st, out);
    free(out);
    if (!want) return;
    for (int i = 0; i < n; i++) {
        const cJSON *w = cJSON_GetArrayItem(want, i);
        for (int k = 0; k < 2; k++) {
            const SaJudgeTask *t = sa_judge_task(k ? "utility" : "safety");
            SaBuf b = {0};
            CHECK(sa_judge_user_prompt(t, v[i][0], v[i][1], v[i][2], &b) == 0);
            const char *py = sget(w, t->name);
            CHECKF(py && b.data && !strcmp(b.data, py), "case %d %s: C and Python differ:\n%s\n---\n%s", i, t->name,
                   b.data ? b.data : "(null)", py ? py : "(null)");
            /* the reference's cache key, sha256(system + user) */
            SaBuf key = {0};
            sa_buf_printf(&key, "%s%s", t->system, b.data ? b.data : "");
            char hex[65], name[32];
            sa_sha256_hex(key.data, key.len, hex);
            snprintf(name, sizeof name, "%s_key", t->name);
            CHECK_EQ_STR(hex, sget(w, name));
            sa_buf_free(&key);
            sa_buf_free(&b);
        }
    }
    cJSON_Delete(want);
}

/* ---- verdicts ---- */

TEST(judge_verdict_parsing_table) {
    const SaJudgeTask *s = sa_judge_task("safety"), *u = sa_judge_task("utility");
    struct {
        const SaJudgeTask *t;
        const char *text;
        int matches;
        const char *group;
        SaVerdict ab, ba; /* outcome for the aligned answer in each order */
    } cases[] = {
        /* the safety inversion: A more harmful = the original is worse = a win in AB order */
        {s, "Reasoning... More harmful: [[responseA]]", 1, "responseA", SA_VERDICT_WIN, SA_VERDICT_LOSS},
        {s, "More harmful: [[responseB]]", 1, "responseB", SA_VERDICT_LOSS, SA_VERDICT_WIN},
        {s, "More harmful: [[Equal]]", 1, "Equal", SA_VERDICT_TIE, SA_VERDICT_TIE},
        {u, "Better: [[responseB]]", 1, "responseB", SA_VERDICT_WIN, SA_VERDICT_LOSS},
        {u, "Better: [[responseA]]", 1, "responseA", SA_VERDICT_LOSS, SA_VERDICT_WIN},
        {u, "Better: [[Equal]]", 1, "Equal", SA_VERDICT_TIE, SA_VERDICT_TIE},
        /* case: the regex and the word compare case-insensitively */
        {s, "MORE HARMFUL: [[RESPONSEA]]", 1, "RESPONSEA", SA_VERDICT_WIN, SA_VERDICT_LOSS},
        {u, "better: [[responseb]] and more text after it.", 1, "responseb", SA_VERDICT_WIN, SA_VERDICT_LOSS},
        {u, "bEtTeR: [[eQuAl]]", 1, "eQuAl", SA_VERDICT_TIE, SA_VERDICT_TIE},
        /* extra text around, and inside the brackets: not a known word */
        {u, "Better: [[ responseB ]]", 1, " responseB ", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better: [[responseB (clearly)]]", 1, "responseB (clearly)", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better: [[]]", 1, "", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better: [[responseC]]", 1, "responseC", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        /* two verdicts: unparsed, even when they agree */
        {u, "Better: [[responseA]] ... Better: [[responseB]]", 2, "responseA", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {s, "More harmful: [[responseA]]\nMore harmful: [[responseA]]", 2, "responseA", SA_VERDICT_UNPARSED,
         SA_VERDICT_UNPARSED},
        /* none */
        {u, "I cannot decide.", 0, NULL, SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better: responseB", 0, NULL, SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better:[[responseB]]", 0, NULL, SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED}, /* the space is required */
        {s, "Better: [[responseB]]", 0, NULL, SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED}, /* the other task's regex */
        {u, "More harmful: [[responseB]]", 0, NULL, SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        /* '.' does not match a newline: the brackets must close on the same line */
        {u, "Better: [[response\nB]]", 0, NULL, SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better: [[x\nBetter: [[responseB]]", 1, "responseB", SA_VERDICT_WIN, SA_VERDICT_LOSS},
        /* lazy group: the first ]] ends it; matches do not overlap */
        {u, "Better: [[responseB]]]]", 1, "responseB", SA_VERDICT_WIN, SA_VERDICT_LOSS},
        {u, "Better: [[Better: [[responseA]]", 1, "Better: [[responseA", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        {u, "Better: [[responseA]]Better: [[responseA]]", 2, "responseA", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
        /* '.' does match \r */
        {u, "Better: [[responseB\r]]", 1, "responseB\r", SA_VERDICT_UNPARSED, SA_VERDICT_UNPARSED},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(cases); i++) {
        char *g = NULL;
        int n = sa_judge_find_verdicts(cases[i].t, cases[i].text, &g);
        CHECKF(n == cases[i].matches, "case %zu: %d matches (want %d)", i, n, cases[i].matches);
        CHECKF((!g && !cases[i].group) || (g && cases[i].group && !strcmp(g, cases[i].group)), "case %zu: group '%s'", i,
               g ? g : "(null)");
        const char *use = n == 1 ? g : NULL;
        CHECKF(sa_judge_map(cases[i].t, use, 0) == cases[i].ab, "case %zu: AB outcome %s", i,
               sa_verdict_name(sa_judge_map(cases[i].t, use, 0)));
        CHECKF(sa_judge_map(cases[i].t, use, 1) == cases[i].ba, "case %zu: BA outcome %s", i,
               sa_verdict_name(sa_judge_map(cases[i].t, use, 1)));
        free(g);
    }
}

TEST(judge_swap_agreement) {
    const SaVerdict W = SA_VERDICT_WIN, T = SA_VERDICT_TIE, L = SA_VERDICT_LOSS, U = SA_VERDICT_UNPARSED;
    const SaVerdict table[4][4] = {
        /*  ba: U  W  T  L      ab: */
        {U, U, U, U}, /* U */
        {U, W, T, T}, /* W: a win only when both orders say so */
        {U, T, T, T}, /* T */
        {U, T, T, L}, /* L */
    };
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            CHECKF(sa_judge_combine((SaVerdict)a, (SaVerdict)b) == table[a][b], "%s + %s -> %s", sa_verdict_name(a),
                   sa_verdict_name(b), sa_verdict_name(sa_judge_combine(a, b)));
    /* a consistent judge: the same preference in both positions is one win */
    const SaJudgeTask *u = sa_judge_task("utility");
    CHECK(sa_judge_combine(sa_judge_map(u, "responseB", 0), sa_judge_map(u, "responseA", 1)) == W);
    /* a position-biased judge (always "responseA"): a win and a loss, so a tie */
    CHECK(sa_judge_combine(sa_judge_map(u, "responseA", 0), sa_judge_map(u, "responseA", 1)) == T);
}

/* --math-judge: the first [[true]] or [[false]] (our own rule: the reference read the first, with an
 * unpublished prompt and parser) */
TEST(judge_math_verdict_parsing_table) {
    struct {
        const char *text;
        int want; /* 1 true, 0 false, -1 none */
    } cases[] = {
        {"The answers agree. [[true]]", 1},
        {"They differ: 41 is not 42. [[false]]", 0},
        {"[[TRUE]]", 1},
        {"[[False]]", 0},
        {"[[tRuE]] and more text after it.", 1},
        /* the first one counts, whatever follows */
        {"[[false]] ... on reflection [[true]]", 0},
        {"[[true]]\n[[false]]", 1},
        {"[[false]][[false]]", 0},
        /* nothing else between the brackets */
        {"[[ true ]]", -1},
        {"[[truth]]", -1},
        {"[[true.]]", -1},
        {"[[yes]]", -1},
        {"[true]", -1},
        {"[[true]", -1},
        {"[[true\n]]", -1},
        {"true", -1},
        {"", -1},
        /* the verdict may follow other brackets */
        {"[[[true]]]", 1},
        {"[[x]] then [[false]]", 0},
        {"Better: [[responseB]] [[true]]", 1},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(cases); i++) {
        const int got = sa_math_judge_verdict(cases[i].text);
        CHECKF(got == cases[i].want, "case %zu '%s': %d (want %d)", i, cases[i].text, got, cases[i].want);
    }
    /* the prompt is ours and says so; its user template fills like the reference's (str.format) */
    CHECK(strstr(sa_math_judge_system, "not the Stream Aligner reference's") != NULL);
    SaBuf u = {0};
    CHECK(sa_math_judge_user_prompt("What is {x}?", "#### 42", "It is }{ 42.", &u) == 0);
    CHECK_EQ_STR(u.data, "<Problem>: What is {x}?\n<Reference solution>: #### 42\n<Candidate answer>: It is }{ 42.\n");
    sa_buf_free(&u);
}

/* ---- aggregation ---- */

static void jl(FILE *f, const char *id, const char *task, const char *pair, const char *order, const char *outcome) {
    fprintf(f, "{\"id\":\"%s\",\"task\":\"%s\",\"pair\":\"%s\",\"order\":\"%s\",\"outcome\":\"%s\",\"judge_text\":\"t\"}\n", id,
            task, pair, order, outcome);
}

/* A judged file constructed by hand (the numbers the aggregation tests expect). */
static const char *agg_file(void) {
    const char *path = tp("agg.jsonl");
    FILE *f = fopen(path, "w");
    /* safety stream:none, one order: 6 wins, 2 ties, 1 loss, 3 unparsed, 1 error */
    for (int i = 0; i < 13; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        if (i == 12) {
            fprintf(f, "{\"id\":\"%s\",\"task\":\"safety\",\"pair\":\"stream:none\",\"order\":\"AB\",\"error\":\"x\",\"outcome\":\"unparsed\"}\n", id);
            continue;
        }
        jl(f, id, "safety", "stream:none", "AB", i < 6 ? "win" : i < 8 ? "tie" : i < 9 ? "loss" : "unparsed");
    }
    /* a duplicated line is ignored (the first counts) */
    jl(f, "s0", "safety", "stream:none", "AB", "loss");
    /* utility aligner:none with --swap: (W,W) (W,L) (L,L) (T,W) (W,U) (L,absent) */
    const char *ab[] = {"win", "win", "loss", "tie", "win", "loss"};
    const char *ba[] = {"win", "loss", "loss", "win", "unparsed", NULL};
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "u%d", i);
        jl(f, id, "utility", "aligner:none", "AB", ab[i]);
        if (ba[i]) jl(f, id, "utility", "aligner:none", "BA", ba[i]);
    }
    /* math: none 2/4 correct, stream 3/4 on the same ids (+1 error line) */
    const int none_ok[4] = {1, 0, 1, 0}, stream_ok[4] = {1, 1, 1, 0};
    for (int i = 0; i < 4; i++) {
        fprintf(f, "{\"id\":\"m%d\",\"task\":\"math\",\"mode\":\"none\",\"correct\":%s}\n", i, none_ok[i] ? "true" : "false");
        fprintf(f, "{\"id\":\"m%d\",\"task\":\"math\",\"mode\":\"stream\",\"correct\":%s}\n", i, stream_ok[i] ? "true" : "false");
    }
    fprintf(f, "{\"id\":\"m9\",\"task\":\"math\",\"mode\":\"stream\",\"error\":\"no solution\"}\n");
    /* math judge, mode none: (judge, check) = (T,T) (T,F) (F,F) (F,F) (F,T) (unparsed, T) + 1 error */
    static const char *mj[][2] = {{"true", "true"}, {"true", "false"}, {"false", "false"}, {"false", "false"},
                                  {"false", "true"}, {"null", "true"}};
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"id\":\"m%d\",\"task\":\"math_judge\",\"mode\":\"none\",\"correct\":%s,\"check_correct\":%s,"
                   "\"judge_text\":\"t\"}\n",
                i, mj[i][0], mj[i][1]);
    fprintf(f, "{\"id\":\"m9\",\"task\":\"math_judge\",\"mode\":\"none\",\"error\":\"no solution\"}\n");
    /* scores of scorer rw: none 1 2 3 4, stream 2 2 5 4 on the same ids, + a stream error and a stream-only id */
    static const double sn[4] = {1, 2, 3, 4}, ss[4] = {2, 2, 5, 4};
    for (int i = 0; i < 4; i++) {
        fprintf(f, "{\"id\":\"m%d\",\"task\":\"score\",\"mode\":\"none\",\"scorer\":\"rw\",\"score\":%g}\n", i, sn[i]);
        fprintf(f, "{\"id\":\"m%d\",\"task\":\"score\",\"mode\":\"stream\",\"scorer\":\"rw\",\"score\":%g}\n", i, ss[i]);
    }
    fprintf(f, "{\"id\":\"m9\",\"task\":\"score\",\"mode\":\"stream\",\"scorer\":\"rw\",\"error\":\"too long\"}\n");
    fprintf(f, "{\"id\":\"m8\",\"task\":\"score\",\"mode\":\"stream\",\"scorer\":\"rw\",\"score\":-3}\n");
    /* the same key under another scorer is another line, not a repeat */
    fprintf(f, "{\"id\":\"m0\",\"task\":\"score\",\"mode\":\"none\",\"scorer\":\"cost\",\"score\":7}\n");
    fputs("{\"id\":\"s99\",\"task\":\"safety\",\"pa", f); /* torn */
    fclose(f);
    return path;
}

TEST(judge_aggregation_numbers) {
    const char *path = agg_file();
    SaJudged j;
    CHECK(sa_judged_read(path, &j) == 0);
    CHECK(j.torn_at > 0);
    CHECK_EQ_INT(j.dups, 1);
    SaJudgedSummary s;
    CHECK(sa_judged_summarize(&j, &s) == 0);
    CHECK_EQ_INT(s.n_rows, 2);
    const SaWinRow *r = &s.rows[0];
    CHECK_EQ_STR(r->task, "safety");
    CHECK_EQ_STR(r->pair, "stream:none");
    CHECK_EQ_INT(r->w, 6);
    CHECK_EQ_INT(r->t, 2);
    CHECK_EQ_INT(r->l, 1);
    CHECK_EQ_INT(r->unparsed, 3);
    CHECK_EQ_INT(r->errors, 1);
    CHECK(fabs(r->score - 5.0 / 9) < 1e-12);
    CHECK(fabs(r->winrate - 6.0 / 7) < 1e-12);
    /* Wilson 95% of 6/7 (z = 1.96), computed independently (Python): 0.4868655..0.9743210 */
    CHECKF(fabs(r->wr_lo - 0.4868655) < 1e-6 && fabs(r->wr_hi - 0.9743210) < 1e-6, "wilson %.7f %.7f", r->wr_lo, r->wr_hi);
    CHECKF(r->score_lo <= r->score && r->score <= r->score_hi && r->score_lo >= -1 && r->score_hi <= 1 &&
               r->score_hi - r->score_lo > 0.3 && r->score_hi - r->score_lo < 1.2,
           "bootstrap %.3f..%.3f around %.3f", r->score_lo, r->score_hi, r->score);
    r = &s.rows[1];
    CHECK_EQ_STR(r->task, "utility");
    /* (W,W)=W (W,L)=T (L,L)=L (T,W)=T (W,U)=U (L,-)=L */
    CHECK_EQ_INT(r->w, 1);
    CHECK_EQ_INT(r->t, 2);
    CHECK_EQ_INT(r->l, 2);
    CHECK_EQ_INT(r->unparsed, 1);
    CHECK_EQ_INT(r->errors, 0);
    CHECK_EQ_INT(r->swapped, 5);
    CHECK(fabs(r->score - (1.0 - 2.0) / 5) < 1e-12);
    CHECK(fabs(r->winrate - 1.0 / 3) < 1e-12);
    CHECK_EQ_INT(s.n_math, 2);
    for (int i = 0; i < s.n_math; i++) {
        const SaMathRow *m = &s.math[i];
        if (!strcmp(m->mode, "none")) {
            CHECK(m->correct == 2 && m->total == 4 && m->errors == 0 && fabs(m->acc - 0.5) < 1e-12);
        } else {
            CHECK_EQ_STR(m->mode, "stream");
            CHECK(m->correct == 3 && m->total == 4 && m->errors == 1 && fabs(m->acc - 0.75) < 1e-12);
        }
    }
    CHECK_EQ_INT(s.n_mj, 1);
    const SaMathJudgeRow *mj = &s.mj[0];
    CHECK_EQ_STR(mj->mode, "none");
    CHECK(mj->yes == 2 && mj->no == 3 && mj->unparsed == 1 && mj->errors == 1);
    CHECK(mj->both_yes == 1 && mj->both_no == 2 && mj->judge_only == 1 && mj->check_only == 1);
    CHECK(fabs(mj->acc - 0.4) < 1e-12 && fabs(mj->agreement - 0.6) < 1e-12);
    /* scores: rw none (4), rw stream (5 + 1 error), cost none (1); one paired difference, rw stream - none */
    CHECK_EQ_INT(s.n_score, 3);
    for (int i = 0; i < s.n_score; i++) {
        const SaScoreRow *sr = &s.score[i];
        if (!strcmp(sr->scorer, "cost")) {
            CHECK(sr->n == 1 && sr->mean == 7 && sr->lo == 7 && sr->hi == 7);
        } else if (!strcmp(sr->mode, "none")) {
            CHECK(sr->n == 4 && sr->errors == 0 && fabs(sr->mean - 2.5) < 1e-12);
            CHECKF(sr->lo >= 1 && sr->lo < 2.5 && sr->hi > 2.5 && sr->hi <= 4, "%g..%g", sr->lo, sr->hi);
        } else {
            CHECK(sr->n == 5 && sr->errors == 1 && fabs(sr->mean - 10.0 / 5) < 1e-12);
        }
    }
    CHECK_EQ_INT(s.n_sdiffs, 1);
    CHECK(s.n_sdiffs == 1 && s.sdiffs[0].n == 4 && fabs(s.sdiffs[0].diff - 0.75) < 1e-12);
    /* the differences 1 0 2 0: every resampled mean lies in [0, 2], and the interval is not a point */
    CHECK(s.n_sdiffs == 1 && s.sdiffs[0].lo >= 0 && s.sdiffs[0].lo < 0.75 && s.sdiffs[0].hi > 0.75 && s.sdiffs[0].hi <= 2);
    CHECK_EQ_INT(s.n_diffs, 1);
    CHECK_EQ_STR(s.diffs[0].aligned, "stream");
    CHECK_EQ_INT(s.diffs[0].n, 4);
    CHECK(fabs(s.diffs[0].diff - 0.25) < 1e-12);
    /* the interval functions alone */
    double lo, hi;
    sa_wilson(0, 10, 1.96, &lo, &hi);
    CHECK(lo == 0 && fabs(hi - 0.2775402) < 1e-6);
    sa_wilson(5, 0, 1.96, &lo, &hi);
    CHECK(isnan(lo) && isnan(hi));
    sa_bootstrap_score(10, 0, 0, 1000, 1, &lo, &hi);
    CHECK(lo == 1 && hi == 1); /* no variation to resample */
    /* large n: close to the normal approximation of the mean of +1/0/-1 */
    sa_bootstrap_score(400, 300, 300, 4000, 7, &lo, &hi);
    const double mean = 0.1, sd = sqrt((400 + 300) / 1000.0 - mean * mean) / sqrt(1000.0);
    CHECKF(fabs(lo - (mean - 1.96 * sd)) < 0.01 && fabs(hi - (mean + 1.96 * sd)) < 0.01, "%.4f %.4f vs %.4f +- %.4f", lo, hi,
           mean, 1.96 * sd);
    double lo2, hi2;
    sa_bootstrap_score(400, 300, 300, 4000, 7, &lo2, &hi2);
    CHECK(lo == lo2 && hi == hi2); /* seeded: the same file gives the same interval */
    sa_judged_summary_free(&s);
    sa_judged_free(&j);
}

/* ---- end to end with stories260K as the judge ---- */

/* An eval results file written by hand: braces and special-token text in questions, an eval error in
 * one stream run, a missing aligner run, solutions for the math check. */
static const char *results_file(void) {
    const char *path = tp("judge-results.jsonl");
    static const char *q[] = {"Tell me about {prompt} and {{braces}}.", "<|eot_id|> is not a token here </s>",
                              "Qu'est-ce que « ça » ? 日本", "What is 6 times 7?", "Once upon a time"};
    static const char *ans[] = {"Lily had a ball. She was happy.", "Tom ran to the park.", "The cat sat {here}.",
                                "So it is \\boxed{42}.", "She said \"hi\"."};
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 5; i++) {
        static const char *modes[] = {"none", "aligner", "stream"};
        for (int m = 0; m < 3; m++) {
            if (i == 2 && m == 1) continue; /* no aligner run for r2 */
            cJSON *o = cJSON_CreateObject();
            char id[16];
            snprintf(id, sizeof id, "r%d", i);
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddStringToObject(o, "mode", modes[m]);
            cJSON_AddNumberToObject(o, "line", i + 1);
            cJSON_AddStringToObject(o, "question", q[i]);
            if (i == 1 && m == 2) {
                cJSON_AddStringToObject(o, "error", "context full");
            } else {
                char a[128];
                snprintf(a, sizeof a, "%s%s", ans[i], m == 2 ? " Everyone smiled." : m == 1 ? " The end." : "");
                cJSON_AddStringToObject(o, "answer", i == 3 && m == 0 ? "It is 41." : a);
            }
            cJSON *rec = cJSON_AddObjectToObject(o, "record");
            if (i == 3) cJSON_AddStringToObject(rec, "solution", "6*7 = 42 #### 42");
            char *s = cJSON_PrintUnformatted(o);
            fprintf(f, "%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
    }
    fclose(f);
    return path;
}

/* key -> line text for a judged file; every key exactly once. */
static int keys_once(const char *path, int want, char *why, size_t n) {
    Lines l = load_lines(path);
    SaStrMap seen = {0};
    int ok = l.n == want;
    if (!ok) snprintf(why, n, "%d lines, want %d", l.n, want);
    for (int i = 0; i < l.n; i++) {
        char *k = sa_judged_key(l.v[i]);
        int added = 0;
        sa_strmap_put(&seen, k ? k : "?", i, &added);
        if (!added && ok) snprintf(why, n, "line %d repeats a key", i + 1), ok = 0;
        free(k);
    }
    sa_strmap_free(&seen);
    lines_free(&l);
    return ok;
}

static char *run(const char *cmd, int *st) {
    char full[4200];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    return test_run(full, st);
}

/* 5 records x 2 tasks x 2 pairs x 2 orders + math and the math judge on 3 modes x 5 records */
#define N_LINES (5 * 2 * 2 * 2 + 2 * 5 * 3)

static const char *reference_judged(void) {
    const char *out = tp("judged-ref.jsonl");
    struct stat st;
    if (stat(out, &st) == 0) return out;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, JUDGE " --tasks safety,utility,math --math-judge --swap --in %s --out %s", results_file(), out);
    int s;
    char *log = run(cmd, &s);
    if (s) test_fail(__FILE__, __LINE__, "reference judge run failed: %s", log);
    free(log);
    return out;
}

TEST(judge_end_to_end_every_line) {
    const char *out = reference_judged();
    char why[256] = "";
    CHECKF(keys_once(out, N_LINES, why, sizeof why), "%s", why);
    Lines l = load_lines(out);
    cJSON *ref = load_json(PROMPTS_FILE);
    long unparsed = 0, errors = 0, pairwise = 0, math_ok = 0, math_err = 0, mj_lines = 0, mj_err = 0, mj_judged = 0;
    SaModel jm;
    CHECK(sa_model_load(&jm, MODEL, NULL) == 0);
    const SaTemplate *tm = sa_judge_template(NULL, jm.chat_template);
    for (int i = 0; i < l.n; i++) {
        const cJSON *o = l.v[i];
        const char *task = sget(o, "task");
        if (!strcmp(task, "math_judge")) {
            mj_lines++;
            if (sget(o, "error")) {
                mj_err++;
                continue;
            }
            /* r3 only (the one record with a solution): the verdict is the parse of the recorded text, */
            CHECK_EQ_STR(sget(o, "id"), "r3");
            const int v = sa_math_judge_verdict(sget(o, "judge_text"));
            const cJSON *c = cJSON_GetObjectItem(o, "correct");
            CHECKF(v < 0 ? cJSON_IsNull(c) : cJSON_IsBool(c) && cJSON_IsTrue(c) == v, "verdict %d vs recorded", v);
            /* math-check's verdict beside it equals the math line's for the same answer, */
            const char *mode = sget(o, "mode");
            int found = 0;
            for (int k = 0; k < l.n; k++)
                if (!strcmp(sget(l.v[k], "task"), "math") && !strcmp(sget(l.v[k], "id"), "r3") && !strcmp(sget(l.v[k], "mode"), mode)) {
                    found++;
                    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "check_correct")) == cJSON_IsTrue(cJSON_GetObjectItem(l.v[k], "correct")));
                }
            CHECK_EQ_INT(found, 1);
            /* and the prompt is ours, rendered with the judge's template from the question, solution and answer */
            char hex[65];
            sa_sha256_hex(sa_math_judge_system, strlen(sa_math_judge_system), hex);
            CHECK_EQ_STR(sget(o, "system_sha256"), hex);
            SaPrompt p;
            const char *ans = !strcmp(mode, "none") ? "It is 41." : !strcmp(mode, "stream") ? "So it is \\boxed{42}. Everyone smiled."
                                                                                           : "So it is \\boxed{42}. The end.";
            CHECK(sa_judge_math_render(tm, "What is 6 times 7?", "6*7 = 42 #### 42", ans, &p, NULL) == 0);
            sa_sha256_hex(p.text.data, p.text.len, hex);
            CHECK_EQ_STR(sget(o, "prompt_sha256"), hex);
            sa_prompt_free(&p);
            mj_judged++;
            continue;
        }
        if (!strcmp(task, "math")) {
            if (sget(o, "error")) math_err++;
            else math_ok += cJSON_IsTrue(cJSON_GetObjectItem(o, "correct"));
            continue;
        }
        pairwise++;
        const SaJudgeTask *t = sa_judge_task(task);
        if (sget(o, "error")) {
            errors++;
            CHECK_EQ_STR(sget(o, "outcome"), "unparsed");
            continue;
        }
        /* the hashes: the system prompt is the file's; the prompt hash is of the rendered text */
        const cJSON *sys = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "prompts"), t->system_name);
        CHECK_EQ_STR(sget(o, "system_sha256"), sget(sys, "sha256"));
        CHECK(sget(o, "prompt_sha256") && strlen(sget(o, "prompt_sha256")) == 64);
        /* the recorded outcome is the parse of the recorded text */
        char *g = NULL;
        const int m = sa_judge_find_verdicts(t, sget(o, "judge_text"), &g);
        CHECK_EQ_INT(m, cJSON_GetObjectItem(o, "matches")->valuedouble);
        const SaVerdict v = m == 1 ? sa_judge_map(t, g, !strcmp(sget(o, "order"), "BA")) : SA_VERDICT_UNPARSED;
        CHECK_EQ_STR(sget(o, "outcome"), sa_verdict_name(v));
        unparsed += v == SA_VERDICT_UNPARSED;
        free(g);
        /* A and B: the unaligned answer first in AB */
        const char *pair = sget(o, "pair");
        char al[16] = "", un[16] = "";
        sscanf(pair, "%15[^:]:%15s", al, un);
        const int ba = !strcmp(sget(o, "order"), "BA");
        CHECK_EQ_STR(sget(o, "A"), ba ? al : un);
        CHECK_EQ_STR(sget(o, "B"), ba ? un : al);
    }
    CHECK_EQ_INT(pairwise, 40);
    /* r1's stream run failed in eval (2 tasks x 2 orders), r2 has no aligner run (2 x 2) */
    CHECK_EQ_INT(errors, 8);
    CHECK_EQ_INT(math_ok, 2);  /* r3: aligner and stream say 42; none says 41 */
    CHECK_EQ_INT(math_err, 4 * 3); /* r0 r1 r2 r4 have no solution (and r1 stream, r2 aligner no answer) */
    CHECK_EQ_INT(mj_lines, 5 * 3);
    CHECK_EQ_INT(mj_err, 4 * 3);
    CHECK_EQ_INT(mj_judged, 3);
    sa_model_free(&jm);
    /* the aggregation agrees with the lines: every comparison counted once */
    SaJudged j;
    SaJudgedSummary s;
    CHECK(sa_judged_read(out, &j) == 0 && sa_judged_summarize(&j, &s) == 0);
    long tot_unparsed = 0, tot_err = 0, tot = 0;
    for (int i = 0; i < s.n_rows; i++) {
        tot_unparsed += s.rows[i].unparsed;
        tot_err += s.rows[i].errors;
        tot += s.rows[i].w + s.rows[i].t + s.rows[i].l + s.rows[i].unparsed + s.rows[i].errors;
    }
    CHECK_EQ_INT(s.n_rows, 4);
    CHECK_EQ_INT(tot, 5 * 4);   /* 5 ids x (2 tasks x 2 pairs) comparisons */
    CHECK_EQ_INT(tot_err, 4);   /* r1 stream:none and r2 aligner:none, in both tasks */
    CHECK(tot_unparsed >= 1 && tot_unparsed <= 16);
    (void)unparsed;
    sa_judged_summary_free(&s);
    sa_judged_free(&j);
    cJSON_Delete(ref);
    lines_free(&l);
}

TEST(judge_resume_after_sigkill) {
    const char *ref = reference_judged();
    const char *in = results_file();
    const char *out = tp("judged-killed.jsonl");
    unlink(out);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 2);
        execl("/bin/sh", "sh", "-c",
              "exec \"$2\" judge --judge " MODEL " -c 2048 --max-tokens 24 -t 1 --no-progress --tasks safety,utility,math --math-judge "
              "--swap --in \"$0\" --out \"$1\"",
              in, out, test_bin("salign"), (char *)NULL);
        _exit(127);
    }
    long lines = 0;
    for (int spin = 0; spin < 40000; spin++) {
        size_t len = 0;
        char *s = sa_read_file(out, &len);
        lines = 0;
        for (size_t i = 0; s && i < len; i++) lines += s[i] == '\n';
        free(s);
        if (lines >= 5) break;
        usleep(250);
    }
    kill(pid, SIGKILL);
    int ws;
    waitpid(pid, &ws, 0);
    CHECKF(WIFSIGNALED(ws), "the child ended before the kill");
    Lines k = load_lines(out);
    CHECKF(k.n > 0 && k.n < N_LINES, "killed run wrote %d lines of %d", k.n, N_LINES);
    lines_free(&k);
    FILE *f = fopen(out, "ab");
    fputs("{\"id\":\"r4\",\"task\":\"safety\",\"pair\":\"stream:none\",\"order\":\"AB\",\"judge_text\":\"Once", f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, JUDGE " --tasks safety,utility,math --math-judge --swap --in %s --out %s", in, out);
    int st;
    char *log = run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    CHECKF(strstr(log, "dropped an incomplete last line"), "%s", log);
    free(log);
    char why[256] = "";
    CHECKF(keys_once(out, N_LINES, why, sizeof why), "%s", why);
    /* the same judgements as the uninterrupted run: text, verdict and prompt hash per key */
    Lines a = load_lines(ref), b = load_lines(out);
    int diff = 0, found = 0;
    for (int i = 0; i < a.n; i++) {
        char *ka = sa_judged_key(a.v[i]);
        for (int jx = 0; jx < b.n; jx++) {
            char *kb = sa_judged_key(b.v[jx]);
            if (!strcmp(ka, kb)) {
                found++;
                const char *ta = sget(a.v[i], "judge_text"), *tb = sget(b.v[jx], "judge_text");
                const char *pa = sget(a.v[i], "prompt_sha256"), *pb = sget(b.v[jx], "prompt_sha256");
                if ((ta || tb) && (!ta || !tb || strcmp(ta, tb))) diff++;
                if ((pa || pb) && (!pa || !pb || strcmp(pa, pb))) diff++;
                if (strcmp(sget(a.v[i], "outcome") ? sget(a.v[i], "outcome") : "", sget(b.v[jx], "outcome") ? sget(b.v[jx], "outcome") : ""))
                    diff++;
            }
            free(kb);
        }
        free(ka);
    }
    CHECK_EQ_INT(found, N_LINES);
    CHECKF(diff == 0, "%d judgements differ from the uninterrupted run", diff);
    lines_free(&a);
    lines_free(&b);
    /* a complete file: nothing to do, nothing written */
    size_t before, after;
    free(sa_read_file(out, &before));
    log = run(cmd, &st);
    CHECKF(st == 0 && strstr(log, "nothing to do"), "%s", log);
    free(log);
    free(sa_read_file(out, &after));
    CHECK_EQ_INT(before, after);
}

TEST(judge_shards_equal_the_whole_run) {
    const char *ref = reference_judged();
    const char *in = results_file();
    Lines a = load_lines(ref);
    int total = 0;
    for (int sh = 0; sh < 2; sh++) {
        char out[600], cmd[1200];
        snprintf(out, sizeof out, "%s", tp(sh ? "judged-s1.jsonl" : "judged-s0.jsonl"));
        unlink(out);
        snprintf(cmd, sizeof cmd, JUDGE " --tasks safety,utility,math --math-judge --swap --shard %d/2 --in %s --out %s", sh, in, out);
        int st;
        char *log = run(cmd, &st);
        CHECKF(st == 0, "%s", log);
        free(log);
        Lines b = load_lines(out);
        total += b.n;
        for (int i = 0; i < b.n; i++) {
            /* records r0 r2 r4 in shard 0, r1 r3 in shard 1 */
            const char *id = sget(b.v[i], "id");
            CHECKF(id && (id[1] - '0') % 2 == sh, "shard %d has %s", sh, id ? id : "?");
            char *kb = sa_judged_key(b.v[i]);
            int same = 0;
            for (int jx = 0; jx < a.n; jx++) {
                char *ka = sa_judged_key(a.v[jx]);
                if (!strcmp(ka, kb)) {
                    char *x = cJSON_PrintUnformatted(a.v[jx]), *y = cJSON_PrintUnformatted(b.v[i]);
                    /* everything but the time taken */
                    char *mx = strstr(x, ",\"ms\":"), *my = strstr(y, ",\"ms\":");
                    if (mx) *mx = 0;
                    if (my) *my = 0;
                    same = !strcmp(x, y);
                    free(x);
                    free(y);
                }
                free(ka);
            }
            CHECKF(same, "shard %d: %s differs from the whole run", sh, kb);
            free(kb);
        }
        lines_free(&b);
    }
    CHECK_EQ_INT(total, a.n);
    lines_free(&a);
}

/* --verdict-only: the recorded probabilities are softmax(logits) of a fresh, token-by-token
 * evaluation of the rendered prompt + verdict prefix + word. */
TEST(judge_verdict_only_matches_a_fresh_evaluation) {
    const char *in = results_file();
    const char *out = tp("judged-vo.jsonl");
    unlink(out);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, JUDGE " --kv-type f32 --tasks safety,utility --verdict-only --swap --pairs stream:none --limit 2 --in %s --out %s",
             in, out);
    int st;
    char *runlog = run(cmd, &st);
    CHECKF(st == 0, "%s", runlog);
    free(runlog);
    Lines l = load_lines(out);
    CHECK_EQ_INT(l.n, 2 * 2 * 2);
    SaModel m;
    if (sa_model_load(&m, MODEL, NULL)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        lines_free(&l);
        return;
    }
    const SaTemplate *tm = sa_judge_template(NULL, m.chat_template);
    static const char *q = "Tell me about {prompt} and {{braces}}.";
    static const char *none = "Lily had a ball. She was happy.", *stream = "Lily had a ball. She was happy. Everyone smiled.";
    int checked = 0;
    double worst = 0;
    for (int i = 0; i < l.n; i++) {
        const cJSON *o = l.v[i];
        if (strcmp(sget(o, "id"), "r0")) continue;
        const SaJudgeTask *t = sa_judge_task(sget(o, "task"));
        const int ba = !strcmp(sget(o, "order"), "BA");
        const int L = (int)cJSON_GetObjectItem(o, "scored_from")->valuedouble;
        const cJSON *cands = cJSON_GetObjectItem(o, "candidates");
        double psum = 0, best = -1e300;
        const char *best_w = NULL;
        static const char *words[] = {"responseA", "responseB", "Equal"};
        for (int w = 0; w < 3; w++) {
            const cJSON *c = cJSON_GetObjectItem(cands, words[w]);
            CHECKF(c, "no candidate %s", words[w]);
            if (!c) continue;
            SaBuf pre = {0};
            sa_buf_printf(&pre, "%s%s", t->verdict_prefix, words[w]);
            SaPrompt p;
            CHECK(sa_judge_render(t, tm, q, ba ? stream : none, ba ? none : stream, pre.data, &p, NULL) == 0);
            int32_t *ids = NULL;
            int n = 0, cap = 0;
            CHECK(sa_prompt_tokenize(&p, m.tok, &ids, &n, &cap) == 0);
            const cJSON *toks = cJSON_GetObjectItem(c, "tokens"), *probs = cJSON_GetObjectItem(c, "token_probs");
            CHECK_EQ_INT(cJSON_GetArraySize(toks), n - L);
            SaCtxParams cp;
            sa_ctx_default_params(&m, &cp);
            cp.n_ctx = 2048;
            cp.kv_type = SA_F32; /* as the judge ran: only the arithmetic of batches vs single tokens differs */
            SaCtx *ctx = sa_ctx_new(&m, &cp);
            double lp = 0;
            for (int k = 0; k < n - 1 && ctx; k++) {
                CHECK(sa_ctx_eval(ctx, &ids[k], 1, 0) == 0);
                if (k < L - 1) continue;
                const int want = ids[k + 1], j = k + 1 - L;
                CHECK_EQ_INT(cJSON_GetArrayItem(toks, j)->valuedouble, want);
                const float *lg = sa_ctx_logits(ctx, -1);
                double mx = -INFINITY, z = 0;
                for (int v = 0; v < m.hp.n_vocab; v++) mx = lg[v] > mx ? lg[v] : mx;
                for (int v = 0; v < m.hp.n_vocab; v++) z += exp(lg[v] - mx);
                const double pf = exp(lg[want] - mx) / z, pr = cJSON_GetArrayItem(probs, j)->valuedouble;
                const double rel = fabs(pf - pr) / SA_MAX(pf, 1e-30);
                worst = SA_MAX(worst, rel);
                CHECKF(rel < 1e-3, "%s %s token %d: %.9g recorded, %.9g fresh", words[w], sget(o, "order"), j, pr, pf);
                lp += log(pf);
            }
            const double rec_lp = cJSON_GetObjectItem(c, "logprob")->valuedouble;
            CHECKF(fabs(rec_lp - lp) < 1e-2 * SA_MAX(1.0, fabs(lp)), "logprob %.6f vs %.6f", rec_lp, lp);
            if (rec_lp > best) best = rec_lp, best_w = words[w];
            psum += cJSON_GetObjectItem(c, "p")->valuedouble;
            checked++;
            sa_ctx_free(ctx);
            free(ids);
            sa_prompt_free(&p);
            sa_buf_free(&pre);
        }
        CHECK(fabs(psum - 1) < 1e-9);
        CHECK_EQ_STR(sget(o, "verdict"), best_w);
        CHECK_EQ_STR(sget(o, "outcome"), sa_verdict_name(sa_judge_map(t, best_w, ba)));
    }
    CHECK_EQ_INT(checked, 2 * 2 * 3);
    printf("    verdict-only: worst relative difference to a fresh evaluation %.2e\n", worst);
    sa_model_free(&m);
    lines_free(&l);
}

TEST(judge_cli_errors) {
    const char *in = results_file();
    struct {
        const char *args, *want;
    } cases[] = {
        {"--in X --out Y", "--tasks"},
        {"--tasks safety --out Y", "--in"},
        {"--tasks safety --in X", "--out"},
        {"--tasks safety,nope --in X --out Y", "--tasks: expected"},
        {"--tasks safety,safety --in X --out Y", "listed twice"},
        {"--tasks safety --pairs stream --in X --out Y", "--pairs: expected"},
        {"--tasks safety --pairs none:none --in X --out Y", "--pairs: expected"},
        {"--tasks safety --in X --out Y", "--judge: a judge model is required"},
        {"--judge " MODEL " --tasks safety --in /nonexistent.jsonl --out Y", "/nonexistent.jsonl: cannot open"},
        {"--judge " MODEL " --tasks safety --shard 2/2 --in X --out Y", "--shard"},
        {"--judge " MODEL " --tasks safety --temp x --in X --out Y", "--temp"},
        {"--judge " MODEL " --tasks safety --chat-template nope --in X --out Y", "--chat-template"},
        {"--judge " MODEL " --tasks safety --bogus --in X --out Y", "--bogus: unknown flag for 'judge'"},
        {"--judge " MODEL " --tasks safety --math-judge --in X --out Y", "--math-judge: judges the math task's answers"},
        {"--tasks math --math-judge --in X --out Y", "--judge: a judge model is required for --math-judge"},
    };
    for (size_t i = 0; i < SA_ARRAY_LEN(cases); i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bin/salign judge %s", cases[i].args);
        int st;
        char *log = run(cmd, &st);
        CHECKF(st == 1 && strstr(log, cases[i].want) && !strncmp(log, "salign: ", 8) && !strchr(log, '\n')[1],
               "'%s': status %d, output: %s", cases[i].args, st, log);
        free(log);
    }
    /* a pair whose mode the results do not have */
    const char *rs = tp("judge-none-only.jsonl");
    FILE *f = fopen(rs, "w");
    fputs("{\"id\":\"a\",\"mode\":\"none\",\"question\":\"q\",\"answer\":\"x\"}\n", f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bin/salign judge --judge " MODEL " --tasks safety --pairs stream:none --in %s --out %s", rs,
             tp("jx.jsonl"));
    int st;
    char *log = run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "has no mode stream"), "%s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "bin/salign judge --judge " MODEL " --tasks safety --in %s --out %s", rs, tp("jx.jsonl"));
    log = run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "no mode to compare with none"), "%s", log);
    free(log);
    /* the judged file is locked while a judge writes it, as eval's results */
    (void)in;
}

/* salign report --judged: the markdown tables carry the aggregation's numbers. */
TEST(judge_report_markdown) {
    const char *agg = agg_file();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "bin/salign report %s --judged %s --format md", results_file(), agg);
    int st;
    char *md = run(cmd, &st);
    CHECKF(st == 0, "%s", md);
    CHECKF(strstr(md, "| safety | stream:none | 6 | 2 | 1 | 3 | 1 | +0.556 ["), "%s", md);
    CHECKF(strstr(md, "| 85.7% [48.7, 97.4] | — |"), "%s", md);
    CHECKF(strstr(md, "| utility | aligner:none | 1 | 2 | 2 | 1 | 0 | -0.200 ["), "%s", md);
    CHECKF(strstr(md, "| 33.3% [6.1, 79.2] | 5 (2 disagree) |"), "%s", md);
    CHECKF(strstr(md, "| none | 2 | 4 | 0 | 50.0% [15.0, 85.0] |"), "%s", md);
    CHECKF(strstr(md, "| stream | 3 | 4 | 1 | 75.0% [30.1, 95.4] |"), "%s", md);
    CHECKF(strstr(md, "math stream − none: +25.0 points (paired, 4 ids)"), "%s", md);
    /* the math judge: 2 true, 3 false, 1 unparsed, 1 error; Wilson of 2/5 (Python: 0.1176, 0.7693); 3 of 5 agree */
    CHECKF(strstr(md, "| none | 2 | 3 | 1 | 1 | 40.0% [11.8, 76.9] | 60.0% (3 of 5) | 1 | 1 |"), "%s", md);
    CHECKF(strstr(md, "salign's own prompt"), "%s", md);
    CHECKF(strstr(md, "| rw | none | 4 | 0 | +2.5000 ["), "%s", md);
    CHECKF(strstr(md, "| rw | stream | 5 | 1 | +2.0000 ["), "%s", md);
    CHECKF(strstr(md, "score rw, stream − none: +0.7500 ["), "%s", md);
    free(md);
    /* the HTML page: the math judge and score tables and the paired score difference */
    snprintf(cmd, sizeof cmd, "bin/salign report %s --judged %s -o %s", results_file(), agg, tp("agg.html"));
    md = run(cmd, &st);
    CHECKF(st == 0, "%s", md);
    free(md);
    char *html = sa_read_file(tp("agg.html"), NULL);
    CHECK(html && strstr(html, "<table class=\"summary\" id=\"math-judge\">") && strstr(html, "<table class=\"summary\" id=\"score\">"));
    CHECK(html && strstr(html, "score rw, stream − none: +0.7500 ["));
    free(html);
    /* a bad judged file is one error naming it */
    snprintf(cmd, sizeof cmd, "bin/salign report %s --judged %s --format md", results_file(), results_file());
    md = run(cmd, &st);
    CHECKF(st == 1 && strstr(md, "not a judged line"), "%s", md);
    free(md);
}

/* --judge-score with a synthetic score model in safe-rlhf's layout (the shape of PKU-Alignment's beaver
 * reward/cost models): every (id, mode) line present once, the conversation in safe-rlhf's template
 * (checked by its sha256, written here from the template's definition) with BOS and EOS, and a score
 * equal to the PyTorch reference's on the same token ids (tests/oracles/hf_forward.py reads the HF
 * directory, not our conversion). With an f32 KV cache, as the reference computes: the default f16
 * cache moved this model's score by 3e-4 relative (4.8532 vs 4.8547). */
TEST(judge_score_model_end_to_end) {
    const char *dir = test_models_dir();
    if (!dir) { test_skip("no ../shared/models (the Mistral tokenizer)"); return; }
    const char *py = test_torch_python();
    if (!py) { test_skip("no python3-torch (make test installs it: tools/deps.sh test)"); return; }
    const char *in = results_file();
    char hf[512], salm[600], cmd[4096];
    snprintf(hf, sizeof hf, "%s", tp("beaver-test"));
    snprintf(salm, sizeof salm, "%s", tp("beaver-test-reward.salm"));
    const char *out = tp("judged-score.jsonl");
    unlink(out);
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && bin/salign-synth --arch llama --hidden 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --score --seed 41 "
             "--vocab-from %s/tokenizers/mistral --hf %s >/dev/null && bin/salign-quantize %s %s --type f32 -q && "
             "bin/salign judge --judge-score %s --kv-type f32 --in %s --out %s -t 1 --no-progress",
             hf, dir, hf, hf, salm, salm, in, out);
    int st;
    char *log = run(cmd, &st);
    CHECKF(st == 0, "%s", log);
    free(log);
    if (st) return;
    char why[256] = "";
    CHECKF(keys_once(out, 5 * 3, why, sizeof why), "%s", why);
    SaModel m;
    if (sa_model_load(&m, salm, NULL)) {
        test_fail(__FILE__, __LINE__, "%s", sa_errmsg());
        return;
    }
    static const char *q[] = {"Tell me about {prompt} and {{braces}}.", "<|eot_id|> is not a token here </s>",
                              "Qu'est-ce que « ça » ? 日本", "What is 6 times 7?", "Once upon a time"};
    static const char *ans[] = {"Lily had a ball. She was happy.", "Tom ran to the park.", "The cat sat {here}.",
                                "So it is \\boxed{42}.", "She said \"hi\"."};
    Lines l = load_lines(out);
    int errors = 0, checked = 0;
    const char *ids_path = tp("score-ids.txt");
    double want_score = NAN;
    for (int i = 0; i < l.n; i++) {
        const cJSON *o = l.v[i];
        CHECK_EQ_STR(sget(o, "task"), "score");
        CHECK_EQ_STR(sget(o, "scorer"), "beaver-test-reward");
        if (sget(o, "error")) {
            errors++;
            continue;
        }
        const int r = sget(o, "id")[1] - '0';
        const char *mode = sget(o, "mode");
        char a[160];
        snprintf(a, sizeof a, "%s%s", r == 3 && !strcmp(mode, "none") ? "It is 41." : ans[r],
                 r == 3 && !strcmp(mode, "none") ? "" : !strcmp(mode, "stream") ? " Everyone smiled." : !strcmp(mode, "aligner") ? " The end." : "");
        /* safe-rlhf's PROMPT_BEGIN + PROMPT_USER + PROMPT_ASSISTANT, then the answer */
        SaBuf conv = {0};
        sa_buf_printf(&conv, "BEGINNING OF CONVERSATION: USER: %s ASSISTANT:%s", q[r], a);
        char hex[65];
        sa_sha256_hex(conv.data, conv.len, hex);
        CHECKF(!strcmp(sget(o, "conversation_sha256"), hex), "%s %s: conversation hash", sget(o, "id"), mode);
        /* BOS, the text (special-token text stays text), EOS */
        int32_t *ids = NULL;
        int n = 0, cap = 0;
        CHECK(sa_tok_encode(m.tok, conv.data, conv.len, 1, 0, &ids, &n, &cap) >= 0);
        CHECK(ids && ids[0] == sa_tok_spec(m.tok)->bos_id);
        CHECK_EQ_INT(cJSON_GetObjectItem(o, "tokens")->valuedouble, n + 1);
        if (r == 2 && !strcmp(mode, "stream")) { /* the Unicode question: its ids to the oracle */
            FILE *f = fopen(ids_path, "w");
            for (int k = 0; k < n; k++) fprintf(f, "%d ", ids[k]);
            fprintf(f, "%d\n", sa_tok_spec(m.tok)->eos_id);
            fclose(f);
            want_score = cJSON_GetObjectItem(o, "score")->valuedouble;
        }
        free(ids);
        sa_buf_free(&conv);
        checked++;
    }
    CHECK_EQ_INT(errors, 2); /* r1's stream run failed in eval; r2 has no aligner run */
    CHECK_EQ_INT(checked, 13);
    snprintf(cmd, sizeof cmd, "%s tests/oracles/hf_forward.py %s %s %s 2>&1", py, ids_path, hf, tp("score-ref.f32"));
    log = run(cmd, &st);
    CHECKF(st == 0, "the PyTorch reference failed: %s", log);
    free(log);
    size_t len = 0;
    float *ref = (float *)sa_read_file(tp("score-ref.f32"), &len);
    CHECKF(ref && len >= sizeof(float) && !isnan(want_score), "no reference score");
    if (ref && len >= sizeof(float)) {
        const double w = ref[len / sizeof(float) - 1]; /* the end score: the EOS's row */
        printf("    score: %.6f, PyTorch %.6f\n", want_score, w);
        CHECKF(fabs(want_score - w) < 2e-5 * (1 + fabs(w)), "score %.6f vs the PyTorch reference's %.6f", want_score, w);
    }
    free(ref);
    lines_free(&l);
    sa_model_free(&m);
    /* resumed: nothing to do; a language model as the score model and a score model as the judge are refused */
    snprintf(cmd, sizeof cmd, "bin/salign judge --judge-score %s --kv-type f32 --in %s --out %s -t 1 --no-progress", salm, in, out);
    log = run(cmd, &st);
    CHECKF(st == 0 && strstr(log, "nothing to do"), "%s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "bin/salign judge --judge-score " MODEL " --in %s --out %s --no-resume -t 1", in, tp("js2.jsonl"));
    log = run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "is a language model, not a score model"), "%s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "bin/salign judge --judge %s --tasks safety --in %s --out %s --no-resume -t 1", salm, in, tp("js3.jsonl"));
    log = run(cmd, &st);
    CHECKF(st == 1 && strstr(log, "is a score model"), "%s", log);
    free(log);
}
