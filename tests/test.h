/* test.h - a tiny test runner: each TEST registers itself at start-up; CHECK records failures
 * without aborting the test; the runner prints one line per failed check and ends with
 * "N passed, N failed, N skipped" (counting tests; exit status 1 if any failed or skipped). `bin/salign-tests [FILTER]` runs tests whose name
 * contains FILTER. Tests run from the repository root. */
#ifndef SALIGN_TEST_H
#define SALIGN_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*TestFn)(void);
void test_register(const char *name, const char *file, TestFn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Mark the running test as skipped (with a reason): counted as skipped, and the run's exit status is
 * 1; with SALIGN_REQUIRE_ORACLES=1 (CI) counted as failed. For a missing oracle or test file only. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                                      \
    static void name(void);                                                             \
    __attribute__((constructor)) static void reg_##name(void) {                         \
        test_register(#name, __FILE__, name);                                           \
    }                                                                                   \
    static void name(void)

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                 \
    } while (0)
#define CHECKF(cond, ...)                                                               \
    do {                                                                                \
        if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__);                        \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_) test_fail(__FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, a_, b_); \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                              \
    do {                                                                                \
        const char *a_ = (a), *b_ = (b);                                                \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                          \
            test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b,        \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                          \
    } while (0)

/* ---- helpers for tests ---- */
/* Run a shell command; capture stdout (and the exit status). Returns malloc'd output.
 * With $SALIGN_BIN_DIR set (tests/run-sanitize.sh sets bin-san), every word of the command that
 * starts with "bin/" starts with that folder instead, so the whole suite can drive another build
 * of the binaries; tests keep writing "bin/salign ...". */
char *test_run(const char *cmd, int *status);
/* $SALIGN_BIN_DIR, or "bin". */
const char *test_bin_dir(void);
/* Path of a binary under test: test_bin("salign") is "bin/salign" or "$SALIGN_BIN_DIR/salign"
 * (static buffer rotated among 8). For commands not run through test_run (fork/exec). */
const char *test_bin(const char *name);
/* Per-run scratch folder (created on first use): build/test-tmp/<pid>. */
const char *test_tmpdir(void);
/* Path of a file in the scratch folder (static buffer rotated among 8). */
const char *test_tmp(const char *name);
/* ../shared/models (or $SALIGN_SHARED/models) if present, else NULL. */
const char *test_models_dir(void);
/* Debian's python3 with torch and numpy (tests/oracles/hf_forward.py; its torch is not visible to other
 * pythons on PATH), or NULL. */
const char *test_torch_python(void);
/* Normalized mean squared error: sum((a-b)^2) / sum(b^2). */
double test_nmse(const float *a, const float *b, int n);

#endif
