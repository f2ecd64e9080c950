/* strmap.c - a string -> long map with open addressing (see strmap.h). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

uint64_t sa_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int strmap_grow(SaStrMap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = sa_calloc(cap, sizeof *keys);
    long *vals = sa_calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = sa_fnv1a(m->keys[i]) & (cap - 1);
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

long *sa_strmap_get(const SaStrMap *m, const char *key) {
    if (!m->cap) return NULL;
    size_t j = sa_fnv1a(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key)) return &m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

long *sa_strmap_put(SaStrMap *m, const char *key, long val, int *added) {
    if (added) *added = 0;
    long *v = sa_strmap_get(m, key);
    if (v) return v;
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m)) return NULL;
    size_t j = sa_fnv1a(key) & (m->cap - 1);
    while (m->keys[j]) j = (j + 1) & (m->cap - 1);
    if (!(m->keys[j] = sa_strdup(key))) return NULL;
    m->vals[j] = val;
    m->n++;
    if (added) *added = 1;
    return &m->vals[j];
}

void sa_strmap_free(SaStrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

