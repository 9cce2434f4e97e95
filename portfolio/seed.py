"""The site's starting content, and the loader that puts it in the database.

A fresh database (a new deployment, a developer's laptop, the test suite) would otherwise
show an empty site until someone typed everything into the admin. The content lives here as
plain data, reviewed like code, and :func:`load_seed` writes it idempotently: it creates
what is missing and leaves every existing row alone, so it is safe to run on every deploy
without undoing edits made in the admin. ``refresh=True`` is the deliberate opposite: seeded
rows are overwritten with the values below.

Rows are matched on natural keys, never on primary keys: the profile by name, categories and
projects by slug, skills by name, key features by (project, order).

No :class:`~portfolio.models.ProfileLink` rows are seeded, and the profile's location and
email stay blank: links and contact details are the owner's to add in the admin, and a
made-up URL on a public page is worse than none.
"""

# The content is typeset prose: its en dashes (as in 0.2-0.5 s) are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models, transaction

from .models import KeyFeature, Profile, Project, Skill, SkillCategory

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=models.Model)


# ---------------------------------------------------------------------------
# The shape of the content
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileSeed:
    name: str
    headline: str
    bio: str


@dataclass(frozen=True)
class SkillSeed:
    name: str
    note: str


@dataclass(frozen=True)
class CategorySeed:
    """A category of the arsenal; its order on the page is its position in ``ARSENAL``."""

    name: str
    slug: str
    description: str
    skills: tuple[SkillSeed, ...]


@dataclass(frozen=True)
class FeatureSeed:
    text: str
    metric: str = ""


@dataclass(frozen=True)
class ProjectSeed:
    """A project; ``tech`` names skills of ``ARSENAL``, features are ordered from 1."""

    title: str
    slug: str
    status: str
    order: int
    tagline: str
    summary: str
    body: str
    demo_slug: str
    tech: tuple[str, ...]
    features: tuple[FeatureSeed, ...]


# ---------------------------------------------------------------------------
# The content
# ---------------------------------------------------------------------------

PROFILE = ProfileSeed(
    name="Aryan Mishra",
    headline="Backend • Systems • Full Stack Web Applications",
    bio="""\
I'm a backend and systems engineer. I build systems and backend software: database proxies,
job schedulers, runtimes, and the web services that sit on top of them. Day to day I write
TypeScript and C++.

I'm going deeper into databases, distributed systems and systems programming, mostly by
building the pieces myself and measuring them. When I build something, I write a technical
deep dive on it: the problem, the design, the trade-offs and the numbers.
""",
)

ARSENAL: tuple[CategorySeed, ...] = (
    CategorySeed(
        name="Languages",
        slug="languages",
        description="What I write in, day to day and for the projects on this site.",
        skills=(
            SkillSeed("C++", "One of my two day-to-day languages."),
            SkillSeed("TypeScript", "My other day-to-day language."),
            SkillSeed("Python", "The SQL firewall, Conduit, the Clip Worker and this site."),
            SkillSeed("C", "The work-stealing scheduler's core and the garbage collector."),
            SkillSeed(
                "SQL", "What the firewall judges and Conduit routes, statement by statement."
            ),
        ),
    ),
    CategorySeed(
        name="Databases",
        slug="databases",
        description="The databases I build on, and the protocol and parser I speak them with.",
        skills=(
            SkillSeed("PostgreSQL", "Behind the SQL firewall, and every shard Conduit routes to."),
            SkillSeed(
                "PostgreSQL wire protocol",
                "A message codec for the firewall's proxy, reused by Conduit.",
            ),
            SkillSeed("pglast", "PostgreSQL's own parser, from Python: the firewall's verdicts."),
            SkillSeed("Redis", "The Clip Worker's Celery broker."),
            SkillSeed("SQLite", "This site's local development database."),
        ),
    ),
    CategorySeed(
        name="Backend & Distributed Systems",
        slug="backend-distributed",
        description="Services, queues and spreading work and data across processes and machines.",
        skills=(
            SkillSeed("Django", "The Clip Worker's web process, and this site."),
            SkillSeed("Celery", "The Clip Worker's workers and its priority queues."),
            SkillSeed("asyncio", "The SQL firewall's proxy: many client connections at once."),
            SkillSeed("WebSockets", "Live progress in the Clip Worker; the live demos here."),
            SkillSeed(
                "Connection pooling",
                "Warm server connections in the firewall, session and transaction modes.",
            ),
            SkillSeed("Consistent hashing", "Conduit's hash ring with virtual nodes."),
            SkillSeed("Sharding", "Conduit: one logical database across PostgreSQL instances."),
        ),
    ),
    CategorySeed(
        name="Systems Programming",
        slug="systems",
        description="Concurrency, memory and the machine underneath.",
        skills=(
            SkillSeed(
                "Lock-free data structures",
                "Chase-Lev work-stealing deques and an MPSC mailbox in the scheduler.",
            ),
            SkillSeed("C11 atomics", "Memory ordering in the scheduler's deques and mailbox."),
            SkillSeed(
                "Memory management",
                "The mark-and-sweep collector; an allocation-free hot path in the scheduler.",
            ),
            SkillSeed(
                "pthreads",
                "Scheduler workers that spin then park; the collector's safepoints.",
            ),
            SkillSeed("Cython", "The Python wrapper around the scheduler's C core."),
            SkillSeed(
                "Cache-aware data layout",
                "Cache-line-aligned per-worker state in the scheduler, against false sharing.",
            ),
        ),
    ),
    CategorySeed(
        name="Tools",
        slug="tools",
        description="What I build, test, measure and run things with.",
        skills=(
            SkillSeed("Git", "Every project on this site."),
            SkillSeed("Linux", "Where all of it is built, run and measured."),
            SkillSeed("Docker", "Disposable PostgreSQL and Redis instances for development."),
            SkillSeed("FFmpeg", "The trimming itself in the Clip Worker."),
            SkillSeed("yt-dlp", "Fetching the Clip Worker's sources from URLs."),
            SkillSeed("pgbench", "Driving load through the SQL firewall and its pooler."),
            SkillSeed("pytest", "Tests for the Python projects and this site."),
        ),
    ),
)

FEATURED = Project.Status.FEATURED
BUILDING = Project.Status.BUILDING

PROJECTS: tuple[ProjectSeed, ...] = (
    ProjectSeed(
        title="PostgreSQL SQL Firewall & Connection Pooler",
        slug="sql-firewall",
        status=FEATURED,
        order=1,
        tagline="A PostgreSQL wire-protocol proxy that blocks destructive SQL and pools "
        "connections.",
        summary="A proxy that speaks the PostgreSQL wire protocol, parses every statement with "
        "PostgreSQL's own parser (pglast) and refuses the destructive ones (DROP, TRUNCATE, "
        "ALTER TABLE, DELETE or UPDATE without WHERE) with a proper ErrorResponse, while the "
        "client's connection stays usable. It keeps warm server connections in session and "
        "transaction pooling modes, caches verdicts per statement and audits every decision.",
        body="""\
## The problem

Application credentials usually allow far more than the application needs. One bad
migration, a console open on the wrong host, or an injected statement, and a `DROP TABLE` or
an unqualified `DELETE` reaches production. Database permissions help, but they are coarse.
I wanted a guard that understands each statement and sits where every client already goes:
the connection.

## The design

The proxy sits between clients and PostgreSQL and speaks the wire protocol on both sides.
Each statement's text goes to pglast, the actual PostgreSQL parser, so the firewall sees
what the server would see: comments, odd quoting and casing included. The verdict is taken
on the parse tree, not on regular expressions:

| Statement | Verdict |
|---|---|
| `DROP ...` | blocked |
| `TRUNCATE` | blocked |
| `ALTER TABLE` | blocked |
| `DELETE` or `UPDATE` without `WHERE` | blocked |
| everything else | forwarded |

A blocked statement never reaches the server. The client gets an `ErrorResponse` with
SQLSTATE `42501` (insufficient_privilege) followed by `ReadyForQuery`, so its driver raises
an ordinary error and the session carries on:

```text
client -> Query        "TRUNCATE orders"
proxy  -> ErrorResponse C=42501        (never forwarded)
proxy  -> ReadyForQuery
client -> Query        "SELECT count(*) FROM orders"   (same connection, still works)
```

Verdicts are cached by statement text, so a hot query is parsed once, not on every run.
Every verdict, allowed or blocked, goes to an audit log with the reason.

## Pooling

Opening a PostgreSQL connection costs a new server process and an authentication round
trip. The proxy keeps server connections warm and hands them out in two modes: **session**
(a client keeps its server connection until it disconnects) and **transaction** (the server
connection goes back to the pool when the transaction ends, so many clients share a few
backends).

## What's measured

The owner's test: 2,000 one-row primary-key `SELECT`s over 20 connections at once, first
straight to PostgreSQL, then through the proxy, every query timed by the client. On this
site's 2-core server, which runs the client, the proxy and PostgreSQL side by side:

| Measure | Direct | Through the proxy |
|---|---|---|
| Total time for the 2,000 queries | 0.1–0.2 s | 0.2–0.5 s |
| Latency per query, P50 | 1.0–1.2 ms | 1.7–3 ms |

The demo page runs the same test again on request and shows this server's numbers of the
moment; the benchmark against PgBouncer is in the repository's `bench/`.
""",
        demo_slug="firewall",
        tech=(
            "Python",
            "asyncio",
            "PostgreSQL",
            "PostgreSQL wire protocol",
            "pglast",
            "SQL",
            "Connection pooling",
            "pgbench",
        ),
        features=(
            FeatureSeed(
                "0.2–0.5 s for 2,000 queries over 20 connections through the proxy, "
                "1.7–3 ms per query at P50 (direct: 0.1–0.2 s, 1.0–1.2 ms), measured on this "
                "site's 2-core server; the demo page runs it again.",
                "0.2–0.5 s",
            ),
            FeatureSeed(
                "Blocks DROP, TRUNCATE, ALTER TABLE, and DELETE or UPDATE without WHERE, "
                "judged on PostgreSQL's own parse tree (pglast), not on regular expressions."
            ),
            FeatureSeed(
                "A blocked statement gets an ErrorResponse with SQLSTATE 42501 and never "
                "reaches the server; the client's connection stays usable."
            ),
            FeatureSeed(
                "Connection pooling with warm server connections, in session and transaction modes."
            ),
            FeatureSeed("Verdict cache keyed by statement text: a repeated query is parsed once."),
            FeatureSeed("Audit log of every verdict, allowed or blocked, with its reason."),
        ),
    ),
    ProjectSeed(
        title="Work-Stealing Job Scheduler",
        slug="work-stealing-scheduler",
        status=FEATURED,
        order=2,
        tagline="Lock-free per-worker deques and randomized stealing, in C with a Cython wrapper.",
        summary="A job scheduler with a C core and a Cython wrapper. Each worker owns a "
        "lock-free Chase-Lev deque, submissions from outside the pool go through an MPSC "
        "mailbox, and idle workers steal from random victims, spin briefly, then park. The hot "
        "path allocates nothing and per-worker state sits on its own cache line. A job "
        "submitted to an idle pool starts under 5 µs later (P50, a worker still spinning), and "
        "the pool runs over a million empty jobs a second; the live demo measures both.",
        body="""\
## The problem

When jobs take microseconds, a single shared queue becomes the bottleneck: every push and
pop contends on the same lock and the same cache lines, and the queue, not the work, sets
the throughput. Work stealing gives each worker its own queue and only makes workers
interact when one of them runs dry.

## The design

- **Per-worker Chase-Lev deques.** A worker pushes and pops its own jobs at the bottom
  without locks; a thief takes from the top with a single compare-and-swap.
- **An MPSC mailbox for outside submissions.** Threads outside the pool never touch a
  deque's bottom end, which belongs to its owner alone; they post to a multi-producer,
  single-consumer mailbox instead.
- **Randomized stealing.** A worker with nothing to do picks victims at random, which
  spreads thieves out instead of piling them onto one busy worker.
- **Spin, then park.** An idle worker spins for a bounded time, so a short gap costs no
  system call, then parks until new work wakes it.
- **No allocation on the hot path, cache-line-aligned per-worker state.** Submitting and
  running a job never calls the allocator, and workers never write to each other's cache
  lines by accident (no false sharing).

```text
worker loop:
    job = pop(own deque)           # bottom end, no lock
       or take(mailbox)            # submissions from outside the pool
       or steal(random victim)     # top end, one CAS
    if job: run(job); continue
    spin a bounded number of rounds, then park until woken
```

The core is C11 with atomics and pthreads; a Cython wrapper exposes the pool to Python,
which is what the live demo drives.

## What's measured

| Measure | Result |
|---|---|
| Submit-to-start, idle pool, P50, hot (a worker still spinning) | < 5 µs (0.4–0.6 µs measured) |
| Submit-to-start, idle pool, P50, parked (every worker asleep) | about 10–30 µs |
| Throughput, empty native jobs, 2 workers | 1M+ jobs/s (9–10 M/s measured) |

The live demo measures all three on the server it runs on. After every run it sends single
empty jobs to the idle workers, 20 µs apart (a worker is still spinning) and then 1 ms apart
(every worker has parked), and shows the P50 of each; a run of empty native jobs shows the
throughput. Queueing delay is a different quantity, and the demo shows it too: 200,000 jobs
of 20 µs queued at once on two workers wait behind each other, 0.5–1 s at the median.
On a shared machine the hot figure is the fragile one: when other work takes the spinning
worker's core it rises to tens of microseconds.
""",
        demo_slug="scheduler",
        tech=(
            "C",
            "C11 atomics",
            "Lock-free data structures",
            "pthreads",
            "Memory management",
            "Cache-aware data layout",
            "Cython",
            "Python",
        ),
        features=(
            FeatureSeed(
                "< 5 µs P50 submit-to-start, idle pool (a worker still spinning).", "< 5 µs P50"
            ),
            FeatureSeed("1M+ jobs/s throughput, empty native jobs.", "1M+ jobs/s"),
            FeatureSeed(
                "Per-worker lock-free Chase-Lev deques: the owner works the bottom end, "
                "thieves take from the top with one CAS."
            ),
            FeatureSeed(
                "Hybrid design: an MPSC mailbox for submissions from outside the pool, "
                "randomized victim selection for steals."
            ),
            FeatureSeed("Spin-then-park idling: short gaps stay on the CPU, long ones sleep."),
            FeatureSeed(
                "No allocation on the hot path; cache-line-aligned per-worker state against "
                "false sharing."
            ),
            FeatureSeed("C core with a Cython wrapper, driven from Python."),
        ),
    ),
    ProjectSeed(
        title="Clip Worker",
        slug="clip-worker",
        status=FEATURED,
        order=3,
        tagline="A multi-process Django and Celery monolith that trims video with FFmpeg.",
        summary="A clip-trimming service built as a multi-process monolith: a Django web "
        "process takes requests, Celery workers on Redis do the trimming with FFmpeg, and "
        "progress streams to the browser over websockets. Sources are uploaded or fetched with "
        "yt-dlp, jobs go through priority queues, and bursts of 4,000+ jobs wait in the queue "
        "instead of taking the site down.",
        body="""\
## The problem

Trimming a clip takes seconds to minutes of CPU and disk, far too long to do inside a web
request. Demand also comes in bursts: thousands of jobs can arrive at once, and the site has
to accept them without falling over or making anyone wait on a hung page.

## The design

One codebase, several processes:

| Process | Does |
|---|---|
| web (Django) | takes uploads and URLs, creates jobs, serves pages |
| worker (Celery) | fetches sources with yt-dlp, runs FFmpeg, reports progress |
| Redis | the broker between them |

The web process only validates and enqueues; the heavy work never runs in a request. Jobs
are routed to priority queues, so a backlog of bulk work does not hold up urgent jobs.
Workers report progress as they go, and it reaches the browser over a websocket, so the page
shows a live progress bar instead of polling.

## Bursts

The queue is the buffer. A burst of 4,000+ jobs lands in Redis, the workers drain it as fast
as FFmpeg allows, and the web process stays responsive because accepting a job costs it
almost nothing. More throughput means more worker processes, not changes to the code.
""",
        demo_slug="clips",
        tech=("Python", "Django", "Celery", "Redis", "WebSockets", "FFmpeg", "yt-dlp"),
        features=(
            FeatureSeed(
                "Absorbs bursts of 4,000+ jobs: the web process enqueues, the workers drain "
                "the queue at FFmpeg's pace.",
                "4,000+ jobs",
            ),
            FeatureSeed(
                "Multi-process monolith: a Django web process and Celery workers on Redis, "
                "from one codebase."
            ),
            FeatureSeed("Trimming with FFmpeg in the workers, never inside a web request."),
            FeatureSeed("Sources uploaded directly or fetched from a URL with yt-dlp."),
            FeatureSeed("Priority queues: urgent jobs don't wait behind a bulk backlog."),
            FeatureSeed("Live progress from the worker to the browser over websockets."),
        ),
    ),
    ProjectSeed(
        title="Mark-and-Sweep Garbage Collector",
        slug="mark-sweep-gc",
        status=FEATURED,
        order=4,
        tagline="A thread-safe tri-color mark-and-sweep collector for a small VM, in C.",
        summary="A garbage collector for a small virtual machine, with its core in C. It finds "
        "roots on the VM's stack and in its globals, marks with tri-color marking and an "
        "explicit gray stack instead of recursion, and sweeps what was not reached. Mutator "
        "threads stop at safepoints while it runs, and a stress mode collects on every "
        "allocation to flush out missing roots.",
        body="""\
## The problem

A VM that allocates objects has to free the ones nothing can reach, and must never free one
that something still can: that is the bug that matters, and it usually shows up far from its
cause. With several mutator threads, the collector also needs a moment when nobody is
changing the heap.

## The design

- **Roots** come from the VM's value stack and its globals.
- **Marking is tri-color.** White objects have not been reached, gray ones have been reached
  but not scanned, black ones are done. Gray objects wait on an explicit stack, so a long
  chain of objects cannot overflow the C stack the way recursive marking would.
- **Sweeping** frees every object still white and resets the survivors for the next cycle.

```text
mark roots (VM stack, globals)     -> gray stack
while the gray stack is not empty:
    obj = pop()
    for each object obj references:
        if white: color it gray, push it
    color obj black
sweep: free white objects, whiten black ones
```

## Threads

Collection is stop-the-world. When a collection is due, every mutator thread stops at its
next safepoint; the collector runs once all of them have stopped, then lets them go. No
thread ever sees a half-marked heap.

## Testing it

A stress mode collects on every allocation. A root the VM forgot to report then fails at
once, next to the bug, instead of thousands of allocations later.
""",
        demo_slug="gc",
        tech=("C", "Memory management", "pthreads"),
        features=(
            FeatureSeed("Root finding from the VM's stack and globals."),
            FeatureSeed(
                "Tri-color marking with an explicit gray stack: no recursion, no C-stack "
                "overflow on deep object graphs."
            ),
            FeatureSeed("Sweep frees unreached objects and resets survivors for the next cycle."),
            FeatureSeed("Thread-safe: mutator threads stop at safepoints for each collection."),
            FeatureSeed(
                "Stress mode that collects on every allocation, so a missing root fails at once."
            ),
        ),
    ),
    ProjectSeed(
        title="Conduit",
        slug="conduit",
        status=BUILDING,
        order=5,
        tagline="A SQL router across sharded PostgreSQL, by consistent hashing.",
        summary="A router in front of several PostgreSQL instances: it parses each statement, "
        "finds the key it touches and sends it to the shard that owns that key on a "
        "consistent-hash ring with virtual nodes. It reuses the SQL firewall's wire-protocol "
        "codec, so clients connect to it as if it were PostgreSQL. Work in progress.",
        body="""\
## The idea

Split one logical database across several PostgreSQL instances, and keep that invisible to
clients: they connect to Conduit as they would to PostgreSQL, and Conduit decides which
shard each statement goes to. The wire-protocol codec comes from the SQL firewall, so the
new work is the routing.

## Routing

Conduit parses each statement to find its shard key, hashes the key to a point on a ring,
and sends the statement to the first shard clockwise from that point. Each shard appears on
the ring many times as virtual nodes, which evens out how many keys each shard owns. Adding
a shard moves only the keys that now fall to it, not everything.

## Status

Currently building. The live demo routes statements across three PostgreSQL shards.
""",
        demo_slug="router",
        tech=(
            "Python",
            "SQL",
            "PostgreSQL",
            "PostgreSQL wire protocol",
            "Consistent hashing",
            "Sharding",
        ),
        features=(
            FeatureSeed("Parses each statement to find its shard key before routing it."),
            FeatureSeed(
                "Consistent hashing on a ring with virtual nodes: adding a shard moves only "
                "the keys that now belong to it."
            ),
            FeatureSeed(
                "Reuses the SQL firewall's wire-protocol codec: clients connect as to PostgreSQL."
            ),
        ),
    ),
)


# ---------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------


def check_content() -> None:
    """Raise ``ValueError`` if the content contradicts itself (a tech tag not in the arsenal).

    Run by :func:`load_seed` before it writes anything, so bad content fails loudly instead of
    silently dropping a tag.
    """
    skills = {skill.name for category in ARSENAL for skill in category.skills}
    unknown = sorted({name for p in PROJECTS for name in p.tech} - skills)
    if unknown:
        raise ValueError(f"Project tech not in the arsenal: {', '.join(unknown)}")


def load_seed(refresh: bool = False) -> dict[str, int]:
    """Write the seed content; return how many rows of each kind were created.

    Missing rows are created; existing ones are left as they are, unless ``refresh`` is true,
    in which case they are overwritten with the seed values and a seeded project's key
    features are replaced by the seed's. Running it twice creates nothing the second time.
    All or nothing: it runs in one transaction.
    """
    check_content()
    created = {"profiles": 0, "categories": 0, "skills": 0, "projects": 0, "features": 0}
    with transaction.atomic():
        _, was_created = _upsert(
            Profile,
            {"name": PROFILE.name},
            {"headline": PROFILE.headline, "bio": PROFILE.bio},
            refresh,
        )
        created["profiles"] += was_created

        skills: dict[str, Skill] = {}
        for category_order, category_seed in enumerate(ARSENAL, start=1):
            category, was_created = _upsert(
                SkillCategory,
                {"slug": category_seed.slug},
                {
                    "name": category_seed.name,
                    "description": category_seed.description,
                    "order": category_order,
                },
                refresh,
            )
            created["categories"] += was_created
            for skill_order, skill_seed in enumerate(category_seed.skills, start=1):
                skill, was_created = _upsert(
                    Skill,
                    {"name": skill_seed.name},
                    {"category": category, "note": skill_seed.note, "order": skill_order},
                    refresh,
                )
                created["skills"] += was_created
                skills[skill.name] = skill

        for project_seed in PROJECTS:
            project, was_created = _upsert(
                Project,
                {"slug": project_seed.slug},
                {
                    "title": project_seed.title,
                    "status": project_seed.status,
                    "order": project_seed.order,
                    "tagline": project_seed.tagline,
                    "summary": project_seed.summary,
                    "body": project_seed.body,
                    "demo_slug": project_seed.demo_slug,
                },
                refresh,
            )
            created["projects"] += was_created
            if was_created or refresh:
                project.tech.set([skills[name] for name in project_seed.tech])
            created["features"] += _sync_features(project, project_seed.features, refresh)

    logger.info(
        "seed loaded refresh=%s %s",
        refresh,
        " ".join(f"{kind}_created={count}" for kind, count in created.items()),
    )
    return created


def _upsert(
    model: type[ModelT], lookup: dict[str, Any], values: dict[str, Any], refresh: bool
) -> tuple[ModelT, bool]:
    """Find the row by its natural key or create it; with ``refresh``, overwrite its values.

    Saves through ``save()`` (not ``update()``) so models that render markdown on save keep
    their HTML in step, and only when a value actually differs.
    """
    obj = model._default_manager.filter(**lookup).order_by("pk").first()
    if obj is None:
        return model._default_manager.create(**lookup, **values), True
    if refresh:
        changed = [field for field, value in values.items() if getattr(obj, field) != value]
        if changed:
            for field in changed:
                setattr(obj, field, values[field])
            obj.save()
    return obj, False


def _sync_features(project: Project, seeds: tuple[FeatureSeed, ...], refresh: bool) -> int:
    """Create the project's missing key features, keyed by order; return how many.

    With ``refresh`` the project's features become exactly the seed's: rows at a seeded order
    are overwritten, and any others (extra orders, duplicates) are deleted.
    """
    existing: dict[int, KeyFeature] = {}
    strays: list[int] = []
    for feature in project.features.order_by("order", "pk"):
        if feature.order in existing:
            strays.append(feature.pk)
        else:
            existing[feature.order] = feature

    created = 0
    for order, seed in enumerate(seeds, start=1):
        feature = existing.pop(order, None)
        if feature is None:
            KeyFeature.objects.create(
                project=project, order=order, text=seed.text, metric=seed.metric
            )
            created += 1
        elif refresh and (feature.text, feature.metric) != (seed.text, seed.metric):
            feature.text, feature.metric = seed.text, seed.metric
            feature.save(update_fields=["text", "metric"])

    if refresh:
        strays.extend(feature.pk for feature in existing.values())
        if strays:
            KeyFeature.objects.filter(pk__in=strays).delete()
    return created
