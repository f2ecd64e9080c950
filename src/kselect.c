/* kselect.c - which table's implementation serves each kernel op (kselect.h).
 *
 * Why calibrate rather than a fixed rule: the fastest table differs per op and per CPU in ways
 * cpuid does not tell. On the Zen 5 machine of issue #23 the AVX-512 decode tiles read a third
 * slower than the AVX2 ones (Q4_0 1B tg: 34.4 vs 52.7 t/s) while the AVX-512 prefill tiles are
 * twice as fast (pp512: 231 vs 103 t/s); on an Intel core with AVX-512 the order can be the other
 * one, and a kernel fixed later changes it again. Timing the candidates on the model's own
 * matrices costs tens of milliseconds once per CPU, binary and model shape.
 *
 * How the timing is made comparable: decode is bound by reading the weights, so each decode
 * measurement runs T = 1 over a run of the model's real matrices (cut to at most 64 MiB in all,
 * more than a last-level cache, so the weights come from memory as in a real step); within a
 * round every candidate reads the same run, the order of candidates rotates between rounds, and
 * each candidate's best round decides (see calibrate), with a 3% margin for the cpuid table's
 * own. Prefill is bound by arithmetic: T = 64 tokens on the first 256 rows of a matrix of the op
 * (cache-resident, as the real token chunks are). Activation conversions: 64 rows. One
 * thread throughout (the per-core speed is what differs between tables). */
#include "kselect.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "matmul.h"
#include "parallel.h"

#define MAX_OPS 320
#define MAX_TABLES 8
#define MAX_OVERRIDES 32
#define CACHE_MAX_BYTES (1 << 20)
#define SWEEP_BYTES ((size_t)64 << 20) /* per decode measurement: more than a last-level cache */
#define DECODE_ROUNDS 6
#define SMALL_ROUNDS 6
/* A candidate other than the cpuid table's must be this much faster to replace it: timings on a
 * shared machine wobble by a few percent, and a tie should not flip the choice from run to run. */
#define MARGIN 0.97
#define PREFILL_T 64
#define PREFILL_ROWS 256
#define ACT_ROWS 64
#define MAX_CAND 8      /* candidates of one calibration: tables, or prefetch distances */
#define PF_MAX 16777216 /* --kernels prefetch=, SALIGN_PF_AHEAD and the cache: at most 16 MiB */

typedef enum { HOW_NONE, HOW_FLOAT, HOW_ONE, HOW_CALIBRATED, HOW_CACHED, HOW_FORCED, HOW_LATER, HOW_ENV } How;
static const char *const how_text[] = {"",
                                       "not bit-identical: the best table by cpuid",
                                       "one implementation",
                                       "calibrated",
                                       "cached calibration",
                                       "forced by --kernels",
                                       "calibrated on the first run",
                                       "forced by SALIGN_PF_AHEAD"};

typedef struct {
    SaKernelOp op;
    int used;                 /* by the model: its matrices or their activation conversion */
    int decided;
    const SaMat *first;       /* the op's first matrix (calibration shapes) */
    const SaKernels *pick[2]; /* [0] decode, [1] prefill (non-matrix ops: [1] serves both) */
    How how[2];
    char note[2][96];         /* calibration times */
} OpState;

static int n_classes(const OpState *o) { return o->op.matrix ? 2 : 1; }
static int slot(const OpState *o, int c) { return o->op.matrix ? c : 1; }

typedef struct {
    double calib_ms; /* the calibration's own wall time (0: none ran) */
    OpState ops[MAX_OPS];
    int n_ops;
    char key[512];
    const SaKernels *base; /* what serves the ops not chosen one by one */
    size_t pf;             /* the decode prefetch distance (sa_pf_ahead) */
    How pf_how;
    char pf_note[160];
    int valid;
} Plan;

static struct {
    const SaKernels *tables[MAX_TABLES];
    int nt, test_tables;
    double (*clock_ms)(void);
    /* --kernels */
    enum { SPEC_NONE, SPEC_AUTO, SPEC_CALIBRATE, SPEC_TABLE, SPEC_LIST } spec;
    char table[32];
    struct {
        char op[24], table[32];
        SaKernelClass cls;
    } ov[MAX_OVERRIDES];
    int n_ov;
    int pf_set;          /* --kernels prefetch=BYTES given: */
    size_t pf_forced;    /* that distance */
    Plan applied; /* the selection sa_k serves (valid once a model was given) */
} g;

static void init_tables(void) {
    if (!g.test_tables) g.nt = sa_kernels_available(g.tables, MAX_TABLES);
}

static const SaKernels *table_named(const char *name) {
    init_tables();
    for (int i = 0; i < g.nt; i++)
        if (!strcmp(g.tables[i]->name, name)) return g.tables[i];
    return NULL;
}

/* The lowest table that holds f (the avx512 table names some avx2 kernels: they are avx2's). */
static const SaKernels *owner(SaAnyFn f, const SaKernelOp *op) {
    for (int i = 0; i < g.nt; i++)
        if (sa_kernel_fn(g.tables[i], op) == f) return g.tables[i];
    return NULL;
}

/* The distinct implementations of op among the tables, each named by its owner; the reference
 * table (tables[0], scalar) is not one when others exist: it is never the faster. */
static int candidates(const SaKernelOp *op, const SaKernels **out) {
    int n = 0;
    for (int i = g.nt > 1 ? 1 : 0; i < g.nt; i++) {
        const SaAnyFn f = sa_kernel_fn(g.tables[i], op);
        if (!f) continue;
        const SaKernels *o = owner(f, op);
        int seen = 0;
        for (int k = 0; k < n; k++) seen |= out[k] == o;
        if (!seen) out[n++] = o;
    }
    return n;
}

/* ---- --kernels ---- */

static int find_op(const char *name, SaKernelOp *out) {
    SaKernelOp ops[MAX_OPS];
    const int n = sa_kernel_ops(ops, MAX_OPS);
    for (int i = 0; i < n; i++)
        if (!strcmp(ops[i].name, name)) {
            *out = ops[i];
            return 1;
        }
    return 0;
}

static int tables_list(char *out, size_t cap) {
    init_tables();
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < g.nt && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ", " : "", g.tables[i]->name);
    return 0;
}

int sa_kselect_flag(const char *spec) {
    char names[128];
    tables_list(names, sizeof names);
    g.n_ov = 0;
    g.pf_set = 0;
    if (!strcmp(spec, "auto")) {
        g.spec = SPEC_AUTO;
        return 0;
    }
    if (!strcmp(spec, "calibrate")) {
        g.spec = SPEC_CALIBRATE;
        return 0;
    }
    if (!strchr(spec, '=')) {
        if (!table_named(spec))
            return sa_err("--kernels: '%s' is not auto, calibrate, OP=TABLE nor a table of this CPU (%s)", spec, names);
        g.spec = SPEC_TABLE;
        snprintf(g.table, sizeof g.table, "%s", spec);
        return 0;
    }
    for (const char *p = spec; *p;) {
        const size_t len = strcspn(p, ",");
        char item[96];
        if (len >= sizeof g.ov[0].op + sizeof g.ov[0].table || g.n_ov == MAX_OVERRIDES)
            return sa_err("--kernels: '%s' is too long", spec);
        memcpy(item, p, len);
        item[len] = 0;
        p += len + (p[len] == ',');
        char *eq = strchr(item, '='), *op = item;
        if (!eq) return sa_err("--kernels: '%s': expected OP=TABLE", item);
        *eq = 0;
        SaKernelClass cls = SA_KC_BOTH;
        if (!strncmp(op, "decode:", 7)) cls = SA_KC_DECODE, op += 7;
        else if (!strncmp(op, "prefill:", 8)) cls = SA_KC_PREFILL, op += 8;
        if (!strcmp(op, "prefetch")) { /* the decode prefetch distance in bytes, 0: none */
            char *e;
            const long long v = strtoll(eq + 1, &e, 10);
            if (e == eq + 1 || *e || v < 0 || v > PF_MAX)
                return sa_err("--kernels: prefetch=%s: expected a distance in bytes from 0 to %d", eq + 1, PF_MAX);
            g.pf_forced = (size_t)v;
            g.pf_set = 1;
            continue;
        }
        SaKernelOp o;
        if (strlen(op) >= sizeof g.ov[0].op || strlen(eq + 1) >= sizeof g.ov[0].table || !find_op(op, &o)) return sa_err("--kernels: '%s' is not a kernel op (salign info MODEL lists them)", op);
        const SaKernels *t = table_named(eq + 1);
        if (!t) return sa_err("--kernels: %s=%s: '%s' is not a table of this CPU (%s)", op, eq + 1, eq + 1, names);
        if (!sa_kernel_fn(t, &o)) return sa_err("--kernels: %s=%s: that table has no %s", op, eq + 1, op);
        memcpy(g.ov[g.n_ov].op, op, strlen(op) + 1);
        memcpy(g.ov[g.n_ov].table, eq + 1, strlen(eq + 1) + 1);
        g.ov[g.n_ov++].cls = cls;
    }
    g.spec = SPEC_LIST;
    return 0;
}

/* The one table every op comes from (--kernels TABLE, else SALIGN_ISA), or NULL. */
static const char *forced_table(void) {
    if (g.spec == SPEC_TABLE) return g.table;
    if (g.spec != SPEC_NONE || g.test_tables) return NULL;
    const char *e = getenv("SALIGN_ISA");
    return e && *e ? e : NULL;
}

/* ---- the cache: lines "KEY \t CLASS \t OP \t TABLE \n", the last one for a key, class and op wins ---- */

static char *cache_read(void) {
    char path[4200];
    if (!sa_user_cache_path("kernels", path, sizeof path, 0)) return NULL;
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size > CACHE_MAX_BYTES) return NULL;
    size_t len;
    return sa_read_file(path, &len);
}

static const char *const cls_name[] = {"decode", "prefill"};

/* The last line's value for (key, class, name) copied to val (NUL-terminated), or 0 when the cache
 * has none. Malformed lines (a torn write, an edited file, another version's) are skipped. */
static int cache_lookup(const char *text, const char *key, int cls, const char *name, char *val, size_t cap) {
    int found = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (!end) break; /* an unterminated last line is a torn write */
        const char *f[4];
        size_t fl[4];
        int nf = 0;
        for (const char *p = line; nf < 4 && p <= end;) {
            const char *q = p;
            while (q < end && *q != '\t') q++;
            f[nf] = p;
            fl[nf++] = (size_t)(q - p);
            p = q + 1;
        }
        if (nf == 4 && f[3] + fl[3] == end && fl[3] < cap && fl[0] == strlen(key) && !memcmp(f[0], key, fl[0]) &&
            fl[1] == strlen(cls_name[cls]) && !memcmp(f[1], cls_name[cls], fl[1]) && fl[2] == strlen(name) &&
            !memcmp(f[2], name, fl[2])) {
            memcpy(val, f[3], fl[3]);
            val[fl[3]] = 0;
            found = 1;
        }
        line = end + 1;
    }
    return found;
}

/* The cached table of (key, class, op) when it is one of the candidates, else NULL. */
static const SaKernels *cache_find(const char *text, const char *key, int cls, const char *op, const SaKernels **cand,
                                   int nc) {
    char name[64];
    if (!cache_lookup(text, key, cls, op, name, sizeof name)) return NULL;
    for (int k = 0; k < nc; k++)
        if (!strcmp(cand[k]->name, name)) return cand[k];
    return NULL;
}

static void cache_append(const char *lines) {
    char path[4200];
    if (!*lines || !sa_user_cache_path("kernels", path, sizeof path, 1)) return;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (flock(fd, LOCK_EX) == 0) { /* concurrent first runs (eval shards) cannot interleave lines */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > CACHE_MAX_BYTES / 2 && ftruncate(fd, 0) != 0) {
            close(fd);
            return;
        }
        char last = '\n'; /* after a torn last line, start on a line of our own */
        if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1) last = '\n';
        ssize_t w = last == '\n' ? 0 : write(fd, "\n", 1);
        w = write(fd, lines, strlen(lines));
        (void)w;
    }
    close(fd);
}

/* ---- calibration ---- */

typedef struct {
    const SaMat *const *mats; /* the op's matrices */
    int n, round, passes;
    double frac;
    float *x, *y;
    void *scratch, *act;
    int threads; /* the thread count to restore (bench_open sets one) */
} Bench;

/* The calibration runs on one thread, in the caller: its CPU time is the measurement, so a round in
 * which the core was given to another process (the 2-vCPU VM here runs at load 6 while helpers
 * build) is not slower by the time it waited. The best-of-rounds rule below still takes out
 * what the CPU time cannot (a busy sibling, a cache emptied by another process). */
static double now_ms(void) { return g.clock_ms ? g.clock_ms() : sa_thread_cpu_ms(); }

/* The round-th sample of W for a sweep that reads `frac` of every matrix: whole 8-row groups (a
 * packed matrix's groups are whole matrices), at an offset that moves on every round. */
static SaMat sample(const SaMat *W, double frac, int round) {
    SaMat v = *W;
    const int groups = W->rows / 8, n = (int)(W->rows * frac / 8);
    if (frac >= 1 || groups < 1) return v;
    v.rows = 8 * SA_MAX(n, 1);
    const int start = (int)((long long)round * (v.rows / 8) % (groups - v.rows / 8 + 1));
    v.data = (const char *)W->data + (size_t)start * 8 * W->row_bytes;
    return v;
}

/* A decode sweep reads the same share of every matrix in b (T = 1, in the list's order), about
 * SWEEP_BYTES in all: the mix of a real decode step, scaled down. Sampling matters: the 1B
 * Q4_K_M model's decode ran at half speed without prefetch because its Q6_K output matrix (a
 * quarter of the bytes, last in a step) reads slowly without it, while a sweep of the first 64 MiB
 * of layers found no prefetch the fastest. Small models are read whole, up to 4 times. */
static void sweep_plan(Bench *b) {
    size_t total = 0;
    for (int k = 0; k < b->n; k++) total += (size_t)b->mats[k]->rows * b->mats[k]->row_bytes;
    b->frac = total > SWEEP_BYTES ? (double)SWEEP_BYTES / (double)total : 1;
    b->passes = total >= SWEEP_BYTES || !total ? 1 : (int)SA_MIN(4, SWEEP_BYTES / total);
}

static void sweep(const Bench *b) {
    for (int p = 0; p < b->passes; p++)
        for (int k = 0; k < b->n; k++) {
            const SaMat v = sample(b->mats[k], b->frac, b->round);
            sa_matmul(&v, b->x, 1, b->y, v.rows, b->scratch);
        }
}

/* One measurement of the op as currently installed: ms. */
static double measure(const OpState *o, int cls, Bench *b) {
    const double t0 = now_ms();
    if (!o->op.matrix) { /* an activation conversion: ACT_ROWS rows of the first matrix's width */
        const int d = (int)((o->op.off - offsetof(SaKernels, type)) / sizeof(SaTypeKernels)), cols = o->first->cols;
        for (int r = 0; r < ACT_ROWS; r++)
            sa_k->type[d].from_float(b->x + (size_t)r * cols, (uint8_t *)b->act + (size_t)r * sa_row_bytes((SaDtype)d, cols),
                                     cols);
    } else if (cls == 1) {
        SaMat v = *o->first;
        v.rows = SA_MIN(v.rows, PREFILL_ROWS);
        sa_matmul(&v, b->x, PREFILL_T, b->y, v.rows, b->scratch);
    } else {
        sweep(b);
    }
    return now_ms() - t0;
}

/* One calibration's candidates: install(ctx, c) makes candidate c the one that runs, run(ctx, b)
 * measures it once (ms), name(ctx, c, ...) names it in the note. */
typedef struct {
    void (*install)(void *ctx, int c);
    double (*run)(void *ctx, Bench *b);
    void (*name)(void *ctx, int c, char *out, size_t cap);
    void *ctx;
    int n;
} Trial;

/* Time every candidate (rotating who goes first; after each round b->round moves on, so the decode
 * sweeps read other rows) and install the fastest by each one's best round: on a machine shared
 * with other processes (the 2-vCPU VM here ran at load 13 while this was written) a round's time is
 * the kernel's own plus whatever the core was taken away for, so the least disturbed round is the
 * one that measures the kernel. Candidate `keep` (the default; -1: none) stays unless another is
 * faster by the margin. The times go to note; returns the candidate installed. */
static int time_candidates(const Trial *tr, int rounds, Bench *b, int keep, char *note, size_t cap) {
    double best_ms[MAX_CAND];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < tr->n; k++) {
            const int c = (k + r) % tr->n;
            tr->install(tr->ctx, c);
            const double ms = tr->run(tr->ctx, b);
            if (!r || ms < best_ms[c]) best_ms[c] = ms;
        }
        b->round++;
    }
    int best = 0;
    size_t o = 0;
    for (int c = 0; c < tr->n; c++) {
        if (best_ms[c] < best_ms[best]) best = c;
        char name[32];
        tr->name(tr->ctx, c, name, sizeof name);
        if (o < cap) o += (size_t)snprintf(note + o, cap - o, "%s%s %.3g ms", c ? ", " : "", name, best_ms[c]);
    }
    if (keep >= 0 && best_ms[best] > MARGIN * best_ms[keep]) best = keep;
    tr->install(tr->ctx, best);
    return best;
}

/* ---- an op's candidate tables ---- */
typedef struct {
    const OpState *o;
    int cls;
    SaKernelClass kc;
    const SaKernels **cand;
} OpTrial;

static void op_install(void *ctx, int c) {
    const OpTrial *t = ctx;
    sa_kernels_set_op(&t->o->op, t->kc, t->cand[c]);
}
static double op_run(void *ctx, Bench *b) {
    const OpTrial *t = ctx;
    return measure(t->o, t->cls, b);
}
static void op_name(void *ctx, int c, char *out, size_t cap) { snprintf(out, cap, "%s", ((const OpTrial *)ctx)->cand[c]->name); }

/* The op's fastest table among cand, installed; the cpuid table's (base) unless another is faster by
 * the margin. */
static const SaKernels *calibrate(OpState *o, int cls, const SaKernels **cand, int nc, Bench *b, const SaKernels *base) {
    OpTrial t = {o, cls, !o->op.matrix ? SA_KC_BOTH : cls == 0 ? SA_KC_DECODE : SA_KC_PREFILL, cand};
    int keep = -1;
    for (int c = 0; c < nc; c++)
        if (sa_kernel_fn(cand[c], &o->op) == sa_kernel_fn(base, &o->op)) keep = c;
    const Trial tr = {op_install, op_run, op_name, &t, nc};
    const int rounds = o->op.matrix && cls == 0 ? DECODE_ROUNDS : SMALL_ROUNDS;
    return cand[time_candidates(&tr, rounds, b, keep, o->note[slot(o, cls)], sizeof o->note[0])];
}

/* ---- the plan: which ops the matrices use ---- */

static int op_index(const Plan *p, size_t off) {
    for (int i = 0; i < p->n_ops; i++)
        if (p->ops[i].op.off == off) return i;
    return -1;
}

/* The op that multiplies W (packed: as it will be once repacked). */
static size_t matrix_op(const SaMat *W, int packed) {
    const size_t type = offsetof(SaKernels, type) + (size_t)W->dtype * sizeof(SaTypeKernels);
    if (!packed) return type + offsetof(SaTypeKernels, gemm);
    if (W->dtype == SA_Q4_0) return offsetof(SaKernels, gemm_q4_0x8);
    if (W->dtype == SA_Q8_0) return offsetof(SaKernels, gemm_q8_0x8);
    return type + offsetof(SaTypeKernels, gemm_x8);
}

/* Mark the ops the matrices use (and each one's first matrix). */
static void mark_used(Plan *p, const SaMat *const *mats, int n, int preview) {
    for (int m = 0; m < n; m++) {
        const SaMat *W = mats[m];
        const int packed = W->packed || (preview && sa_mat_packable(W));
        const SaDtype vt = (SaDtype)sa_dtype_tr(W->dtype)->vec_dot_type;
        const size_t offs[2] = {matrix_op(W, packed), offsetof(SaKernels, type) + (size_t)vt * sizeof(SaTypeKernels) +
                                                          offsetof(SaTypeKernels, from_float)};
        for (int k = 0; k < 2; k++) {
            const int i = vt == SA_F32 && k == 1 ? -1 : op_index(p, offs[k]);
            if (i < 0) continue;
            if (!p->ops[i].used) p->ops[i].first = W;
            p->ops[i].used = 1;
        }
    }
}

static void plan_ops(Plan *p, const SaMat *const *mats, int n, int preview) {
    SaKernelOp ops[MAX_OPS];
    p->n_ops = sa_kernel_ops(ops, MAX_OPS);
    for (int i = 0; i < p->n_ops; i++) p->ops[i] = (OpState){.op = ops[i]};
    mark_used(p, mats, n, preview);
}


/* Buffers for timing the largest of these matrices, and one thread (the old count kept in b):
 * 0, or -1 without memory. */
static int bench_open(Bench *b, const SaMat *const *mats, int n) {
    int cols = 1, rows = 1;
    for (int m = 0; m < n; m++) {
        cols = SA_MAX(cols, mats[m]->cols);
        rows = SA_MAX(rows, mats[m]->rows);
    }
    const size_t act = (size_t)ACT_ROWS * cols * 8; /* more than any activation type's row */
    b->x = sa_malloc((size_t)PREFILL_T * cols * sizeof(float));
    b->y = sa_malloc((size_t)PREFILL_T * SA_MAX(rows, PREFILL_ROWS) * sizeof(float));
    b->scratch = sa_aligned_alloc(sa_matmul_scratch_bytes(PREFILL_T, cols));
    b->act = sa_malloc(act);
    if (!b->x || !b->y || !b->scratch || !b->act) {
        free(b->x), free(b->y), free(b->scratch), free(b->act);
        *b = (Bench){0};
        return -1;
    }
    uint32_t r = 12345;
    for (size_t k = 0; k < (size_t)PREFILL_T * cols; k++) {
        r = r * 1664525u + 1013904223u;
        b->x[k] = (float)((int)(r >> 9) - (1 << 22)) / (float)(1 << 22);
    }
    b->threads = sa_get_threads();
    sa_set_threads(1);
    return 0;
}

static void bench_close(Bench *b) {
    if (b->x && b->threads) sa_set_threads(b->threads);
    free(b->x), free(b->y), free(b->scratch), free(b->act);
    *b = (Bench){0};
}

/* Decide every used op not decided yet: cache, else calibration (preview: neither installs nor
 * times). */
static void decide(Plan *p, const SaMat *const *mats, int n, int preview, const SaKernels *base) {
    char *cache = g.spec == SPEC_CALIBRATE && !preview ? NULL : cache_read();
    SaBuf out = {0};
    Bench b = {0};
    for (int i = 0; i < p->n_ops; i++) {
        OpState *o = &p->ops[i];
        if (!o->used || o->decided) continue;
        o->decided = 1;
        const SaKernels *cand[MAX_TABLES];
        const int nc = candidates(&o->op, cand);
        for (int c = 0; c < n_classes(o); c++) {
            const int s = slot(o, c);
            const SaKernelClass kc = !o->op.matrix ? SA_KC_BOTH : c == 0 ? SA_KC_DECODE : SA_KC_PREFILL;
            if (!o->op.exact || nc < 2) {
                o->pick[s] = o->op.exact && nc == 1 ? cand[0] : base;
                o->how[s] = o->op.exact ? HOW_ONE : HOW_FLOAT;
            } else if (cache && (o->pick[s] = cache_find(cache, p->key, c, o->op.name, cand, nc))) {
                o->how[s] = HOW_CACHED;
            } else if (preview) {
                o->pick[s] = base;
                o->how[s] = HOW_LATER;
                continue;
            } else {
                if (!b.x && bench_open(&b, mats, n)) { /* no memory to time in: keep the cpuid table */
                    o->pick[s] = base;
                    o->how[s] = HOW_ONE;
                    continue;
                }
                int nm = 0; /* this op's matrices, for the decode sweeps */
                const SaMat *list[4096];
                for (int m = 0; m < n && nm < 4096; m++) {
                    const size_t off = matrix_op(mats[m], mats[m]->packed);
                    if (off == o->op.off) list[nm++] = mats[m];
                }
                b.mats = list;
                b.n = nm ? nm : 1;
                if (!nm) list[0] = o->first;
                b.round = 0;
                sweep_plan(&b);
                const double t0 = sa_time_ms();
                o->pick[s] = calibrate(o, c, cand, nc, &b, base);
                p->calib_ms += sa_time_ms() - t0;
                o->how[s] = HOW_CALIBRATED;
                sa_buf_printf(&out, "%s\t%s\t%s\t%s\n", p->key, cls_name[c], o->op.name, o->pick[s]->name);
            }
            if (!preview) sa_kernels_set_op(&o->op, kc, o->pick[s]);
        }
    }
    bench_close(&b);
    if (out.data) cache_append(out.data);
    sa_buf_free(&out);
    free(cache);
}

/* ---- the decode prefetch distance (kernels.h: sa_pf_ahead) ----
 * Why timed and not fixed: on two hosts of the same Zen 5 model the 1B Q4_0 decode was fastest at
 * 32 KiB ahead on one (issue #23) and lost a quarter of its speed there on the other (2026-12-04,
 * 1 thread: 32 KiB 29.9-30.5 t/s, 8 KiB 40.7-42.2, none 41.0; Q8_0 18.1 / 21.7 / 22.9; Q4_K_M
 * 27.6 / 36.7 / 18.1, so "none" is no safe default either). The distances are timed on the
 * model's own decode matrices, all of them in a step's order (layers first: they are most of a
 * step), with the cpuid table's kernels, before the kernels are chosen at that distance. */
static const size_t pf_cand[] = {0, 4096, 8192, 16384, 32768, 65536};
#define PF_N ((int)SA_ARRAY_LEN(pf_cand))
_Static_assert(SA_ARRAY_LEN(pf_cand) <= MAX_CAND && MAX_TABLES <= MAX_CAND, "MAX_CAND holds every calibration's candidates");
#define PF_ROUNDS 6

static void pf_text(size_t d, char *out, size_t cap) {
    if (!d) snprintf(out, cap, "none");
    else if (d % 1024 == 0) snprintf(out, cap, "%zu KiB", d / 1024);
    else snprintf(out, cap, "%zu B", d);
}

static void pf_install(void *ctx, int c) {
    (void)ctx;
    sa_pf_ahead = pf_cand[c];
}
static double pf_run(void *ctx, Bench *b) {
    (void)ctx;
    const double t0 = now_ms();
    sweep(b);
    return now_ms() - t0;
}
static void pf_name(void *ctx, int c, char *out, size_t cap) {
    (void)ctx;
    pf_text(pf_cand[c], out, cap);
}

/* p->pf: forced, cached or timed (preview: never timed, nothing set). */
static void decide_pf(Plan *p, const SaMat *const *mats, int n, int preview) {
    char *cache = NULL, val[32];
    size_t env;
    p->pf_note[0] = 0;
    p->pf = SA_PF_AHEAD;
    if (g.pf_set) {
        p->pf = g.pf_forced;
        p->pf_how = HOW_FORCED;
    } else if (sa_pf_ahead_env(&env)) {
        p->pf = env;
        p->pf_how = HOW_ENV;
    } else if (g.spec != SPEC_CALIBRATE && (cache = cache_read()) && cache_lookup(cache, p->key, 0, "prefetch", val, sizeof val) &&
               strspn(val, "0123456789") == strlen(val) && *val && strtoull(val, NULL, 10) <= PF_MAX) {
        p->pf = (size_t)strtoull(val, NULL, 10);
        p->pf_how = HOW_CACHED;
    } else if (preview) {
        p->pf_how = HOW_LATER;
    } else {
        /* every matrix of a decode step (the callers list them in a step's order) */
        static const SaMat *list[4096];
        int nl = 0;
        for (int k = 0; k < n && nl < 4096; k++)
            if (mats[k]->rows > 0 && mats[k]->cols > 0) list[nl++] = mats[k];
        Bench b = {.mats = list, .n = nl};
        if (!nl || bench_open(&b, mats, n)) {
            p->pf_how = HOW_ONE;
        } else {
            sweep_plan(&b);
            const double t0 = sa_time_ms();
            int def = 0;
            for (int c = 0; c < PF_N; c++)
                if (pf_cand[c] == SA_PF_AHEAD) def = c;
            const Trial tr = {pf_install, pf_run, pf_name, NULL, PF_N};
            p->pf = pf_cand[time_candidates(&tr, PF_ROUNDS, &b, def, p->pf_note, sizeof p->pf_note)];
            p->pf_how = HOW_CALIBRATED;
            p->calib_ms += sa_time_ms() - t0;
            bench_close(&b);
            char line[700];
            snprintf(line, sizeof line, "%s\t%s\tprefetch\t%zu\n", p->key, cls_name[0], p->pf);
            cache_append(line);
        }
    }
    free(cache);
    if (!preview) sa_pf_ahead = p->pf;
}

/* The cache key: the CPU model, this binary (a rebuilt kernel is timed again), the tables, the
 * model shape and the page lead. No tabs or newlines. */
static void make_key(const char *shape, char *out, size_t cap) {
    char cpu[128] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (c && (!strncmp(line, "model name", 10) || !strncmp(line, "CPU part", 8))) {
            snprintf(cpu, sizeof cpu, "%s", c + 1 + strspn(c + 1, " \t"));
            for (size_t k = strlen(cpu); k > 0 && (cpu[k - 1] == '\n' || cpu[k - 1] == ' '); k--) cpu[k - 1] = 0;
            break;
        }
    }
    if (f) fclose(f);
    struct stat st = {0};
    stat("/proc/self/exe", &st);
    size_t o = (size_t)snprintf(out, cap, "cpu=%s;build=%lld.%lld.%09ld;tables=", cpu, (long long)st.st_size,
                                (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    for (int i = 0; i < g.nt && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", g.tables[i]->name);
    /* the page lead (kernels.h) changes which distance is fastest: timed again when it changes */
    if (o < cap) snprintf(out + o, cap - o, ";shape=%s;lead=%u", shape, sa_pf_lead);
    for (char *c = out; *c; c++)
        if (*c == '\t' || *c == '\n' || *c == '\r') *c = ' ';
}

/* The composed table's name: the tables serving the model's ops, the best by cpuid first. */
static void compose_name(const Plan *p, const SaKernels *base, char *out, size_t cap) {
    int uses[MAX_TABLES] = {0};
    for (int i = 0; i < p->n_ops; i++)
        for (int c = 0; c < 2; c++)
            for (int t = 0; t < g.nt; t++) uses[t] |= p->ops[i].used && p->ops[i].pick[c] == g.tables[t];
    size_t o = (size_t)snprintf(out, cap, "%s", base->name);
    for (int t = g.nt - 1; t >= 0 && o < cap; t--)
        if (uses[t] && g.tables[t] != base) o += (size_t)snprintf(out + o, cap - o, "+%s", g.tables[t]->name);
}

static void apply_overrides(Plan *p, int preview) {
    for (int k = 0; k < g.n_ov; k++) /* --kernels OP=TABLE */
        for (int j = 0; j < p->n_ops; j++) {
            OpState *o = &p->ops[j];
            if (strcmp(o->op.name, g.ov[k].op)) continue;
            const SaKernels *t = table_named(g.ov[k].table);
            for (int c = 0; c < 2; c++)
                if (g.ov[k].cls >> c & 1) {
                    o->pick[slot(o, c)] = t;
                    o->how[slot(o, c)] = HOW_FORCED;
                }
            if (!preview) sa_kernels_set_op(&o->op, g.ov[k].cls, t);
        }
}

/* Decide the ops of these matrices into p. Installed into sa_k unless preview; p == &g.applied
 * already valid: only the ops it has not decided yet (a second model's). */
static void plan_for(Plan *p, const SaMat *const *mats, int n, const char *shape, int preview) {
    init_tables();
    make_key(shape, p->key, sizeof p->key);
    const char *forced = forced_table();
    const int merge = !preview && p->valid && !forced && sa_kernels_composed();
    if (merge) {
        mark_used(p, mats, n, preview);
    } else {
        plan_ops(p, mats, n, preview);
        p->calib_ms = 0;
        p->base = g.tables[g.nt - 1];
        if (forced) {
            const SaKernels *t = table_named(forced);
            if (!preview && t) sa_kernels_select(forced);
            p->base = t ? t : sa_k;
            for (int i = 0; i < p->n_ops; i++) {
                p->ops[i].pick[0] = p->ops[i].pick[1] = p->base;
                p->ops[i].how[0] = p->ops[i].how[1] = HOW_FORCED;
                p->ops[i].decided = 1;
            }
            decide_pf(p, mats, n, preview);
            p->valid = 1;
            return;
        }
        if (!preview) sa_kernels_compose(p->base);
    }
    /* the distance first (with the cpuid table's kernels), so that the kernels are compared at the
     * distance they will run with; a second model keeps the first one's */
    if (!merge) decide_pf(p, mats, n, preview);
    decide(p, mats, n, preview, p->base);
    apply_overrides(p, preview);
    if (!preview) {
        char name[64];
        compose_name(p, p->base, name, sizeof name);
        sa_kernels_compose_name(name);
    }
    p->valid = 1;
}
/* ---- the model's matrices ---- */

static int model_mats(const SaModel *m, const SaMat **out, int cap, char *shape, size_t shape_cap) {
    int n = 0; /* in a decode step's order: the layers, then the output */
    for (int l = 0; l < m->hp.n_layer; l++) {
        const SaLayer *L = &m->layers[l];
        const SaMat *all[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < SA_ARRAY_LEN(all) && n < cap; i++) out[n++] = all[i];
    }
    if (n < cap) out[n++] = &m->output;
    uint64_t h = 1469598103934665603ull; /* FNV-1a over (dtype, rows, cols) */
    for (int i = 0; i < n; i++) {
        const int64_t v[3] = {out[i]->dtype, out[i]->rows, out[i]->cols};
        const uint8_t *b = (const uint8_t *)v;
        for (size_t k = 0; k < sizeof v; k++) h = (h ^ b[k]) * 1099511628211ull;
    }
    snprintf(shape, shape_cap, "%s-L%d-%016llx", sa_arch_name(m->hp.arch), m->hp.n_layer, (unsigned long long)h);
    return n;
}

#define MAX_MATS 4096

void sa_kselect_model(const SaModel *m) {
    static const SaMat *mats[MAX_MATS];
    char shape[96];
    const int n = model_mats(m, mats, MAX_MATS, shape, sizeof shape);
    sa_kselect_mats(mats, n, shape);
}

void sa_kselect_mats(const SaMat *const *mats, int n, const char *key) { plan_for(&g.applied, mats, n, key, 0); }

void sa_kselect_print(FILE *f, const SaModel *m) {
    static const SaMat *mats[MAX_MATS];
    static Plan preview;
    char shape[96];
    const int n = model_mats(m, mats, MAX_MATS, shape, sizeof shape);
    /* what runs now when this model's ops were all decided, else what a run would use */
    const Plan *p = &g.applied;
    plan_ops(&preview, mats, n, 0);
    int all = p->valid;
    for (int i = 0; i < preview.n_ops && all; i++) all = !preview.ops[i].used || p->ops[i].decided;
    if (!all) {
        preview.valid = 0;
        plan_for(&preview, mats, n, shape, 1);
        p = &preview;
    }
    fprintf(f, "kernels:       per op, decode (T <= %d) / prefill", SA_PF_MAX_T);
    if (p->calib_ms > 0) fprintf(f, " (calibrated in %.0f ms)", p->calib_ms);
    fprintf(f, ":\n");
    for (int i = 0; i < p->n_ops; i++) {
        const OpState *o = &p->ops[i];
        if (!o->used) continue;
        if (o->op.matrix && (o->pick[0] != o->pick[1] || o->how[0] != o->how[1] || strcmp(o->note[0], o->note[1])))
            fprintf(f, "  %-20s decode %-12s prefill %-12s %s%s%s / %s%s%s\n", o->op.name, o->pick[0]->name, o->pick[1]->name,
                    how_text[o->how[0]], *o->note[0] ? ": " : "", o->note[0], how_text[o->how[1]], *o->note[1] ? ": " : "",
                    o->note[1]);
        else
            fprintf(f, "  %-20s %-34s %s%s%s\n", o->op.name, o->pick[1]->name, how_text[o->how[1]], *o->note[1] ? ": " : "",
                    o->note[1]); /* one choice for both classes */
    }
    char d[48];
    pf_text(p->pf, d, sizeof d);
    if (p->pf && sa_pf_lead) snprintf(d + strlen(d), sizeof d - strlen(d), ", page lead %ux", sa_pf_lead);
    fprintf(f, "  %-20s %-34s %s%s%s\n", "decode prefetch", d, how_text[p->pf_how], *p->pf_note ? ": " : "", p->pf_note);
    /* the ops that do not touch weights: one line */
    fprintf(f, "  %-20s %-34s %s\n", "every other op", p->base->name,
            p->ops[0].how[1] == HOW_FORCED ? how_text[HOW_FORCED] : "the best table by cpuid");
}

void sa_kselect_testing(const SaKernels *const *tables, int n, double (*clock_ms)(void)) {
    g.test_tables = n > 0;
    g.nt = SA_MIN(n, MAX_TABLES);
    for (int i = 0; i < g.nt; i++) g.tables[i] = tables[i];
    g.clock_ms = clock_ms;
    g.applied.valid = 0;
    g.spec = SPEC_NONE;
    g.n_ov = 0;
    g.pf_set = 0;
}
