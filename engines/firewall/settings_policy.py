"""Which settings a client may change, and how: the allowlist behind SET, SET LOCAL, RESET
and set_config().

Settings are session state, and under transaction pooling a session's server is someone
else's a moment later. So a setting is one of:

* **tracked**: PostgreSQL reports it (ParameterStatus), the proxy replays the client's value
  on every server it lands on (client.TRACKED_PARAMETERS): SET freely;
* **transaction-scoped**: harmless planner, timeout and formatting knobs: SET LOCAL (or
  set_config(..., true)) anywhere, a plain SET only in session pool mode, where the
  server is the client's until it leaves (and DISCARD ALL cleans up after it);
* anything else (``role``, ``session_authorization``, ``session_replication_role``,
  logging, ``allow_system_table_mods``…): refused.

Two settings decide how PostgreSQL reads SQL text, so they keep values the guard reads the
same way: ``standard_conforming_strings`` stays on (with it off, ``'a\\' , '…'`` is one string
to the server and two to the guard), and ``client_encoding`` may only name an encoding whose
bytes below 0x80 are always ASCII (encodings.codec), resolved as PostgreSQL resolves names.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.pgproxy import encodings

TRACKED = frozenset(
    {"application_name", "client_encoding", "datestyle", "intervalstyle", "timezone",
     "standard_conforming_strings"}
)  # fmt: skip
TRANSACTION_SCOPED = frozenset(
    {
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
        "extra_float_digits",
        "bytea_output", "default_transaction_isolation", "default_transaction_read_only",
        "default_transaction_deferrable", "transaction_isolation", "transaction_read_only",
        "transaction_deferrable", "random_page_cost", "seq_page_cost", "cpu_tuple_cost",
        "cpu_index_tuple_cost", "cpu_operator_cost", "effective_cache_size", "jit", "geqo",
        "join_collapse_limit", "from_collapse_limit", "plan_cache_mode", "client_min_messages",
        "synchronous_commit", "lc_monetary", "lc_numeric", "lc_time", "default_text_search_config",
        "xmloption", "xmlbinary", "row_security", "constraint_exclusion", "cursor_tuple_fraction",
        "timezone_abbreviations", "gin_fuzzy_search_limit",
        "default_statistics_target", "quote_all_identifiers", "escape_string_warning",
        "array_nulls", "enable_partition_pruning",
    }
)  # fmt: skip
# Left out: search_path, which would make the guard's reading of unqualified names (a
# catalog's, a temporary table's) wrong; memory and parallelism (work_mem,
# maintenance_work_mem, temp_buffers, max_parallel_workers_per_gather), which a client
# could raise until the server runs out.
# Timeouts a client may only set low: never off, never longer than this (milliseconds).
TIMEOUTS = frozenset({"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"})
MAX_TIMEOUT_MS = 60_000
_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# Every planner switch (enable_seqscan, enable_hashjoin…) only changes plans.
TRANSACTION_SCOPED_PREFIXES = ("enable_",)
# PostgreSQL's parse_bool: these words and any unique prefix of them (case-insensitive).
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def timeout_ms(value: str) -> float | None:
    """A timeout setting's value in milliseconds, read as PostgreSQL reads it (a number, in
    milliseconds unless a unit follows), or None if it would refuse it."""
    text = value.strip()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = text[len(number) :].strip() or "ms"
    try:
        amount = float(number)
    except ValueError:
        return None
    return amount * _UNITS_MS[unit] if unit in _UNITS_MS else None


def pg_bool(value: str) -> bool | None:
    """``value`` read as PostgreSQL reads a boolean setting, or None if it would refuse it."""
    text = value.strip().lower()
    if not text:
        return None
    if text in {"1", "0"}:
        return text == "1"
    if text == "o":  # ambiguous between on and off
        return None
    for words, result in ((_TRUE_WORDS, True), (_FALSE_WORDS, False)):
        if any(word.startswith(text) for word in words[:3]):
            return result
    return None


@dataclass(frozen=True)
class SettingChange:
    """The outcome of a client's change of one setting: refused (``rule`` and ``detail``),
    allowed, allowed only in session mode (``session_only``), or one after which the next
    messages must wait (``holds``: client_encoding)."""

    rule: str | None = None
    detail: str = ""
    session_only: str | None = None
    holds: bool = False


ALLOWED_CHANGE = SettingChange()


def _scoped(name: str, extra: frozenset[str]) -> bool:
    return (
        name in TRANSACTION_SCOPED
        or name in extra
        or name.startswith(TRANSACTION_SCOPED_PREFIXES)
        or "." in name  # a custom placeholder (myapp.tenant_id): inert unless code reads it
    )


def judge_setting(
    name: str,
    value: str | None,
    *,
    local: bool,
    reset: bool = False,
    simple_query: bool = True,
    extra: frozenset[str] = frozenset(),
) -> SettingChange:
    """May a client set ``name`` (as the parser folds it) to ``value`` (None: a value the
    guard cannot read, such as an expression or a list), or reset it (``reset``)?
    ``local``: SET LOCAL, or set_config's is_local. ``extra``: settings the configuration
    adds to the transaction-scoped ones."""
    name = name.lower()
    if name == "standard_conforming_strings":
        if reset or (value is not None and pg_bool(value) is True):
            return ALLOWED_CHANGE
        return SettingChange("string_syntax", "standard_conforming_strings must stay on")
    if name == "client_encoding":
        if not simple_query:
            return SettingChange(
                "string_syntax", "client_encoding may change only in a simple Query, which the "
                "firewall can hold the next messages behind",
            )  # fmt: skip
        if not reset and (value is None or encodings.codec(value) is None):
            return SettingChange(
                "string_syntax", f"client_encoding {value or '(an expression)'} is not one the "
                "guard reads as the server does; use UTF8 or a single-byte encoding",
            )  # fmt: skip
        return SettingChange(holds=True)
    if name in TRACKED:
        return ALLOWED_CHANGE
    if name in TIMEOUTS and name not in extra and not reset:
        limit = MAX_TIMEOUT_MS
        ms = timeout_ms(value) if value is not None else None
        if ms is None or not 0 < ms <= limit:
            return SettingChange(
                "setting", f"{name} may only be set to a time above 0 and up to {limit // 1000} s"
            )
    if _scoped(name, extra):
        if local:
            return ALLOWED_CHANGE
        return SettingChange(
            session_only=f"SET {name} would outlive the transaction on a pooled server; use "
            "SET LOCAL inside a transaction, or session pool mode",
        )
    return SettingChange("setting", f"clients may not change {name}")
