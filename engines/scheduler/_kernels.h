/* Native workloads ("kernels") and how they are submitted ("patterns"): the jobs that the
 * benchmarks, the tests and the live demo run without ever touching Python or the GIL.
 *
 * A run is started without blocking (sched_run_start) and completes on its own; the caller
 * polls or waits on it, and may cancel it. Every job of a run carries its index, so with
 * `verify` the run counts how many times each index ran: missing and duplicate jobs show.
 */
#ifndef SCHED_KERNELS_H
#define SCHED_KERNELS_H

#include "_core.h"

enum { SCHED_K_NOOP, SCHED_K_SPIN, SCHED_K_FIB, SCHED_K_SKEW };
enum { SCHED_P_FORK, SCHED_P_SPLIT, SCHED_P_OUTSIDE };

typedef struct sched_run_params {
    int kernel;
    int pattern;
    uint64_t count;      /* jobs (for fib: fork-join trees) */
    uint64_t work_ns;    /* spin / skew: busy time per job */
    uint32_t fib_n;      /* fib: fib(fib_n) per job */
    uint32_t cutoff;     /* fib: below this n, compute sequentially */
    int submitters;      /* outside: submitting threads */
    uint64_t interval_ns; /* outside: pace between submissions per thread (0: flat out) */
    int verify;          /* count runs per index */
    int submit_cpu;      /* outside: pin the submitting threads to this CPU (-1: don't) */
} sched_run_params;

typedef struct sched_run_result {
    int done;
    uint64_t count;
    uint64_t completed; /* jobs finished or cancelled so far */
    uint64_t cancelled;
    uint64_t checksum;  /* fib: sum of results */
    uint64_t elapsed_ns;
    int64_t missing;    /* verify: indices never run (-1 without verify or before done) */
    int64_t duplicates; /* verify: indices run more than once */
} sched_run_result;

typedef struct sched_run sched_run;

/* NULL on failure (errno). The run holds two references: the caller's and its own. */
sched_run *sched_run_start(sched *s, const sched_run_params *p);
int sched_run_wait(sched_run *r, int64_t timeout_ns); /* 1 when done */
_Atomic uint32_t *sched_run_done_word(sched_run *r);  /* for sched_help_until on a worker */
void sched_run_cancel(sched_run *r);
void sched_run_result_get(sched_run *r, sched_run_result *out);
void sched_run_release(sched_run *r); /* drop the caller's reference */

#endif
