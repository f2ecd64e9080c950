/* test_main.c - the runner behind tests/test.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../simd/kernels.h"
#include "../src/common.h"
#include "test.h"

typedef struct {
    const char *name, *file;
    TestFn fn;
} TestCase;

static TestCase g_tests[1024];
static int g_ntests;
static int g_cur_failed, g_cur_skipped;
static char g_skip_reason[256];

void test_register(const char *name, const char *file, TestFn fn) {
    if (g_ntests < (int)SA_ARRAY_LEN(g_tests)) g_tests[g_ntests++] = (TestCase){name, file, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    if (g_cur_failed < 20) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "    %s:%d: ", file, line);
        vfprintf(stdout, fmt, ap);
        fprintf(stdout, "\n");
        va_end(ap);
    } else if (g_cur_failed == 20) {
        fprintf(stdout, "    (further failures of this test not shown)\n");
    }
    g_cur_failed++;
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_skip_reason, sizeof g_skip_reason, fmt, ap);
    va_end(ap);
    g_cur_skipped = 1;
}

const char *test_bin_dir(void) {
    const char *d = getenv("SALIGN_BIN_DIR");
    return d && *d ? d : "bin";
}

const char *test_bin(const char *name) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", test_bin_dir(), name);
    return b;
}

/* A copy of cmd in which every word starting with "bin/" starts with test_bin_dir() instead. Word
 * starts are the beginning and what follows a shell separator, so "/usr/bin/x" and "tests/bin/x"
 * are left alone. NULL when nothing changes. */
static char *rewrite_bins(const char *cmd) {
    const char *dir = test_bin_dir();
    if (strcmp(dir, "bin") == 0) return NULL;
    SaBuf b = {0};
    int changed = 0;
    for (const char *p = cmd; *p; p++) {
        int word_start = p == cmd || strchr(" \t\n|;&(`'\"=", p[-1]) != NULL;
        if (word_start && strncmp(p, "bin/", 4) == 0) {
            sa_buf_append(&b, dir, strlen(dir));
            sa_buf_append(&b, "/", 1);
            p += 3;
            changed = 1;
            continue;
        }
        sa_buf_append(&b, p, 1);
    }
    sa_buf_append(&b, "", 1);
    if (!changed) {
        sa_buf_free(&b);
        return NULL;
    }
    return b.data;
}

char *test_run(const char *cmd, int *status) {
    char *alt = rewrite_bins(cmd);
    FILE *p = popen(alt ? alt : cmd, "r");
    free(alt);
    if (!p) {
        if (status) *status = -1;
        return strdup("");
    }
    SaBuf b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, p)) > 0) sa_buf_append(&b, tmp, n);
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (!b.data) return strdup("");
    return b.data;
}

const char *test_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        mkdir("build", 0755);
        mkdir("build/test-tmp", 0755);
        snprintf(dir, sizeof dir, "build/test-tmp/%d", (int)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

const char *test_tmp(const char *name) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", test_tmpdir(), name);
    return b;
}

const char *test_models_dir(void) {
    static char dir[512];
    const char *env = getenv("SALIGN_SHARED");
    snprintf(dir, sizeof dir, "%s/models", env && *env ? env : "../shared");
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return dir;
    return NULL;
}

const char *test_torch_python(void) {
    int st;
    char *out = test_run("/usr/bin/python3 -c 'import torch, numpy' 2>&1", &st);
    free(out);
    return st == 0 ? "/usr/bin/python3" : NULL;
}

double test_nmse(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* Weak: the kernel-only test binary (bin/salign-kernel-tests, also built for aarch64) links
 * without src/parallel.c. */
__attribute__((weak)) void sa_set_threads(int n);

/* name contains one of the comma-separated parts of list */
static int excluded(const char *list, const char *name) {
    for (const char *p = list; *p;) {
        const size_t n = strcspn(p, ",");
        char part[128];
        snprintf(part, sizeof part, "%.*s", (int)n, p);
        if (n && strstr(name, part)) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sa_kernels_init();
    /* one thread unless a test asks for more: tests check results, and the machine is shared */
    if (sa_set_threads) sa_set_threads(1);
    /* [--exclude SUBSTR[,SUBSTR...]] [FILTER]: the unit pass of make test leaves out the tests that
     * tests/run-archs.sh runs with llama.cpp's oracles in their environment */
    const char *exclude = NULL;
    if (argc > 2 && !strcmp(argv[1], "--exclude")) {
        exclude = argv[2];
        argc -= 2;
        argv += 2;
    }
    const char *filter = argc > 1 ? argv[1] : NULL;
    /* CI (.ci/run) sets SALIGN_REQUIRE_ORACLES=1: a test that could not check what it is for (no
     * ../shared/models, no oracle) has failed there, and says why */
    const char *req = getenv("SALIGN_REQUIRE_ORACLES");
    const int require = req && !strcmp(req, "1");
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < g_ntests; i++) {
        TestCase *t = &g_tests[i];
        if (filter && !strstr(t->name, filter) && !strstr(t->file, filter)) continue;
        if (exclude && excluded(exclude, t->name)) continue;
        g_cur_failed = 0;
        g_cur_skipped = 0;
        double t0 = sa_time_ms();
        t->fn();
        double ms = sa_time_ms() - t0;
        if (g_cur_failed) {
            printf("FAIL %s (%s, %.0f ms)\n", t->name, t->file, ms);
            failed++;
        } else if (g_cur_skipped && require) {
            printf("FAIL %s (%s): skipped, and SALIGN_REQUIRE_ORACLES=1 makes a skip a failure: %s\n", t->name, t->file,
                   g_skip_reason);
            failed++;
        } else if (g_cur_skipped) {
            printf("skip %s: %s\n", t->name, g_skip_reason);
            skipped++;
        } else {
            printf("ok   %s (%.0f ms)\n", t->name, ms);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    /* a skipped test checked nothing: the run is not a success (the counts say which it was) */
    return failed || skipped ? 1 : 0;
}
