/* results_file.h - append-only JSONL result files, shared by salign eval and salign judge.
 *
 * The writer holds an exclusive lock on the file (two processes can never interleave lines), appends
 * each line with one write() and fsyncs it, so a crash (kill -9, power loss) leaves whole lines plus at
 * most one torn last line. Opening for a resume cuts that torn line off and collects the key of every
 * line already written, so a rerun skips exactly the work that is done: nothing lost, nothing twice. */
#ifndef SALIGN_RESULTS_FILE_H
#define SALIGN_RESULTS_FILE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "strmap.h"

/* NULL when obj is a valid line of its kind, else what such a line is ("a JSON object with \"id\" and \"mode\""). */
typedef const char *(*SaJsonlCheck)(const cJSON *obj);
typedef int (*SaJsonlFn)(void *ctx, long line_no, const char *line, size_t len, cJSON *obj);

/* Read a JSONL file written by a SaResultsFile: fn gets each complete line's parsed object (owned by
 * the reader; blank lines are skipped). A last line without its newline (torn by a crash) is skipped and
 * reported through *torn_at (its byte offset, -1 if none); any other line that fails check is an error
 * naming the file and its line. A non-zero return of fn stops the reading and is returned. */
int sa_read_jsonl(const char *path, SaJsonlCheck check, SaJsonlFn fn, void *ctx, long long *torn_at);

/* The key of a line (malloc'd), identifying the unit of work it records; NULL on out of memory. */
typedef char *(*SaResultKeyFn)(const cJSON *obj);

typedef struct {
    const char *path;     /* the results file */
    const char *input;    /* the command's input file: refused as the output */
    const char *cmd;      /* "eval", "judge": for messages */
    const char *unit;     /* "(id, mode)": for messages */
    int resume;           /* 0: start the file over */
    SaJsonlCheck check;
    SaResultKeyFn key;
} SaResultsSpec;

typedef struct {
    int fd;
    const char *path;
    SaStrMap done; /* key -> line number of the lines already in the file */
    long n_lines, n_dup;
} SaResultsFile;

/* Open (creating) and lock the file; resume it (torn line cut off, keys collected) or truncate it. */
int sa_results_open(SaResultsFile *f, const SaResultsSpec *s);
/* Is a line with this key already in the file? */
int sa_results_done(const SaResultsFile *f, const char *key);
/* Append line (no newline in it) + "\n" with one write(), then fsync. 0 or -1 + sa_err. */
int sa_results_append(SaResultsFile *f, const char *line, size_t len);
void sa_results_close(SaResultsFile *f);

/* --shard I/N: 0 <= I < N. 0 or -1 + sa_err naming flag. */
int sa_parse_shard(const char *flag, const char *v, long *i, long *n);

#endif
