"""What every benchmark's report needs: ratios of figures that may be missing, numbers or
"n/a", a target's verdict, and an aligned table."""

from __future__ import annotations

from collections.abc import Sequence


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``; None when either is missing or the denominator is not
    above zero (no ratio means anything then)."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    """``value / scale`` formatted with ``spec``, or "n/a" when there is no value."""
    return "n/a" if value is None else format(value / scale, spec)


def met(flag: bool | None) -> str:
    """A target's verdict: None when it could not be measured."""
    return "undetermined" if flag is None else ("met" if flag else "NOT met")


def table(rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """The lines of a table: the first row is the header, underlined with dashes; the first
    ``left`` columns are aligned left (labels), the others right (figures)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        aligned = (c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(cells))
        lines.append("  ".join(aligned).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines
