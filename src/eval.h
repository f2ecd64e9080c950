/* eval.h - offline evaluation: run an upstream with and without an aligner over a JSONL dataset.
 *
 *   salign eval --upstream U.salm --aligner A.salm --in DATA.jsonl[.gz] --out RESULTS.jsonl
 *               [--modes none,aligner,stream] [--field NAME] [--resume|--no-resume] [--shard I/N]
 *               [--limit N] [engine and sampling flags as for align]
 *   salign eval-merge OUT.jsonl SHARD.jsonl... [--in DATA.jsonl [--field NAME] [--limit N]] [--modes LIST] [--force]
 *
 * The results file is append-only: one JSON line per (record, mode), written with one write() and
 * fsync'ed, so a crash loses at most the line in flight; a torn last line is cut off on resume.
 * Every (record, mode) run starts from empty KV caches with a seed derived from --seed and the
 * record's id, so its result does not depend on which records ran before it in the same process:
 * a resumed or sharded run gives what an uninterrupted one gives. */
#ifndef SALIGN_EVAL_H
#define SALIGN_EVAL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "aligner.h"
#include "model.h"

#include "engine_opts.h"
#include "strmap.h"

/* ---- dataset records -------------------------------------------------------------------------- */

typedef struct {
    long line;        /* 1-based line number in the (decompressed) input */
    char *key;        /* the id as text: a string id, a number's JSON text, or the line number */
    cJSON *id;        /* the id as it will be written (the input's value, or the line number) */
    char *question;
    const char *field; /* the question's field name (points into `fields`) */
    cJSON *rest;      /* every other field (the id and the question fields removed) */
} SaEvalRecord;

/* Parse one input line (without its newline). field: the question field, or NULL to detect
 * prompt, question, problem, instruction (+ a non-empty "input", Alpaca style). 0, or -1 +
 * sa_err with the problem (no line number). */
int sa_eval_parse_record(const char *line, size_t len, const char *field, long line_no, SaEvalRecord *r);
void sa_eval_record_free(SaEvalRecord *r);

/* Read a .jsonl or .jsonl.gz file (zlib reads both) line by line: fn gets each line without its
 * newline ("\r\n" too); returning non-zero from fn stops the reading (and is returned).
 * -1 + sa_err when the file cannot be read or its gzip data is damaged. */
typedef int (*SaLineFn)(void *ctx, long line_no, const char *line, size_t len);
int sa_read_lines(const char *path, SaLineFn fn, void *ctx);

/* ---- small shared helpers (eval, eval-merge, report) ---------------------------------------- */

/* "id\x1fmode": the key of one (record, mode) pair. Malloc'd. */
char *sa_eval_pair_key(const char *id_key, const char *mode);
/* The key text of an id value as written in a results line (string or number). NULL if neither. */
char *sa_eval_id_key(const cJSON *id);

/* Parse "none,aligner,stream" into modes[] (at most 3, no repeats). Returns the count or -1 + sa_err. */
int sa_eval_parse_modes(const char *flag, const char *s, SaAlignMode *modes);

/* The seed one (record, mode) run uses: derived from the run's seed and the record's id, so it
 * does not depend on the record's position, the shard or earlier runs. */
uint64_t sa_eval_seed(uint64_t seed, const char *id_key);

/* Read a results file: fn gets each complete line's parsed object (owned by the reader). A last
 * line without its newline (torn by a crash) is skipped and reported through *torn_at (its
 * byte offset, -1 if none); any other line that is not a JSON object with "id" and "mode" is an
 * error naming its line. */
typedef int (*SaResultFn)(void *ctx, long line_no, const char *line, size_t len, cJSON *obj);
int sa_read_results(const char *path, SaResultFn fn, void *ctx, long long *torn_at);

/* Commands (cli.c dispatches to these). Return the process exit status. */
int sa_cmd_eval(int argc, char **argv);
int sa_cmd_eval_merge(int argc, char **argv);

#endif
