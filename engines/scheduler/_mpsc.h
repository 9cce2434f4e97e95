/* Vyukov's intrusive multi-producer single-consumer queue ("Intrusive MPSC node-based queue",
 * 1024cores.net), used as each worker's mailbox for submissions from outside threads.
 *
 * Producers never wait: one atomic exchange on head, then a store linking the previous node.
 * The single consumer is whoever holds `consumer` (a try-lock): normally the owning worker,
 * but an idle worker may take over the mailbox of one that is busy with a long job, so an
 * outside submission is never stuck behind it.
 */
#ifndef SCHED_MPSC_H
#define SCHED_MPSC_H

#include <stddef.h>
#include <stdint.h>

#include "_atomics.h"

typedef struct sched_mpsc_node {
    struct sched_mpsc_node *_Atomic next;
} sched_mpsc_node;

typedef struct sched_mpsc {
    /* Producers' line: head and the push counter (for stats and the depth estimate). */
    SCHED_ALIGNED sched_mpsc_node *_Atomic head;
    _Atomic uint64_t pushed;
    /* Consumer's line. tail is only touched by the lock holder; it is atomic so that the
     * idle re-check may read it (relaxed) without a data race. */
    SCHED_ALIGNED sched_mpsc_node *_Atomic tail;
    _Atomic uint64_t popped;
    _Atomic int consumer;
    sched_mpsc_node stub;
} sched_mpsc;

static inline void mpsc_init(sched_mpsc *q) {
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->head, &q->stub);
    atomic_init(&q->tail, &q->stub);
    atomic_init(&q->pushed, 0);
    atomic_init(&q->popped, 0);
    atomic_init(&q->consumer, 0);
}

static inline void mpsc_push_node(sched_mpsc *q, sched_mpsc_node *n) {
    STORE_RLX(&n->next, NULL);
    /* acq_rel exchange: release publishes n's contents (and the job record around it) to
     * the consumer that will reach n through prev->next; acquire orders us after the
     * producer that pushed prev, so our link store below cannot overtake its node init. */
    sched_mpsc_node *prev = atomic_exchange_explicit(&q->head, n, SC_OR(memory_order_acq_rel));
    /* Release: the consumer's acquire load of prev->next then sees n fully initialised.
     * Between the exchange and this store the queue is briefly unlinked ("inconsistent");
     * the consumer then returns NULL and retries later, it never loses n. */
    STORE_REL(&prev->next, n);
}

static inline void mpsc_push(sched_mpsc *q, sched_mpsc_node *n) {
    mpsc_push_node(q, n);
    /* Relaxed: a statistic; the depth estimate tolerates a momentary mismatch. */
    atomic_fetch_add_explicit(&q->pushed, 1, memory_order_relaxed);
}

/* Consumer only (holder of q->consumer). Returns a node or NULL (empty or inconsistent). */
static inline sched_mpsc_node *mpsc_pop(sched_mpsc *q) {
    sched_mpsc_node *tail = LOAD_RLX(&q->tail);
    /* Acquire pairs with the producer's release store of next: the node is initialised. */
    sched_mpsc_node *next = LOAD_ACQ(&tail->next);
    if (tail == &q->stub) {
        if (next == NULL) return NULL;
        STORE_RLX(&q->tail, next);
        tail = next;
        next = LOAD_ACQ(&tail->next);
    }
    if (next) {
        STORE_RLX(&q->tail, next);
        BUMP(&q->popped, 1);
        return tail;
    }
    /* Acquire: if head moved on, the producer that moved it has not linked yet; we must not
     * re-push the stub past it. */
    sched_mpsc_node *head = LOAD_ACQ(&q->head);
    if (tail != head) return NULL;
    mpsc_push_node(q, &q->stub);
    next = LOAD_ACQ(&tail->next);
    if (next) {
        STORE_RLX(&q->tail, next);
        BUMP(&q->popped, 1);
        return tail;
    }
    return NULL;
}

/* Any thread. True if the queue may hold nodes. Used after a seq_cst fence in the idle
 * re-check: a push whose exchange precedes that fence has moved head off the stub. */
static inline int mpsc_maybe_nonempty(sched_mpsc *q) {
    sched_mpsc_node *head = atomic_load_explicit(&q->head, SC_OR(memory_order_relaxed));
    return head != &q->stub || LOAD_RLX(&q->tail) != &q->stub;
}

static inline int mpsc_try_lock(sched_mpsc *q) {
    if (LOAD_RLX(&q->consumer)) return 0;
    int expected = 0;
    /* Acquire: the previous consumer's tail/popped updates (released by unlock) are seen. */
    return atomic_compare_exchange_strong_explicit(&q->consumer, &expected, 1,
                                                   memory_order_acquire, memory_order_relaxed);
}

static inline void mpsc_unlock(sched_mpsc *q) {
    /* Release: hands tail/popped to the next consumer. */
    STORE_REL(&q->consumer, 0);
}

static inline int64_t mpsc_size(sched_mpsc *q) {
    int64_t n = (int64_t)(LOAD_RLX(&q->pushed) - LOAD_RLX(&q->popped));
    return n < 0 ? 0 : n;
}

#endif
