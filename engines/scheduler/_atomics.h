/* Shared atomics vocabulary for the scheduler core: C11 <stdatomic.h>, cache-line padding,
 * a CPU relax hint, and the two places where ThreadSanitizer needs help.
 *
 * TSAN does not model standalone fences (atomic_thread_fence), so a release fence followed
 * by a relaxed store looks to it like no synchronisation at all and it reports a race on the
 * plain data the fence publishes. Built with -DSCHED_TSAN, the fence-based sequences below
 * become the equivalent (stronger or equal) operations on the atomic itself: a release store,
 * or seq_cst store/load pairs. The production build keeps the fences of Le et al.
 */
#ifndef SCHED_ATOMICS_H
#define SCHED_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

#define SCHED_CACHE_LINE 64
#define SCHED_ALIGNED __attribute__((aligned(SCHED_CACHE_LINE)))

#define LOAD_RLX(p) atomic_load_explicit((p), memory_order_relaxed)
#define LOAD_ACQ(p) atomic_load_explicit((p), memory_order_acquire)
#define STORE_RLX(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define STORE_REL(p, v) atomic_store_explicit((p), (v), memory_order_release)
/* A counter with a single writer: a relaxed load+store, not a locked RMW. Readers (stats())
 * may see a slightly old value, never a torn one. */
#define BUMP(p, n) STORE_RLX((p), LOAD_RLX(p) + (n))

/* A full (seq_cst) fence. On x86-64 a locked no-op RMW on the stack orders exactly like
 * mfence for ordinary memory and costs about half as much (Linux's smp_mb() does the same);
 * the "memory" clobber keeps the compiler from moving accesses across it. */
static inline void sched_fence_seq_cst(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("lock orq $0, (%%rsp)" ::: "memory", "cc");
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* The seq_cst fences of the idle protocol (_core.c) pair a store with a later load on
 * another variable (Dekker). In the TSAN build there is no fence; instead every operation
 * on either side is itself seq_cst (SC_OR), which gives the same guarantee through the
 * single total order of seq_cst operations, and which TSAN does model. */
#ifdef SCHED_TSAN
#define SCHED_SC_FENCE() ((void)0)
#define SC_OR(order) memory_order_seq_cst
#else
#define SCHED_SC_FENCE() sched_fence_seq_cst()
#define SC_OR(order) (order)
#endif

static inline void sched_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
