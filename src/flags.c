/* flags.c - command-line value parsing (see flags.h). */
#include "flags.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int sa_flag_long(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi)
        return sa_err("%s: expected an integer in [%ld, %ld], got '%s'", flag, lo, hi, v ? v : "");
    *out = x;
    return 0;
}

int sa_flag_int(const char *flag, const char *v, long lo, long hi, int *out) {
    long x;
    if (sa_flag_long(flag, v, lo, hi, &x)) return -1;
    *out = (int)x;
    return 0;
}

int sa_flag_u64(const char *flag, const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || v[0] == '-') return sa_err("%s: expected a non-negative integer, got '%s'", flag, v ? v : "");
    *out = x;
    return 0;
}

int sa_flag_float(const char *flag, const char *v, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float x = v ? strtof(v, &end) : 0;
    if (!v || !*v || *end || errno || !isfinite(x) || x < lo || x > hi)
        return sa_err("%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, v ? v : "");
    *out = x;
    return 0;
}

const char *sa_flag_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        sa_err("%s: missing value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int sa_die(void) {
    fprintf(stderr, "salign: %s\n", sa_errmsg());
    return 1;
}

char *sa_flag_text(const char *flag, const char *value, int from_file) {
    const int stdin_ = !strcmp(value, "-");
    if (!from_file && !stdin_) return sa_strdup(value);
    size_t n = 0;
    char *t = sa_read_file(stdin_ ? "/dev/stdin" : value, &n);
    if (!t) {
        sa_err_prefix("%s: ", flag);
        return NULL;
    }
    if (strlen(t) != n) {
        free(t);
        sa_err("%s: %s holds a NUL byte (the text would be cut there)", flag, stdin_ ? "standard input" : value);
        return NULL;
    }
    return t;
}
