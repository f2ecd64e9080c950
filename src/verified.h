/* verified.h - which model files have had every tensor crc32 checked, so a load checks a file
 * once, not every time.
 *
 * A file is identified by device, inode, size and modification time (ns): any rewrite or copy
 * gives a new identity and is checked again. The list is one line per file in
 * $XDG_CACHE_HOME/salign/verified (default ~/.cache/salign/verified); when it cannot be read or
 * written every load checks (never an error: the cache only saves time). */
#ifndef SALIGN_VERIFIED_H
#define SALIGN_VERIFIED_H

/* 1 when path's current identity is on the list. */
int sa_verified_known(const char *path);
/* Add path's current identity (best effort). */
void sa_verified_remember(const char *path);

#endif
