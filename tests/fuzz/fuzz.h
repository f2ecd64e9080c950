/* fuzz.h - helpers shared by the libFuzzer targets in tests/fuzz/ (built by `make fuzz`).
 *
 * The readers under test take paths, not buffers (they mmap or read whole files), so an input is
 * handed to them as a file: a memfd rewritten for every input and named /proc/self/fd/N (no disk
 * I/O, nothing left behind), or, where a reader looks for sibling files (tokenizer_config.json
 * beside tokenizer.json, an HF folder), a private folder under /dev/shm. */
#ifndef SALIGN_FUZZ_H
#define SALIGN_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Separates the files packed into one input (fuzz_tokjson, fuzz_safetensors); tests/hostile/gen.py
 * --seeds writes the seed corpora in this layout. */
#define FUZZ_SEP "\0\0CFG\0\0"
#define FUZZ_SEP_LEN 7

/* An abort that libFuzzer reports as a crash, with the broken property named. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Write data into memfd number `slot` (0..3) and return its path. The memfd is moved to the fixed
 * descriptor 900 + slot: its number is in the path, the path ends up in libFuzzer's comparison
 * tables, and the first free descriptor depends on what the parent left open (make's jobserver), so
 * a seeded run under make and one from a shell differed. */
static inline const char *fuzz_memfile(int slot, const uint8_t *data, size_t size) {
    static int fds[4] = {-1, -1, -1, -1};
    static char paths[4][64];
    if (fds[slot] < 0) {
        const int fd = memfd_create("salign-fuzz", 0);
        if (fd < 0 || dup2(fd, 900 + slot) != 900 + slot) {
            perror("memfd_create");
            abort();
        }
        close(fd);
        fds[slot] = 900 + slot;
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0 || (size && pwrite(fds[slot], data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        abort();
    }
    return paths[slot];
}

/* This process's scratch folder under /dev/shm (removed at exit): the first free
 * /dev/shm/salign-fuzz-K. Not named by the pid: paths end up in libFuzzer's comparison tables, and a
 * name that changes from run to run made a seeded run unrepeatable. */
static char fuzz_dir_path[128];
static void fuzz_dir_cleanup(void) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) { /* nothing more to do at exit */ }
}
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        for (int k = 0; k < 100000; k++) {
            snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/dev/shm/salign-fuzz-%d", k);
            if (mkdir(fuzz_dir_path, 0700) == 0) break;
        }
        atexit(fuzz_dir_cleanup);
    }
    return fuzz_dir_path;
}

/* Write (or, with data NULL, remove) NAME in the scratch folder; returns its path. */
static inline const char *fuzz_dir_file(const char *name, const uint8_t *data, size_t size) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    if (!data) {
        unlink(path);
        return path;
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* Position of the first FUZZ_SEP in data, or size when there is none. */
static inline size_t fuzz_split(const uint8_t *data, size_t size) {
    const void *p = memmem(data, size, FUZZ_SEP, FUZZ_SEP_LEN);
    return p ? (size_t)((const uint8_t *)p - data) : size;
}

/* ../shared/models or $SALIGN_SHARED/models (as tests/test_main.c), or NULL. */
static inline const char *fuzz_models_dir(void) {
    static char dir[512];
    const char *env = getenv("SALIGN_SHARED");
    snprintf(dir, sizeof dir, "%s/models", env && *env ? env : "../shared");
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

#endif
