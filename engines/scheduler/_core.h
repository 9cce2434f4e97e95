/* The scheduler core's interface: a pool of worker threads, each with a Chase-Lev deque
 * (_deque.h) for its own spawns and a Vyukov MPSC mailbox (_mpsc.h) for submissions from
 * outside, job records from a preallocated pool, and completion words to join on.
 *
 * Nothing here knows about Python: the Cython wrapper supplies job functions and a
 * `release` hook (to drop the GIL before a worker idles or runs native work).
 */
#ifndef SCHED_CORE_H
#define SCHED_CORE_H

#include <pthread.h>
#include <stdint.h>

#include "_atomics.h"
#include "_deque.h"
#include "_mpsc.h"

#define SCHED_MAX_WORKERS 64
/* Latency histogram: 4 buckets per power of two ("log-linear"), from 1 ns up to 2^36 ns
 * (about 69 s); bucket i covers [sched_bucket_lower(i), sched_bucket_lower(i+1)). */
#define SCHED_SUB_BITS 2
#define SCHED_LAT_BUCKETS (37 << SCHED_SUB_BITS)

/* A completion word: the low 31 bits count what is outstanding, bit 31 says someone may be
 * sleeping on it (futex) and must be woken when the count reaches zero. */
#define SCHED_WAITERS 0x80000000u
#define SCHED_COUNT_MASK 0x7fffffffu

/* Named so that the Cython wrapper can embed one in a Python object (a future). */
typedef _Atomic uint32_t sched_word_t;

typedef struct sched sched;
typedef struct sched_worker sched_worker;
typedef struct sched_job sched_job;
typedef void (*sched_fn)(sched_worker *w, sched_job *job);

typedef struct sched_group {
    _Atomic uint32_t word;
    /* SCHED_GROUP_BATCHED: workers may count completions locally and subtract them in
     * batches (native runs: no shared counter bounced on every job). Never for a group
     * someone joins from inside a job, whose joiner needs each completion at once. */
    uint32_t flags;
    /* Called by whichever thread brings the count to zero, after the wake; may free the
     * group. NULL for groups on a joining frame's stack. */
    void (*on_done)(struct sched_group *g);
} sched_group;

#define SCHED_GROUP_BATCHED 1u

struct sched_job {
    sched_mpsc_node node; /* mailbox link; also the pool's free-list link */
    sched_fn fn;
    void *ctx;
    sched_group *group; /* completed (count - 1) after fn returns; may be NULL */
    uint64_t arg;
    uint64_t arg2;
    uint64_t submit_ns;
    uint32_t flags;
    int32_t home; /* worker whose pool cache it came from, or -1 (global) */
} SCHED_ALIGNED;

#define SCHED_JOB_PYTHON 1u /* needs the GIL: the worker keeps holding it across such jobs */

typedef struct sched_worker_stats {
    _Atomic uint64_t executed;
    _Atomic uint64_t stolen;
    _Atomic uint64_t steal_attempts;
    _Atomic uint64_t parks;
    _Atomic uint64_t cancelled;
    _Atomic uint64_t lat_hot[SCHED_LAT_BUCKETS];
    _Atomic uint64_t lat_parked[SCHED_LAT_BUCKETS];
} sched_worker_stats;

struct sched_worker {
    /* Read by thieves and submitters. */
    sched_deque deque;
    sched_mpsc mailbox;
    /* Futex word: 0 while parked and not yet woken. */
    SCHED_ALIGNED _Atomic uint32_t wake;
    /* Owner-only state, on its own line(s). */
    SCHED_ALIGNED sched *s;
    int index;
    int searching;
    int woke_from_park; /* the next job's latency counts as "parked" */
    int hold;           /* the wrapper holds the GIL on this thread (see sched_hooks) */
    uint32_t tick;
    uint64_t rng;
    sched_group *pend_group; /* completions counted but not yet subtracted (batched) */
    uint32_t pend_count;
    sched_job *free_list; /* local pool cache */
    int free_count;
    void *user; /* the wrapper's per-thread state */
    pthread_t thread;
    sched_worker_stats stats;
    _Atomic uint64_t *steals_from; /* [n_workers]: jobs this worker stole from each victim */
} SCHED_ALIGNED;

typedef struct sched_hooks {
    void (*thread_start)(sched_worker *w);
    void (*thread_stop)(sched_worker *w);
    /* Called when w->hold is set and the worker is about to idle, join-wait, or run a job
     * without SCHED_JOB_PYTHON; must clear w->hold. */
    void (*release)(sched_worker *w);
} sched_hooks;

typedef struct sched_config {
    int workers;
    uint32_t pool_size; /* job records; rounded up to a power of two */
    uint64_t spin_ns;   /* how long an idle worker searches before parking */
    int pin;            /* pin worker i to CPU i (mod the CPUs available) */
    sched_hooks hooks;
} sched_config;

struct sched {
    SCHED_ALIGNED _Atomic uint64_t sleep_mask; /* bit i: worker i is parked */
    SCHED_ALIGNED _Atomic int searching;       /* workers spinning for work */
    SCHED_ALIGNED _Atomic uint32_t inflight;   /* top-level units not yet complete */
    SCHED_ALIGNED _Atomic uint64_t rr;         /* round-robin mailbox cursor */
    SCHED_ALIGNED _Atomic int stop;
    _Atomic int cancelling;
    int n;
    int pin;
    uint64_t spin_ns;
    sched_hooks hooks;
    sched_worker *workers;
    sched_job *jobs;
    uint32_t pool_size;
    /* Global pool: a mutex-protected free list; workers move jobs to and from it in batches
     * so the lock is rarely taken on their hot path. */
    SCHED_ALIGNED pthread_mutex_t pool_lock;
    sched_job *pool_free;
    uint32_t pool_free_count;
    _Atomic uint64_t pool_waits; /* times a submitter found the pool empty */
    _Atomic uint64_t started_ns;
};

/* Lifecycle. sched_create returns NULL on failure (errno set). */
sched *sched_create(const sched_config *cfg);
/* Waits for inflight == 0, stops and joins the workers. Call without the GIL. */
void sched_shutdown(sched *s);
void sched_destroy(sched *s);

uint64_t sched_now(void);
sched_worker *sched_current_worker(sched *s); /* NULL on a non-worker thread */

/* Job records. alloc returns NULL when the pool is empty; alloc_wait spins/sleeps until a
 * record is free (call without the GIL). */
sched_job *sched_job_alloc(sched *s, sched_worker *w);
sched_job *sched_job_alloc_wait(sched *s, sched_worker *w);
/* Outside threads: up to n records at once from the global list (one lock round trip). */
int sched_job_alloc_batch(sched *s, sched_job **out, int n);
int sched_job_alloc_batch_wait(sched *s, sched_job **out, int n);
void sched_job_free(sched *s, sched_worker *w, sched_job *job);

/* Submission. On a worker thread (w != NULL) the job goes on its deque, else into a mailbox
 * (round robin). Either way idle workers are woken if needed. */
void sched_submit(sched *s, sched_worker *w, sched_job *job);
/* Spawn from a worker: allocate (helping if the pool is empty), fill, push. If no record can
 * be had, runs fn inline and returns 0; else 1. */
int sched_spawn(sched_worker *w, sched_fn fn, void *ctx, sched_group *g, uint64_t arg,
                uint64_t arg2, uint32_t flags);

/* Completion words. */
void sched_word_done(_Atomic uint32_t *word); /* count - 1, wake waiters at zero */
void sched_group_sub(sched_group *g, uint32_t n); /* count - n; on_done at zero */
static inline int sched_word_is_done(_Atomic uint32_t *word) {
    /* Acquire: whatever the completer wrote before its release decrement is visible. */
    return (LOAD_ACQ(word) & SCHED_COUNT_MASK) == 0;
}
static inline void sched_word_init(_Atomic uint32_t *word, uint32_t count) {
    atomic_init(word, count);
}
static inline uint32_t sched_word_pending(_Atomic uint32_t *word) {
    return LOAD_RLX(word) & SCHED_COUNT_MASK;
}
static inline void sched_job_fill(sched_job *job, sched_fn fn, void *ctx, uint32_t flags) {
    job->fn = fn;
    job->ctx = ctx;
    job->group = NULL;
    job->flags = flags;
    job->home = -1;
}
static inline int sched_popcount(uint64_t x) { return __builtin_popcountll(x); }
/* On a worker: run other jobs until *word is done. */
void sched_help_until(sched_worker *w, _Atomic uint32_t *word);
/* On any thread: sleep until *word is done; timeout_ns < 0 waits forever. 1 if done. */
int sched_wait_word(_Atomic uint32_t *word, int64_t timeout_ns);

void sched_inflight_add(sched *s, uint32_t n);
void sched_inflight_done(sched *s);

/* Idle workers park here until woken; exposed for the wrapper's shutdown. */
void sched_wake_all(sched *s);

int sched_lat_bucket(uint64_t ns);
uint64_t sched_bucket_lower(int i);

#endif
