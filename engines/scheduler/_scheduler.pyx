# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The Python face of the work-stealing core (_core.c): Scheduler, Future, NativeRun.

Python jobs run on the worker threads, which take the GIL only to call them and keep it
across a batch of consecutive Python jobs (one hand-over per batch, not per job). Futures
complete through a futex-backed word in the object itself: no Python-level lock anywhere.
Native kernels (_kernels.c) run with no GIL at all.

About 700 lines because Scheduler, Future and NativeRun share the core's C structs and its
lifetime rules (a future may outlive its scheduler; a fork must find every one): they are
one contract with the C core, kept in one module.
"""

import logging
import time
import weakref

from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

from .errors import JobCancelled, SchedulerClosed, SchedulerError, UnknownKernel
from .metrics import latency_summary

log = logging.getLogger("engines.scheduler")


cdef extern from "Python.h" nogil:
    ctypedef struct PyThreadState:
        pass
    ctypedef int PyGILState_STATE
    PyThreadState *PyEval_SaveThread()
    void PyEval_RestoreThread(PyThreadState *)
    PyGILState_STATE PyGILState_Ensure()
    void PyGILState_Release(PyGILState_STATE)
    PyThreadState *PyGILState_GetThisThreadState()
    int PyErr_CheckSignals() except -1


cdef extern from "_core.h" nogil:
    ctypedef unsigned int sched_word_t
    enum:
        SCHED_LAT_BUCKETS
        SCHED_JOB_PYTHON
    ctypedef struct sched_worker_stats:
        uint64_t executed
        uint64_t stolen
        uint64_t steal_attempts
        uint64_t parks
        uint64_t cancelled
        uint64_t lat_hot[1]
        uint64_t lat_parked[1]
    ctypedef struct sched_deque:
        pass
    ctypedef struct sched_mpsc:
        uint64_t pushed
    ctypedef struct sched_worker:
        sched_deque deque
        sched_mpsc mailbox
        int index
        int hold
        void *user
        sched_worker_stats stats
        uint64_t *steals_from
    ctypedef struct sched_job:
        pass
    ctypedef void (*sched_fn)(sched_worker *w, sched_job *job) noexcept nogil
    ctypedef struct sched_hooks:
        void (*thread_start)(sched_worker *w) noexcept nogil
        void (*thread_stop)(sched_worker *w) noexcept nogil
        void (*release)(sched_worker *w) noexcept nogil
    ctypedef struct sched_config:
        int workers
        uint32_t pool_size
        uint64_t spin_ns
        int pin
        sched_hooks hooks
    ctypedef struct sched:
        uint64_t sleep_mask
        int searching
        sched_word_t inflight
        int cancelling
        int n
        sched_worker *workers
        uint32_t pool_size
        uint32_t pool_free_count
        uint64_t pool_waits
        uint64_t started_ns

    sched *sched_create(const sched_config *cfg)
    void sched_wake_all(sched *s)
    void sched_destroy(sched *s)
    uint64_t sched_now()
    sched_worker *sched_current_worker(sched *s)
    sched_job *sched_job_alloc(sched *s, sched_worker *w)
    sched_job *sched_job_alloc_wait(sched *s, sched_worker *w)
    int sched_job_alloc_batch(sched *s, sched_job **out, int n)
    void sched_submit(sched *s, sched_worker *w, sched_job *job)
    void sched_job_fill(sched_job *job, sched_fn fn, void *ctx, uint32_t flags)
    void sched_word_init(sched_word_t *word, uint32_t count)
    int sched_word_is_done(sched_word_t *word)
    uint32_t sched_word_pending(sched_word_t *word)
    void sched_word_done(sched_word_t *word)
    void sched_help_until(sched_worker *w, sched_word_t *word)
    int sched_wait_word(sched_word_t *word, int64_t timeout_ns)
    void sched_inflight_add(sched *s, uint32_t n)
    void sched_inflight_done(sched *s)
    uint64_t sched_bucket_lower(int i)
    int sched_popcount(uint64_t x)


cdef extern from "_deque.h" nogil:
    int64_t deque_size(sched_deque *q)


cdef extern from "_mpsc.h" nogil:
    int64_t mpsc_size(sched_mpsc *q)


cdef extern from "_kernels.h" nogil:
    enum:
        SCHED_K_NOOP
        SCHED_K_SPIN
        SCHED_K_FIB
        SCHED_K_SKEW
        SCHED_P_FORK
        SCHED_P_SPLIT
        SCHED_P_OUTSIDE
    ctypedef struct sched_run_params:
        int kernel
        int pattern
        uint64_t count
        uint64_t work_ns
        uint32_t fib_n
        uint32_t cutoff
        int submitters
        uint64_t interval_ns
        int verify
        int submit_cpu
    ctypedef struct sched_run_result:
        int done
        uint64_t count
        uint64_t completed
        uint64_t cancelled
        uint64_t checksum
        uint64_t elapsed_ns
        int64_t missing
        int64_t duplicates
    ctypedef struct sched_run:
        pass
    sched_run *sched_run_start(sched *s, const sched_run_params *p)
    int sched_run_wait(sched_run *r, int64_t timeout_ns)
    sched_word_t *sched_run_done_word(sched_run *r)
    void sched_run_cancel(sched_run *r)
    void sched_run_result_get(sched_run *r, sched_run_result *out)
    void sched_run_release(sched_run *r)


cdef extern from *:
    """
    /* Small helpers that need the full struct layouts, which Cython is not told. */
    static inline void *sched_job_ctx(sched_job *j) { return j->ctx; }
    static void _join_workers(sched *s) {
        for (int i = 0; i < s->n; i++) pthread_join(s->workers[i].thread, NULL);
    }
    """
    void *sched_job_ctx(sched_job *j) nogil
    void _join_workers(sched *s) nogil


KERNELS = {"noop": SCHED_K_NOOP, "spin": SCHED_K_SPIN, "fib": SCHED_K_FIB, "skew": SCHED_K_SKEW}
PATTERNS = {"fork": SCHED_P_FORK, "split": SCHED_P_SPLIT, "outside": SCHED_P_OUTSIDE}
LATENCY_BUCKET_LOWER_NS = [sched_bucket_lower(i) for i in range(SCHED_LAT_BUCKETS)]

# Python jobs in a row before a worker hands the GIL back, and the longest it keeps it.
DEF GIL_BATCH = 512
DEF GIL_HOLD_NS = 2000000
# How often blocking waits wake up to let Ctrl-C through.
DEF SIGNAL_SLICE_NS = 100000000
DEF OUTSIDE_CACHE = 64


# -- the worker side of Python jobs (no GIL until taken) ------------------------------------

cdef struct pystate:
    PyThreadState *ts
    PyGILState_STATE gstate
    int created
    int batch
    uint64_t t0


cdef void _release_gil(sched_worker *w) noexcept nogil:
    cdef pystate *st = <pystate *>w.user
    w.hold = 0
    st.ts = PyEval_SaveThread()


cdef void _thread_stop(sched_worker *w) noexcept nogil:
    cdef pystate *st = <pystate *>w.user
    if st != NULL and st.created:
        PyEval_RestoreThread(st.ts)
        PyGILState_Release(st.gstate)  # deletes this thread's state, drops the GIL


cdef void _finish(PyObject *obj) noexcept with gil:
    # Cheap: the worker already holds the GIL, so this only bumps the gilstate counter.
    cdef Future f = <Future>obj
    cdef sched *s = f._sched.s
    if s.cancelling:
        f._exc = JobCancelled("the scheduler shut down with cancel_pending=True first")
    else:
        try:
            f._result = f._fn(*f._args)
        except BaseException as exc:
            f._exc = exc
    f._fn = None
    f._args = None
    # inflight first: whoever sees the future done also sees it gone from inflight.
    sched_inflight_done(s)
    sched_word_done(&f._word)
    Py_DECREF(f)  # the job's reference


cdef void _run_python_job(sched_worker *w, sched_job *job) noexcept nogil:
    cdef pystate *st = <pystate *>w.user
    if not w.hold:
        if not st.created:
            st.gstate = PyGILState_Ensure()  # first Python job here: make a thread state
            st.ts = PyGILState_GetThisThreadState()
            st.created = 1
        else:
            PyEval_RestoreThread(st.ts)
        w.hold = 1
        st.batch = 0
        st.t0 = sched_now()
    _finish(<PyObject *>sched_job_ctx(job))
    st.batch += 1
    if st.batch >= GIL_BATCH or (st.batch % 32 == 0 and sched_now() - st.t0 > GIL_HOLD_NS):
        _release_gil(w)


# -- futures ------------------------------------------------------------------------------

cdef class Future:
    """The result of a submitted Python job: ``result()``, ``exception()``, ``done()``.

    Waiting sleeps on a futex in the object (the GIL released); waiting from inside a job
    runs other jobs meanwhile (fork-join), so recursive jobs never block a worker.
    """

    cdef sched_word_t _word
    cdef object _fn
    cdef tuple _args
    cdef object _result
    cdef object _exc
    cdef Scheduler _sched

    def done(self):
        return bool(sched_word_is_done(&self._word))

    def result(self, timeout=None):
        """The job's return value, or its exception raised here. Inside a job of the same
        scheduler, waiting runs other jobs (fork-join) and ``timeout`` is not applied."""
        if not sched_word_is_done(&self._word):
            self._wait(timeout)
        if self._exc is not None:
            raise self._exc
        return self._result

    def exception(self, timeout=None):
        if not sched_word_is_done(&self._word):
            self._wait(timeout)
        return self._exc

    def __repr__(self):
        state = "pending" if not sched_word_is_done(&self._word) else (
            "raised" if self._exc is not None else "done")
        return f"<Future {state}>"

    cdef _wait(self, timeout):
        cdef sched_worker *w = sched_current_worker(self._sched.s)
        cdef int hold
        if w != NULL:
            hold = w.hold
            w.hold = 0  # released by the nogil block below, retaken after it
            with nogil:
                sched_help_until(w, &self._word)
            w.hold = hold
            return
        _wait_word(&self._word, timeout)


cdef _wait_word(sched_word_t *word, timeout):
    """Sleep (GIL released) until ``word`` completes; TimeoutError after ``timeout`` s."""
    cdef int64_t left = -1 if timeout is None else <int64_t>(float(timeout) * 1e9)
    cdef int64_t slice_ns
    cdef int ok = 0
    while True:
        slice_ns = SIGNAL_SLICE_NS if left < 0 or left > SIGNAL_SLICE_NS else left
        with nogil:
            ok = sched_wait_word(word, slice_ns)
        if ok:
            return
        PyErr_CheckSignals()
        if left >= 0:
            left -= slice_ns
            if left <= 0:
                raise TimeoutError(f"not done after {timeout} s")


# -- native runs --------------------------------------------------------------------------

cdef class NativeRun:
    """A native workload started by ``Scheduler.start_native``: it runs without the GIL
    while the caller polls ``done()``/``progress()`` or blocks in ``wait()``/``result()``.
    """

    cdef sched_run *_run
    cdef Scheduler _sched
    cdef readonly str kind
    cdef readonly str pattern

    def done(self):
        cdef sched_run_result res
        sched_run_result_get(self._run, &res)
        return bool(res.done)

    def wait(self, timeout=None):
        """Block until the run completes; False if ``timeout`` seconds passed first.
        Inside a job of the same scheduler it runs other jobs meanwhile (and ignores
        ``timeout``): a worker that only slept could be the one the run needs."""
        cdef int64_t left = -1 if timeout is None else <int64_t>(float(timeout) * 1e9)
        cdef int64_t slice_ns
        cdef int ok = 0
        cdef int hold
        cdef sched_worker *w = sched_current_worker(self._sched.s)
        if w != NULL:
            hold = w.hold
            w.hold = 0
            with nogil:
                sched_help_until(w, sched_run_done_word(self._run))
            w.hold = hold
            return True
        while True:
            slice_ns = SIGNAL_SLICE_NS if left < 0 or left > SIGNAL_SLICE_NS else left
            with nogil:
                ok = sched_run_wait(self._run, slice_ns)
            if ok:
                return True
            PyErr_CheckSignals()
            if left >= 0:
                left -= slice_ns
                if left <= 0:
                    return False

    def cancel(self):
        """Ask the run to stop: jobs not yet started are counted as cancelled, not run."""
        sched_run_cancel(self._run)

    def progress(self):
        """The run's figures so far (cheap; ``missing``/``duplicates`` only once done)."""
        cdef sched_run_result res
        with nogil:
            sched_run_result_get(self._run, &res)
        elapsed = res.elapsed_ns / 1e9
        return {
            "kind": self.kind,
            "pattern": self.pattern,
            "done": bool(res.done),
            "count": res.count,
            "completed": res.completed,
            "cancelled": res.cancelled,
            "checksum": res.checksum,
            "elapsed_s": elapsed,
            "jobs_per_s": (res.completed / elapsed) if elapsed > 0 else 0.0,
            "missing": None if res.missing < 0 else res.missing,
            "duplicates": None if res.duplicates < 0 else res.duplicates,
        }

    def result(self, timeout=None):
        """Wait for the run, then its figures (see ``progress``)."""
        if not self.wait(timeout):
            raise TimeoutError(f"native run not done after {timeout} s")
        return self.progress()

    def __dealloc__(self):
        if self._run != NULL:
            sched_run_release(self._run)  # the run keeps its own reference until done


# -- the scheduler ------------------------------------------------------------------------

_live = weakref.WeakSet()


def _shutdown_all():
    for s in list(_live):
        s.shutdown(wait=True, cancel_pending=True)


def _after_fork_in_child():
    """A forked child has none of the parent's worker threads: its schedulers are dead.
    Their memory is abandoned (a lock in it may be held by a thread that is gone)."""
    for s in list(_live):
        (<Scheduler>s)._abandon()
    _live.clear()


cdef class Scheduler:
    """A pool of ``workers`` threads with work-stealing deques; see the package docstring."""

    cdef sched *s
    cdef pystate *states
    cdef bint _closed
    cdef bint _forked
    cdef sched_job *cache[OUTSIDE_CACHE]
    cdef int cache_n
    cdef readonly int workers
    cdef readonly int pool_size
    cdef readonly double spin_us
    cdef object __weakref__

    def __cinit__(self, int workers=2, *, int pool_size=65536, double spin_us=50.0,
                  bint pin=False):
        if not 1 <= workers <= 64:
            raise ValueError(f"workers must be between 1 and 64, not {workers}")
        if pool_size < 64:
            raise ValueError(f"pool_size must be at least 64, not {pool_size}")
        if spin_us < 0:
            raise ValueError("spin_us must not be negative")
        self.states = <pystate *>calloc(workers, sizeof(pystate))
        if self.states == NULL:
            raise MemoryError()
        cdef sched_config cfg
        cfg.workers = workers
        cfg.pool_size = pool_size
        cfg.spin_ns = <uint64_t>(spin_us * 1000)
        cfg.pin = pin
        cfg.hooks.thread_start = NULL
        cfg.hooks.thread_stop = _thread_stop
        cfg.hooks.release = _release_gil
        # The hooks read w.user; it is set before any job can reach a worker.
        with nogil:
            self.s = sched_create(&cfg)
        if self.s == NULL:
            free(self.states)
            self.states = NULL
            raise SchedulerError(f"could not start {workers} worker threads")
        for i in range(workers):
            self.s.workers[i].user = &self.states[i]
        self.workers = workers
        self.pool_size = self.s.pool_size
        self.spin_us = spin_us
        _live.add(self)
        log.info("scheduler started workers=%d pool=%d spin_us=%g", workers, self.pool_size,
                 spin_us)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.shutdown(wait=True, cancel_pending=exc_type is not None)
        return False

    @property
    def closed(self):
        return self._closed

    cdef _check_open(self):
        if self._forked:
            raise SchedulerClosed("this scheduler belongs to the parent process (fork); "
                                  "start a new one in the child")
        if self._closed:
            raise SchedulerClosed("the scheduler is shut down; start a new one")

    cdef _abandon(self):
        self._closed = True
        self._forked = True
        self.s = NULL
        self.states = NULL
        self.cache_n = 0

    cdef sched_job *_record(self, sched_worker *w):
        """A job record: from the worker's cache on a worker, else from a small GIL-guarded
        cache refilled in batches (one pool lock per batch)."""
        cdef sched_job *job
        if w != NULL:
            return sched_job_alloc(self.s, w)
        cdef sched *s = self.s
        if self.cache_n == 0:
            self.cache_n = sched_job_alloc_batch(s, self.cache, OUTSIDE_CACHE)
            if self.cache_n == 0:
                # The pool is empty: running jobs free records, let them run. Another
                # Python thread may use the cache meanwhile, so wait for our own record.
                with nogil:
                    job = sched_job_alloc_wait(s, NULL)
                return job
        self.cache_n -= 1
        return self.cache[self.cache_n]

    cdef Future _submit(self, fn, tuple args):
        cdef Future f = Future.__new__(Future)
        f._fn = fn
        f._args = args
        f._sched = self
        sched_word_init(&f._word, 1)
        cdef sched_worker *w = sched_current_worker(self.s)
        cdef sched_job *job = self._record(w)
        if job == NULL:
            # On a worker with the pool exhausted: run it here (a correct fork-join order).
            try:
                f._result = fn(*args)
            except BaseException as exc:
                f._exc = exc
            f._fn = None
            f._args = None
            sched_word_done(&f._word)
            return f
        Py_INCREF(f)  # released by _finish
        sched_job_fill(job, _run_python_job, <void *>f, SCHED_JOB_PYTHON)
        sched_inflight_add(self.s, 1)
        sched_submit(self.s, w, job)
        return f

    cdef _check_open_for_jobs(self):
        # Jobs already running may still fork while shutdown waits for them: their
        # children are part of the work in flight.
        if self._closed and not (self.s != NULL and sched_current_worker(self.s) != NULL):
            self._check_open()

    def submit(self, fn, *args):
        """Run ``fn(*args)`` on a worker; returns a Future. From inside a job this is a
        spawn: the job goes on the current worker's deque, where idle workers steal it."""
        self._check_open_for_jobs()
        return self._submit(fn, args)

    def spawn(self, fn, *args):
        """Fork: ``submit`` under its fork-join name, for use inside a job."""
        self._check_open_for_jobs()
        return self._submit(fn, args)

    def join(self, *futures):
        """Wait for every future (helping with other jobs when called inside one) and
        return their results in order; the first exception raised is re-raised."""
        return [f.result() for f in futures]

    def map(self, fn, *iterables, timeout=None):
        """Like ``Executor.map``: submits every call now, yields results in order;
        TimeoutError if they are not all done ``timeout`` seconds after the call."""
        self._check_open_for_jobs()
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self._submit(fn, args) for args in zip(*iterables)]
        return _results(futures, deadline)

    def start_native(self, str kind, count=1, *, str pattern="fork", double work_us=0.0,
                     int fib_n=20, int cutoff=12, int submitters=1, double interval_us=0.0,
                     bint verify=False, int submit_cpu=-1):
        """Start a native workload and return its NativeRun at once (never blocks).

        kind: noop | spin (work_us each) | skew (spin, one job in eight 16x longer) |
        fib (fork-join fib(fib_n) per job, sequential below ``cutoff``).
        pattern: fork (one root job spawns all) | split (recursive halving) |
        outside (``submitters`` non-worker threads push through the mailboxes, each
        pacing its submissions ``interval_us`` apart when given).
        verify: count executions per job index (missing/duplicates in the result).
        submit_cpu: pin the outside submitters to this CPU (latency probes).
        """
        self._check_open()
        if kind not in KERNELS:
            raise UnknownKernel(f"unknown kernel {kind!r}; choose from {', '.join(KERNELS)}")
        if pattern not in PATTERNS:
            raise UnknownKernel(
                f"unknown pattern {pattern!r}; choose from {', '.join(PATTERNS)}")
        if count < 0 or count >= 2**31 - 64:
            raise ValueError(f"count must be between 0 and 2**31 - 64, not {count}")
        if not 0 <= fib_n <= 45 or submitters < 1 or submitters > 256:
            raise ValueError("fib_n must be 0..45 and submitters 1..256")
        cdef sched_run_params p
        p.kernel = KERNELS[kind]
        p.pattern = PATTERNS[pattern]
        p.count = count
        p.work_ns = <uint64_t>(work_us * 1000)
        p.fib_n = fib_n
        p.cutoff = cutoff
        p.submitters = submitters
        p.interval_ns = <uint64_t>(interval_us * 1000)
        p.verify = verify
        p.submit_cpu = submit_cpu
        cdef sched_run *r
        with nogil:
            r = sched_run_start(self.s, &p)
        if r == NULL:
            raise MemoryError("could not start the native run")
        cdef NativeRun run = NativeRun.__new__(NativeRun)
        run._run = r
        run._sched = self
        run.kind = kind
        run.pattern = pattern
        return run

    def run_native(self, str kind, count=1, **options):
        """``start_native(...)`` then wait for it; returns the run's figures."""
        return self.start_native(kind, count, **options).result()

    def stats(self):
        """Figures of every worker, cheap and safe while running; shape in the package
        docstring. Counters are cumulative since the scheduler started."""
        if self.s == NULL:
            self._check_open()
            raise SchedulerClosed("the scheduler is shut down; its figures are gone")
        cdef sched *s = self.s
        cdef sched_worker *w
        cdef int i, j, b
        cdef int n = s.n
        cdef uint64_t now = sched_now()
        hot = [0] * SCHED_LAT_BUCKETS
        parked = [0] * SCHED_LAT_BUCKETS
        per_worker = []
        for i in range(n):
            w = &s.workers[i]
            per_worker.append({
                "executed": w.stats.executed,
                "stolen": w.stats.stolen,
                "steal_attempts": w.stats.steal_attempts,
                "mailbox_pushes": w.mailbox.pushed,
                "parks": w.stats.parks,
                "cancelled": w.stats.cancelled,
                "deque": deque_size(&w.deque),
                "mailbox": mpsc_size(&w.mailbox),
                "steals_from": [w.steals_from[j] for j in range(n)],
            })
            for b in range(SCHED_LAT_BUCKETS):
                hot[b] += w.stats.lat_hot[b]
                parked[b] += w.stats.lat_parked[b]
        totals = {
            key: sum(p[key] for p in per_worker)
            for key in ("executed", "stolen", "steal_attempts", "mailbox_pushes", "parks",
                        "cancelled")
        }
        return {
            "workers": n,
            "time_ns": now,
            "uptime_s": (now - s.started_ns) / 1e9,
            "searching": s.searching,
            "parked": sched_popcount(s.sleep_mask),
            "inflight": sched_word_pending(&s.inflight),
            "pool": {"size": s.pool_size, "waits": s.pool_waits},
            "totals": totals,
            "per_worker": per_worker,
            "latency": {
                "bucket_lower_ns": LATENCY_BUCKET_LOWER_NS,
                "hot": hot,
                "parked": parked,
                "hot_summary": latency_summary(hot, LATENCY_BUCKET_LOWER_NS),
                "parked_summary": latency_summary(parked, LATENCY_BUCKET_LOWER_NS),
            },
        }

    def shutdown(self, wait=True, cancel_pending=False):
        """Stop accepting work. With ``cancel_pending``, queued Python jobs complete with
        JobCancelled and native runs cancel their remaining jobs; running jobs finish.
        With ``wait`` (the default), block until everything in flight is done and the
        threads have exited. Idempotent."""
        self._closed = True
        if self.s == NULL:
            return
        if cancel_pending:
            self.s.cancelling = 1
        if not wait:
            return
        if sched_current_worker(self.s) != NULL:
            raise SchedulerError("shutdown(wait=True) from inside a job would wait for itself")
        _wait_word(&self.s.inflight, None)
        cdef sched *s = self.s
        cdef int i
        with nogil:
            sched_wake_all(s)
            _join_workers(s)
        self.s = NULL
        while self.cache_n:  # records go back with the pool itself
            self.cache_n -= 1
        sched_destroy(s)
        free(self.states)
        self.states = NULL
        _live.discard(self)
        log.info("scheduler stopped workers=%d cancelled=%s", self.workers, bool(cancel_pending))

    def __dealloc__(self):
        if self.s == NULL:
            return
        # Dropped without shutdown(). From a worker thread we cannot join ourselves: stop
        # the threads and leak the (small) core rather than free memory they still use.
        self.s.cancelling = 1
        if sched_current_worker(self.s) != NULL:
            sched_wake_all(self.s)
            return
        with nogil:
            sched_wait_word(&self.s.inflight, -1)
            sched_wake_all(self.s)
            _join_workers(self.s)
        sched_destroy(self.s)
        free(self.states)


def _results(futures, deadline):
    for f in futures:
        yield f.result(None if deadline is None else max(deadline - time.monotonic(), 0))
