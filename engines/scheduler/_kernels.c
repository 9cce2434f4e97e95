/* Native kernels and submission patterns; see _kernels.h. Nothing here allocates once a run
 * has started: records come from the scheduler's pool, fork-join groups live on the stack. */
#define _GNU_SOURCE
#include "_kernels.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

typedef struct stripe {
    sched_run *r;
    uint64_t lo, hi;
} stripe;

struct sched_run {
    sched_group group;  /* first: on_done casts back. Counts jobs + root/submitter units. */
    _Atomic uint32_t done_word;
    _Atomic int refs;
    _Atomic int cancel;
    sched *s;
    sched_run_params p;
    uint64_t units;
    _Atomic uint64_t checksum;
    _Atomic uint64_t cancelled;
    _Atomic uint8_t *seen;
    stripe *stripes;
    uint64_t start_ns;
    _Atomic uint64_t end_ns;
    _Atomic int64_t missing;
    _Atomic int64_t duplicates;
};

static void run_unref(sched_run *r) {
    /* acq_rel: the last owner sees every write of the other before freeing. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        free((void *)r->seen);
        free(r->stripes);
        free(r);
    }
}

static void run_finished(sched_group *g) {
    sched_run *r = (sched_run *)g;
    sched *s = r->s;
    STORE_REL(&r->end_ns, sched_now());
    /* inflight first: whoever sees the run done also sees it gone from inflight. After
     * this, shutdown may free the scheduler: only the run (ours) is touched below. */
    sched_inflight_done(s);
    sched_word_done(&r->done_word);
    run_unref(r);
}

static inline int is_cancelled(sched_run *r) {
    return LOAD_RLX(&r->cancel) || LOAD_RLX(&r->s->cancelling);
}

static void cancel_rest(sched_run *r, uint64_t n) {
    atomic_fetch_add_explicit(&r->cancelled, n, memory_order_relaxed);
    sched_group_sub(&r->group, (uint32_t)n);
}

static void spin_for(uint64_t ns) {
    uint64_t end = sched_now() + ns;
    while (sched_now() < end) sched_relax();
}

/* -- fib: recursive fork-join, the stealing path --------------------------------------- */

static uint64_t fib_seq(uint32_t n) { return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2); }

static uint64_t fib_fj(sched_worker *w, uint32_t n, uint32_t cutoff);

static void fib_job(sched_worker *w, sched_job *job) {
    *(uint64_t *)job->ctx = fib_fj(w, (uint32_t)job->arg, (uint32_t)job->arg2);
}

static uint64_t fib_fj(sched_worker *w, uint32_t n, uint32_t cutoff) {
    if (n < cutoff) return fib_seq(n);
    uint64_t x = 0;
    sched_group g = {.on_done = NULL};
    atomic_init(&g.word, 1);
    sched_spawn(w, fib_job, &x, &g, n - 1, cutoff, 0);
    uint64_t y = fib_fj(w, n - 2, cutoff);
    sched_help_until(w, &g.word); /* acquire: x is written */
    return x + y;
}

/* -- leaves ------------------------------------------------------------------------------ */

static void leaf(sched_worker *w, sched_run *r, uint64_t i) {
    if (is_cancelled(r)) {
        atomic_fetch_add_explicit(&r->cancelled, 1, memory_order_relaxed);
        BUMP(&w->stats.cancelled, 1);
        return;
    }
    /* Relaxed: a count per index, read after the run completes (acquire on done_word). */
    if (r->seen) atomic_fetch_add_explicit(&r->seen[i], 1, memory_order_relaxed);
    switch (r->p.kernel) {
    case SCHED_K_SPIN:
        spin_for(r->p.work_ns);
        break;
    case SCHED_K_SKEW: {
        /* One job in eight is 16x longer, scattered: uneven queues that stealing evens out. */
        uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull;
        spin_for((h >> 61) == 0 ? r->p.work_ns * 16 : r->p.work_ns);
        break;
    }
    case SCHED_K_FIB:
        atomic_fetch_add_explicit(&r->checksum, fib_fj(w, r->p.fib_n, r->p.cutoff),
                                  memory_order_relaxed);
        break;
    default:
        break;
    }
}

static void leaf_job(sched_worker *w, sched_job *job) { leaf(w, job->ctx, job->arg); }

/* -- patterns ---------------------------------------------------------------------------- */

/* fork: one root job spawns every leaf onto its own deque (TBB task_group.run in a loop);
 * the other workers steal them one by one. */
static void fork_root(sched_worker *w, sched_job *job) {
    sched_run *r = job->ctx;
    for (uint64_t i = 0; i < r->p.count; i++) {
        if (is_cancelled(r)) {
            cancel_rest(r, r->p.count - i);
            break;
        }
        sched_spawn(w, leaf_job, r, &r->group, i, 0, 0);
    }
}

/* split: recursive halving (Rayon's join, TBB's parallel_for): [lo, hi) spawns its upper
 * half and keeps the lower, until one leaf is left. Thieves take the big halves. */
static void split_job(sched_worker *w, sched_job *job) {
    sched_run *r = job->ctx;
    uint64_t lo = job->arg, hi = job->arg2;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        sched_spawn(w, split_job, r, &r->group, mid, hi, 0);
        hi = mid;
    }
    leaf(w, r, lo);
}

/* outside: threads that are not workers submit every leaf through the mailboxes. */
static void *submitter_main(void *arg) {
    stripe *st = arg;
    sched_run *r = st->r;
    sched *s = r->s;
    uint64_t interval = r->p.interval_ns;
    sched_job *batch[64];
    int have = 0, used = 0;
    /* 1 ns timer slack: the default 50 us would stretch every paced sleep. */
    if (interval) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (r->p.submit_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(r->p.submit_cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    uint64_t t0 = sched_now();
    for (uint64_t i = st->lo; i < st->hi; i++) {
        if (is_cancelled(r)) {
            cancel_rest(r, st->hi - i);
            break;
        }
        if (interval) {
            /* Paced (latency probes): sleep through most of the gap, so the submitter does
             * not take a core from the workers. (Woken, it may land on a spinning worker's
             * core and preempt it; pin them apart -- see submit_cpu -- to measure that out.) */
            uint64_t due = t0 + (i - st->lo) * interval, now = sched_now();
            if (due > now + 10000) {
                uint64_t nap = due - now - 5000;
                struct timespec ts = {(time_t)(nap / 1000000000u), (long)(nap % 1000000000u)};
                nanosleep(&ts, NULL);
            }
            while (sched_now() < due) sched_relax();
        }
        if (used == have) {
            have = sched_job_alloc_batch_wait(s, batch, interval ? 1 : 64);
            used = 0;
        }
        sched_job *job = batch[used++];
        job->fn = leaf_job;
        job->ctx = r;
        job->group = &r->group;
        job->arg = i;
        job->flags = 0;
        job->home = -1;
        sched_submit(s, NULL, job);
    }
    while (used < have) sched_job_free(s, NULL, batch[used++]);
    sched_group_sub(&r->group, 1); /* this thread's own unit: last touch of the run */
    return NULL;
}

sched_run *sched_run_start(sched *s, const sched_run_params *p) {
    sched_run *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->s = s;
    r->p = *p;
    if (r->p.cutoff < 2) r->p.cutoff = 2;
    if (r->p.submitters < 1) r->p.submitters = 1;
    if ((uint64_t)r->p.submitters > p->count && p->count > 0) r->p.submitters = (int)p->count;
    uint64_t extra = p->pattern == SCHED_P_FORK      ? 1
                     : p->pattern == SCHED_P_OUTSIDE ? (uint64_t)r->p.submitters
                                                     : 0;
    r->units = p->count + extra;
    if (r->units >= SCHED_COUNT_MASK) {
        free(r);
        errno = E2BIG;
        return NULL;
    }
    if (p->verify) {
        r->seen = calloc(p->count ? p->count : 1, 1);
        if (!r->seen) {
            free(r);
            errno = ENOMEM;
            return NULL;
        }
    }
    if (p->pattern == SCHED_P_OUTSIDE) {
        r->stripes = calloc((size_t)r->p.submitters, sizeof(stripe));
        if (!r->stripes) {
            free((void *)r->seen);
            free(r);
            errno = ENOMEM;
            return NULL;
        }
    }
    atomic_init(&r->group.word, (uint32_t)r->units);
    r->group.on_done = run_finished;
    r->group.flags = SCHED_GROUP_BATCHED;
    atomic_init(&r->done_word, 1);
    atomic_init(&r->refs, 2);
    atomic_init(&r->missing, -1);
    atomic_init(&r->duplicates, -1);
    r->start_ns = sched_now();
    sched_inflight_add(s, 1);
    if (r->units == 0) {
        run_finished(&r->group);
        return r;
    }
    if (p->pattern == SCHED_P_OUTSIDE) {
        int n = r->p.submitters;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (int k = 0; k < n; k++) {
            stripe *st = &r->stripes[k];
            st->r = r;
            st->lo = p->count * (uint64_t)k / (uint64_t)n;
            st->hi = p->count * (uint64_t)(k + 1) / (uint64_t)n;
            pthread_t t;
            if (pthread_create(&t, &attr, submitter_main, st)) cancel_rest(r, st->hi - st->lo + 1);
        }
        pthread_attr_destroy(&attr);
        return r;
    }
    sched_job *job = sched_job_alloc_wait(s, NULL);
    job->ctx = r;
    job->group = &r->group;
    job->flags = 0;
    job->home = -1;
    if (p->pattern == SCHED_P_FORK) {
        job->fn = fork_root;
    } else {
        job->fn = split_job;
        job->arg = 0;
        job->arg2 = p->count;
    }
    sched_submit(s, NULL, job);
    return r;
}

int sched_run_wait(sched_run *r, int64_t timeout_ns) {
    return sched_wait_word(&r->done_word, timeout_ns);
}

_Atomic uint32_t *sched_run_done_word(sched_run *r) { return &r->done_word; }

void sched_run_cancel(sched_run *r) { STORE_RLX(&r->cancel, 1); }

void sched_run_result_get(sched_run *r, sched_run_result *out) {
    memset(out, 0, sizeof *out);
    out->done = sched_word_is_done(&r->done_word); /* acquire: the run's writes are seen */
    out->count = r->p.count;
    uint64_t remaining = LOAD_RLX(&r->group.word) & SCHED_COUNT_MASK;
    uint64_t finished = r->units - remaining;
    out->completed = out->done ? r->p.count : (finished < r->p.count ? finished : r->p.count);
    out->cancelled = LOAD_RLX(&r->cancelled);
    out->checksum = LOAD_RLX(&r->checksum);
    out->elapsed_ns = (out->done ? LOAD_ACQ(&r->end_ns) : sched_now()) - r->start_ns;
    out->missing = out->duplicates = -1;
    if (out->done && r->seen) {
        if (LOAD_ACQ(&r->missing) < 0) {
            int64_t missing = 0, dups = 0;
            for (uint64_t i = 0; i < r->p.count; i++) {
                uint8_t v = LOAD_RLX(&r->seen[i]);
                missing += v == 0;
                dups += v > 1;
            }
            STORE_RLX(&r->duplicates, dups);
            STORE_REL(&r->missing, missing);
        }
        out->missing = LOAD_ACQ(&r->missing);
        out->duplicates = LOAD_RLX(&r->duplicates);
    }
}

void sched_run_release(sched_run *r) { run_unref(r); }
