/* test_mathcheck.c - the answer expression evaluator and math-check's command-line contract. The
 * comparison itself is checked against SymPy in tests/run-math-oracle.sh. */
#include <math.h>
#include <stdlib.h>

#include "../src/mathcheck.h"
#include "../src/mathexpr.h"
#include "test.h"

static double val(const char *s) {
    SaMathExpr *e = sa_mexpr_parse(s);
    double v = sa_mexpr_value(e);
    sa_mexpr_free(e);
    return v;
}

TEST(mathexpr_values) {
    CHECK(fabs(val("\\frac{1}{2}") - 0.5) < 1e-15);
    CHECK(fabs(val("2\\sqrt{2}") - 2 * sqrt(2)) < 1e-14);
    CHECK(fabs(val("\\sqrt[3]{-8}") + 2) < 1e-14);
    CHECK(fabs(val("-2^2") + 4) < 1e-15);        /* the power binds tighter than the minus */
    CHECK(fabs(val("2^{3^2}") - 512) < 1e-12);    /* right-associative */
    CHECK(fabs(val("3\\pi/4") - 3 * M_PI / 4) < 1e-14);
    CHECK(fabs(val("10^{-2}") - 0.01) < 1e-17);
    CHECK(fabs(val("1-2-3") + 4) < 1e-15);       /* left-associative */
    CHECK(fabs(val("12/4/3") - 1) < 1e-15);
    CHECK(isinf(val("\\infty")) && val("-\\infty") < 0);
    CHECK(isnan(val("\\sqrt{-1}")));
    /* not expressions */
    const char *bad[] = {"cm", "2 3", "x2", "2^10", "(1", "\\sin{x}", "1,", "", "[1]", "\\frac{1}"};
    for (size_t i = 0; i < SA_ARRAY_LEN(bad); i++) {
        SaMathExpr *e = sa_mexpr_parse(bad[i]);
        CHECKF(!e, "'%s' parsed", bad[i]);
        sa_mexpr_free(e);
    }
    /* groups */
    SaMathExpr *a = sa_mexpr_parse("(1, \\frac{1}{2})"), *b = sa_mexpr_parse("(1,0.5)"), *c = sa_mexpr_parse("[1, 0.5)");
    CHECK(a && b && c && sa_mexpr_equal(a, b) && !sa_mexpr_equal(a, c));
    sa_mexpr_free(a);
    sa_mexpr_free(b);
    sa_mexpr_free(c);
    CHECK(sa_math_equal("(x+1)(x-1)", "x^2-1") && !sa_math_equal("(x+1)(x-1)", "x^2+1"));
}

TEST(mathcheck_cli) {
    int st = 0;
    char *out = test_run("printf '{\"answer\": \"\\\\\\\\boxed{3}\", \"solution\": \"#### 3\"}\\n\\n' | bin/salign math-check", &st);
    CHECKF(st == 0 && out && strstr(out, "\"correct\":true") && strstr(out, "\"answer_extracted\":\"3\""), "got %s", out);
    free(out);
    /* a bad line: one message naming it, exit 1, nothing on stdout */
    out = test_run("printf '{\"answer\": \"1\", \"solution\": \"1\"}\\nnot json\\n' | bin/salign math-check 2>/dev/null", &st);
    CHECK(st != 0 && out && !*out);
    free(out);
    out = test_run("printf '{\"answer\": \"1\"}\\n' | bin/salign math-check 2>&1 >/dev/null", &st);
    CHECKF(st != 0 && out && strstr(out, "line 1") && strstr(out, "\"solution\""), "got %s", out);
    free(out);
    out = test_run("bin/salign math-check --bogus 2>&1", &st);
    CHECK(st != 0 && out && strstr(out, "--bogus"));
    free(out);
}
