/* sampler.c - token sampling. The order of operations follows vLLM (the reference
 * implementation's engine): penalties on raw logits, then temperature, then top-k, then top-p. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* splitmix64: tiny, fast, well distributed, and the same sequence on every platform */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float sa_sampler_uniform(SaSampler *s) { return (float)(next_u64(&s->rng) >> 40) / (float)(1ull << 24); }

int sa_sampler_init(SaSampler *s, const SaSamplerParams *p, int n_vocab) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->n_vocab = n_vocab;
    s->rng = p->seed;
    s->counts = sa_calloc((size_t)n_vocab, sizeof(int32_t));
    s->probs = sa_malloc((size_t)n_vocab * sizeof(float));
    s->idx = sa_malloc((size_t)n_vocab * sizeof(int32_t));
    if (!s->counts || !s->probs || !s->idx) {
        sa_sampler_free(s);
        return -1;
    }
    return 0;
}

void sa_sampler_free(SaSampler *s) {
    free(s->counts);
    free(s->probs);
    free(s->idx);
    memset(s, 0, sizeof *s);
}

void sa_sampler_reset(SaSampler *s) { memset(s->counts, 0, (size_t)s->n_vocab * sizeof(int32_t)); }

void sa_sampler_accept(SaSampler *s, int id) {
    if (id >= 0 && id < s->n_vocab) s->counts[id]++;
}

static inline float penalized(const SaSampler *s, const float *logits, int i) {
    float v = logits[i];
    const int c = s->counts[i];
    if (!c) return v;
    const float rp = s->p.repeat_penalty;
    if (rp > 0.0f && rp != 1.0f) v = v > 0.0f ? v / rp : v * rp;
    return v - s->p.freq_penalty * (float)c - s->p.presence_penalty;
}

/* A NaN or +Inf logit means the forward pass broke (bad weights, overflow): sampling around it would
 * be a silent wrong answer, so it is an error even when other logits are finite. -Inf is allowed
 * (a token masked out). Returns 0, or -1 with the error set. */
static int check_logits(const SaSampler *s, const float *logits) {
    int bad = 0;
    for (int i = 0; i < s->n_vocab; i++) bad += isnan(logits[i]) || logits[i] == INFINITY;
    if (bad) return sa_err("the model produced %d NaN/Inf logit(s) of %d: refusing to sample", bad, s->n_vocab);
    return 0;
}

static int argmax(const SaSampler *s, const float *logits) {
    if (check_logits(s, logits)) return -1;
    int best = -1;
    float bv = -INFINITY;
    for (int i = 0; i < s->n_vocab; i++) {
        const float v = penalized(s, logits, i);
        if (isfinite(v) && (best < 0 || v > bv)) {
            best = i;
            bv = v;
        }
    }
    if (best < 0) sa_err("the model produced no finite logits: refusing to sample");
    return best;
}

/* heap-free partial sort helpers: candidates are sorted by probability, descending */
static const float *g_sort_probs;
static int cmp_desc(const void *a, const void *b) {
    const float x = g_sort_probs[*(const int32_t *)a], y = g_sort_probs[*(const int32_t *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

/* "a ranks before b": higher probability, then lower id */
static inline int before(const float *p, int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); }

/* Restore the min-heap property (worst candidate at the root) below position j. */
static void sift_down(int32_t *idx, int k, int j, const float *p) {
    for (;;) {
        int w = j, l = 2 * j + 1, r = l + 1;
        if (l < k && before(p, idx[w], idx[l])) w = l;
        if (r < k && before(p, idx[w], idx[r])) w = r;
        if (w == j) return;
        int32_t t = idx[j];
        idx[j] = idx[w];
        idx[w] = t;
        j = w;
    }
}

/* Move the k best of idx[0..n) to idx[0..k) in O(n log k) with a min-heap (the heap's root is
 * the worst of the current best k), so large vocabularies are not fully sorted per token. */
static int select_top_k(int32_t *idx, int n, int k, const float *p) {
    for (int i = k / 2 - 1; i >= 0; i--) { /* heapify idx[0..k) */
        sift_down(idx, k, i, p);
    }
    for (int i = k; i < n; i++) {
        if (!before(p, idx[i], idx[0])) continue;
        idx[0] = idx[i];
        sift_down(idx, k, 0, p);
    }
    return k;
}

/* Fill s->idx[0..n) with the surviving candidates and s->probs with their normalised
 * probabilities (indexed by token id). Returns n, or -1. */
static int candidates(SaSampler *s, const float *logits) {
    const int V = s->n_vocab;
    if (check_logits(s, logits)) return -1;
    int n = 0;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        const float v = penalized(s, logits, i);
        if (!isfinite(v)) continue;
        s->idx[n++] = i;
        if (v > mx) mx = v;
    }
    if (n == 0) return sa_err("the model produced no finite logits: refusing to sample");
    if (s->p.min_p > 0.0f) { /* p_i / p_max = exp(v_i - max) before temperature */
        const float floor_ = logf(s->p.min_p);
        int kept = 0;
        for (int j = 0; j < n; j++)
            if (penalized(s, logits, s->idx[j]) - mx >= floor_) s->idx[kept++] = s->idx[j];
        n = kept; /* the most probable always survives (min_p <= 1) */
    }
    double sum = 0;
    for (int j = 0; j < n; j++) {
        const int i = s->idx[j];
        const float p = expf((penalized(s, logits, i) - mx) / s->p.temp);
        s->probs[i] = p;
        sum += p;
    }
    for (int j = 0; j < n; j++) s->probs[s->idx[j]] = (float)(s->probs[s->idx[j]] / sum);
    /* top-k: keep the k most probable (ties: lower id first, deterministically) */
    g_sort_probs = s->probs;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        n = select_top_k(s->idx, n, s->p.top_k, s->probs);
        qsort(s->idx, (size_t)n, sizeof(int32_t), cmp_desc);
    } else if (s->p.top_p < 1.0f) {
        qsort(s->idx, (size_t)n, sizeof(int32_t), cmp_desc);
    }
    /* renormalise over the survivors, then top-p on the sorted list */
    double z = 0;
    for (int j = 0; j < n; j++) z += s->probs[s->idx[j]];
    if (s->p.top_p < 1.0f) { /* 0 keeps the most probable alone (the first survivor reaches any p <= 0) */
        double cum = 0;
        int keep = n;
        for (int j = 0; j < n; j++) {
            cum += s->probs[s->idx[j]] / z;
            if (cum >= s->p.top_p) {
                keep = j + 1;
                break;
            }
        }
        n = keep;
        z = 0;
        for (int j = 0; j < n; j++) z += s->probs[s->idx[j]];
    }
    for (int j = 0; j < n; j++) s->probs[s->idx[j]] = (float)(s->probs[s->idx[j]] / z);
    return n;
}

int sa_sample(SaSampler *s, const float *logits) {
    if (s->p.temp <= 0.0f) return argmax(s, logits);
    const int n = candidates(s, logits);
    if (n < 0) return -1;
    const float r = sa_sampler_uniform(s);
    float cum = 0.0f;
    for (int j = 0; j < n; j++) {
        cum += s->probs[s->idx[j]];
        if (r < cum) return s->idx[j];
    }
    return s->idx[n - 1]; /* rounding: the last candidate */
}

int sa_sampler_dist(SaSampler *s, const float *logits, float *probs) {
    memset(probs, 0, (size_t)s->n_vocab * sizeof(float));
    if (s->p.temp <= 0.0f) {
        const int i = argmax(s, logits);
        if (i < 0) return -1;
        probs[i] = 1.0f;
        return 0;
    }
    const int n = candidates(s, logits);
    if (n < 0) return -1;
    for (int j = 0; j < n; j++) probs[s->idx[j]] = s->probs[s->idx[j]];
    return 0;
}
