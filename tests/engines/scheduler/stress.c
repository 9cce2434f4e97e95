/* Stress driver for the scheduler's C core, built by the tests twice: with ThreadSanitizer
 * (-fsanitize=thread -DSCHED_TSAN) and with a malloc counter (-DCOUNT_MALLOC), which
 * interposes malloc & co. and counts the calls made by worker threads and by everyone.
 *
 * Usage: stress WORKERS COUNT   -- prints key=value lines; exit status 0 when all checks hold.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_core.h"
#include "_kernels.h"

static __thread int is_worker;
static _Atomic long worker_mallocs, all_mallocs;

#ifdef COUNT_MALLOC
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static void counted(void) {
    atomic_fetch_add(&all_mallocs, 1);
    if (is_worker) atomic_fetch_add(&worker_mallocs, 1);
}
void *malloc(size_t n) {
    counted();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    counted();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    counted();
    return __libc_realloc(p, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
    counted();
    *out = __libc_memalign(align, n);
    return *out ? 0 : 12;
}
#endif

static void on_start(sched_worker *w) {
    (void)w;
    is_worker = 1;
}

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        failures++;
        printf("FAIL %s\n", what);
    }
}

static sched_run_result run(sched *s, int kernel, int pattern, uint64_t count, const char *name) {
    sched_run_params p = {.kernel = kernel, .pattern = pattern, .count = count, .verify = 1,
                          .fib_n = 18, .cutoff = 8, .submitters = 4, .work_ns = 200};
    long before = atomic_load(&all_mallocs);
    sched_run *r = sched_run_start(s, &p);
    check(r != NULL, "run_start");
    sched_run_wait(r, -1);
    long during = atomic_load(&all_mallocs) - before;
    sched_run_result res;
    sched_run_result_get(r, &res);
    sched_run_release(r);
    printf("%s count=%llu missing=%lld duplicates=%lld checksum=%llu mallocs=%ld\n", name,
           (unsigned long long)count, (long long)res.missing, (long long)res.duplicates,
           (unsigned long long)res.checksum, during);
    check(res.done && res.missing == 0 && res.duplicates == 0, name);
    return res;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 2;
    uint64_t count = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
    sched_config cfg = {.workers = workers, .pool_size = 4096, .spin_ns = 20000,
                        .hooks = {.thread_start = on_start}};
    sched *s = sched_create(&cfg);
    if (!s) {
        perror("sched_create");
        return 2;
    }
    run(s, SCHED_K_NOOP, SCHED_P_FORK, count, "fork");
    run(s, SCHED_K_NOOP, SCHED_P_SPLIT, count, "split");
    run(s, SCHED_K_NOOP, SCHED_P_OUTSIDE, count, "outside");
    run(s, SCHED_K_SKEW, SCHED_P_SPLIT, count / 100 + 1, "skew");
    sched_run_result fib = run(s, SCHED_K_FIB, SCHED_P_SPLIT, 8, "fib");
    check(fib.checksum == 8 * 2584, "fib(18) x 8 == 8 * 2584");

    /* Cancel a long run mid-way: it completes, every job accounted for. */
    sched_run_params p = {.kernel = SCHED_K_SPIN, .pattern = SCHED_P_OUTSIDE, .count = 100000,
                          .work_ns = 20000, .submitters = 2};
    sched_run *r = sched_run_start(s, &p);
    sched_run_wait(r, 20000000);
    sched_run_cancel(r);
    sched_run_wait(r, -1);
    sched_run_result res;
    sched_run_result_get(r, &res);
    sched_run_release(r);
    printf("cancel count=%llu completed=%llu cancelled=%llu\n", (unsigned long long)res.count,
           (unsigned long long)res.completed, (unsigned long long)res.cancelled);
    check(res.done && res.cancelled > 0 && res.cancelled < res.count, "cancel");

    uint64_t executed = 0, stolen = 0, parks = 0;
    for (int i = 0; i < s->n; i++) {
        executed += atomic_load(&s->workers[i].stats.executed);
        stolen += atomic_load(&s->workers[i].stats.stolen);
        parks += atomic_load(&s->workers[i].stats.parks);
    }
    sched_shutdown(s);
    sched_destroy(s);
    printf("executed=%llu stolen=%llu parks=%llu worker_mallocs=%ld failures=%d\n",
           (unsigned long long)executed, (unsigned long long)stolen, (unsigned long long)parks,
           atomic_load(&worker_mallocs), failures);
    return failures ? 1 : 0;
}
