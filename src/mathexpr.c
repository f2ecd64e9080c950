/* mathexpr.c - answers as expression trees, compared by value (see mathexpr.h). */
#include "mathexpr.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { N_NUM, N_VAR, N_NEG, N_ADD, N_SUB, N_MUL, N_DIV, N_POW, N_SQRT, N_ROOT };

typedef struct {
    int op;
    int a, b;   /* child node indices (-1: none) */
    double num; /* N_NUM: the value (pi and infinity are numbers too) */
    char var;   /* N_VAR */
} Node;

typedef struct {
    Node *nodes;
    int n, cap;
    int root;
    char var; /* the one variable it uses, 0 if none; '?' if more than one */
} Elem;

struct SaMathExpr {
    char open, close; /* '(' '[' '{' (a set, \{ \}) or 0 for a bare expression / list */
    Elem *el;
    int n;
};

/* ---- parsing ---------------------------------------------------------------------------- */

typedef struct {
    const char *s, *end; /* the element's text */
    Elem *e;
    int depth;
    int bad;
} P;

static int node(P *p, int op, int a, int b) {
    Elem *e = p->e;
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 16;
        Node *v = realloc(e->nodes, (size_t)cap * sizeof *v);
        if (!v) {
            p->bad = 1;
            return -1;
        }
        e->nodes = v;
        e->cap = cap;
    }
    e->nodes[e->n] = (Node){.op = op, .a = a, .b = b};
    return e->n++;
}

static int num_node(P *p, double v) {
    int k = node(p, N_NUM, -1, -1);
    if (k >= 0) p->e->nodes[k].num = v;
    return k;
}

static void ws(P *p) {
    while (p->s < p->end && isspace((unsigned char)*p->s)) p->s++;
}

/* Is the next text the command \name (not followed by another letter)? Consumes it if so. */
static int cmd(P *p, const char *name) {
    ws(p);
    size_t n = strlen(name);
    if (p->end - p->s < (long)(n + 1) || p->s[0] != '\\' || strncmp(p->s + 1, name, n)) return 0;
    if (p->s + 1 + n < p->end && isalpha((unsigned char)p->s[1 + n])) return 0;
    p->s += 1 + n;
    return 1;
}

static int lit(P *p, const char *t) {
    ws(p);
    size_t n = strlen(t);
    if (p->end - p->s < (long)n || strncmp(p->s, t, n)) return 0;
    p->s += n;
    return 1;
}

static int expr(P *p);
static int unary(P *p);

/* { expr } */
static int braced(P *p) {
    if (!lit(p, "{")) {
        p->bad = 1;
        return -1;
    }
    int k = expr(p);
    if (!lit(p, "}")) p->bad = 1;
    return k;
}

/* Could a primary start here (for implicit multiplication)? Numbers cannot: "2 3" is not 6. */
static int primary_starts(P *p) {
    ws(p);
    if (p->s >= p->end) return 0;
    const unsigned char c = (unsigned char)*p->s;
    if (isalpha(c) || c == '(' || c == '{') return 1;
    if (!strncmp(p->s, "\xcf\x80", 2) || !strncmp(p->s, "\xe2\x88\x9e", 3)) return 1; /* π ∞ */
    if (c == '\\') {
        static const char *starts[] = {"pi", "sqrt", "frac", "infty"};
        for (size_t i = 0; i < SA_ARRAY_LEN(starts); i++) {
            size_t n = strlen(starts[i]);
            if (p->end - p->s > (long)n && !strncmp(p->s + 1, starts[i], n) &&
                !(p->s + 1 + n < p->end && isalpha((unsigned char)p->s[1 + n])))
                return 1;
        }
    }
    return 0;
}

static int number(P *p, int one_digit) {
    const char *q = p->s;
    if (one_digit) {
        p->s++;
        return num_node(p, *q - '0');
    }
    while (p->s < p->end && isdigit((unsigned char)*p->s)) p->s++;
    if (p->s + 1 < p->end && *p->s == '.' && isdigit((unsigned char)p->s[1])) {
        p->s++;
        while (p->s < p->end && isdigit((unsigned char)*p->s)) p->s++;
    }
    char buf[64];
    size_t n = (size_t)(p->s - q);
    if (n >= sizeof buf) { /* a 60-digit number is not an answer we compare */
        p->bad = 1;
        return -1;
    }
    memcpy(buf, q, n);
    buf[n] = 0;
    return num_node(p, strtod(buf, NULL));
}

/* The base of a power. In an exponent (exp != 0) an unbraced number is one digit, as in LaTeX. */
static int primary(P *p, int exp) {
    ws(p);
    if (p->bad || p->s >= p->end || ++p->depth > 200) {
        p->bad = 1;
        return -1;
    }
    int k = -1;
    const unsigned char c = (unsigned char)*p->s;
    if (isdigit(c) || (c == '.' && p->s + 1 < p->end && isdigit((unsigned char)p->s[1]))) {
        k = number(p, exp && c != '.');
    } else if (isalpha(c)) {
        if (p->s + 1 < p->end && isalpha((unsigned char)p->s[1])) p->bad = 1; /* a word */
        else {
            k = node(p, N_VAR, -1, -1);
            if (k >= 0) {
                p->e->nodes[k].var = (char)c;
                char *v = &p->e->var;
                *v = !*v || *v == (char)c ? (char)c : '?';
            }
            p->s++;
        }
    } else if (lit(p, "(")) {
        k = expr(p);
        if (!lit(p, ")")) p->bad = 1;
    } else if (c == '{') {
        k = braced(p);
    } else if (lit(p, "\xcf\x80") || cmd(p, "pi")) {
        k = num_node(p, M_PI);
    } else if (lit(p, "\xe2\x88\x9e") || cmd(p, "infty")) {
        k = num_node(p, INFINITY);
    } else if (cmd(p, "sqrt")) {
        int idx = -1;
        if (lit(p, "[")) {
            idx = expr(p);
            if (!lit(p, "]")) p->bad = 1;
        }
        int arg = braced(p);
        k = idx < 0 ? node(p, N_SQRT, arg, -1) : node(p, N_ROOT, arg, idx);
    } else if (cmd(p, "frac")) {
        int a = braced(p);
        int b = braced(p);
        k = node(p, N_DIV, a, b);
    } else {
        p->bad = 1;
    }
    p->depth--;
    return k;
}

static int power(P *p) {
    int base = primary(p, 0);
    if (lit(p, "^")) {
        ws(p);
        int e;
        if (p->s < p->end && (*p->s == '-' || *p->s == '+')) {
            const int neg = *p->s == '-';
            p->s++;
            e = primary(p, 1);
            if (neg) e = node(p, N_NEG, e, -1);
        } else {
            e = primary(p, 1);
        }
        /* a^b^c: right-associative */
        ws(p);
        if (p->s < p->end && *p->s == '^') {
            p->s++;
            int e2 = primary(p, 1);
            e = node(p, N_POW, e, e2);
        }
        base = node(p, N_POW, base, e);
    }
    return base;
}

static int unary(P *p) {
    if (lit(p, "-")) return node(p, N_NEG, unary(p), -1);
    if (lit(p, "+")) return unary(p);
    return power(p);
}

static int term(P *p) {
    int k = unary(p);
    for (;;) {
        if (p->bad) return -1;
        if (lit(p, "*") || cmd(p, "cdot") || cmd(p, "times")) k = node(p, N_MUL, k, unary(p));
        else if (lit(p, "/") || cmd(p, "div")) k = node(p, N_DIV, k, unary(p));
        else if (primary_starts(p)) k = node(p, N_MUL, k, power(p));
        else return k;
    }
}

static int expr(P *p) {
    if (++p->depth > 200) {
        p->bad = 1;
        return -1;
    }
    int k = term(p);
    for (;;) {
        if (p->bad) break;
        if (lit(p, "+")) k = node(p, N_ADD, k, term(p));
        else if (lit(p, "-")) k = node(p, N_SUB, k, term(p));
        else break;
    }
    p->depth--;
    return k;
}

static int parse_elem(const char *s, const char *end, Elem *e) {
    memset(e, 0, sizeof *e);
    P p = {.s = s, .end = end, .e = e};
    while (p.s < end && isspace((unsigned char)*p.s)) p.s++;
    if (p.s == end) return -1;
    e->root = expr(&p);
    ws(&p);
    if (p.bad || p.s != end || e->root < 0) return -1;
    return 0;
}

void sa_mexpr_free(SaMathExpr *x) {
    if (!x) return;
    for (int i = 0; i < x->n; i++) free(x->el[i].nodes);
    free(x->el);
    free(x);
}

SaMathExpr *sa_mexpr_parse(const char *s) {
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    while (len && isspace((unsigned char)*s)) s++, len--;
    if (!len) return NULL;
    SaMathExpr *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    const char *b = s, *e = s + len;
    /* brackets around the whole text, when they match each other (not "(1)+(2)") */
    int ob = 0, cb = 0; /* lengths of the opening and closing bracket */
    if (len >= 4 && !strncmp(s, "\\{", 2) && !strncmp(e - 2, "\\}", 2)) {
        x->open = '{', x->close = '}', ob = cb = 2;
    } else if (len >= 2 && (*s == '(' || *s == '[') && (e[-1] == ')' || e[-1] == ']')) {
        x->open = *s, x->close = e[-1], ob = cb = 1;
    }
    if (ob) {
        /* the first bracket must close only at the end, or the text is e.g. "(1)+(2)" */
        int depth = 0, whole = 1;
        for (const char *q = s + ob; q < e - cb; q++) {
            if (*q == '(' || *q == '[' || *q == '{') depth++;
            else if (*q == ')' || *q == ']' || *q == '}') {
                if (--depth < 0) whole = 0;
            }
        }
        if (!whole || depth) x->open = x->close = 0, ob = cb = 0;
        else b += ob, e -= cb;
    }
    /* split at top-level commas */
    int cap = 4;
    x->el = calloc((size_t)cap, sizeof *x->el);
    if (!x->el) goto fail;
    int depth = 0;
    const char *start = b;
    for (const char *q = b;; q++) {
        if (q < e && (*q == '(' || *q == '[' || *q == '{')) depth++;
        else if (q < e && (*q == ')' || *q == ']' || *q == '}')) depth--;
        if (q == e || (*q == ',' && depth == 0)) {
            if (x->n == cap) {
                cap *= 2;
                Elem *v = realloc(x->el, (size_t)cap * sizeof *v);
                if (!v) goto fail;
                x->el = v;
            }
            if (parse_elem(start, q, &x->el[x->n])) {
                free(x->el[x->n].nodes);
                goto fail;
            }
            x->n++;
            if (q == e) break;
            start = q + 1;
        }
    }
    /* "(1+2)" is a parenthesised expression, not a 1-tuple; "[1]" is neither */
    if (x->n == 1 && x->open) {
        if (x->open == '(' && x->close == ')') {
            x->open = x->close = 0;
        } else {
            goto fail;
        }
    }
    return x;
fail:
    sa_mexpr_free(x);
    return NULL;
}

/* ---- evaluation and comparison --------------------------------------------------------------- */

static double eval(const Elem *e, int k, double x) {
    const Node *n = &e->nodes[k];
    switch (n->op) {
    case N_NUM: return n->num;
    case N_VAR: return x;
    case N_NEG: return -eval(e, n->a, x);
    case N_ADD: return eval(e, n->a, x) + eval(e, n->b, x);
    case N_SUB: return eval(e, n->a, x) - eval(e, n->b, x);
    case N_MUL: return eval(e, n->a, x) * eval(e, n->b, x);
    case N_DIV: {
        double d = eval(e, n->b, x);
        return d == 0 ? NAN : eval(e, n->a, x) / d;
    }
    case N_POW: {
        double b = eval(e, n->a, x), p = eval(e, n->b, x);
        if (b == 0 && p < 0) return NAN;
        if (b < 0 && p != floor(p)) { /* an odd root of a negative number: (-8)^(1/3) */
            double q = 1 / p;
            if (fabs(q - nearbyint(q)) < 1e-12 && fmod(fabs(nearbyint(q)), 2) == 1) return -pow(-b, p);
            return NAN;
        }
        return pow(b, p);
    }
    case N_SQRT: {
        double a = eval(e, n->a, x);
        return a < 0 ? NAN : sqrt(a);
    }
    case N_ROOT: {
        double a = eval(e, n->a, x), r = eval(e, n->b, x);
        if (!(r >= 1) || r != floor(r)) return NAN;
        if (a < 0) return fmod(r, 2) == 1 ? -pow(-a, 1 / r) : NAN;
        return pow(a, 1 / r);
    }
    }
    return NAN;
}

static int close_enough(double a, double b) {
    if (isnan(a) || isnan(b)) return 0;
    if (isinf(a) || isinf(b)) return a == b;
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    return fabs(a - b) <= 1e-9 * scale;
}

static int elem_equal(const Elem *a, const Elem *b) {
    char v = a->var ? a->var : b->var;
    if (a->var == '?' || b->var == '?' || (a->var && b->var && a->var != b->var)) return 0;
    if (!v) return close_enough(eval(a, a->root, 0), eval(b, b->root, 0));
    /* a polynomial (or any expression) of one variable: the same values at points no simple
     * answer has a coincidence at; at least 3 of them must be defined on both sides */
    static const double pts[] = {-1.713, -0.391, 0.587, 1.291, 2.377, 3.142};
    int defined = 0;
    for (size_t i = 0; i < SA_ARRAY_LEN(pts); i++) {
        double x = eval(a, a->root, pts[i]), y = eval(b, b->root, pts[i]);
        if (isnan(x) && isnan(y)) continue;
        if (!close_enough(x, y)) return 0;
        defined++;
    }
    return defined >= 3;
}

int sa_mexpr_equal(const SaMathExpr *a, const SaMathExpr *b) {
    if (!a || !b || a->open != b->open || a->close != b->close || a->n != b->n) return 0;
    const int unordered = a->open == '{' || (a->open == 0 && a->n > 1);
    if (!unordered) {
        for (int i = 0; i < a->n; i++)
            if (!elem_equal(&a->el[i], &b->el[i])) return 0;
        return 1;
    }
    /* multisets: each element of a takes a different, equal element of b (greedy is exact
     * because equality is an equivalence up to the tolerance) */
    unsigned char used[256] = {0};
    if (a->n > 256) return 0;
    for (int i = 0; i < a->n; i++) {
        int found = 0;
        for (int j = 0; j < b->n && !found; j++)
            if (!used[j] && elem_equal(&a->el[i], &b->el[j])) used[j] = 1, found = 1;
        if (!found) return 0;
    }
    return 1;
}

double sa_mexpr_value(const SaMathExpr *e) {
    if (!e || e->n != 1 || e->open || e->el[0].var) return NAN;
    return eval(&e->el[0], e->el[0].root, 0);
}
