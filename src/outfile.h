/* outfile.h - an output file that is either written whole or left as it was.
 *
 * A regular file (or a missing path) is written to a temporary file beside it, fsync'ed and renamed
 * over it on commit, so a crash or an error never leaves a partial file. Anything else that can be
 * written - a character device such as /dev/null or /dev/stdout, a FIFO, a socket - is opened and
 * written directly: renaming over it would replace the device node with a regular file (as root,
 * /dev/null itself). A directory is refused, and so is the path of an input the command still reads
 * (same device and inode): the input would be lost. */
#ifndef SALIGN_OUTFILE_H
#define SALIGN_OUTFILE_H

#include <stddef.h>

typedef struct {
    int fd;      /* write here; -1 when closed */
    int direct;  /* 1: fd is the target itself (device, FIFO), nothing to rename */
    char *path;  /* the name the user gave */
    char *tmp;   /* the temporary file (regular targets), NULL otherwise */
} SaOutFile;

/* Open PATH for writing. inputs: NULL-terminated list of paths the command reads (may be NULL);
 * PATH naming one of them is an error. 0, or -1 + sa_err("PATH: problem"). */
int sa_outfile_open(SaOutFile *o, const char *path, const char *const *inputs);
/* 1 when the target can be seeked (regular files and the like; not pipes). */
int sa_outfile_seekable(const SaOutFile *o);
/* Finish: fsync, close and rename into place (regular targets; the directory is fsync'ed too) or
 * just close (direct targets). 0, or -1 + sa_err; either way o is closed and the temp file gone. */
int sa_outfile_commit(SaOutFile *o);
/* Give up: close and remove the temporary file; the target is left as it was. Safe to call twice. */
void sa_outfile_abort(SaOutFile *o);

/* write(2) all n bytes, retrying on EINTR and short writes. 0, or -1 + sa_err("NAME: write failed: ..."). */
int sa_write_all(int fd, const void *p, size_t n, const char *name);

/* 1 when a and b name the same existing file (device + inode). */
int sa_same_file(const char *a, const char *b);
/* fsync the directory holding path, so a rename or create in it is durable (best effort). */
void sa_fsync_dir_of(const char *path);

#endif
