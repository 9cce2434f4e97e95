/* The scheduler core: worker threads, finding work (own deque, mailbox, stealing), the
 * spin-then-park protocol, the job pool and completion words. See _core.h for the interface.
 *
 * Idling, after Go's runtime and Tokio: at most half the workers search (spin) at once; the
 * others park on a per-worker futex. A submitter wakes a parked worker only when nobody is
 * searching, and a searcher that finds work while it was the last searcher wakes another,
 * so parallelism ramps up one worker at a time without a thundering herd.
 *
 * No lost wake-ups: a parking worker sets its bit in sleep_mask, issues a seq_cst fence and
 * re-checks every queue; a submitter publishes its job, issues a seq_cst fence and reads
 * sleep_mask (and `searching`). By the fence rules of C11 (a store sequenced before one
 * seq_cst fence is seen by loads sequenced after a later one), at least one of the two sees
 * the other: either the worker finds the job, or the submitter finds the worker and wakes it.
 */
#define _GNU_SOURCE
#include "_core.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define POOL_BATCH 128     /* records moved between a worker's cache and the global list */
#define DRAIN_MAX 32       /* mailbox nodes moved to the deque per visit */
#define MAILBOX_EVERY 61   /* check the mailbox before the deque every N jobs (fairness) */
#define HELP_SPINS 64      /* join: polls before sleeping on the completion word */
#define HELP_SLEEP_NS 100000 /* join: re-check queues at least this often while sleeping */

static __thread sched_worker *tls_worker;

uint64_t sched_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

sched_worker *sched_current_worker(sched *s) {
    sched_worker *w = tls_worker;
    return (w && w->s == s) ? w : NULL;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* -- latency histogram ------------------------------------------------------------------ */

int sched_lat_bucket(uint64_t ns) {
    if (ns < 4) return (int)ns;
    int lg = 63 - __builtin_clzll(ns);
    int i = ((lg - 1) << SCHED_SUB_BITS) + (int)((ns >> (lg - SCHED_SUB_BITS)) & 3);
    return i < SCHED_LAT_BUCKETS ? i : SCHED_LAT_BUCKETS - 1;
}

uint64_t sched_bucket_lower(int i) {
    if (i < 4) return (uint64_t)i;
    int lg = (i >> SCHED_SUB_BITS) + 1;
    return (uint64_t)(4 + (i & 3)) << (lg - SCHED_SUB_BITS);
}

/* -- job pool ------------------------------------------------------------------------------ */

static sched_job *list_pop(sched_job **head) {
    sched_job *j = *head;
    if (j) *head = (sched_job *)LOAD_RLX(&j->node.next);
    return j;
}

static void list_push(sched_job **head, sched_job *j) {
    STORE_RLX(&j->node.next, (sched_mpsc_node *)*head);
    *head = j;
}

sched_job *sched_job_alloc(sched *s, sched_worker *w) {
    if (w) {
        if (!w->free_list) {
            pthread_mutex_lock(&s->pool_lock);
            for (int k = 0; k < POOL_BATCH && s->pool_free; k++) {
                list_push(&w->free_list, list_pop(&s->pool_free));
                s->pool_free_count--;
                w->free_count++;
            }
            pthread_mutex_unlock(&s->pool_lock);
        }
        sched_job *j = list_pop(&w->free_list);
        if (j) w->free_count--;
        return j;
    }
    pthread_mutex_lock(&s->pool_lock);
    sched_job *j = list_pop(&s->pool_free);
    if (j) s->pool_free_count--;
    pthread_mutex_unlock(&s->pool_lock);
    return j;
}

int sched_job_alloc_batch(sched *s, sched_job **out, int n) {
    int got = 0;
    pthread_mutex_lock(&s->pool_lock);
    while (got < n && s->pool_free) {
        out[got++] = list_pop(&s->pool_free);
        s->pool_free_count--;
    }
    pthread_mutex_unlock(&s->pool_lock);
    return got;
}

static void pool_backoff(sched *s, int round) {
    if (round == 0) atomic_fetch_add_explicit(&s->pool_waits, 1, memory_order_relaxed);
    if (round < 16) {
        sched_relax();
    } else if (round < 64) {
        sched_yield();
    } else {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

sched_job *sched_job_alloc_wait(sched *s, sched_worker *w) {
    for (int round = 0;; round++) {
        sched_job *j = sched_job_alloc(s, w);
        if (j) return j;
        pool_backoff(s, round);
    }
}

int sched_job_alloc_batch_wait(sched *s, sched_job **out, int n) {
    for (int round = 0;; round++) {
        int got = sched_job_alloc_batch(s, out, n);
        if (got) return got;
        pool_backoff(s, round);
    }
}

void sched_job_free(sched *s, sched_worker *w, sched_job *job) {
    if (w) {
        list_push(&w->free_list, job);
        if (++w->free_count > 2 * POOL_BATCH) {
            pthread_mutex_lock(&s->pool_lock);
            for (int k = 0; k < POOL_BATCH; k++) {
                list_push(&s->pool_free, list_pop(&w->free_list));
                s->pool_free_count++;
            }
            pthread_mutex_unlock(&s->pool_lock);
            w->free_count -= POOL_BATCH;
        }
        return;
    }
    pthread_mutex_lock(&s->pool_lock);
    list_push(&s->pool_free, job);
    s->pool_free_count++;
    pthread_mutex_unlock(&s->pool_lock);
}

/* -- completion words ------------------------------------------------------------------- */

static void word_sub(_Atomic uint32_t *word, uint32_t n, void (*on_done)(sched_group *),
                     sched_group *g) {
    /* acq_rel: release publishes what this job wrote (a result slot) to the joiner, which
     * loads the word with acquire; acquire lets on_done see every other completer's writes. */
    uint32_t old = atomic_fetch_sub_explicit(word, n, memory_order_acq_rel);
    if ((old & SCHED_COUNT_MASK) == n) {
        /* The word may live on a joiner's stack that is gone by now (it saw zero and
         * returned): waking a stale address is harmless, every futex waiter re-checks. */
        if (old & SCHED_WAITERS) futex_wake(word, INT_MAX);
        if (on_done) on_done(g);
    }
}

void sched_word_done(_Atomic uint32_t *word) { word_sub(word, 1, NULL, NULL); }

void sched_group_sub(sched_group *g, uint32_t n) {
    if (n == 0) return;
    /* Read before the decrement: after it, a stack group may already be gone. */
    void (*on_done)(sched_group *) = g->on_done;
    word_sub(&g->word, n, on_done, g);
}

int sched_wait_word(_Atomic uint32_t *word, int64_t timeout_ns) {
    for (int i = 0; i < 256; i++) {
        if (sched_word_is_done(word)) return 1;
        sched_relax();
    }
    uint64_t deadline = timeout_ns >= 0 ? sched_now() + (uint64_t)timeout_ns : 0;
    for (;;) {
        /* seq_cst: announcing the waiter and reading the count in one RMW; the completer's
         * fetch_sub then either sees the bit (and wakes us) or precedes this RMW (count 0). */
        uint32_t v = atomic_fetch_or_explicit(word, SCHED_WAITERS, memory_order_seq_cst);
        v |= SCHED_WAITERS;
        if ((v & SCHED_COUNT_MASK) == 0) return 1;
        int64_t left = -1;
        if (timeout_ns >= 0) {
            uint64_t now = sched_now();
            if (now >= deadline) return 0;
            left = (int64_t)(deadline - now);
        }
        futex_wait(word, v, left);
    }
}

void sched_inflight_add(sched *s, uint32_t n) {
    atomic_fetch_add_explicit(&s->inflight, n, memory_order_relaxed);
}

void sched_inflight_done(sched *s) { sched_word_done(&s->inflight); }

/* -- waking and parking ----------------------------------------------------------------- */

static int wake_one(sched *s) {
    uint64_t mask = LOAD_RLX(&s->sleep_mask);
    while (mask) {
        int i = __builtin_ctzll(mask);
        uint64_t bit = 1ull << i;
        /* acq_rel claim: only the thread that clears the bit wakes the worker; acquire
         * orders our wake store after the worker's reset of `wake` to 0 (it precedes the
         * worker's fetch_or of this bit), so the store is not lost to that reset. */
        uint64_t old = atomic_fetch_and_explicit(&s->sleep_mask, ~bit, memory_order_acq_rel);
        if (old & bit) {
            sched_worker *v = &s->workers[i];
            STORE_REL(&v->wake, 1);
            futex_wake(&v->wake, 1);
            return 1;
        }
        mask = old & ~bit;
    }
    return 0;
}

static void notify(sched *s) {
    /* The submitter's half of the no-lost-wake-up protocol (see the top of this file): the
     * job was published before this fence; sleep_mask and searching are read after it. */
    SCHED_SC_FENCE();
    if (atomic_load_explicit(&s->sleep_mask, SC_OR(memory_order_relaxed)) == 0) return;
    if (atomic_load_explicit(&s->searching, SC_OR(memory_order_relaxed)) != 0) return; /* a searcher will find it, or re-check */
    wake_one(s);
}

void sched_wake_all(sched *s) {
    atomic_store_explicit(&s->stop, 1, memory_order_seq_cst);
    /* Same protocol as notify: a worker that parks after this fence sees stop. */
    SCHED_SC_FENCE();
    while (wake_one(s)) {
    }
}

static int work_visible(sched *s) {
    for (int i = 0; i < s->n; i++) {
        sched_worker *v = &s->workers[i];
        if (deque_size(&v->deque) > 0 || mpsc_maybe_nonempty(&v->mailbox)) return 1;
    }
    return 0;
}

static void park(sched_worker *w) {
    sched *s = w->s;
    uint64_t bit = 1ull << w->index;
    STORE_RLX(&w->wake, 0);
    atomic_fetch_or_explicit(&s->sleep_mask, bit, memory_order_seq_cst);
    /* The worker's half of the protocol: announced before this fence, queues read after. */
    SCHED_SC_FENCE();
    if (work_visible(s) || atomic_load_explicit(&s->stop, memory_order_seq_cst)) {
        /* If the bit is already gone, a waker claimed us; its late wake is harmless. */
        atomic_fetch_and_explicit(&s->sleep_mask, ~bit, memory_order_seq_cst);
        return;
    }
    BUMP(&w->stats.parks, 1);
    while (LOAD_ACQ(&w->wake) == 0) futex_wait(&w->wake, 0, -1);
    /* Woken by a claim (bit already cleared) or, rarely, by a stale wake from an earlier
     * claim while our bit is set again: clear it so nobody "wakes" us while we run. */
    atomic_fetch_and_explicit(&s->sleep_mask, ~bit, memory_order_seq_cst);
    w->woke_from_park = 1;
}

/* -- finding work ----------------------------------------------------------------------- */

static inline uint64_t next_rand(sched_worker *w) {
    /* xorshift64* */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Moves up to `max` mailbox nodes onto our own deque (where thieves can reach them) and
 * returns the first, or NULL. Any worker may drain any mailbox: the try-lock keeps it
 * single-consumer. */
static sched_job *drain_mailbox(sched_worker *w, sched_mpsc *mb, int max) {
    if (!mpsc_maybe_nonempty(mb) || !mpsc_try_lock(mb)) return NULL;
    sched_job *first = (sched_job *)mpsc_pop(mb);
    int moved = 0;
    if (first) {
        for (; moved < max; moved++) {
            sched_mpsc_node *n = mpsc_pop(mb);
            if (!n) break;
            deque_push(&w->deque, (sched_job *)n);
        }
    }
    mpsc_unlock(mb);
    if (moved) notify(w->s);
    return first;
}

static sched_job *find_local(sched_worker *w) {
    sched_job *job = NULL;
    if (++w->tick % MAILBOX_EVERY == 0) job = drain_mailbox(w, &w->mailbox, DRAIN_MAX);
    /* Skip take()'s fence when the deque is plainly empty: bottom is ours, and a stale top
     * can only be lower than the real one, so "empty" here is never wrong. */
    if (!job && LOAD_RLX(&w->deque.bottom) > LOAD_RLX(&w->deque.top))
        job = deque_take(&w->deque);
    if (!job) job = drain_mailbox(w, &w->mailbox, DRAIN_MAX);
    return job;
}

static sched_job *steal_round(sched_worker *w) {
    sched *s = w->s;
    sched_job *job = drain_mailbox(w, &w->mailbox, DRAIN_MAX);
    if (job || s->n == 1) return job;
    int start = (int)(next_rand(w) % (uint64_t)s->n);
    for (int k = 0; k < s->n; k++) {
        int v = (start + k) % s->n;
        if (v == w->index) continue;
        sched_worker *victim = &s->workers[v];
        BUMP(&w->stats.steal_attempts, 1);
        for (int retry = 0; retry < 4; retry++) {
            job = deque_steal(&victim->deque);
            if (job != SCHED_DEQUE_ABORT) break;
        }
        if (job == SCHED_DEQUE_ABORT) job = NULL;
        if (!job) job = drain_mailbox(w, &victim->mailbox, DRAIN_MAX / 2);
        if (job) {
            BUMP(&w->stats.stolen, 1);
            BUMP(&w->steals_from[v], 1);
            return job;
        }
    }
    return NULL;
}

static void release_hold(sched_worker *w) {
    if (w->hold && w->s->hooks.release) w->s->hooks.release(w);
}

static void end_search(sched_worker *w, int found) {
    sched *s = w->s;
    w->searching = 0;
    /* seq_cst: part of the idle protocol -- a submitter that still saw us searching relies
     * on our later re-check (park) or on this hand-over to another worker. */
    int prev = atomic_fetch_sub_explicit(&s->searching, 1, memory_order_seq_cst);
    /* The last searcher found work: if more is queued, recruit another (Go's resetspinning,
     * Tokio's transition_worker_from_searching). Unlike them we look first: waking a worker
     * costs a futex syscall before our job starts, wasted when the queues are now empty. */
    if (found && prev == 1 && work_visible(s)) notify(s);
}

/* Spins looking for work for up to spin_ns. Returns a job, or NULL to park. */
static sched_job *search(sched_worker *w) {
    sched *s = w->s;
    int cur = LOAD_RLX(&s->searching);
    do {
        if (2 * cur >= s->n) return NULL; /* enough searchers: park (bounded spinning) */
    } while (!atomic_compare_exchange_weak_explicit(&s->searching, &cur, cur + 1,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed));
    w->searching = 1;
    uint64_t deadline = sched_now() + s->spin_ns;
    for (;;) {
        sched_job *job = steal_round(w);
        if (job) {
            end_search(w, 1);
            return job;
        }
        if (LOAD_RLX(&s->stop) || sched_now() >= deadline) break;
        for (int k = 0; k < 16; k++) sched_relax();
    }
    end_search(w, 0);
    return NULL;
}

/* -- running ------------------------------------------------------------------------------ */

#define PEND_MAX 256 /* batched completions held back at most */

/* Subtract the completions this worker has counted locally. Done before it runs a job of
 * another group (which might block) and whenever it runs out of local work, so held-back
 * completions only ever wait on the worker's own busy stretch of the same run. */
static void flush_pending(sched_worker *w) {
    if (w->pend_count) {
        sched_group *g = w->pend_group;
        uint32_t n = w->pend_count;
        w->pend_count = 0;
        w->pend_group = NULL;
        sched_group_sub(g, n);
    }
}

static void run_job(sched_worker *w, sched_job *job) {
    if (w->pend_count && job->group != w->pend_group) flush_pending(w);
    if (w->hold && !(job->flags & SCHED_JOB_PYTHON)) release_hold(w);
    uint64_t now = sched_now();
    int b = sched_lat_bucket(now > job->submit_ns ? now - job->submit_ns : 0);
    if (w->woke_from_park) {
        BUMP(&w->stats.lat_parked[b], 1);
        w->woke_from_park = 0;
    } else {
        BUMP(&w->stats.lat_hot[b], 1);
    }
    sched_group *g = job->group;
    job->fn(w, job);
    if (job->home != -2) sched_job_free(w->s, w, job);
    BUMP(&w->stats.executed, 1);
    if (!g) return;
    if (g->flags & SCHED_GROUP_BATCHED) {
        if (w->pend_count && w->pend_group != g) flush_pending(w);
        w->pend_group = g;
        if (++w->pend_count >= PEND_MAX) flush_pending(w);
    } else {
        sched_group_sub(g, 1);
    }
}

void sched_submit(sched *s, sched_worker *w, sched_job *job) {
    job->submit_ns = sched_now();
    if (w) {
        deque_push(&w->deque, job);
    } else {
        uint64_t i = atomic_fetch_add_explicit(&s->rr, 1, memory_order_relaxed) % (uint64_t)s->n;
        mpsc_push(&s->workers[i].mailbox, &job->node);
    }
    notify(s);
}

int sched_spawn(sched_worker *w, sched_fn fn, void *ctx, sched_group *g, uint64_t arg,
                uint64_t arg2, uint32_t flags) {
    sched_job *job = sched_job_alloc(w->s, w);
    while (!job) {
        /* Pool exhausted: run one of our own queued jobs, which frees a record. */
        sched_job *other = deque_take(&w->deque);
        if (!other) {
            sched_job tmp = {.fn = fn, .ctx = ctx, .group = g, .arg = arg, .arg2 = arg2,
                             .flags = flags, .home = -2, .submit_ns = sched_now()};
            run_job(w, &tmp);
            return 0;
        }
        run_job(w, other);
        job = sched_job_alloc(w->s, w);
    }
    job->fn = fn;
    job->ctx = ctx;
    job->group = g;
    job->arg = arg;
    job->arg2 = arg2;
    job->flags = flags;
    job->home = w->index;
    sched_submit(w->s, w, job);
    return 1;
}

void sched_help_until(sched_worker *w, _Atomic uint32_t *word) {
    int idle = 0;
    while (!sched_word_is_done(word)) {
        sched_job *job = deque_take(&w->deque);
        if (!job) job = steal_round(w);
        if (job) {
            run_job(w, job);
            idle = 0;
            continue;
        }
        flush_pending(w);
        release_hold(w);
        if (++idle < HELP_SPINS) {
            sched_relax();
            continue;
        }
        /* Nothing to help with: the job we wait for runs elsewhere. Sleep on the word, but
         * wake up now and then: new work may land in our mailbox meanwhile. */
        uint32_t v = atomic_fetch_or_explicit(word, SCHED_WAITERS, memory_order_seq_cst);
        v |= SCHED_WAITERS;
        if ((v & SCHED_COUNT_MASK) == 0) break;
        futex_wait(word, v, HELP_SLEEP_NS);
    }
    release_hold(w);
}

static void *worker_main(void *arg) {
    sched_worker *w = arg;
    sched *s = w->s;
    tls_worker = w;
    char name[16];
    snprintf(name, sizeof name, "sched-w%d", w->index);
    pthread_setname_np(pthread_self(), name); /* shows in top -H, gdb, py-spy */
    if (s->pin) {
        cpu_set_t avail, one;
        if (sched_getaffinity(0, sizeof avail, &avail) == 0 && CPU_COUNT(&avail) > 0) {
            int k = w->index % CPU_COUNT(&avail), cpu = 0;
            for (; cpu < CPU_SETSIZE; cpu++)
                if (CPU_ISSET(cpu, &avail) && k-- == 0) break;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        }
    }
    if (s->hooks.thread_start) s->hooks.thread_start(w);
    for (;;) {
        sched_job *job = find_local(w);
        if (!job) {
            flush_pending(w);
            release_hold(w);
            /* One round of stealing before registering as a searcher: a worker that keeps
             * finding work this way (the thief of a fork loop) never touches the shared
             * `searching` counter, which every submitter reads. */
            job = steal_round(w);
            if (!job) job = search(w);
        }
        if (job) {
            run_job(w, job);
            continue;
        }
        if (LOAD_ACQ(&s->stop)) break;
        park(w);
    }
    flush_pending(w);
    release_hold(w);
    if (s->hooks.thread_stop) s->hooks.thread_stop(w);
    tls_worker = NULL;
    return NULL;
}

/* -- lifecycle ---------------------------------------------------------------------------- */

sched *sched_create(const sched_config *cfg) {
    if (cfg->workers < 1 || cfg->workers > SCHED_MAX_WORKERS) {
        errno = EINVAL;
        return NULL;
    }
    uint32_t pool = 64;
    while (pool < cfg->pool_size && pool < (1u << 24)) pool <<= 1;
    sched *s = NULL;
    if (posix_memalign((void **)&s, SCHED_CACHE_LINE, sizeof *s)) return NULL;
    memset(s, 0, sizeof *s);
    s->n = cfg->workers;
    s->spin_ns = cfg->spin_ns;
    s->pin = cfg->pin;
    s->hooks = cfg->hooks;
    s->pool_size = pool;
    pthread_mutex_init(&s->pool_lock, NULL);
    atomic_init(&s->started_ns, sched_now());
    if (posix_memalign((void **)&s->jobs, SCHED_CACHE_LINE, sizeof(sched_job) * pool) ||
        posix_memalign((void **)&s->workers, SCHED_CACHE_LINE, sizeof(sched_worker) * s->n)) {
        sched_destroy(s);
        errno = ENOMEM;
        return NULL;
    }
    memset(s->jobs, 0, sizeof(sched_job) * pool);
    memset(s->workers, 0, sizeof(sched_worker) * s->n);
    for (uint32_t i = pool; i-- > 0;) list_push(&s->pool_free, &s->jobs[i]);
    s->pool_free_count = pool;
    for (int i = 0; i < s->n; i++) {
        sched_worker *w = &s->workers[i];
        w->s = s;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        /* The deque holds at most every record in the pool, so it never fills. */
        w->deque.buffer = calloc(pool, sizeof(sched_job *));
        w->deque.mask = pool - 1;
        w->steals_from = calloc((size_t)s->n, sizeof(uint64_t));
        mpsc_init(&w->mailbox);
        if (!w->deque.buffer || !w->steals_from) {
            sched_destroy(s);
            errno = ENOMEM;
            return NULL;
        }
    }
    for (int i = 0; i < s->n; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i])) {
            s->n = i; /* join only those started */
            sched_wake_all(s);
            for (int k = 0; k < i; k++) pthread_join(s->workers[k].thread, NULL);
            sched_destroy(s);
            errno = EAGAIN;
            return NULL;
        }
    }
    return s;
}

void sched_shutdown(sched *s) {
    sched_wait_word(&s->inflight, -1);
    sched_wake_all(s);
    for (int i = 0; i < s->n; i++) pthread_join(s->workers[i].thread, NULL);
}

void sched_destroy(sched *s) {
    if (!s) return;
    if (s->workers) {
        for (int i = 0; i < s->n; i++) {
            free(s->workers[i].deque.buffer);
            free((void *)s->workers[i].steals_from);
        }
        free(s->workers);
    }
    free(s->jobs);
    pthread_mutex_destroy(&s->pool_lock);
    free(s);
}
