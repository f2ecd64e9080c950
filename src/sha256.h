/* sha256.h - SHA-256 (FIPS 180-4), for the judge's prompt hashes (the reference keys its judge cache
 * by sha256(system + user)). */
#ifndef SALIGN_SHA256_H
#define SALIGN_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes so far */
    unsigned char buf[64];
    size_t n;     /* bytes in buf */
} SaSha256;

void sa_sha256_init(SaSha256 *s);
void sa_sha256_update(SaSha256 *s, const void *p, size_t n);
void sa_sha256_final(SaSha256 *s, unsigned char out[32]);
/* The digest of p[n] as 64 lowercase hex digits + NUL into hex[65]. */
void sa_sha256_hex(const void *p, size_t n, char hex[65]);

#endif
