/* strmap.h - a string -> long map (open addressing; keys are copied), and the FNV-1a hash it uses.
 * Used by eval, eval-merge, judge and report to find (id, mode) pairs and ids. */
#ifndef SALIGN_STRMAP_H
#define SALIGN_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **keys;
    long *vals;
    size_t cap, n;
} SaStrMap;

/* Returns the slot's value pointer, inserting `val` when the key is new (*added = 1). NULL on OOM. */
long *sa_strmap_put(SaStrMap *m, const char *key, long val, int *added);
long *sa_strmap_get(const SaStrMap *m, const char *key);
void sa_strmap_free(SaStrMap *m);

/* 64-bit FNV-1a of a NUL-terminated string. */
uint64_t sa_fnv1a(const char *s);

#endif
