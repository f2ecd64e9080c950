/* flags.h - command-line value parsing shared by every subcommand.
 *
 * Each parser validates the whole value and its range and, on failure, records the one-line
 * message "FLAG: expected ..., got 'VALUE'" with sa_err and returns -1. */
#ifndef SALIGN_FLAGS_H
#define SALIGN_FLAGS_H

#include <stdint.h>

int sa_flag_long(const char *flag, const char *v, long lo, long hi, long *out);
int sa_flag_int(const char *flag, const char *v, long lo, long hi, int *out);
int sa_flag_u64(const char *flag, const char *v, uint64_t *out);
int sa_flag_float(const char *flag, const char *v, float lo, float hi, float *out);
/* The text a prompt flag gives, as a new string: VALUE itself, or with from_file (-f FILE) the
 * file's contents; "-" reads standard input either way. No length limit (a command-line argument
 * is limited to 128 KiB by the kernel). NULL + sa_err("FLAG: ...") when it cannot be read or
 * holds a NUL byte (the text would be cut there). */
char *sa_flag_text(const char *flag, const char *value, int from_file);
/* The value of the flag at argv[*i], advancing *i; NULL + sa_err("FLAG: missing value"). */
const char *sa_flag_value(int argc, char **argv, int *i);
/* Print the recorded error as "salign: <message>" on stderr and return the exit status 1. */
int sa_die(void);

#endif
