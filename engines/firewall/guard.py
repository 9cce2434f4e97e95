"""The guard: decides from PostgreSQL's own parse tree whether a statement may run, and
settles for one session what depends on it.

Every Query, Parse, Bind and FunctionCall is judged. The text is parsed with pglast
(libpg_query, the PostgreSQL parser itself) into JSON and walked against a deny-by-default
policy (tree_policy.py); comments and literals never match, and a destructive node is found
wherever it hides. Parsing costs ~20 µs, so verdicts are cached under a key that keeps every
token but the values of numbers (_guard.pyx, ``verdict_key``); a verdict that read a
constant's value is shared with the very same text only.

A session reads bytes in its client encoding (a statement's bytes are decoded as the server
would convert them), judges Binds of statements whose verdict waits for parameters, lifts
refusals on its own temporary tables, and refuses session state under transaction pooling
(``GuardSession``).

Long statements are judged in a worker process, never on the event loop: pglast's parse
releases the GIL, but loading its JSON does not (0.95 s for the 20 MB tree of an 800 KB
chain of ANDs), and a thread would hold every other client up that long. A statement that
cannot be checked in time is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import pglast
from pglast import ast
from pglast import parser as pg_parser
from pglast.stream import RawStream

from engines.pgproxy import encodings
from engines.procs import follow_parent

from ._guard import GuardStats, SessionGuard, verdict_key
from .catalog import Catalog
from .parse_tree import TooComplex
from .tree_policy import DEFAULT_DDL, Decision, TreePolicy
from .verdicts import (
    ALLOWED,
    CHARACTER_NOT_IN_REPERTOIRE,
    PROGRAM_LIMIT_EXCEEDED,
    RULES,
    SYNTAX_ERROR,
    Rule,
    Verdict,
    refusal,
)

__all__ = ["ALLOWED", "RULES", "Guard", "GuardSession", "Rule", "Verdict"]

logger = logging.getLogger(__name__)

# Stored under a shape's key when its verdict read a constant: look up the exact text.
_BY_TEXT = Verdict(False, "by_text")
_POLICY: TreePolicy | None = None  # in a worker process: the policy it judges by


def _start_worker(policy: TreePolicy, parent: int) -> None:
    global _POLICY
    _POLICY = policy
    follow_parent(parent, signal.SIGTERM)  # a proxy killed outright takes its worker along


def _judge_in_worker(
    text: str, simple: bool, deadline: float, max_bytes: int
) -> tuple[Verdict, bool, bool]:
    assert _POLICY is not None
    return judge(_POLICY, text, simple, deadline, max_bytes)


def _too_complex() -> Verdict:
    return refusal(
        "too_complex", "the statement is too large or nests too deeply to check in time",
        PROGRAM_LIMIT_EXCEEDED,
    )  # fmt: skip


def judge(
    policy: TreePolicy, text: str, simple: bool, deadline: float, max_bytes: int
) -> tuple[Verdict, bool, bool]:
    """The verdict on a query string; whether it depends on the exact text (it read a
    constant, or failed in a way a number's length could decide); whether it failed to
    parse. Plain data in and out: it runs in a worker process for long statements."""
    if len(text) > max_bytes:
        return refusal(
            "too_long", f"query of {len(text)} characters exceeds the {max_bytes}-byte limit",
            PROGRAM_LIMIT_EXCEEDED,
        ), True, False  # fmt: skip
    try:
        tree = json.loads(pg_parser.parse_sql_json(text))
        decision = policy.decide(tree, simple_query=simple, deadline=deadline)
    except pg_parser.ParseError as exc:
        # Fail closed: what the guard cannot read, it does not let through.
        return Verdict(False, "parse_error", f"firewall: {exc}", SYNTAX_ERROR), True, True
    except (TooComplex, RecursionError):
        return _too_complex(), True, False
    verdict = _verdict(decision)
    if decision.index_renames and verdict.allowed:
        if not simple:
            return refusal(
                "alter_table", "ALTER INDEX … RENAME only in a simple Query, where the "
                "firewall can check first that an index is what it renames",
            ), True, False  # fmt: skip
        verdict = dataclasses.replace(verdict, sql=_index_checks(decision.index_renames) + text)
        return verdict, True, False
    return verdict, decision.value_dependent, False


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"  # standard_conforming_strings is on


def _index_checks(names: list[tuple[str | None, str]]) -> str:
    """SQL that fails unless every name is an index: PostgreSQL's ALTER INDEX … RENAME
    renames any relation, a table included, so the firewall lets it run only after the
    server has said, in the same implicit transaction, that it is an index (else the cast
    of the message to int fails, and the error shows it)."""
    checks = []
    for schema, name in names:
        ident = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name) if part)
        message = f"firewall: ALTER INDEX renames only indexes, and {ident} is not one"
        # The message comes out of the subquery: a constant's failing cast would be folded,
        # and so raised, when the statement is planned, index or not.
        checks.append(
            "SELECT CASE WHEN c.n > 0 THEN 0 ELSE c.message::int END FROM (SELECT count(*) "  # noqa: S608 - _literal quotes
            f"AS n, {_literal(message)}::text AS message FROM pg_catalog.pg_class WHERE oid = "
            f"pg_catalog.to_regclass({_literal(ident)}) AND relkind IN ('i', 'I')) c;"
        )
    return " ".join(checks) + " "


def _verdict(d: Decision) -> Verdict:
    settle = {
        "session_only": d.session_only, "creates_temp": frozenset(d.creates_temp),
        "deferred": tuple(d.deferred), "holds": d.holds,
    }  # fmt: skip
    if d.findings:
        return refusal(*d.findings[0])
    if d.temp_findings:
        return refusal(*d.temp_findings[0], temp_targets=frozenset(d.temp_targets), **settle)
    if d.session_only or d.creates_temp or d.deferred or d.holds:
        return Verdict(True, **settle)
    return ALLOWED


def qualify_temp(sql: str, names: frozenset[str]) -> str:
    """``sql`` with the unqualified relations of its DROP, TRUNCATE, ALTER TABLE, renames and
    indexes qualified by pg_temp: run as the session's own temporary objects or not at all,
    never on a permanent table of the same name (if the temporary one was never made, or
    was dropped at commit)."""
    statements = pglast.parse_sql(sql)
    for raw in statements:
        node = raw.stmt
        if isinstance(node, ast.DropStmt):
            node.objects = tuple(
                (ast.String("pg_temp"), *item) if len(item) == 1 and item[0].sval in names else item
                for item in node.objects
            )
        elif isinstance(node, ast.TruncateStmt):
            for relation in node.relations:
                if relation.schemaname is None and relation.relname in names:
                    relation.schemaname = "pg_temp"
        elif isinstance(node, ast.AlterTableStmt | ast.RenameStmt | ast.IndexStmt):
            relation = node.relation
            if relation is not None and relation.schemaname is None and relation.relname in names:
                relation.schemaname = "pg_temp"
    return RawStream()(statements)


class Guard:
    """One database's guard: its policy, its verdict caches (per client encoding and per
    protocol), its counters. ``exempt_roles`` skip every check (migrations, say)."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        ddl: frozenset[str] = DEFAULT_DDL,
        settings: frozenset[str] = frozenset(),
        exempt_roles: frozenset[str] | set[str] = frozenset(),
        stats: GuardStats | None = None,
        cache_size: int = 10_000,
        max_query_bytes: int = 8 << 20,
        offload_bytes: int = 32 << 10,
        check_timeout: float = 10.0,
        max_pending: int = 4,
    ) -> None:
        self.policy = TreePolicy(catalog, ddl=frozenset(ddl), extra_settings=frozenset(settings))
        self.exempt_roles = frozenset(exempt_roles)
        self.stats = stats if stats is not None else GuardStats()
        self.cache_size = cache_size
        self.max_query_bytes = max_query_bytes
        self.offload_bytes = offload_bytes
        self.check_timeout = check_timeout
        self.max_pending = max_pending
        self.pending = 0
        self._pool: ProcessPoolExecutor | None = None
        # Insertion-ordered, evicted oldest-first: a hit costs one lookup and nothing more.
        self._caches: dict[tuple[str, bool], dict[bytes, Verdict]] = {}

    @property
    def rules(self) -> frozenset[str]:
        """Every rule is enforced: the policy denies by default."""
        return frozenset(RULES)

    def cache_for(self, codec: str, simple: bool) -> dict[bytes, Verdict]:
        """The verdicts of statements read in ``codec``, sent as simple Queries or not."""
        return self._caches.setdefault((codec, simple), {})

    def session(
        self, role: str, *, transaction_mode: bool = True, encoding: str = "UTF8"
    ) -> GuardSession:
        """The guard as the policy of one session (_policy.pyx)."""
        return GuardSession(self, role, transaction_mode=transaction_mode, encoding=encoding)

    def count(self, verdict: Verdict) -> Verdict:
        if not verdict.allowed and verdict.pending is None and verdict.rule is not None:
            self.stats.blocked[verdict.rule] = self.stats.blocked.get(verdict.rule, 0) + 1
        return verdict

    def check(
        self, sql: str | bytes, role: str | None = None, *, encoding: str = "UTF8",
        simple: bool = True,
    ) -> Verdict:  # fmt: skip
        """The verdict on one query string as a client sent it (text, or bytes in
        ``encoding``), without a session: what a statement's text alone decides."""
        if role is not None and role in self.exempt_roles:
            return ALLOWED
        raw = sql if isinstance(sql, bytes) else sql.encode(encodings.codec(encoding) or "utf-8")
        return self.count(self.verdict(raw, encodings.codec(encoding) or "utf-8", simple))

    def verdict(self, raw: bytes, codec: str, simple: bool, offload: bool = False) -> Verdict:
        """The shared verdict on ``raw``, cached. With ``offload``, a long statement not in
        the cache is parsed on the worker thread: the verdict is then ``pending``."""
        self.stats.checked += 1
        cache = self.cache_for(codec, simple)
        key = verdict_key(raw)
        verdict = cache.get(key)
        if verdict is _BY_TEXT:
            verdict = cache.get(raw)
        if verdict is not None:
            self.stats.cache_hits += 1
            return verdict
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            return refusal(
                "encoding", f"invalid byte sequence for the client encoding: {exc.reason}",
                CHARACTER_NOT_IN_REPERTOIRE,
            )  # fmt: skip
        if offload and len(raw) > self.offload_bytes:
            return self._offload(key, raw, text, simple, cache)
        verdict, by_text = self._decide(text, simple, time.monotonic() + self.check_timeout)
        self._store(cache, key, raw, verdict, by_text)
        return verdict

    def _store(
        self, cache: dict[bytes, Verdict], key: bytes, raw: bytes, verdict: Verdict, by_text: bool
    ) -> None:
        while len(cache) >= self.cache_size:
            del cache[next(iter(cache))]
        if by_text and key != raw:
            cache[key] = _BY_TEXT
            key = raw
        cache[key] = verdict

    def _workers(self) -> ProcessPoolExecutor:
        """One worker process per guard, started at the first long statement: one, so a
        flood of them queues instead of taking every core and all memory; spawned, so it
        inherits nothing of the proxy's sockets or loop."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self.policy, os.getpid()),
            )  # fmt: skip
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _offload(
        self, key: bytes, raw: bytes, text: str, simple: bool, cache: dict[bytes, Verdict]
    ) -> Verdict:
        if self.pending >= self.max_pending:
            return refusal(
                "too_complex", "the firewall is already checking several long statements; "
                "try again in a moment", PROGRAM_LIMIT_EXCEEDED,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.check_timeout  # CLOCK_MONOTONIC: one per machine
        work = loop.run_in_executor(
            self._workers(), _judge_in_worker, text, simple, deadline, self.max_query_bytes
        )
        decided: asyncio.Future = loop.create_future()
        self.pending += 1

        def done(future: asyncio.Future) -> None:
            self.pending -= 1
            try:
                verdict, by_text, failed = future.result()
            except Exception:
                logger.exception("event=guard_failed bytes=%d", len(raw))
                verdict, by_text, failed = _too_complex(), True, False
            self.stats.parse_errors += failed
            self._store(cache, key, raw, verdict, by_text)
            if not decided.done():
                decided.set_result(verdict)

        work.add_done_callback(done)
        return Verdict(False, pending=decided)

    def _decide(self, text: str, simple: bool, deadline: float) -> tuple[Verdict, bool]:
        verdict, by_text, failed = judge(self.policy, text, simple, deadline, self.max_query_bytes)
        self.stats.parse_errors += failed
        return verdict, by_text


class GuardSession(SessionGuard):
    """The guard for one client session: its encoding, its pool mode, its temporary
    relations, the checks its prepared statements wait to run at Bind.

    The compiled base (_guard.SessionGuard) answers a simple Query from the verdict cache
    without Python; everything else comes here (the _policy.Policy contract)."""

    def __init__(self, guard: Guard, role: str, *, transaction_mode: bool, encoding: str) -> None:
        super().__init__(guard, role, ALLOWED)
        self.guard = guard
        self.exempt = role in guard.exempt_roles
        self.transaction_mode = transaction_mode
        self.temps: set[str] = set()
        self.codec = "utf-8"
        self._deferred: dict[bytes, tuple] = {}
        self._ready: tuple[bytes, bool, Verdict] | None = None
        if not self.set_encoding(encoding):
            raise ValueError(f"client_encoding {encoding} cannot be read by the guard")

    def set_encoding(self, name: str) -> bool:
        """The client encoding changed (login, or the server reported a SET): read the next
        statements in it. False if the guard cannot read it as the server does."""
        codec = encodings.codec(name)
        if codec is None:
            return False
        self.codec = codec
        self.use_cache(self.guard.cache_for(codec, True))
        return True

    def check(self, sql: bytes, statement: bytes | None = None) -> Verdict:
        """The verdict on a Query's text (``statement`` None) or a Parse's (the client's
        statement name, b"" for the unnamed one)."""
        if self.exempt:
            return ALLOWED
        simple = statement is None
        if simple:
            self._deferred.pop(b"", None)  # a simple Query drops the unnamed statement
        ready = self._ready
        if ready is not None and ready[0] == sql and ready[1] == simple:
            self._ready = None
            verdict = ready[2]
        else:
            verdict = self.guard.verdict(sql, self.codec, simple, offload=True)
        if verdict.pending is not None:
            return self._wait(verdict.pending, sql, simple)
        return self.guard.count(self._settle(verdict, sql, statement))

    def _wait(self, pending: asyncio.Future, sql: bytes, simple: bool) -> Verdict:
        """A pending verdict for this session: when the shared one is decided, it is kept
        for the session's next ask, whatever the cache has evicted meanwhile."""
        mine: asyncio.Future = asyncio.get_running_loop().create_future()

        def done(future: asyncio.Future) -> None:
            self._ready = (sql, simple, future.result())
            if not mine.done():
                mine.set_result(None)

        pending.add_done_callback(done)
        return Verdict(False, pending=mine)

    def _settle(self, verdict: Verdict, sql: bytes, statement: bytes | None) -> Verdict:
        if isinstance(verdict.sql, str):  # the guard's rewrite, in the session's encoding
            verdict = dataclasses.replace(verdict, sql=verdict.sql.encode(self.codec))
        if verdict.blocked and verdict.temp_targets and verdict.temp_targets <= self.temps:
            text = qualify_temp(sql.decode(self.codec), verdict.temp_targets)
            verdict = Verdict(
                True, session_only=verdict.session_only, creates_temp=verdict.creates_temp,
                deferred=verdict.deferred, holds=verdict.holds, sql=text.encode(self.codec),
            )  # fmt: skip
        if verdict.allowed and verdict.session_only and self.transaction_mode:
            verdict = refusal("session_state", verdict.session_only)
        if verdict.blocked:
            if statement is not None:
                self._deferred.pop(statement, None)
            return verdict
        self.temps |= verdict.creates_temp
        if statement is not None:
            if verdict.deferred:
                self._deferred[statement] = verdict.deferred
            else:
                self._deferred.pop(statement, None)
        elif verdict.deferred:
            # Parameters in a simple Query: PostgreSQL refuses them, and so does the guard.
            for check in verdict.deferred:
                refused = check.check([], [], self.codec)
                if refused is not None and refused.blocked:
                    return refused
        return verdict

    def checks_bind(self, statement: bytes) -> bool:
        """Whether a Bind of ``statement`` has checks waiting for its values."""
        return statement in self._deferred and not self.exempt

    def check_bind(
        self, statement: bytes, values: list[bytes | None], formats: list[int]
    ) -> Verdict:
        """The verdict on a Bind of the client's ``statement`` with these values."""
        checks = self._deferred.get(statement)
        if not checks or self.exempt:
            return ALLOWED
        for check in checks:
            verdict = check.check(values, formats, self.codec)
            if verdict is None:
                continue
            if verdict.allowed and verdict.session_only and self.transaction_mode:
                verdict = refusal("session_state", verdict.session_only)
            if verdict.blocked:
                return self.guard.count(verdict)
        return ALLOWED

    def forget(self, statement: bytes) -> None:
        """The client closed ``statement``."""
        self._deferred.pop(statement, None)

    def check_function_call(self, oid: int) -> Verdict:
        """The verdict on a fastpath FunctionCall of the function ``oid``."""
        if self.exempt:
            return ALLOWED
        catalog = self.guard.policy.catalog
        if catalog is not None and catalog.oid_allowed(oid):
            return ALLOWED
        function = catalog.function(oid) if catalog is not None else None
        name = f"{function.name}()" if function is not None else f"function {oid}"
        return self.guard.count(refusal("function", f"a fastpath call of {name}"))
