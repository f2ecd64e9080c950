/* outfile.c - whole-or-nothing output files (outfile.h). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int sa_write_all(int fd, const void *p, size_t n, const char *name) {
    const char *q = p;
    while (n) {
        const ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return sa_err("%s: write failed: %s", name, w < 0 ? strerror(errno) : "no progress");
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

int sa_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void sa_fsync_dir_of(const char *path) {
    char *dir = sa_strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir) slash[1] = 0;
        else *slash = 0;
    }
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int sa_outfile_open(SaOutFile *o, const char *path, const char *const *inputs) {
    memset(o, 0, sizeof *o);
    o->fd = -1;
    for (int i = 0; inputs && inputs[i]; i++)
        if (sa_same_file(path, inputs[i]))
            return sa_err("%s: is also an input of this command (%s); writing it would destroy that input", path,
                          inputs[i]);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return sa_err("%s: is a directory", path);
        if (!S_ISREG(st.st_mode)) { /* device, FIFO, socket: write into it, never replace it */
            o->fd = open(path, O_WRONLY | O_CLOEXEC);
            if (o->fd < 0) return sa_err("%s: cannot open for writing: %s", path, strerror(errno));
            o->direct = 1;
            o->path = sa_strdup(path);
            return 0;
        }
    } else if (errno != ENOENT) {
        return sa_err("%s: %s", path, strerror(errno));
    }
    SaBuf tmp = {0};
    sa_buf_printf(&tmp, "%s.tmp.%d", path, (int)getpid());
    o->fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0) {
        const int e = errno;
        sa_buf_free(&tmp);
        return sa_err("%s: cannot create: %s", path, strerror(e));
    }
    o->tmp = tmp.data;
    o->path = sa_strdup(path);
    return 0;
}

int sa_outfile_seekable(const SaOutFile *o) { return o->fd >= 0 && lseek(o->fd, 0, SEEK_CUR) >= 0; }

void sa_outfile_abort(SaOutFile *o) {
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    o->tmp = o->path = NULL;
}

int sa_outfile_commit(SaOutFile *o) {
    int rc = 0;
    /* a device or FIFO has nothing to make durable (fsync fails on /dev/null): only close it */
    int ok = o->direct || fsync(o->fd) == 0;
    int e = errno;
    if (close(o->fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    o->fd = -1;
    if (!ok) {
        rc = sa_err("%s: write failed: %s", o->path, strerror(e));
    } else if (!o->direct) {
        if (rename(o->tmp, o->path) != 0) {
            rc = sa_err("%s: cannot rename %s into place: %s", o->path, o->tmp, strerror(errno));
        } else {
            sa_fsync_dir_of(o->path);
            free(o->tmp); /* renamed: nothing left to remove */
            o->tmp = NULL;
        }
    }
    sa_outfile_abort(o);
    return rc;
}
