/* peak.h - the int8 multiply-add peak of a kernel table: the integer dot-product instruction(s) its
 * prefill tiles are built on, on independent accumulators with no memory traffic. `salign bench
 * --int8-peak` times it, as tools/bench/membw.c times read bandwidth: prefill is compared with
 * this roof as decode is with the bandwidth one. */
#ifndef SALIGN_SIMD_PEAK_H
#define SALIGN_SIMD_PEAK_H

/* Run `iters` iterations of the table's multiply-add sequence; returns the int8 multiply-adds done
 * (0: the table is unknown or has no int8 instruction, as scalar). *sink receives a value the result
 * depends on, so nothing is optimised away. */
long long sa_i8_peak_run(const char *table, long iters, int *sink);

/* What sa_i8_peak_run times for the table ("vpdpbusd zmm", ...), or NULL. */
const char *sa_i8_peak_what(const char *table);

#endif
