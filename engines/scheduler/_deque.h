/* Chase-Lev work-stealing deque, with the C11 memory orderings of
 *   N. M. Le, A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and Efficient Work-Stealing for
 *   Weak Memory Models", PPoPP 2013 (Fig. 1) -- cited below as [Le13].
 *
 * The owner pushes and takes at the bottom; thieves steal at the top. The buffer is fixed
 * (capacity >= the job pool, so a push can never find it full) and allocated once: no resize,
 * hence no array pointer to load with consume ordering as in [Le13]'s growable version.
 * Indices are signed so that take() may briefly set bottom to top-1.
 */
#ifndef SCHED_DEQUE_H
#define SCHED_DEQUE_H

#include <stddef.h>
#include <stdint.h>

#include "_atomics.h"

struct sched_job;

typedef struct sched_deque {
    /* top is written by thieves' CAS, bottom only by the owner: separate lines, so the
     * owner's pushes do not invalidate the line every thief is reading. */
    SCHED_ALIGNED _Atomic int64_t top;
    SCHED_ALIGNED _Atomic int64_t bottom;
    struct sched_job *_Atomic *buffer;
    int64_t mask;
} sched_deque;

#define SCHED_DEQUE_EMPTY ((struct sched_job *)0)
#define SCHED_DEQUE_ABORT ((struct sched_job *)1)

/* Owner only. */
static inline void deque_push(sched_deque *q, struct sched_job *job) {
    int64_t b = LOAD_RLX(&q->bottom);
    STORE_RLX(&q->buffer[b & q->mask], job);
#ifdef SCHED_TSAN
    atomic_store_explicit(&q->bottom, b + 1, memory_order_seq_cst);
#else
    /* [Le13] push: the release fence orders the buffer store before the bottom store, so a
     * thief that reads the new bottom (acquire, in steal) also reads the job pointer and
     * everything the owner wrote into the job record before pushing it. */
    atomic_thread_fence(memory_order_release);
    STORE_RLX(&q->bottom, b + 1);
#endif
}

/* Owner only. Returns a job or SCHED_DEQUE_EMPTY. */
static inline struct sched_job *deque_take(sched_deque *q) {
    int64_t b = LOAD_RLX(&q->bottom) - 1;
    int64_t t;
#ifdef SCHED_TSAN
    atomic_store_explicit(&q->bottom, b, memory_order_seq_cst);
    t = atomic_load_explicit(&q->top, memory_order_seq_cst);
#else
    STORE_RLX(&q->bottom, b);
    /* [Le13] take: the seq_cst fence between storing bottom and loading top is the heart of
     * the algorithm. Paired with the seq_cst fence in steal (between its load of top and of
     * bottom), it guarantees that the owner and a thief racing for the last job cannot both
     * miss each other's update: at least one sees the other and the CAS on top decides. */
    sched_fence_seq_cst();
    t = LOAD_RLX(&q->top);
#endif
    struct sched_job *job;
    if (t <= b) {
        job = LOAD_RLX(&q->buffer[b & q->mask]);
        if (t == b) {
            /* [Le13] take, last element: the CAS is seq_cst so it is totally ordered with
             * the thieves' CAS on top; the loser of the race gets EMPTY. */
            if (!atomic_compare_exchange_strong_explicit(&q->top, &t, t + 1,
                                                         memory_order_seq_cst,
                                                         memory_order_relaxed))
                job = SCHED_DEQUE_EMPTY;
            STORE_RLX(&q->bottom, b + 1);
        }
    } else {
        job = SCHED_DEQUE_EMPTY;
        STORE_RLX(&q->bottom, b + 1);
    }
    return job;
}

/* Any thread. Returns a job, SCHED_DEQUE_EMPTY, or SCHED_DEQUE_ABORT (lost a race: retry
 * elsewhere). */
static inline struct sched_job *deque_steal(sched_deque *q) {
    int64_t t, b;
#ifdef SCHED_TSAN
    t = atomic_load_explicit(&q->top, memory_order_seq_cst);
    b = atomic_load_explicit(&q->bottom, memory_order_seq_cst);
#else
    /* [Le13] steal: top is loaded with acquire so that the job read below is not hoisted
     * above it; the seq_cst fence pairs with take's fence (see there); bottom is loaded with
     * acquire to synchronise with push's release fence, making the job record visible. */
    t = LOAD_ACQ(&q->top);
    sched_fence_seq_cst();
    b = LOAD_ACQ(&q->bottom);
#endif
    if (t >= b) return SCHED_DEQUE_EMPTY;
    struct sched_job *job = LOAD_RLX(&q->buffer[t & q->mask]);
    /* [Le13] steal: seq_cst CAS, totally ordered with the owner's CAS in take; on failure
     * another thief (or the owner) got this job and ours may be stale, so it is dropped. */
    if (!atomic_compare_exchange_strong_explicit(&q->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return SCHED_DEQUE_ABORT;
    return job;
}

/* Any thread; a racy estimate for stats and for the idle re-check (see _core.c). */
static inline int64_t deque_size(sched_deque *q) {
    int64_t n = atomic_load_explicit(&q->bottom, SC_OR(memory_order_relaxed)) -
                atomic_load_explicit(&q->top, SC_OR(memory_order_relaxed));
    return n < 0 ? 0 : n;
}

#endif
